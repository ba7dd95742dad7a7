import { Tranche, TrancheError } from '@tranche/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newOrganization, startTestServer, type TestServer } from '../../../apps/server/test/harness.js';
import { type FaultyProxy, startFaultyProxy } from './proxy.js';

let server: TestServer;
let organizationId: string;
let apiKey: string;
let tranche: Tranche;
let proxy: FaultyProxy;
let watched: Tranche;

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

beforeAll(async () => {
  server = await startTestServer();
  const organization = await newOrganization(server);
  organizationId = organization.id;
  apiKey = organization.apiKey;
  tranche = new Tranche({ apiKey, baseUrl: server.baseUrl });
  // A proxy that forwards everything, to see the headers the client sends.
  proxy = await startFaultyProxy(server.baseUrl);
  watched = new Tranche({ apiKey, baseUrl: proxy.baseUrl });
});

afterAll(async () => {
  await proxy.close();
  await server.close();
});

async function storedKeys(): Promise<string[]> {
  const rows = await server.database.db
    .selectFrom('idempotency_keys')
    .select('key')
    .where('scope', '=', organizationId)
    .execute();
  return rows.map((row) => row.key);
}

describe('Idempotency-Key', () => {
  it('the client sends a fresh key on every mutating call and none on reads', async () => {
    const before = (await storedKeys()).length;
    const start = proxy.requests.length;
    const program = await watched.programs.create({ name: 'Keys', totalAwardPool: 1000, maxParticipants: 5 });
    const user = await watched.users.create({ externalId: 'emp-keys' });
    const userTask = await watched.tasks.assign({ programId: program.id, userId: user.id, monetaryValue: 100 });
    await watched.userTasks.complete(userTask.id);
    await watched.programs.pause(program.id);
    await watched.programs.retrieve(program.id);
    await watched.userTasks.list({ programId: program.id, limit: 5 });

    const seen = proxy.requests.slice(start);
    expect(seen.map((request) => request.method)).toEqual(['POST', 'POST', 'POST', 'PUT', 'POST', 'GET', 'GET']);
    const mutating = seen.filter((request) => request.method !== 'GET');
    for (const request of mutating) expect(request.idempotencyKey).toMatch(uuid);
    expect(new Set(mutating.map((request) => request.idempotencyKey)).size).toBe(mutating.length);
    for (const request of seen.filter((request) => request.method === 'GET')) {
      expect(request.idempotencyKey).toBeUndefined();
    }

    // Content-Type only where there is a body: not on complete() without params, pause, or GETs.
    expect(seen.map((request) => request.contentType)).toEqual([
      'application/json',
      'application/json',
      'application/json',
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    expect(seen[3]?.body).toBe('');
    expect(seen[6]?.path).toBe(`/v1/usertasks?programId=${program.id}&limit=5`);

    // The server stored each key with its answer.
    const keys = await storedKeys();
    expect(keys.length - before).toBe(mutating.length);
    for (const request of mutating) expect(keys).toContain(request.idempotencyKey);
  });

  it('a caller-given key replays the first answer instead of acting twice', async () => {
    const idempotencyKey = `create-program-${Date.now()}`;
    const params = { name: 'Replayed', totalAwardPool: 2500, maxParticipants: 3 };
    const first = await tranche.programs.create(params, { idempotencyKey });
    const second = await watched.programs.create(params, { idempotencyKey });
    expect(second).toEqual(first);
    expect(proxy.requests.at(-1)).toMatchObject({ idempotencyKey, replayed: true, upstreamStatus: 201 });

    const named = [];
    for await (const program of tranche.programs.listAll()) if (program.name === 'Replayed') named.push(program);
    expect(named).toHaveLength(1);

    // Funding with one key twice moves the money once.
    const fundKey = `fund-${first.id}`;
    await tranche.programs.fund(first.id, { amount: 500 }, { idempotencyKey: fundKey });
    const funded = await tranche.programs.fund(first.id, { amount: 500 }, { idempotencyKey: fundKey });
    expect(funded.totalAwardPool).toBe(3000);
    expect((await tranche.programs.retrieve(first.id)).balances.available).toBe(3000);
  });

  it('the same key with another request is idempotency_key_reused, and is not retried', async () => {
    const idempotencyKey = `reuse-${Date.now()}`;
    await tranche.users.create({ externalId: 'emp-reuse-1' }, { idempotencyKey });
    const start = proxy.requests.length;
    const error = await watched.users.create({ externalId: 'emp-reuse-2' }, { idempotencyKey }).catch((e) => e);
    expect(error).toBeInstanceOf(TrancheError);
    expect(error).toMatchObject({
      status: 422,
      code: 'idempotency_key_reused',
      param: 'Idempotency-Key',
      idempotencyKey,
    });
    expect(proxy.requests.length - start).toBe(1);
    expect((await tranche.users.list({ externalId: 'emp-reuse-2' })).data).toEqual([]);
  });
});
