import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real HTTP proxy in front of the real server, for testing the client's retries without
 * stubbing `fetch`: the n-th request it receives meets the n-th fault of its plan, and every
 * request after the plan runs out is forwarded untouched.
 */

export type Fault =
  /** Forward to the server and pass its answer back. */
  | 'forward'
  /** Answer 503 with a plain-text body, as a load balancer would; the server never sees it. */
  | 'unavailable'
  /** Answer 429 `rate_limited`; the server never sees it. */
  | 'rate_limited'
  /** Answer 409 `idempotency_request_in_progress`; the server never sees it. */
  | 'in_progress'
  /** Cut the connection before forwarding; the server never sees it. */
  | 'drop_before'
  /** Forward, let the server carry the request out, then cut the connection: the answer is lost. */
  | 'drop_after'
  /** Never answer; the client has to give up on its own. */
  | 'stall';

export interface SeenRequest {
  method: string;
  path: string;
  fault: Fault;
  idempotencyKey: string | undefined;
  contentType: string | undefined;
  body: string;
  /** The status the server answered with, when the request reached it. */
  upstreamStatus: number | undefined;
  /** Whether the server answered from its idempotency store. */
  replayed: boolean;
}

export interface FaultyProxy {
  baseUrl: string;
  requests: SeenRequest[];
  /** Replaces the plan; the next request meets the first fault of the new one. */
  plan(faults: Fault[]): void;
  close(): Promise<void>;
}

/** Headers fetch sets itself or forbids; the rest pass through both ways. */
const hopHeaders = new Set(['host', 'connection', 'keep-alive', 'content-length', 'transfer-encoding', 'upgrade']);

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

export async function startFaultyProxy(upstreamBaseUrl: string, faults: Fault[] = []): Promise<FaultyProxy> {
  let plan = [...faults];
  const requests: SeenRequest[] = [];

  async function forward(request: IncomingMessage, body: string) {
    const headers = new Headers();
    for (const [name, value] of Object.entries(request.headers)) {
      if (hopHeaders.has(name) || value === undefined) continue;
      headers.set(name, Array.isArray(value) ? value.join(', ') : value);
    }
    const upstream = await fetch(`${upstreamBaseUrl}${request.url ?? '/'}`, {
      method: request.method,
      headers,
      body: body === '' ? undefined : body,
    });
    return { status: upstream.status, headers: upstream.headers, text: await upstream.text() };
  }

  const server = createServer((request, response) => {
    void (async () => {
      const body = await readBody(request);
      const fault = plan.shift() ?? 'forward';
      const seen: SeenRequest = {
        method: request.method ?? '',
        path: request.url ?? '',
        fault,
        idempotencyKey: header(request, 'idempotency-key'),
        contentType: header(request, 'content-type'),
        body,
        upstreamStatus: undefined,
        replayed: false,
      };
      requests.push(seen);
      switch (fault) {
        case 'unavailable':
          response.writeHead(503, { 'content-type': 'text/plain' });
          response.end('upstream unavailable');
          return;
        case 'rate_limited':
          sendJson(
            response,
            429,
            { error: { code: 'rate_limited', message: 'Slow down', requestId: 'req_proxy_rate_limited' } },
            { 'retry-after': '0' },
          );
          return;
        case 'in_progress':
          sendJson(response, 409, {
            error: {
              code: 'idempotency_request_in_progress',
              message: 'A request with this Idempotency-Key is still running',
              requestId: 'req_proxy_in_progress',
            },
          });
          return;
        case 'drop_before':
          request.socket.destroy();
          return;
        case 'stall':
          // Hold the request open; the client's timeout closes the socket.
          return;
        case 'forward':
        case 'drop_after': {
          const answer = await forward(request, body);
          seen.upstreamStatus = answer.status;
          seen.replayed = answer.headers.get('idempotent-replayed') === 'true';
          if (fault === 'drop_after') {
            request.socket.destroy();
            return;
          }
          const headers: Record<string, string> = {};
          answer.headers.forEach((value, name) => {
            if (!hopHeaders.has(name) && name !== 'content-encoding') headers[name] = value;
          });
          response.writeHead(answer.status, { ...headers, 'content-length': Buffer.byteLength(answer.text) });
          response.end(answer.text);
          return;
        }
      }
    })().catch((error: unknown) => {
      response.destroy(error instanceof Error ? error : new Error(String(error)));
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    plan(faults: Fault[]) {
      plan = [...faults];
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
