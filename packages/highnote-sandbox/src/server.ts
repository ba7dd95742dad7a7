import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SandboxServices, SandboxTiming } from './context.js';
import { FaultPlan, parseFaultRequest } from './faults.js';
import { type GraphqlEndpoint, handleGraphql } from './graphqlEndpoint.js';
import { readJsonBody, sendJson } from './http.js';
import { NOTIFICATION_MODES, type NotificationMode, Notifier } from './notifier.js';
import { resumePendingWork } from './onboarding.js';
import { StateFile } from './persistence.js';
import { buildRootValue } from './resolvers.js';
import { Scheduler } from './scheduler.js';
import { buildSandboxSchema } from './schema.js';
import { clearState, createState, ensureCardProduct, newId } from './store.js';

export const DEFAULT_HOST = '127.0.0.1';
/** Short enough for tests to poll, long enough that a client observes PENDING first. */
export const DEFAULT_APPLICATION_APPROVAL_DELAY_MS = 50;
export const DEFAULT_TRANSFER_SETTLEMENT_DELAY_MS = 50;
/** Four attempts over about five seconds: enough to ride out a receiver's restart in development. */
export const DEFAULT_NOTIFICATION_RETRY_DELAYS_MS: readonly number[] = [250, 1_000, 4_000];
export const DEFAULT_NOTIFICATION_TIMEOUT_MS = 5_000;
export const DEFAULT_STATE_WRITE_DELAY_MS = 100;
/** The longest `holdMs` the notifications control accepts. */
const MAX_HOLD_MS = 60_000;

export interface SandboxOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
  /** Accept only this API key; by default any well-formed key is accepted. */
  apiKey?: string;
  applicationApprovalDelayMs?: number;
  transferSettlementDelayMs?: number;
  /** Waits between webhook delivery attempts; a delivery makes `length + 1` attempts at most. */
  notificationRetryDelaysMs?: readonly number[];
  /** How long one webhook attempt waits for an answer. */
  notificationTimeoutMs?: number;
  /** Keep state in this JSON file: loaded at start when it exists, written after changes and on close. */
  stateFile?: string;
  /** How long after a change the state file is written. */
  stateWriteDelayMs?: number;
}

export interface RunningSandbox {
  url: string;
  graphqlUrl: string;
  close(): Promise<void>;
}

interface Sandbox {
  services: SandboxServices;
  faults: FaultPlan;
  endpoint: GraphqlEndpoint;
  knownOperations: ReadonlySet<string>;
  stateFile: StateFile | null;
  /** Notes that state changed, so the state file (if any) is written soon. */
  changed: () => void;
}

function createSandbox(options: SandboxOptions): Sandbox {
  const state = createState();
  const stateFile = options.stateFile
    ? new StateFile(state, {
        path: options.stateFile,
        debounceMs: options.stateWriteDelayMs ?? DEFAULT_STATE_WRITE_DELAY_MS,
      })
    : null;
  const changed = () => stateFile?.markDirty();
  const scheduler = new Scheduler(changed);
  const notifier = new Notifier({
    state,
    scheduler,
    delivery: {
      retryDelaysMs: options.notificationRetryDelaysMs ?? DEFAULT_NOTIFICATION_RETRY_DELAYS_MS,
      timeoutMs: options.notificationTimeoutMs ?? DEFAULT_NOTIFICATION_TIMEOUT_MS,
    },
    onChange: changed,
  });
  const timing: SandboxTiming = {
    applicationApprovalDelayMs: options.applicationApprovalDelayMs ?? DEFAULT_APPLICATION_APPROVAL_DELAY_MS,
    transferSettlementDelayMs: options.transferSettlementDelayMs ?? DEFAULT_TRANSFER_SETTLEMENT_DELAY_MS,
  };
  const services: SandboxServices = { state, scheduler, timing, notifier };
  const schema = buildSandboxSchema();
  const faults = new FaultPlan();
  const endpoint: GraphqlEndpoint = {
    schema,
    rootValue: buildRootValue(),
    faults,
    apiKey: options.apiKey,
    context: (apiKey, injectedUserErrors) => ({ ...services, apiKey, injectedUserErrors }),
    afterMutation: changed,
  };
  const knownOperations = new Set([
    ...Object.keys(schema.getQueryType()?.getFields() ?? {}),
    ...Object.keys(schema.getMutationType()?.getFields() ?? {}),
  ]);
  if (stateFile?.load()) resumePendingWork(services);
  return { services, faults, endpoint, knownOperations, stateFile, changed };
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
  sandbox.services.scheduler.cancelAll();
  sandbox.services.notifier.reset();
  sandbox.faults.clear();
  clearState(sandbox.services.state);
  sandbox.changed();
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
  const product = ensureCardProduct(sandbox.services.state, requested ?? newId('cp'));
  sandbox.changed();
  sendJson(response, 200, { cardProductId: product.id, fundingFinancialAccountId: product.fundingFinancialAccountId });
}

/** `{mode, holdMs?}`: how notifications go out from now on (see the README). */
async function setNotificationMode(sandbox: Sandbox, request: IncomingMessage, response: ServerResponse) {
  const body = await readJsonBody(request);
  if (!body.ok) return sendJson(response, body.status, { error: body.message });
  const { mode, holdMs } = (body.value ?? {}) as { mode?: unknown; holdMs?: unknown };
  if (typeof mode !== 'string' || !(NOTIFICATION_MODES as readonly string[]).includes(mode)) {
    return sendJson(response, 400, { error: `mode must be one of ${NOTIFICATION_MODES.join(', ')}` });
  }
  const holdOk =
    holdMs === undefined ||
    holdMs === null ||
    (typeof holdMs === 'number' && Number.isInteger(holdMs) && holdMs >= 0 && holdMs <= MAX_HOLD_MS);
  if (!holdOk) return sendJson(response, 400, { error: `holdMs must be an integer from 0 to ${MAX_HOLD_MS}` });
  const hold = typeof holdMs === 'number' ? holdMs : null;
  sandbox.services.notifier.setMode(mode as NotificationMode, hold);
  sendJson(response, 200, { ok: true, mode, holdMs: mode === 'reverse' ? hold : null });
}

async function route(sandbox: Sandbox, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://sandbox').pathname;
  if (request.method !== 'POST') return sendJson(response, 405, { error: 'only POST is served' });
  if (path === '/graphql') return handleGraphql(sandbox.endpoint, request, response);
  if (path === '/_sandbox/faults') return armFault(sandbox, request, response);
  if (path === '/_sandbox/reset') return reset(sandbox, response);
  if (path === '/_sandbox/card-products') return seedCardProduct(sandbox, request, response);
  if (path === '/_sandbox/notifications') return setNotificationMode(sandbox, request, response);
  if (path === '/_sandbox/notifications/flush') {
    return sendJson(response, 200, { ok: true, flushed: sandbox.services.notifier.flush() });
  }
  sendJson(response, 404, { error: 'not found' });
}

function urlHost(address: AddressInfo): string {
  return address.family === 'IPv6' ? `[${address.address}]` : address.address;
}

/**
 * Starts a sandbox: with empty state, or with the state kept in `options.stateFile`.
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
      sandbox.services.scheduler.cancelAll();
      sandbox.services.notifier.reset();
      const closed = new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
      // Held `timeout` requests and idle keep-alive sockets would otherwise keep close() waiting forever.
      server.closeAllConnections();
      await closed;
      // Last, so that nothing a closing request did is missed.
      await sandbox.stateFile?.flush();
    },
  };
}
