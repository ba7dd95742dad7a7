import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebhookVerificationError, webhooks } from '../../../packages/sdk/src/index.js';
import { openSecret } from '../src/platform/secrets.js';
import { webhookDisabledReason, webhookRetryDelaysMs } from '../src/webhooks/delivery.js';
import { newOrganization, programWithUser, startTestServer, type TestServer, testEncryptionKey } from './harness.js';

/**
 * Partner webhooks over real HTTP both ways: the server's worker POSTs to a node:http receiver
 * started here, which records every request and can be told to fail. The schedule's delays are
 * shortened through the harness so retries happen within the test.
 */

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  answered: number;
}

/** Answers 204, or `failures[path]` more times with 500 (or always, for a path in `down`). */
class Receiver {
  readonly requests: Received[] = [];
  readonly failures = new Map<string, number>();
  readonly down = new Set<string>();
  #server: Server;
  url = '';

  constructor() {
    this.#server = createServer(async (request, response) => {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      const path = request.url ?? '/';
      const left = this.failures.get(path) ?? 0;
      const failing = this.down.has(path) || left > 0;
      if (left > 0) this.failures.set(path, left - 1);
      const answered = failing ? 500 : 204;
      this.requests.push({ path, headers: request.headers, body: Buffer.concat(chunks).toString('utf8'), answered });
      response.writeHead(answered).end();
    });
  }

  async start() {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close() {
    this.#server.closeAllConnections();
    this.#server.close();
  }

  at(path: string) {
    return this.requests.filter((request) => request.path === path);
  }
}

let server: TestServer;
let receiver: Receiver;
let org: Awaited<ReturnType<typeof newOrganization>>;
let other: Awaited<ReturnType<typeof newOrganization>>;
let programId: string;
let userId: string;

/** Polls `check` until it returns something other than undefined, or fails after `timeoutMs`. */
async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() - started > timeoutMs) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

beforeAll(async () => {
  receiver = new Receiver();
  await receiver.start();
  server = await startTestServer({ webhooks: { retryDelaysMs: webhookRetryDelaysMs.map(() => 100) } });
  org = await newOrganization(server, 'Acme');
  other = await newOrganization(server, 'Other tenant');
  ({ programId, userId } = await programWithUser(org.call));
});

afterAll(async () => {
  await server?.close();
  await receiver?.close();
});

async function createEndpoint(path: string, eventTypes: string[]) {
  const created = await org.call('POST', '/v1/webhook-endpoints', { url: `${receiver.url}${path}`, eventTypes });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body as { id: string; secret: string; [key: string]: unknown };
}

describe('partner webhook endpoints', () => {
  it('creates an endpoint with a whsec_ secret shown once and stored sealed', async () => {
    const created = await createEndpoint('/created', ['usertask.completed']);
    expect(created).toMatchObject({
      object: 'webhook_endpoint',
      url: `${receiver.url}/created`,
      eventTypes: ['usertask.completed'],
      status: 'enabled',
      disabledReason: null,
    });
    expect(created.id).toMatch(/^whe_/);
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/=]+$/);
    expect(Buffer.from(created.secret.slice('whsec_'.length), 'base64').length).toBeGreaterThanOrEqual(24);

    const retrieved = await org.call('GET', `/v1/webhook-endpoints/${created.id}`);
    expect(retrieved.status).toBe(200);
    expect(retrieved.body.secret).toBeUndefined();
    const listed = await org.call('GET', '/v1/webhook-endpoints?limit=100');
    expect(listed.body.data.map((endpoint: { id: string }) => endpoint.id)).toContain(created.id);
    expect(listed.body.data.every((endpoint: object) => !('secret' in endpoint))).toBe(true);

    const row = await server.database.db
      .selectFrom('webhook_endpoints' as never)
      .select(['secret_ciphertext' as never])
      .where('id' as never, '=', created.id as never)
      .executeTakeFirstOrThrow();
    const sealed = (row as { secret_ciphertext: string }).secret_ciphertext;
    expect(sealed).not.toContain(created.secret.slice('whsec_'.length));
    expect(openSecret(testEncryptionKey, sealed)).toBe(created.secret);
  });

  it('keeps the secret out of the idempotency table: a replay shows its last four characters', async () => {
    const body = { url: `${receiver.url}/replayed`, eventTypes: ['*'] };
    const headers = { 'idempotency-key': 'whe-replay-1' };
    const first = await org.call('POST', '/v1/webhook-endpoints', body, headers);
    expect(first.status).toBe(201);
    const replayed = await org.call('POST', '/v1/webhook-endpoints', body, headers);
    expect(replayed.status).toBe(201);
    expect(replayed.body.id).toBe(first.body.id);
    expect(replayed.body.secret).toBe(`whsec_…${first.body.secret.slice(-4)}`);
    const stored = await server.database.db.selectFrom('idempotency_keys').select('response_body').execute();
    expect(JSON.stringify(stored)).not.toContain(first.body.secret);
  });

  it('refuses unknown event types and non-http URLs, and writes nothing', async () => {
    const before = (await org.call('GET', '/v1/webhook-endpoints?limit=100')).body.data.length;
    const cases: [unknown, string][] = [
      [{ url: `${receiver.url}/x`, eventTypes: ['usertask.exploded'] }, 'eventTypes.0'],
      [{ url: 'ftp://example.com/hook', eventTypes: ['*'] }, 'url'],
      [{ url: `${receiver.url}/x`, eventTypes: [] }, 'eventTypes'],
      [{ url: `${receiver.url}/x` }, 'eventTypes'],
    ];
    for (const [body, param] of cases) {
      const refused = await org.call('POST', '/v1/webhook-endpoints', body);
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.body.error.code).toBe('validation_error');
      expect(refused.body.error.param).toBe(param);
    }
    expect((await org.call('GET', '/v1/webhook-endpoints?limit=100')).body.data.length).toBe(before);
  });

  it('delivers the subscribed events, signed, with bodies equal to GET /v1/events/{id}', async () => {
    const endpoint = await createEndpoint('/usertasks', ['usertask.assigned', 'usertask.completed']);
    const everything = await createEndpoint('/everything', ['*']);
    const assigned = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 25 });
    expect(assigned.status).toBe(201);
    const completed = await org.call('PUT', `/v1/usertasks/${assigned.body.id}/complete`);
    expect(completed.status).toBe(200);

    const received = await eventually(() => {
      const requests = receiver.at('/usertasks');
      return requests.length >= 2 ? requests : undefined;
    });
    // The wildcard endpoint sees more types (the disbursement) in the same time.
    await eventually(() =>
      receiver.at('/everything').some((request) => request.body.includes('"disbursement.created"')) ? true : undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.at('/usertasks')).toHaveLength(2);

    const types = received.map((request) => JSON.parse(request.body).type).sort();
    expect(types).toEqual(['usertask.assigned', 'usertask.completed']);
    const verifier = new Webhook(endpoint.secret);
    for (const request of received) {
      const id = request.headers['webhook-id'] as string;
      const event = await org.call('GET', `/v1/events/${id}`);
      expect(event.status).toBe(200);
      expect(JSON.parse(request.body)).toEqual(event.body);
      expect(request.headers['content-type']).toBe('application/json');
      expect(Math.abs(Number(request.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
      const headers = {
        'webhook-id': id,
        'webhook-timestamp': request.headers['webhook-timestamp'] as string,
        'webhook-signature': request.headers['webhook-signature'] as string,
      };
      // The reference library and our SDK both verify the signature over the raw body.
      expect(verifier.verify(request.body, headers)).toEqual(event.body);
      expect(webhooks.verify(request.body, request.headers, endpoint.secret)).toEqual(event.body);
      expect(() => webhooks.verify(`${request.body} `, request.headers, endpoint.secret)).toThrow(
        WebhookVerificationError,
      );
      expect(() => webhooks.verify(request.body, request.headers, everything.secret)).toThrow(/No signature matches/);
      expect(() =>
        webhooks.verify(request.body, request.headers, endpoint.secret, { now: new Date(Date.now() + 10 * 60_000) }),
      ).toThrow(expect.objectContaining({ reason: 'timestamp_too_old' }));
    }
    const all = receiver.at('/everything').map((request) => JSON.parse(request.body).type);
    expect(all).toEqual(expect.arrayContaining(['usertask.assigned', 'usertask.completed', 'disbursement.created']));

    const log = await org.call('GET', `/v1/webhook-endpoints/${endpoint.id}/deliveries`);
    expect(log.status).toBe(200);
    expect(log.body.data).toHaveLength(2);
    for (const delivery of log.body.data) {
      expect(delivery).toMatchObject({
        object: 'webhook_delivery',
        status: 'succeeded',
        attempts: 1,
        lastStatusCode: 204,
      });
    }
  });

  it('an endpoint failing twice then recovering receives every event exactly once per event id', async () => {
    receiver.failures.set('/flaky', 2);
    const endpoint = await createEndpoint('/flaky', ['*']);
    const since = new Date().toISOString();
    for (let index = 0; index < 3; index++) {
      const assigned = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 5 });
      await org.call('PUT', `/v1/usertasks/${assigned.body.id}/cancel`);
    }
    const events = (await org.call('GET', `/v1/events?limit=100&createdAfter=${encodeURIComponent(since)}`)).body.data;
    expect(events.length).toBeGreaterThanOrEqual(6);
    const expected = new Set<string>(events.map((event: { id: string }) => event.id));

    const log = await eventually(async () => {
      const page = (await org.call('GET', `/v1/webhook-endpoints/${endpoint.id}/deliveries?limit=100`)).body.data;
      return page.length === expected.size &&
        page.every((delivery: { status: string }) => delivery.status === 'succeeded')
        ? page
        : undefined;
    });
    const accepted = new Map<string, number>();
    for (const request of receiver.at('/flaky')) {
      if (request.answered !== 204) continue;
      const id = request.headers['webhook-id'] as string;
      accepted.set(id, (accepted.get(id) ?? 0) + 1);
    }
    expect(new Set(accepted.keys())).toEqual(expected);
    expect([...accepted.values()].every((count) => count === 1)).toBe(true);
    // Two failed attempts show in the log, and each failed event kept its webhook-id on the retry.
    const attempts = log.reduce((sum: number, delivery: { attempts: number }) => sum + delivery.attempts, 0);
    expect(attempts).toBe(expected.size + 2);
    expect(receiver.at('/flaky')).toHaveLength(expected.size + 2);
    const retried = log.filter((delivery: { attempts: number }) => delivery.attempts > 1);
    expect(retried.length).toBeGreaterThan(0);
    const endpointAfter = await org.call('GET', `/v1/webhook-endpoints/${endpoint.id}`);
    expect(endpointAfter.body).toMatchObject({ status: 'enabled', failingSince: null });
  });

  it('redelivers an event on request, with the same webhook-id', async () => {
    const endpoint = await createEndpoint('/redeliver', ['usertask.assigned']);
    await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 3 });
    const [delivery] = await eventually(async () => {
      const page = (await org.call('GET', `/v1/webhook-endpoints/${endpoint.id}/deliveries`)).body.data;
      return page[0]?.status === 'succeeded' ? page : undefined;
    });
    const again = await org.call('POST', `/v1/webhook-endpoints/${endpoint.id}/deliveries/${delivery.id}/redeliver`);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ id: delivery.id, status: 'pending' });
    await eventually(() => (receiver.at('/redeliver').length === 2 ? true : undefined));
    const [first, second] = receiver.at('/redeliver');
    expect(second?.headers['webhook-id']).toBe(first?.headers['webhook-id']);
    expect(second?.headers['webhook-id']).toBe(delivery.eventId);
    const after = await eventually(async () => {
      const page = (await org.call('GET', `/v1/webhook-endpoints/${endpoint.id}/deliveries`)).body.data;
      return page[0]?.status === 'succeeded' ? page[0] : undefined;
    });
    expect(after.attempts).toBe(2);
  });

  it('signs with both secrets while a rotated one overlaps', async () => {
    const endpoint = await createEndpoint('/rotate', ['usertask.assigned']);
    const rotated = await org.call('POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(endpoint.secret);
    await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 2 });
    const [request] = await eventually(() => {
      const requests = receiver.at('/rotate');
      return requests.length > 0 ? requests : undefined;
    });
    if (request === undefined) throw new Error('no request');
    expect((request.headers['webhook-signature'] as string).split(' ')).toHaveLength(2);
    for (const secret of [endpoint.secret, rotated.body.secret as string]) {
      expect(webhooks.verify(request.body, request.headers, secret)).toMatchObject({ type: 'usertask.assigned' });
      expect(
        new Webhook(secret).verify(request.body, {
          'webhook-id': request.headers['webhook-id'] as string,
          'webhook-timestamp': request.headers['webhook-timestamp'] as string,
          'webhook-signature': request.headers['webhook-signature'] as string,
        }),
      ).toMatchObject({ type: 'usertask.assigned' });
    }
  });

  it('disables an endpoint that has failed for 5 days, with the reason', async () => {
    receiver.down.add('/down');
    const endpoint = await createEndpoint('/down', ['usertask.assigned']);
    const { sql } = await import('kysely');
    await sql`UPDATE webhook_endpoints SET failing_since = now() - interval '5 days 1 hour'
      WHERE id = ${endpoint.id}`.execute(server.database.db);
    await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 1 });
    const disabled = await eventually(async () => {
      const current = await org.call('GET', `/v1/webhook-endpoints/${endpoint.id}`);
      return current.body.status === 'disabled' ? current.body : undefined;
    });
    expect(disabled.disabledReason).toBe(webhookDisabledReason);
    const [delivery] = await eventually(async () => {
      const page = (await org.call('GET', `/v1/webhook-endpoints/${endpoint.id}/deliveries`)).body.data;
      return page[0]?.status === 'failed' ? page : undefined;
    });
    expect(delivery.lastError).toBe('The endpoint is disabled');
    expect(receiver.at('/down')).toHaveLength(1);

    // Enabling it again clears the failure record.
    const enabled = await org.call('PATCH', `/v1/webhook-endpoints/${endpoint.id}`, { status: 'enabled' });
    expect(enabled.body).toMatchObject({ status: 'enabled', disabledReason: null, failingSince: null });
  });

  it('updates and deletes an endpoint', async () => {
    const endpoint = await createEndpoint('/update', ['usertask.assigned']);
    const updated = await org.call('PATCH', `/v1/webhook-endpoints/${endpoint.id}`, {
      eventTypes: ['usertask.completed', 'usertask.completed'],
      description: 'Payroll sync',
      status: 'disabled',
    });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({
      eventTypes: ['usertask.completed'],
      description: 'Payroll sync',
      status: 'disabled',
      disabledReason: 'Disabled through the API',
    });
    const deleted = await org.call('DELETE', `/v1/webhook-endpoints/${endpoint.id}`);
    expect(deleted.status).toBe(200);
    expect((await org.call('GET', `/v1/webhook-endpoints/${endpoint.id}`)).status).toBe(404);
  });

  it("a tenant never sees another's endpoints or deliveries", async () => {
    const endpoint = await createEndpoint('/private', ['*']);
    const paths: [string, string, unknown][] = [
      ['GET', `/v1/webhook-endpoints/${endpoint.id}`, undefined],
      ['PATCH', `/v1/webhook-endpoints/${endpoint.id}`, { status: 'disabled' }],
      ['DELETE', `/v1/webhook-endpoints/${endpoint.id}`, undefined],
      ['POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`, undefined],
      ['GET', `/v1/webhook-endpoints/${endpoint.id}/deliveries`, undefined],
    ];
    for (const [method, path, body] of paths) {
      const response = await other.call(method, path, body);
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(response.body.error.code).toBe('not_found');
    }
    expect((await other.call('GET', '/v1/webhook-endpoints')).body.data).toEqual([]);
    expect((await org.call('GET', `/v1/webhook-endpoints/${endpoint.id}`)).body.status).toBe('enabled');
  });
});
