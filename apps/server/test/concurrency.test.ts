import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type Client,
  client,
  newOrganization,
  programWithUser,
  startServerProcess,
  startTestServer,
  type TestServer,
  testDatabaseKind,
} from './harness.js';

// Some tests here start server processes, which a loaded CI machine can take a minute to ready.
vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

// Racing requests through the real HTTP server: the pool, the cap and a user task's state hold.

let server: TestServer;
let org: Awaited<ReturnType<typeof newOrganization>>;

beforeAll(async () => {
  server = await startTestServer();
  org = await newOrganization(server);
});

afterAll(async () => {
  await server.close();
});

async function usersIn(call: Client, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push((await call('POST', '/v1/users', {})).body.id);
  return ids;
}

function tally(statuses: { status: number; body: { error?: { code: string } } }[]) {
  const counts: Record<string, number> = {};
  for (const response of statuses) {
    const key = response.status < 300 ? String(response.status) : `${response.status} ${response.body.error?.code}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

async function raceReservations(calls: Client[], programId: string, userIds: string[]) {
  return Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      (calls[i % calls.length] as Client)('POST', '/v1/usertasks', {
        programId,
        userId: userIds[i % userIds.length],
        monetaryValue: 500,
      }),
    ),
  );
}

describe('racing requests on one process', () => {
  it('200 racing $500 reservations into a $50,000 pool: exactly 100 succeed', async () => {
    const { programId } = await programWithUser(org.call, 50_000, 1000);
    const userIds = await usersIn(org.call, 20);
    const responses = await raceReservations([org.call], programId, userIds);
    expect(tally(responses)).toEqual({ '201': 100, '409 insufficient_funds': 100 });
    const program = (await org.call('GET', `/v1/programs/${programId}`)).body;
    expect(program.balances).toMatchObject({ available: 0, reserved: 50_000 });
    const listed = await org.call('GET', `/v1/usertasks?programId=${programId}&limit=100`);
    expect(listed.body.data).toHaveLength(100);
    expect(listed.body.hasMore).toBe(false);
  });

  it('20 racing completes of one user task: one 200, nineteen 409 invalid_state', async () => {
    const { programId, userId } = await programWithUser(org.call, 1000);
    const assigned = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 500 });
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => org.call('PUT', `/v1/usertasks/${assigned.body.id}/complete`)),
    );
    expect(tally(responses)).toEqual({ '200': 1, '409 invalid_state': 19 });
    const disbursements = await org.call('GET', `/v1/disbursements?userTaskId=${assigned.body.id}`);
    expect(disbursements.body.data).toHaveLength(1);
    const program = (await org.call('GET', `/v1/programs/${programId}`)).body;
    expect(program.balances).toMatchObject({ available: 500, reserved: 0, disbursing: 500 });
  });

  it('racing complete and cancel of one user task: exactly one wins', async () => {
    const { programId, userId } = await programWithUser(org.call, 1000);
    const assigned = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 100 });
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        org.call('PUT', `/v1/usertasks/${assigned.body.id}/${i % 2 === 0 ? 'complete' : 'cancel'}`),
      ),
    );
    expect(responses.filter((r) => r.status === 200)).toHaveLength(1);
    const program = (await org.call('GET', `/v1/programs/${programId}`)).body;
    expect(program.balances.reserved).toBe(0);
    expect(program.balances.available + program.balances.disbursing).toBe(1000);
  });

  it('racing program creations in one organization all succeed (no deadlock on the funding account)', async () => {
    const responses = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        org.call('POST', '/v1/programs', { name: `parallel ${i}`, totalAwardPool: 100, maxParticipants: 1 }),
      ),
    );
    expect(tally(responses)).toEqual({ '201': 16 });
  });

  it('racing enrollments never pass maxParticipants', async () => {
    const { programId } = await programWithUser(org.call, 1000, 10);
    const userIds = await usersIn(org.call, 30);
    const responses = await Promise.all(
      userIds.map((userId) => org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 1 })),
    );
    expect(tally(responses)).toEqual({ '201': 10, '409 participant_cap_reached': 20 });
    const program = (await org.call('GET', `/v1/programs/${programId}`)).body;
    expect(program.participantCount).toBe(10);
    expect(program.balances.reserved).toBe(10);
  });

  it('closing while reservations race leaves the books whole', async () => {
    const { programId } = await programWithUser(org.call, 10_000, 1000);
    const userIds = await usersIn(org.call, 10);
    const racing = Array.from({ length: 40 }, (_, i) =>
      org.call('POST', '/v1/usertasks', { programId, userId: userIds[i % 10], monetaryValue: 100 }),
    );
    const closed = org.call('POST', `/v1/programs/${programId}/close`);
    const results = await Promise.all([...racing, closed]);
    for (const response of results) expect([200, 201, 409]).toContain(response.status);
    const program = (await org.call('GET', `/v1/programs/${programId}`)).body;
    expect(program.status).toBe('closed');
    expect(program.balances).toEqual({ available: 0, reserved: 0, disbursing: 0, disbursed: 0, returned: 10_000 });
  });
});

describe.runIf(testDatabaseKind === 'postgres')('racing requests across processes on one PostgreSQL', () => {
  const processes: ChildProcess[] = [];
  afterAll(() => {
    for (const child of processes) child.kill('SIGTERM');
  });

  it('three processes: the pool, a user task and the cap hold', async () => {
    expect(server.databaseUrl).toBeDefined();
    const started = await Promise.all([0, 1, 2].map(() => startServerProcess(server.databaseUrl as string)));
    processes.push(...started.map((s) => s.child));
    const calls = started.map((s) => client(s.baseUrl, org.apiKey));

    const { programId } = await programWithUser(org.call, 50_000, 1000);
    const userIds = await usersIn(org.call, 20);
    const reservations = await raceReservations(calls, programId, userIds);
    expect(tally(reservations)).toEqual({ '201': 100, '409 insufficient_funds': 100 });

    const first = reservations.find((r) => r.status === 201);
    const completes = await Promise.all(
      Array.from({ length: 21 }, (_, i) => (calls[i % 3] as Client)('PUT', `/v1/usertasks/${first?.body.id}/complete`)),
    );
    expect(tally(completes)).toEqual({ '200': 1, '409 invalid_state': 20 });

    const capped = await programWithUser(org.call, 1000, 5);
    const more = await usersIn(org.call, 15);
    const enrollments = await Promise.all(
      more.map((userId, i) =>
        (calls[i % 3] as Client)('POST', '/v1/usertasks', { programId: capped.programId, userId, monetaryValue: 1 }),
      ),
    );
    expect(tally(enrollments)).toEqual({ '201': 5, '409 participant_cap_reached': 10 });

    const program = (await org.call('GET', `/v1/programs/${programId}`)).body;
    expect(program.balances).toEqual({ available: 0, reserved: 49_500, disbursing: 500, disbursed: 0, returned: 0 });
  });
});
