import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from '../../../packages/highnote-sandbox/src/index.js';
import { client, countRows, newOrganization, programWithUser, startTestServer, type TestServer } from './harness.js';

let sandbox: RunningSandbox;
let server: TestServer;
let org: Awaited<ReturnType<typeof newOrganization>>;
let other: Awaited<ReturnType<typeof newOrganization>>;
let ids: {
  programId: string;
  userId: string;
  taskId: string;
  userTaskId: string;
  disbursementId: string;
  eventId: string;
  applicationId: string;
  cardId: string;
  webhookEndpointId: string;
  agreementId: string;
};

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0, applicationApprovalDelayMs: 10, transferSettlementDelayMs: 10 });
  server = await startTestServer({ sandbox });
  org = await newOrganization(server, 'Acme');
  other = await newOrganization(server, 'Other tenant');
  const { programId, userId } = await programWithUser(org.call);
  const task = await org.call('POST', '/v1/tasks', { programId, name: 'T', monetaryValue: 10 });
  const userTask = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 20 });
  const done = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 5 });
  const completed = await org.call('PUT', `/v1/usertasks/${done.body.id}/complete`);
  const holder = await org.call('POST', '/v1/users', {
    firstName: 'Ada',
    lastName: 'Lovelace',
    dateOfBirth: '1990-12-10',
    address: { line1: '1 Main St', city: 'Austin', state: 'TX', postalCode: '73301', country: 'USA' },
  });
  const application = await org.call('POST', '/v1/applications', {
    userId: holder.body.id,
    consent: { acceptedAt: '2026-11-25T10:00:00.000Z' },
  });
  for (let tries = 0; tries < 200; tries++) {
    if ((await org.call('GET', `/v1/applications/${application.body.id}`)).body.status === 'approved') break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const card = await org.call('POST', '/v1/cards', { userId: holder.body.id, formFactor: 'virtual' });
  ids = {
    agreementId: (await org.call('POST', '/v1/agreements', { type: 'program_terms', title: 'Terms', body: 'Terms.' }))
      .body.id,
    applicationId: application.body.id,
    cardId: card.body.id,
    webhookEndpointId: (
      await org.call('POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/hooks', eventTypes: ['*'] })
    ).body.id,
    programId,
    userId,
    taskId: task.body.id,
    userTaskId: userTask.body.id,
    disbursementId: completed.body.disbursementId,
    eventId: (await org.call('GET', '/v1/events?limit=1')).body.data[0].id,
  };
});

afterAll(async () => {
  await server.close();
  await sandbox.close();
});

async function ledgerSnapshot() {
  return {
    transfers: await countRows(server, 'ledger_transfers', org.id),
    userTasks: await countRows(server, 'user_tasks', org.id),
    programs: await countRows(server, 'programs', org.id),
    users: await countRows(server, 'users', org.id),
    keys: (await server.database.db.selectFrom('idempotency_keys').select('key').execute()).length,
  };
}

describe('the operator', () => {
  // Every route's 401, 403 and other-tenant 404 are held by security-matrix.test.ts, generated
  // from the API document; this keeps the one route only the operator token may call.
  it('only the operator token creates organizations', async () => {
    const refused = await org.call('POST', '/v1/organizations', { name: 'x' });
    expect(refused.status).toBe(401);
  });
});

describe('errors and bad input', () => {
  it('answers bad input with 4xx from the closed list, naming the field, and writes nothing', async () => {
    const { programId, userId } = ids;
    const before = await ledgerSnapshot();
    const cases: [string, string, unknown, number, string, string | undefined, Record<string, string>?][] = [
      ['POST', '/v1/usertasks', '{"programId": ', 400, 'validation_error', undefined],
      ['POST', '/v1/usertasks', { programId, userId, monetaryValue: '500' }, 400, 'validation_error', 'monetaryValue'],
      ['POST', '/v1/usertasks', { programId, userId, monetaryValue: -5 }, 400, 'validation_error', 'monetaryValue'],
      ['POST', '/v1/usertasks', { programId, userId, monetaryValue: 0 }, 400, 'validation_error', 'monetaryValue'],
      ['POST', '/v1/usertasks', { programId, userId, monetaryValue: 1.005 }, 400, 'validation_error', 'monetaryValue'],
      ['POST', '/v1/usertasks', { programId, userId, monetaryValue: 1e12 }, 400, 'validation_error', 'monetaryValue'],
      ['POST', '/v1/usertasks', { programId, userId }, 400, 'validation_error', 'monetaryValue'],
      ['POST', '/v1/usertasks', { userId, monetaryValue: 5 }, 400, 'validation_error', 'programId'],
      ['POST', '/v1/usertasks', { programId, userId, monetaryValue: 5, extra: 1 }, 400, 'validation_error', 'extra'],
      ['POST', '/v1/usertasks', { programId: 'prg_unknown', userId, monetaryValue: 5 }, 404, 'not_found', 'programId'],
      ['POST', '/v1/usertasks', { programId, userId: 'usr_unknown', monetaryValue: 5 }, 404, 'not_found', 'userId'],
      ['POST', '/v1/usertasks', { programId, userId, monetaryValue: 1_000_000 }, 409, 'insufficient_funds', undefined],
      [
        'POST',
        '/v1/programs',
        { name: 'x', totalAwardPool: 10.123, maxParticipants: 1 },
        400,
        'validation_error',
        'totalAwardPool',
      ],
      [
        'POST',
        '/v1/programs',
        { name: 'x', totalAwardPool: 10, maxParticipants: 1.5 },
        400,
        'validation_error',
        'maxParticipants',
      ],
      ['POST', '/v1/programs', { name: '', totalAwardPool: 10, maxParticipants: 1 }, 400, 'validation_error', 'name'],
      ['POST', '/v1/programs', [1, 2], 400, 'validation_error', undefined],
      ['POST', `/v1/programs/${programId}/fund`, { amount: 0.001 }, 400, 'validation_error', 'amount'],
      ['PUT', `/v1/usertasks/${ids.userTaskId}/complete`, { amount: -1 }, 400, 'validation_error', 'amount'],
      ['PUT', `/v1/usertasks/${ids.userTaskId}/complete`, { evidence: 'x' }, 400, 'validation_error', 'evidence'],
      ['GET', '/v1/usertasks?limit=0', undefined, 400, 'validation_error', 'limit'],
      ['GET', '/v1/usertasks?limit=101', undefined, 400, 'validation_error', 'limit'],
      ['GET', '/v1/usertasks?cursor=garbage', undefined, 400, 'validation_error', 'cursor'],
      ['GET', '/v1/usertasks?status=bogus', undefined, 400, 'validation_error', 'status'],
      ['GET', '/v1/nope', undefined, 404, 'not_found', undefined],
      ['POST', '/v1/users', 'x', 415, 'unsupported_media_type', undefined, { 'content-type': 'text/plain' }],
      ['POST', '/v1/users', { metadata: { big: 'x'.repeat(70_000) } }, 413, 'payload_too_large', undefined],
    ];
    for (const [method, path, body, status, code, param, headers] of cases) {
      const response = await org.call(method, path, body, headers);
      const label = `${method} ${path} ${typeof body === 'string' ? body : JSON.stringify(body)?.slice(0, 80)}`;
      expect(response.status, label).toBe(status);
      expect(response.body.error.code, label).toBe(code);
      expect(response.body.error.param, label).toBe(param);
      expect(response.body.error.message.length, label).toBeGreaterThan(0);
      expect(response.body.error.requestId, label).toBe(response.headers.get('x-request-id'));
    }
    expect(await ledgerSnapshot()).toEqual(before);
  });
});

describe('idempotency', () => {
  it('replays the first response, refuses the key with another body, and never moves money twice', async () => {
    const { programId, userId } = ids;
    const key = `assign-${Date.now()}`;
    const body = { programId, userId, monetaryValue: 7 };
    const first = await org.call('POST', '/v1/usertasks', body, { 'idempotency-key': key });
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const before = await ledgerSnapshot();
    const replay = await org.call('POST', '/v1/usertasks', body, { 'idempotency-key': key });
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(first.body);
    // The very response, field order included, not a re-serialisation of it.
    expect(JSON.stringify(replay.body)).toBe(JSON.stringify(first.body));
    const reused = await org.call('POST', '/v1/usertasks', { ...body, monetaryValue: 8 }, { 'idempotency-key': key });
    expect(reused.status).toBe(422);
    expect(reused.body.error.code).toBe('idempotency_key_reused');
    expect(await ledgerSnapshot()).toEqual(before);
    // Keys belong to one organization: the same key elsewhere is a new request.
    const elsewhere = await other.call('POST', '/v1/users', {}, { 'idempotency-key': key });
    expect(elsewhere.status).toBe(201);
  });

  it('a failed request stores nothing, so the same key can be retried once the cause is fixed', async () => {
    const { userId } = ids;
    const program = await org.call('POST', '/v1/programs', { name: 'small', totalAwardPool: 5, maxParticipants: 10 });
    const key = `retry-${Date.now()}`;
    const body = { programId: program.body.id, userId, monetaryValue: 10 };
    const refused = await org.call('POST', '/v1/usertasks', body, { 'idempotency-key': key });
    expect(refused.body.error.code).toBe('insufficient_funds');
    await org.call('POST', `/v1/programs/${program.body.id}/fund`, { amount: 5 });
    const retried = await org.call('POST', '/v1/usertasks', body, { 'idempotency-key': key });
    expect(retried.status).toBe(201);
    expect(retried.headers.get('idempotent-replayed')).toBeNull();
  });

  it('racing requests with one key execute once', async () => {
    const { programId, userId } = ids;
    const key = `race-${Date.now()}`;
    const body = { programId, userId, monetaryValue: 3 };
    const before = (await org.call('GET', `/v1/programs/${programId}`)).body.balances.reserved;
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => org.call('POST', '/v1/usertasks', body, { 'idempotency-key': key })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(201));
    expect(new Set(responses.map((r) => r.body.id)).size).toBe(1);
    const after = (await org.call('GET', `/v1/programs/${programId}`)).body.balances.reserved;
    expect(Math.round((after - before) * 100)).toBe(300);
  });

  it('rejects an overlong key', async () => {
    const response = await org.call('POST', '/v1/users', {}, { 'idempotency-key': 'k'.repeat(256) });
    expect(response.status).toBe(400);
    expect(response.body.error.param).toBe('Idempotency-Key');
  });
});

describe('lists, headers and documents', () => {
  it('pages with a cursor, newest first, without gaps or repeats', async () => {
    const created: string[] = [];
    for (let i = 0; i < 7; i++)
      created.push((await org.call('POST', '/v1/users', { externalId: `page-${i}` })).body.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pageNumber = 0; pageNumber < 100; pageNumber++) {
      const query: string = cursor === null ? '?limit=3' : `?limit=3&cursor=${cursor}`;
      const response = await org.call('GET', `/v1/users${query}`);
      expect(response.body.data.length).toBeLessThanOrEqual(3);
      seen.push(...response.body.data.map((u: { id: string }) => u.id));
      if (!response.body.hasMore) {
        expect(response.body.nextCursor).toBeNull();
        break;
      }
      cursor = response.body.nextCursor;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.slice(0, 7)).toEqual([...created].reverse());
    expect(seen.filter((id) => created.includes(id))).toHaveLength(7);
  });

  it('every response carries X-Request-Id, timestamps are ISO 8601 UTC', async () => {
    const response = await org.call('GET', `/v1/programs/${ids.programId}`);
    expect(response.headers.get('x-request-id')).toMatch(/^req_/);
    expect(response.body.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const health = await client(server.baseUrl)('GET', '/healthz');
    expect(health.headers.get('x-request-id')).toMatch(/^req_/);
  });

  it('serves health, readiness, the OpenAPI document and the reference page', async () => {
    const call = client(server.baseUrl);
    expect((await call('GET', '/healthz')).body).toEqual({ status: 'ok' });
    expect((await call('GET', '/readyz')).body).toMatchObject({ status: 'ready' });
    const document = (await call('GET', '/openapi.json')).body;
    expect(document.openapi).toBe('3.1.0');
    for (const path of [
      '/v1/programs',
      '/v1/usertasks/{id}/complete',
      '/v1/programs/{id}/ledger',
      '/v1/disbursements/{id}',
    ]) {
      expect(Object.keys(document.paths)).toContain(path);
    }
    const complete = document.paths['/v1/usertasks/{id}/complete'].put;
    expect(Object.keys(complete.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '404', '409', '422']));
    expect(document.components.schemas.Program.properties.balances).toBeDefined();
    const docs = await fetch(`${server.baseUrl}/docs`, { redirect: 'follow' });
    expect(docs.status).toBe(200);
    expect(await docs.text()).toMatch(/swagger/i);
  });
});
