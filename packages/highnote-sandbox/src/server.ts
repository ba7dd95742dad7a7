import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FaultPlan, parseFaultRequest } from './faults.js';
import { type GraphqlEndpoint, handleGraphql } from './graphqlEndpoint.js';
import { readJsonBody, sendJson } from './http.js';
import { buildRootValue, type SandboxTiming } from './resolvers.js';
import { Scheduler } from './scheduler.js';
import { buildSandboxSchema } from './schema.js';
import { clearState, createState, ensureCardProduct, newId, type SandboxState } from './store.js';

export const DEFAULT_HOST = '127.0.0.1';
/** Short enough for tests to poll, long enough that a client observes PENDING first. */
export const DEFAULT_APPLICATION_APPROVAL_DELAY_MS = 50;
export const DEFAULT_TRANSFER_SETTLEMENT_DELAY_MS = 50;

export interface SandboxOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
  /** Accept only this API key; by default any well-formed key is accepted. */
  apiKey?: string;
  applicationApprovalDelayMs?: number;
  transferSettlementDelayMs?: number;
}

export interface RunningSandbox {
  url: string;
  graphqlUrl: string;
  close(): Promise<void>;
}

interface Sandbox {
  state: SandboxState;
  scheduler: Scheduler;
  faults: FaultPlan;
  endpoint: GraphqlEndpoint;
  knownOperations: ReadonlySet<string>;
}

function createSandbox(options: SandboxOptions): Sandbox {
  const state = createState();
  const scheduler = new Scheduler();
  const faults = new FaultPlan();
  const schema = buildSandboxSchema();
  const timing: SandboxTiming = {
    applicationApprovalDelayMs: options.applicationApprovalDelayMs ?? DEFAULT_APPLICATION_APPROVAL_DELAY_MS,
    transferSettlementDelayMs: options.transferSettlementDelayMs ?? DEFAULT_TRANSFER_SETTLEMENT_DELAY_MS,
  };
  const endpoint: GraphqlEndpoint = {
    schema,
    rootValue: buildRootValue(),
    faults,
    apiKey: options.apiKey,
    context: (apiKey, injectedUserErrors) => ({ state, scheduler, timing, apiKey, injectedUserErrors }),
  };
  const knownOperations = new Set([
    ...Object.keys(schema.getQueryType()?.getFields() ?? {}),
    ...Object.keys(schema.getMutationType()?.getFields() ?? {}),
  ]);
  return { state, scheduler, faults, endpoint, knownOperations };
}

async function armFault(sandbox: Sandbox, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const body = await readJsonBody(request);
  if (!body.ok) return sendJson(response, body.status, { error: body.message });
  const parsed = parseFaultRequest(body.value, sandbox.knownOperations);
  if (!parsed.ok) return sendJson(response, 400, { error: parsed.message });
  sandbox.faults.arm(parsed.fault, parsed.count);
  sendJson(response, 200, { ok: true, ...parsed.fault, count: parsed.count });
}

function reset(sandbox: Sandbox, response: ServerResponse): void {
  sandbox.scheduler.cancelAll();
  sandbox.faults.clear();
  clearState(sandbox.state);
  sendJson(response, 200, { ok: true });
}

/** Seeds a card product (and so its product funding account) without going through an application. */
async function seedCardProduct(sandbox: Sandbox, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const body = await readJsonBody(request);
  if (!body.ok) return sendJson(response, body.status, { error: body.message });
  const requested = (body.value as { cardProductId?: unknown } | null)?.cardProductId;
  if (requested !== undefined && (typeof requested !== 'string' || requested === '')) {
    return sendJson(response, 400, { error: 'cardProductId must be a non-empty string' });
  }
  const product = ensureCardProduct(sandbox.state, requested ?? newId('cp'));
  sendJson(response, 200, { cardProductId: product.id, fundingFinancialAccountId: product.fundingFinancialAccountId });
}

async function route(sandbox: Sandbox, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://sandbox').pathname;
  if (request.method !== 'POST') return sendJson(response, 405, { error: 'only POST is served' });
  if (path === '/graphql') return handleGraphql(sandbox.endpoint, request, response);
  if (path === '/_sandbox/faults') return armFault(sandbox, request, response);
  if (path === '/_sandbox/reset') return reset(sandbox, response);
  if (path === '/_sandbox/card-products') return seedCardProduct(sandbox, request, response);
  sendJson(response, 404, { error: 'not found' });
}

function urlHost(address: AddressInfo): string {
  return address.family === 'IPv6' ? `[${address.address}]` : address.address;
}

/**
 * Starts a sandbox with empty state.
 *
 * @example
 * const sandbox = await startSandbox({ port: 0 });
 * await fetch(sandbox.graphqlUrl, { method: 'POST', body: JSON.stringify({ query: '{ ping }' }) });
 * await sandbox.close();
 */
export async function startSandbox(options: SandboxOptions = {}): Promise<RunningSandbox> {
  const sandbox = createSandbox(options);
  const server = createServer((request, response) => {
    route(sandbox, request, response).catch((error: unknown) => {
      console.error('highnote-sandbox: request failed', error);
      if (!response.headersSent) sendJson(response, 500, { errors: [{ message: 'Internal server error' }] });
    });
  });
  server.listen(options.port ?? 0, options.host ?? DEFAULT_HOST);
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  const url = `http://${urlHost(address)}:${address.port}`;
  return {
    url,
    graphqlUrl: `${url}/graphql`,
    async close() {
      sandbox.scheduler.cancelAll();
      const closed = new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
      // Held `timeout` requests and idle keep-alive sockets would otherwise keep close() waiting forever.
      server.closeAllConnections();
      await closed;
    },
  };
}
