import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from '../../../packages/highnote-sandbox/src/index.js';
import { highnoteAdapter } from '../src/issuer/highnote.js';
import {
  createPostgresDatabase,
  newOrganization,
  pollUntil,
  startTestServer,
  startWorkerProcess,
  type TestServer,
  testDatabaseKind,
} from './harness.js';

// A worker killed (SIGKILL) while its fundings are in flight: another worker takes the jobs over
// when their leases run out, and every completion still moves exactly one transfer. The worker is
// a real process on a shared PostgreSQL; PGlite is one process, so this runs on PostgreSQL only.

const leaseMs = 1_500;
const deadlineMs = 30_000;

const until = <T>(read: () => Promise<T>, done: (value: T) => boolean, what: string) =>
  pollUntil(read, done, { what, deadlineMs: deadlineMs });

describe.runIf(testDatabaseKind === 'postgres')('a worker killed mid-funding', () => {
  let sandbox: RunningSandbox;
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let server: TestServer;
  /** Every worker process the test starts, killed at the end whatever happened. */
  const workers: ReturnType<typeof startWorkerProcess>[] = [];

  beforeAll(async () => {
    // Transfers stay PENDING for a while, so the first worker is following them when it dies.
    sandbox = await startSandbox({ port: 0, applicationApprovalDelayMs: 20, transferSettlementDelayMs: 5_000 });
    database = await createPostgresDatabase();
    // The API without a worker: funding runs only in the worker processes below.
    server = await startTestServer({ databaseUrl: database.url, sandbox, worker: false });
  });

  afterAll(async () => {
    for (const worker of workers) if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
    await server?.close();
    await database?.drop();
    await sandbox?.close();
  });

  it('pays each completion once, whatever the first worker had done', async () => {
    const { call } = await newOrganization(server);
    const user = await call('POST', '/v1/users', {
      firstName: 'Grace',
      lastName: 'Hopper',
      dateOfBirth: '1985-06-01',
      address: { line1: '1 Navy Way', city: 'Arlington', state: 'VA', postalCode: '22202', country: 'USA' },
    });
    const application = await call('POST', '/v1/applications', {
      userId: user.body.id,
      consent: { acceptedAt: '2026-11-25T10:00:00.000Z' },
    });
    // The first worker approves the application (its job) and then funds.
    const first = startWorkerProcess(database.url, sandbox.url, { TRANCHE_FUNDING_LEASE_MS: String(leaseMs) });
    workers.push(first);
    await until(
      () => call('GET', `/v1/applications/${application.body.id}`),
      (a) => a.body.status === 'approved',
      'approval',
    );
    const card = await call('POST', '/v1/cards', { userId: user.body.id, formFactor: 'virtual' });
    expect(card.status).toBe(201);
    const program = await call('POST', '/v1/programs', { name: 'Crash', totalAwardPool: 10_000, maxParticipants: 10 });
    const values = [11, 22, 33, 44.5, 55];
    const tasks: string[] = [];
    for (const value of values) {
      const assigned = await call('POST', '/v1/usertasks', {
        programId: program.body.id,
        userId: user.body.id,
        monetaryValue: value,
      });
      await call('PUT', `/v1/usertasks/${assigned.body.id}/complete`);
      tasks.push(assigned.body.id);
    }
    // Killed once several transfers are initiated (a worker runs four jobs at once) and none has
    // settled; the rest are queued or about to be marked processing.
    await until(
      async () => {
        const answer = await call('GET', `/v1/disbursements?userId=${user.body.id}&status=processing`);
        return answer;
      },
      (answer) =>
        answer.body.data.length >= 3 &&
        answer.body.data.every((d: { highnoteTransferId: string | null }) => d.highnoteTransferId !== null),
      'transfers to be in flight',
    ).catch(async (error) => {
      const all = await call('GET', `/v1/disbursements?userId=${user.body.id}`);
      throw new Error(
        `${error.message}\n${JSON.stringify(all.body.data.map((d: { status: string }) => d.status))}\n${first.stderr.join('')}`,
      );
    });
    first.child.kill('SIGKILL');
    await once(first.child, 'exit');

    const second = startWorkerProcess(database.url, sandbox.url, { TRANCHE_FUNDING_LEASE_MS: String(leaseMs) });
    workers.push(second);
    try {
      for (const id of tasks) {
        await until(
          () => call('GET', `/v1/usertasks/${id}`),
          (answer) => answer.body.status === 'funded',
          `funding of ${id}`,
        );
      }
    } finally {
      second.child.kill('SIGTERM');
      await once(second.child, 'exit');
    }
    const configuration = await call('GET', '/v1/configurations');
    const adapter = highnoteAdapter({ graphqlUrl: configuration.body.highnote.graphqlUrl, apiKey: 'sk_test_crash' });
    const balance = await adapter.availableCashCents(card.body.highnoteFinancialAccountId);
    expect(balance.ok && balance.value).toBe(16_550n);
    const disbursed = (await call('GET', `/v1/programs/${program.body.id}`)).body.balances.disbursed;
    expect(disbursed).toBe(165.5);
  });
});
