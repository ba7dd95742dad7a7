import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok } from '../src/platform/errors.js';
import { batchesInFlightPerKey } from '../src/work/batcher.js';
import { runUnits } from '../src/work/runner.js';
import {
  adminToken,
  type Call,
  type Client,
  client,
  newOrganization,
  programWithUser,
  startTestServer,
  type TestServer,
} from './harness.js';

// Group commit: the units of one batch share a transaction, and each is still answered alone.

let server: TestServer;
let org: Awaited<ReturnType<typeof newOrganization>>;

beforeAll(async () => {
  server = await startTestServer();
  org = await newOrganization(server);
});

afterAll(async () => {
  await server.close();
});

/** The process's unit batch histogram: committed batches, units in them, and reruns. */
async function batchMetrics(): Promise<{ batches: number; units: number; reruns: number }> {
  const text = (await client(server.baseUrl, adminToken)('GET', '/metrics')).body as string;
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return {
    batches: value('tranche_unit_batch_units_count'),
    units: value('tranche_unit_batch_units_sum'),
    reruns: value('tranche_unit_batch_reruns_total'),
  };
}

/**
 * Sends `requests` while a transaction of the test holds the program's pool account, so that the
 * first batches to reach the ledger wait and every other request queues behind them: the rest of
 * the burst commits as one batch. (On the embedded database the held transaction holds its only
 * connection, which queues them the same way.)
 */
async function burstBehindPoolLock(programId: string, requests: (() => Promise<Call>)[]): Promise<Call[]> {
  const { db } = server.database;
  const { pool_account_id: poolAccountId } = await db
    .selectFrom('programs')
    .select('pool_account_id')
    .where('id', '=', programId)
    .executeTakeFirstOrThrow();
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let locked!: () => void;
  const held = new Promise<void>((resolve) => {
    locked = resolve;
  });
  const holder = db.transaction().execute(async (tx) => {
    await sql`SELECT id FROM ledger_accounts WHERE id = ${poolAccountId} FOR UPDATE`.execute(tx);
    locked();
    await released;
  });
  await held;
  const answers = Promise.all(requests.map((send) => send()));
  // Every request is parsed, authenticated (its key is cached) and queued well within this.
  await new Promise((resolve) => setTimeout(resolve, 500));
  release();
  await holder;
  return answers;
}

async function assignOne(call: Client, programId: string, userId: string, dollars: number) {
  const assigned = await call('POST', '/v1/usertasks', { programId, userId, monetaryValue: dollars });
  expect(assigned.status).toBe(201);
  return assigned.body.id as string;
}

describe('a batch of units answers each unit alone', () => {
  it('completions: an already completed user task, a reused key and a too-large amount refuse only themselves', async () => {
    const { programId, userId } = await programWithUser(org.call, 10_000);
    const fresh: string[] = [];
    for (let i = 0; i < 8; i++) fresh.push(await assignOne(org.call, programId, userId, 100));
    const done = await assignOne(org.call, programId, userId, 100);
    expect((await org.call('PUT', `/v1/usertasks/${done}/complete`, {})).status).toBe(200);
    const reusedKeyTask = await assignOne(org.call, programId, userId, 100);
    const usedKey = 'batch-test-reused-key';
    expect(
      (await org.call('PUT', `/v1/usertasks/${done}/cancel`, undefined, { 'idempotency-key': usedKey })).status,
    ).toBe(409);
    // A 409 gives its key back; this one stores a response, so the key is taken for good.
    const other = await assignOne(org.call, programId, userId, 100);
    expect(
      (await org.call('PUT', `/v1/usertasks/${other}/cancel`, undefined, { 'idempotency-key': usedKey })).status,
    ).toBe(200);
    const tooMuchTask = await assignOne(org.call, programId, userId, 100);
    const before = await batchMetrics();

    const [pacer, ...answers] = await burstBehindPoolLock(programId, [
      () => org.call('PUT', `/v1/usertasks/${fresh[0]}/complete`, {}),
      ...fresh.slice(1, 4).map((id) => () => org.call('PUT', `/v1/usertasks/${id}/complete`, {})),
      () => org.call('PUT', `/v1/usertasks/${done}/complete`, {}),
      () => org.call('PUT', `/v1/usertasks/${reusedKeyTask}/complete`, {}, { 'idempotency-key': usedKey }),
      () => org.call('PUT', `/v1/usertasks/${tooMuchTask}/complete`, { amount: 100.01 }),
      ...fresh.slice(4).map((id) => () => org.call('PUT', `/v1/usertasks/${id}/complete`, {})),
    ]);
    const after = await batchMetrics();

    expect(pacer?.status).toBe(200);
    const statuses = answers.map((answer) => `${answer.status} ${answer.body.error?.code ?? answer.body.status}`);
    expect(statuses).toEqual([
      '200 completed',
      '200 completed',
      '200 completed',
      '409 invalid_state',
      '422 idempotency_key_reused',
      '400 validation_error',
      '200 completed',
      '200 completed',
      '200 completed',
      '200 completed',
    ]);
    // The batches that reached the held pool first, and one more for the rest of the burst: the
    // refusals shared a transaction with the successes.
    expect(after.units - before.units).toBe(11);
    expect(after.batches - before.batches).toBeLessThanOrEqual(batchesInFlightPerKey + 1);

    for (const id of fresh) {
      const userTask = await org.call('GET', `/v1/usertasks/${id}`);
      expect(userTask.body.status).toBe('completed');
      expect(userTask.body.disbursementId).toMatch(/^dsb_/);
    }
    for (const id of [reusedKeyTask, tooMuchTask]) {
      expect((await org.call('GET', `/v1/usertasks/${id}`)).body.status).toBe('assigned');
    }
    // The key's stored answer is the cancellation it was first used for, untouched.
    const replay = await org.call('PUT', `/v1/usertasks/${other}/cancel`, undefined, { 'idempotency-key': usedKey });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    const program = (await org.call('GET', `/v1/programs/${programId}`)).body;
    // 12 assigned at $100: 9 completed, 1 cancelled, 2 still reserved.
    expect(program.balances).toMatchObject({ reserved: 200, disbursing: 900, available: 10_000 - 1_100 });
  });

  it('assignments: the pool runs out inside the batch; exactly the ones that fit succeed, and only their seats stay', async () => {
    const { programId, userId } = await programWithUser(org.call, 500, 100);
    const newcomers: string[] = [];
    for (let i = 0; i < 3; i++) newcomers.push((await org.call('POST', '/v1/users', {})).body.id);
    const task = await org.call('POST', '/v1/tasks', { programId, name: 'Safety briefing', monetaryValue: 50 });
    expect(task.status).toBe(201);
    expect((await org.call('POST', `/v1/tasks/${task.body.id}/users/${userId}`)).status).toBe(201);
    const before = await batchMetrics();

    // $450 is left; the pacer takes $50, and six $100 milestones race for the last $400. Three go to
    // participants not yet enrolled, each seated by their assignment.
    const racing = [userId, userId, userId, ...newcomers];
    const [pacer, conflict, ...answers] = await burstBehindPoolLock(programId, [
      () => org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 50 }),
      // Already assigned: refused before anything is written for it.
      () => org.call('POST', `/v1/tasks/${task.body.id}/users/${userId}`),
      ...racing.map((id) => () => org.call('POST', '/v1/usertasks', { programId, userId: id, monetaryValue: 100 })),
    ]);
    const after = await batchMetrics();

    expect(pacer?.status).toBe(201);
    expect(`${conflict?.status} ${conflict?.body.error?.code}`).toBe('409 invalid_state');
    const tally: Record<string, number> = {};
    for (const answer of answers) {
      const key = `${answer.status} ${answer.body.error?.code ?? answer.body.status}`;
      tally[key] = (tally[key] ?? 0) + 1;
    }
    expect(tally).toEqual({ '201 assigned': 4, '409 insufficient_funds': 2 });
    // Units counted in committed batches: all but the two the ledger refused (their attempt rolled back).
    expect(after.units - before.units).toBe(6);
    expect(after.batches - before.batches).toBeLessThanOrEqual(batchesInFlightPerKey + 1);
    // The refused reservations were refused by the ledger, after their rows were written.
    expect(after.reruns - before.reruns).toBeGreaterThanOrEqual(1);

    const program = (await org.call('GET', `/v1/programs/${programId}`)).body;
    expect(program.balances).toMatchObject({ available: 0, reserved: 500 });
    // A newcomer whose only assignment was refused was not seated: its seat rolled back with it.
    const seated = new Set([userId]);
    answers.forEach((answer, index) => {
      if (answer.status === 201) seated.add(racing[index] as string);
    });
    expect(program.participantCount).toBe(seated.size);
    for (const answer of answers.filter((answer) => answer.status === 201)) {
      expect((await org.call('GET', `/v1/usertasks/${answer.body.id}`)).body.status).toBe('assigned');
    }
  });

  it('an exception in one unit of a batch reaches only its caller; the others commit', async () => {
    const { db } = server.database;
    const context = (requestId: string) => ({
      organizationId: org.id,
      actor: { kind: 'system' as const, id: 'batch-test' },
      requestId,
    });
    const settled = await runUnits(
      db,
      ['first', 'boom', 'third'].map((name) => ({ context: context(`req_${name}`), input: name })),
      async (units, inputs) => {
        if (inputs.includes('boom')) await sql`SELECT 1 / 0`.execute(units[0]?.tx ?? db);
        for (const unit of units) unit.emit('user.updated', { batch: 'test' });
        return inputs.map((input) => ok(input));
      },
    );
    expect(settled.map((answer) => ('error' in answer ? 'error' : answer.outcome.ok))).toEqual([true, 'error', true]);
    const written = await db
      .selectFrom('events')
      .select('request_id')
      .where('organization_id', '=', org.id)
      .where('request_id', 'in', ['req_first', 'req_boom', 'req_third'])
      .execute();
    expect(written.map((row) => row.request_id).sort()).toEqual(['req_first', 'req_third']);
  });
});
