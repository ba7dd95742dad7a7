import { Tranche, TrancheConnectionError, TrancheError } from '@tranche/sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newOrganization, startTestServer, type TestServer } from '../../../apps/server/test/harness.js';
import { type FaultyProxy, startFaultyProxy } from './proxy.js';

/**
 * Retries against the real server through a real proxy that fails on purpose: no stubbed fetch.
 * Each test checks what the proxy saw (attempts and their keys) and what the ledger holds.
 */

let server: TestServer;
let apiKey: string;
let direct: Tranche;
let proxy: FaultyProxy;

beforeAll(async () => {
  server = await startTestServer();
  apiKey = (await newOrganization(server)).apiKey;
  direct = new Tranche({ apiKey, baseUrl: server.baseUrl });
  proxy = await startFaultyProxy(server.baseUrl);
});

afterEach(() => {
  proxy.plan([]);
});

afterAll(async () => {
  await proxy.close();
  await server.close();
});

function throughProxy(options: { maxNetworkRetries?: number; timeoutMs?: number } = {}): Tranche {
  return new Tranche({ apiKey, baseUrl: proxy.baseUrl, ...options });
}

async function programWithUser() {
  const program = await direct.programs.create({ name: 'Retries', totalAwardPool: 5000, maxParticipants: 10 });
  const user = await direct.users.create({});
  return { program, user };
}

/** The requests the proxy sees while `run` runs. */
async function attemptsOf<T>(run: () => Promise<T>): Promise<{ result: T; attempts: typeof proxy.requests }> {
  const start = proxy.requests.length;
  const result = await run();
  return { result, attempts: proxy.requests.slice(start) };
}

describe('retries', () => {
  it('retries 503s with the same Idempotency-Key and reserves once', async () => {
    const { program, user } = await programWithUser();
    proxy.plan(['unavailable', 'unavailable']);
    const { result: userTask, attempts } = await attemptsOf(() =>
      throughProxy({ maxNetworkRetries: 2 }).tasks.assign({
        programId: program.id,
        userId: user.id,
        monetaryValue: 500,
      }),
    );
    expect(attempts.map((attempt) => attempt.fault)).toEqual(['unavailable', 'unavailable', 'forward']);
    const key = attempts[0]?.idempotencyKey;
    expect(key).toMatch(/^[0-9a-f-]{36}$/);
    expect(attempts.map((attempt) => attempt.idempotencyKey)).toEqual([key, key, key]);
    expect(new Set(attempts.map((attempt) => attempt.body)).size).toBe(1);
    expect(userTask.status).toBe('assigned');

    const after = await direct.programs.retrieve(program.id);
    expect(after.balances).toEqual({ available: 4500, reserved: 500, disbursing: 0, disbursed: 0, returned: 0 });
    expect((await direct.userTasks.list({ programId: program.id })).data).toHaveLength(1);
  });

  it('a lost answer is retried with the same key and replayed: money moves once', async () => {
    const { program, user } = await programWithUser();
    const client = throughProxy({ maxNetworkRetries: 2 });

    proxy.plan(['drop_after']);
    const assigned = await attemptsOf(() =>
      client.tasks.assign({ programId: program.id, userId: user.id, monetaryValue: 500 }),
    );
    expect(assigned.attempts.map((attempt) => [attempt.fault, attempt.upstreamStatus, attempt.replayed])).toEqual([
      ['drop_after', 201, false],
      ['forward', 201, true],
    ]);
    expect(assigned.attempts[1]?.idempotencyKey).toBe(assigned.attempts[0]?.idempotencyKey);

    proxy.plan(['drop_before', 'drop_after']);
    const completed = await attemptsOf(() => client.userTasks.complete(assigned.result.id));
    expect(completed.attempts.map((attempt) => [attempt.fault, attempt.upstreamStatus, attempt.replayed])).toEqual([
      ['drop_before', undefined, false],
      ['drop_after', 200, false],
      ['forward', 200, true],
    ]);
    expect(new Set(completed.attempts.map((attempt) => attempt.idempotencyKey)).size).toBe(1);
    expect(completed.result).toMatchObject({ status: 'completed', completedAmount: 500 });

    const after = await direct.programs.retrieve(program.id);
    expect(after.balances).toEqual({ available: 4500, reserved: 0, disbursing: 500, disbursed: 0, returned: 0 });
    expect((await direct.userTasks.list({ programId: program.id })).data).toHaveLength(1);
    expect((await direct.disbursements.list({ programId: program.id })).data).toHaveLength(1);
  });

  it('retries 409 idempotency_request_in_progress and 429 rate_limited', async () => {
    const { program } = await programWithUser();
    proxy.plan(['in_progress', 'rate_limited']);
    const { result, attempts } = await attemptsOf(() =>
      throughProxy({ maxNetworkRetries: 2 }).programs.fund(program.id, { amount: 1000 }),
    );
    expect(attempts.map((attempt) => attempt.fault)).toEqual(['in_progress', 'rate_limited', 'forward']);
    expect(new Set(attempts.map((attempt) => attempt.idempotencyKey)).size).toBe(1);
    expect(result.totalAwardPool).toBe(6000);
    expect((await direct.programs.retrieve(program.id)).balances.available).toBe(6000);
  });

  it('a timed-out attempt is retried with the same key', async () => {
    const { program, user } = await programWithUser();
    proxy.plan(['stall']);
    const { result, attempts } = await attemptsOf(() =>
      throughProxy({ maxNetworkRetries: 1, timeoutMs: 300 }).tasks.assign({
        programId: program.id,
        userId: user.id,
        monetaryValue: 250,
      }),
    );
    expect(attempts.map((attempt) => attempt.fault)).toEqual(['stall', 'forward']);
    expect(attempts[1]?.idempotencyKey).toBe(attempts[0]?.idempotencyKey);
    expect(result.monetaryValue).toBe(250);
    expect((await direct.programs.retrieve(program.id)).balances.reserved).toBe(250);
  });

  it('a timeout without retries is a TrancheConnectionError', async () => {
    proxy.plan(['stall']);
    const error = await throughProxy({ maxNetworkRetries: 0, timeoutMs: 200 })
      .programs.list()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrancheConnectionError);
    expect(error).toMatchObject({ code: 'network_error', timedOut: true, status: undefined });
  });

  it('gives up after maxNetworkRetries with the last error, having changed nothing', async () => {
    const { program, user } = await programWithUser();
    proxy.plan(['unavailable', 'unavailable', 'unavailable']);
    const start = proxy.requests.length;
    const error = await throughProxy({ maxNetworkRetries: 2 })
      .tasks.assign({ programId: program.id, userId: user.id, monetaryValue: 500 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrancheError);
    expect(error).toMatchObject({ status: 503, code: 'unexpected_response' });
    expect(proxy.requests.length - start).toBe(3);
    expect((await direct.programs.retrieve(program.id)).balances.reserved).toBe(0);
  });

  it('a per-call maxNetworkRetries overrides the client’s', async () => {
    proxy.plan(['unavailable']);
    const start = proxy.requests.length;
    const error = await throughProxy({ maxNetworkRetries: 2 })
      .programs.list({}, { maxNetworkRetries: 0 })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 503 });
    expect(proxy.requests.length - start).toBe(1);
  });

  it('never retries a 400', async () => {
    const { program, user } = await programWithUser();
    const { attempts } = await attemptsOf(async () => {
      const error = await throughProxy({ maxNetworkRetries: 2 })
        .tasks.assign({ programId: program.id, userId: user.id, monetaryValue: 500.001 })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ status: 400, code: 'validation_error', param: 'monetaryValue' });
    });
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ fault: 'forward', upstreamStatus: 400 });
  });

  it('never retries a 404 or a 409 other than in-progress', async () => {
    const { program, user } = await programWithUser();
    const client = throughProxy({ maxNetworkRetries: 2 });
    const missing = await attemptsOf(() => client.userTasks.retrieve('ut_missing').catch((e: unknown) => e));
    expect(missing.result).toMatchObject({ status: 404, code: 'not_found' });
    expect(missing.attempts).toHaveLength(1);

    const broke = await attemptsOf(() =>
      client.tasks.assign({ programId: program.id, userId: user.id, monetaryValue: 999_999 }).catch((e: unknown) => e),
    );
    expect(broke.result).toMatchObject({ status: 409, code: 'insufficient_funds' });
    expect(broke.attempts).toHaveLength(1);
  });
});
