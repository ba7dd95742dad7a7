import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DatabaseHandle, type Db, dateOf, openDatabase } from '../src/platform/db.js';
import {
  claimJobs,
  defineJob,
  deleteSucceededJobs,
  enqueueJobs,
  type JobCatalog,
  jobRequest,
  leaseRanOutMessage,
  leaseTakenOverMessage,
  maxJobErrorLength,
  queueStats,
  recurringDedupeKey,
  runClaimedJob,
  scheduleRecurringJobs,
  succeededJobRetentionMs,
} from '../src/platform/jobs.js';
import { deleteExpiredIdempotencyKeysName, jobCatalog } from '../src/worker/catalog.js';
import { startWorker } from '../src/worker/worker.js';
import { adminToken, client, newOrganization, startTestServer, type TestServer, testDatabaseKind } from './harness.js';

// The job queue on the real database, through the real worker and the operator routes.

let server: TestServer;
let db: Db;
let operator: ReturnType<typeof client>;

beforeAll(async () => {
  server = await startTestServer();
  db = server.database.db;
  operator = client(server.baseUrl, adminToken);
});

afterAll(async () => {
  await server.close();
});

const log = { info() {}, warn() {}, error() {} };

interface JobRow {
  id: string;
  name: string;
  status: string;
  attempts: number;
  max_attempts: number;
  run_at: Date;
  locked_until: Date | null;
  last_error: string | null;
  finished_at: Date | null;
  dedupe_key: string | null;
}

async function jobsNamed(name: string): Promise<JobRow[]> {
  const result = await sql<JobRow>`SELECT * FROM jobs WHERE name = ${name} ORDER BY id`.execute(db);
  return result.rows.map((row) => ({
    ...row,
    run_at: dateOf(row.run_at) as Date,
    locked_until: dateOf(row.locked_until),
    finished_at: dateOf(row.finished_at),
  }));
}

async function onlyJob(name: string): Promise<JobRow> {
  const rows = await jobsNamed(name);
  expect(rows).toHaveLength(1);
  return rows[0] as JobRow;
}

/** Polls until `check` holds; a bounded wait, so a broken worker fails the test instead of hanging it. */
async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function enqueue(requests: Parameters<typeof enqueueJobs>[1], now = new Date()) {
  await db.transaction().execute((tx) => enqueueJobs(tx, requests, now));
}

/** A second handle on the same database: another process's pool on PostgreSQL, the same one on PGlite. */
async function secondHandle(): Promise<{ db: Db; close(): Promise<void> }> {
  if (testDatabaseKind !== 'postgres') return { db, close: async () => {} };
  const other: DatabaseHandle = await openDatabase({
    databaseUrl: server.databaseUrl,
    dataDir: 'memory://',
    poolSize: 10,
  });
  return { db: other.db, close: () => other.close() };
}

describe('retries, dead jobs and the operator', () => {
  it('a failing job is retried with backoff, goes dead after maxAttempts, and an operator retries it', async () => {
    let succeed = false;
    const runs: number[] = [];
    const flaky = defineJob<{ userTaskId: string }>({
      name: 'test.flaky',
      maxAttempts: 3,
      backoff: { baseMs: 10_000, maxMs: 15_000 },
      visibilityTimeoutMs: 60_000,
      run: async (context, payload) => {
        expect(payload.userTaskId).toBe('ut_1');
        runs.push(context.job.attempt);
        if (!succeed) throw new Error(`issuer answered 503 (${'x'.repeat(2 * maxJobErrorLength)})`);
      },
    });
    let now = new Date('2031-01-01T00:00:00.000Z');
    await enqueue([jobRequest(flaky, { userTaskId: 'ut_1' }, { organizationId: null })], now);
    const worker = startWorker(db, { catalog: [flaky], log, pollIntervalMs: 5, concurrency: 2, clock: () => now });
    try {
      // Each failure queues the job again after a jittered delay under the doubling ceiling.
      for (const [attempt, ceilingMs] of [
        [1, 10_000],
        [2, 15_000],
      ] as const) {
        const row = await waitFor(`attempt ${attempt} to fail`, async () => {
          const job = await onlyJob('test.flaky');
          return job.status === 'queued' && job.attempts === attempt ? job : undefined;
        });
        const delayMs = row.run_at.getTime() - now.getTime();
        expect(delayMs).toBeGreaterThanOrEqual(0);
        expect(delayMs).toBeLessThan(ceilingMs);
        expect(row.locked_until).toBeNull();
        expect(row.last_error?.startsWith('Error: issuer answered 503')).toBe(true);
        expect(row.last_error?.length).toBeLessThanOrEqual(maxJobErrorLength);
        if (delayMs > 0) {
          // Not due yet: the worker leaves it alone.
          now = new Date(row.run_at.getTime() - 1);
          await sleep(50);
          expect((await onlyJob('test.flaky')).attempts).toBe(attempt);
        }
        now = row.run_at;
      }
      const dead = await waitFor('the job to go dead', async () => {
        const job = await onlyJob('test.flaky');
        return job.status === 'dead' ? job : undefined;
      });
      expect(dead).toMatchObject({ attempts: 3, max_attempts: 3, locked_until: null });
      expect(dead.finished_at?.toISOString()).toBe(now.toISOString());
      expect(runs).toEqual([1, 2, 3]);

      // The operator finds it, without its payload.
      const listed = await operator('GET', '/v1/jobs?status=dead&limit=100');
      expect(listed.status).toBe(200);
      const presented = listed.body.data.find((job: { id: string }) => job.id === dead.id);
      expect(presented).toMatchObject({
        object: 'job',
        name: 'test.flaky',
        status: 'dead',
        attempts: 3,
        maxAttempts: 3,
        organizationId: null,
        finishedAt: now.toISOString(),
      });
      expect(presented.lastError).toMatch(/^Error: issuer answered 503/);
      expect(presented).not.toHaveProperty('payload');

      // Retried: queued now, attempts reset; the next run succeeds.
      succeed = true;
      now = new Date(now.getTime() + 1_000);
      const retried = await operator('POST', `/v1/jobs/${dead.id}/retry`, undefined, { 'idempotency-key': 'retry-1' });
      expect(retried.status).toBe(200);
      expect(retried.body).toMatchObject({ id: dead.id, status: 'queued', attempts: 0, finishedAt: null });
      const succeeded = await waitFor('the retried job to succeed', async () => {
        const job = await onlyJob('test.flaky');
        return job.status === 'succeeded' ? job : undefined;
      });
      expect(succeeded.attempts).toBe(1);
      expect(runs).toEqual([1, 2, 3, 1]);

      // A replay answers from the stored response and changes nothing; a new retry is refused.
      const replay = await operator('POST', `/v1/jobs/${dead.id}/retry`, undefined, { 'idempotency-key': 'retry-1' });
      expect(replay.status).toBe(200);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      const again = await operator('POST', `/v1/jobs/${dead.id}/retry`);
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('invalid_state');
      expect((await onlyJob('test.flaky')).status).toBe('succeeded');
    } finally {
      await worker.stop();
    }
  });

  it('the operator routes take only the operator token, answer 404 for an unknown job, and page', async () => {
    const org = await newOrganization(server, 'Jobs tenant');
    for (const [method, path] of [
      ['GET', '/v1/jobs'],
      ['POST', '/v1/jobs/job_01jd8n3q7v0c4x2m5k9e6t1hzr/retry'],
    ] as const) {
      expect((await client(server.baseUrl)(method, path)).status).toBe(401);
      expect((await org.call(method, path)).status).toBe(401);
    }
    const unknown = await operator('POST', '/v1/jobs/job_01jd8n3q7v0c4x2m5k9e6t1hzr/retry');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');
    expect((await operator('GET', '/v1/jobs?status=lost')).status).toBe(400);

    const paging = defineJob<Record<string, never>>({
      name: 'test.paging',
      maxAttempts: 1,
      backoff: { baseMs: 1, maxMs: 1 },
      visibilityTimeoutMs: 1_000,
      run: async () => {},
    });
    await enqueue(
      Array.from({ length: 5 }, () =>
        jobRequest(paging, {}, { organizationId: org.id, runAt: new Date('2099-01-01') }),
      ),
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? '' : `&cursor=${cursor}`;
      const response = await operator('GET', `/v1/jobs?status=queued&limit=2${query}`);
      expect(response.status).toBe(200);
      seen.push(
        ...response.body.data
          .filter((job: { name: string }) => job.name === 'test.paging')
          .map((job: { id: string }) => job.id),
      );
      cursor = response.body.nextCursor;
    } while (cursor !== null);
    const ids = (await jobsNamed('test.paging')).map((job) => job.id);
    expect(seen).toEqual([...ids].reverse());
    const queued = await operator('POST', `/v1/jobs/${ids[0]}/retry`);
    expect(queued.status).toBe(409);
    expect(queued.body.error.code).toBe('invalid_state');
  });
});

describe('leases', () => {
  it('a claim whose worker died is claimed again once its lease passes, and goes dead when out of attempts', async () => {
    let ran = 0;
    const leased = defineJob<Record<string, never>>({
      name: 'test.leased',
      maxAttempts: 2,
      backoff: { baseMs: 1, maxMs: 1 },
      visibilityTimeoutMs: 30_000,
      run: async () => {
        ran++;
      },
    });
    const t0 = new Date('2032-01-01T00:00:00.000Z');
    await enqueue([jobRequest(leased, {})], t0);
    const [first] = await claimJobs(db, [leased], 10, t0);
    expect(first).toMatchObject({ name: 'test.leased', attempt: 1 });
    expect(first?.lockedUntil.getTime()).toBe(t0.getTime() + 30_000);
    // The worker "crashed": nothing ran. Within the lease nobody else takes it.
    expect(await claimJobs(db, [leased], 10, new Date(t0.getTime() + 29_999))).toEqual([]);
    const [second] = await claimJobs(db, [leased], 10, new Date(t0.getTime() + 30_000));
    expect(second).toMatchObject({ id: first?.id, attempt: 2 });

    // The first worker comes back and finishes late: the newer attempt owns the row.
    const late = await runClaimedJob(db, leased, first as NonNullable<typeof first>, { log });
    expect(late).toBe('lease_lost');
    expect(await onlyJob('test.leased')).toMatchObject({ status: 'running', attempts: 2 });

    // The second claim dies too; with no attempts left the job is dead, not claimed a third time.
    expect(await claimJobs(db, [leased], 10, new Date(t0.getTime() + 60_000))).toEqual([]);
    const dead = await onlyJob('test.leased');
    expect(dead).toMatchObject({ status: 'dead', attempts: 2, locked_until: null });
    expect(dead.last_error).toMatch(/lease ran out/);
    expect(ran).toBe(1);
  });

  it('a job enqueued in a transaction that rolls back does not exist', async () => {
    const rolledBack = defineJob<Record<string, never>>({
      name: 'test.rolled_back',
      maxAttempts: 1,
      backoff: { baseMs: 1, maxMs: 1 },
      visibilityTimeoutMs: 1_000,
      run: async () => {},
    });
    await expect(
      db.transaction().execute(async (tx) => {
        await enqueueJobs(tx, [jobRequest(rolledBack, {})], new Date());
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    expect(await jobsNamed('test.rolled_back')).toEqual([]);
  });
});

/** A log that keeps its lines, to assert what a run reported. */
function recordingLog() {
  const lines: { level: 'info' | 'warn' | 'error'; message: string }[] = [];
  const at = (level: 'info' | 'warn' | 'error') => (_fields: object, message?: string) => {
    lines.push({ level, message: message ?? '' });
  };
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error') } };
}

/** Resolves true when `signal` aborts, false after `timeoutMs`: a handler's bounded wait. */
function abortedWithin(signal: AbortSignal, timeoutMs: number): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(false);
    }, timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

async function claimOnly(definition: Parameters<typeof jobRequest>[0]) {
  await enqueue([jobRequest(definition, {})]);
  const [job, ...others] = await claimJobs(db, [definition], 10, new Date());
  expect(others).toEqual([]);
  if (job === undefined) throw new Error(`no ${definition.name} job was claimed`);
  return job;
}

describe('lease renewal', () => {
  it('a run three times its visibility timeout keeps its lease: no other worker claims it, and it succeeds once', async () => {
    const visibilityTimeoutMs = 300;
    let runs = 0;
    let abortedWhileRunning: boolean | undefined;
    const long = defineJob<Record<string, never>>({
      name: 'test.long_run',
      maxAttempts: 2,
      backoff: { baseMs: 1, maxMs: 1 },
      visibilityTimeoutMs,
      run: async (context) => {
        runs++;
        await sleep(3 * visibilityTimeoutMs);
        abortedWhileRunning = context.signal.aborted;
      },
    });
    await enqueue([jobRequest(long, {})]);
    const recorded = recordingLog();
    const other = await secondHandle();
    // Both workers poll every 5 ms: without renewals one would claim the other's job after 300 ms.
    const workers = [
      startWorker(db, { catalog: [long], log: recorded.log, pollIntervalMs: 5, concurrency: 1 }),
      startWorker(other.db, { catalog: [long], log: recorded.log, pollIntervalMs: 5, concurrency: 1 }),
    ];
    const leases: number[] = [];
    try {
      const done = await waitFor(
        'the long job to succeed',
        async () => {
          const job = await onlyJob('test.long_run');
          if (job.status === 'running' && job.locked_until !== null) leases.push(job.locked_until.getTime());
          return job.status === 'succeeded' ? job : undefined;
        },
        10_000,
      );
      expect(done).toMatchObject({ attempts: 1, locked_until: null, last_error: null });
    } finally {
      await Promise.all(workers.map((worker) => worker.stop()));
      await other.close();
    }
    expect(runs).toBe(1);
    expect(abortedWhileRunning).toBe(false);
    // The lease moved: by the end it reached past where the claim's own lease ended.
    const [first] = leases;
    expect(first).toBeDefined();
    expect(Math.max(...leases)).toBeGreaterThanOrEqual((first as number) + visibilityTimeoutMs);
    expect(recorded.lines.filter((line) => line.level !== 'info')).toEqual([]);
  });

  it.each([
    ['claimed again by another worker', sql`attempts = attempts + 1`],
    ['put back in the queue', sql`status = 'queued', locked_until = NULL`],
  ])('a run whose job is %s has its signal aborted, and ends lease_lost writing nothing', async (_, takeover) => {
    const visibilityTimeoutMs = 1_000;
    let started = false;
    let reason: unknown;
    const taken = defineJob<Record<string, never>>({
      name: 'test.taken_over',
      maxAttempts: 3,
      backoff: { baseMs: 1, maxMs: 1 },
      visibilityTimeoutMs,
      run: async (context) => {
        started = true;
        if (await abortedWithin(context.signal, 5_000)) reason = context.signal.reason;
      },
    });
    const job = await claimOnly(taken);
    try {
      const recorded = recordingLog();
      const outcome = runClaimedJob(db, taken, job, { log: recorded.log });
      await waitFor('the handler to start', async () => started, 5_000);
      await sql`UPDATE jobs SET ${takeover}, updated_at = now() WHERE id = ${job.id}`.execute(db);
      const afterTakeover = await onlyJob('test.taken_over');
      expect(await outcome).toBe('lease_lost');
      // A renewal found the row gone (well before the 1 s lease would have run out on its own).
      expect(reason).toBeInstanceOf(Error);
      expect((reason as Error).message).toBe(leaseTakenOverMessage);
      expect(recorded.lines.map((line) => line.message)).toContain('job lease was taken over; aborting the run');
      // Neither a renewal nor the finish touched the row after the takeover.
      expect(await onlyJob('test.taken_over')).toEqual(afterTakeover);
    } finally {
      // The it.each cases share the job name; each leaves none behind.
      await sql`DELETE FROM jobs WHERE id = ${job.id}`.execute(db);
    }
  });

  it('a failed renewal is logged and tried again; the run is aborted only when its lease runs out', async () => {
    // A real database error on every renewal of these jobs (an update that keeps them running).
    await sql`CREATE FUNCTION test_refuse_lease_renewal() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.name LIKE 'test.renewal_refused%' AND OLD.status = 'running' AND NEW.status = 'running'
          AND OLD.attempts = NEW.attempts THEN
          RAISE EXCEPTION 'renewal refused by the test';
        END IF;
        RETURN NEW;
      END $$`.execute(db);
    await sql`CREATE TRIGGER test_refuse_lease_renewal BEFORE UPDATE ON jobs
      FOR EACH ROW EXECUTE FUNCTION test_refuse_lease_renewal()`.execute(db);
    let refusing = true;
    try {
      // Refused until the end: the lease runs out and the handler is told so.
      const visibilityTimeoutMs = 300;
      let reason: unknown;
      const refused = defineJob<Record<string, never>>({
        name: 'test.renewal_refused',
        maxAttempts: 1,
        backoff: { baseMs: 1, maxMs: 1 },
        visibilityTimeoutMs,
        run: async (context) => {
          if (await abortedWithin(context.signal, 5_000)) reason = context.signal.reason;
        },
      });
      const recorded = recordingLog();
      const startedMs = Date.now();
      // Nobody claimed the job meanwhile, so the fenced finish still records the run.
      expect(await runClaimedJob(db, refused, await claimOnly(refused), { log: recorded.log })).toBe('succeeded');
      expect(Date.now() - startedMs).toBeGreaterThanOrEqual(visibilityTimeoutMs - 10);
      expect((reason as Error | undefined)?.message).toBe(leaseRanOutMessage);
      const failures = recorded.lines.filter((line) => line.message.startsWith('renewing a job lease failed'));
      expect(failures.length).toBeGreaterThanOrEqual(1);
      expect(failures.every((line) => line.level === 'warn')).toBe(true);

      // Refused once, then the database recovers: the run keeps its lease past the first timeout.
      const recovering = defineJob<Record<string, never>>({
        name: 'test.renewal_refused_once',
        maxAttempts: 1,
        backoff: { baseMs: 1, maxMs: 1 },
        visibilityTimeoutMs: 1_200,
        run: async (context) => {
          await waitFor('a refused renewal', async () => recovered.lines.length > 0, 5_000);
          await sql`DROP TRIGGER test_refuse_lease_renewal ON jobs`.execute(db);
          refusing = false;
          await sleep(2 * 1_200);
          expect(context.signal.aborted).toBe(false);
        },
      });
      const recovered = recordingLog();
      expect(await runClaimedJob(db, recovering, await claimOnly(recovering), { log: recovered.log })).toBe(
        'succeeded',
      );
      expect(recovered.lines.map((line) => [line.level, line.message])).toEqual([
        ['warn', 'renewing a job lease failed; trying again until it runs out'],
      ]);
    } finally {
      if (refusing) await sql`DROP TRIGGER test_refuse_lease_renewal ON jobs`.execute(db);
      await sql`DROP FUNCTION test_refuse_lease_renewal()`.execute(db);
    }
  });
});

describe('workers', () => {
  it('two workers on one database never run the same job twice', async () => {
    const runs = new Map<string, number>();
    const byWorker = [0, 0];
    const definition = (worker: number) =>
      defineJob<{ n: number }>({
        name: 'test.shared',
        maxAttempts: 3,
        backoff: { baseMs: 1, maxMs: 1 },
        visibilityTimeoutMs: 60_000,
        run: async (context) => {
          runs.set(context.job.id, (runs.get(context.job.id) ?? 0) + 1);
          byWorker[worker] = (byWorker[worker] ?? 0) + 1;
          await sleep(Math.random() * 3);
        },
      });
    const jobCount = 300;
    await enqueue(Array.from({ length: jobCount }, (_, n) => jobRequest(definition(0), { n })));
    const other = await secondHandle();
    const workers = [
      startWorker(db, { catalog: [definition(0)], log, pollIntervalMs: 5, concurrency: 8 }),
      startWorker(other.db, { catalog: [definition(1)], log, pollIntervalMs: 5, concurrency: 8 }),
    ];
    try {
      await waitFor(
        'every job to succeed',
        async () => {
          const result = await sql<{
            count: number;
          }>`SELECT count(*)::integer AS count FROM jobs WHERE name = 'test.shared' AND status = 'succeeded'`.execute(
            db,
          );
          return result.rows[0]?.count === jobCount;
        },
        30_000,
      );
    } finally {
      await Promise.all(workers.map((worker) => worker.stop()));
      await other.close();
    }
    expect(runs.size).toBe(jobCount);
    expect([...runs.values()].every((count) => count === 1)).toBe(true);
    expect((await jobsNamed('test.shared')).every((job) => job.attempts === 1)).toBe(true);
    if (testDatabaseKind === 'postgres') expect(byWorker.every((count) => count > 0)).toBe(true);
  });

  it('stop() stops claiming and waits for the running job to finish', async () => {
    let started = false;
    let finished = false;
    const slow = defineJob<Record<string, never>>({
      name: 'test.slow',
      maxAttempts: 1,
      backoff: { baseMs: 1, maxMs: 1 },
      visibilityTimeoutMs: 60_000,
      run: async (context) => {
        started = true;
        await sleep(300);
        // The worker asks it to stop between rounds; this job has a single round.
        expect(context.signal.aborted).toBe(true);
        finished = true;
      },
    });
    await enqueue([jobRequest(slow, {})]);
    const worker = startWorker(db, { catalog: [slow], log, pollIntervalMs: 5, concurrency: 1 });
    await waitFor('the job to start', async () => started);
    await worker.stop();
    expect(finished).toBe(true);
    expect((await onlyJob('test.slow')).status).toBe('succeeded');
    // Stopped means stopped: a job enqueued now stays queued.
    await enqueue([jobRequest(slow, {})]);
    await sleep(50);
    expect((await jobsNamed('test.slow')).map((job) => job.status)).toEqual(['succeeded', 'queued']);
  });

  it('a recurring job is queued at most once and runs once per interval, however many workers schedule it', async () => {
    let runs = 0;
    const recurring = defineJob<Record<string, never>>({
      name: 'test.recurring',
      maxAttempts: 1,
      backoff: { baseMs: 1, maxMs: 1 },
      visibilityTimeoutMs: 60_000,
      recurring: { intervalMs: 60_000, payload: {} },
      run: async () => {
        runs++;
      },
    });
    const now = new Date();
    // Several schedulers at once, and duplicates within one insert, leave one queued job.
    await Promise.all([1, 2, 3].map(() => scheduleRecurringJobs(db, [recurring], now)));
    await enqueue([jobRequest(recurring, {}, { dedupeKey: recurringDedupeKey('test.recurring') })]);
    expect(await jobsNamed('test.recurring')).toHaveLength(1);

    const other = await secondHandle();
    const workers = [
      startWorker(db, { catalog: [recurring], log, pollIntervalMs: 5, concurrency: 2 }),
      startWorker(other.db, { catalog: [recurring], log, pollIntervalMs: 5, concurrency: 2 }),
    ];
    try {
      await waitFor('the first run', async () => runs > 0);
      await sleep(200);
    } finally {
      await Promise.all(workers.map((worker) => worker.stop()));
      await other.close();
    }
    expect(runs).toBe(1);
    const [done, next] = await jobsNamed('test.recurring');
    expect(done?.status).toBe('succeeded');
    expect(next?.status).toBe('queued');
    expect(next?.dedupe_key).toBe(recurringDedupeKey('test.recurring'));
    const gapMs = (next?.run_at.getTime() ?? 0) - (done?.finished_at?.getTime() ?? 0);
    expect(gapMs).toBe(60_000);
  });
});

describe('housekeeping', () => {
  it('one run of the idempotency cleanup deletes 20,000 expired keys and keeps the live ones', async () => {
    const now = new Date();
    const past = new Date(now.getTime() - 60_000).toISOString();
    const future = new Date(now.getTime() + 60_000).toISOString();
    await sql`INSERT INTO idempotency_keys (scope, key, request_hash, expires_at)
      SELECT 'org_' || (n % 50), 'expired-' || n, 'h', ${past}::timestamptz FROM generate_series(1, 20000) AS n`.execute(
      db,
    );
    await sql`INSERT INTO idempotency_keys (scope, key, request_hash, expires_at)
      SELECT 'org_' || (n % 50), 'live-' || n, 'h', ${future}::timestamptz FROM generate_series(1, 300) AS n`.execute(
      db,
    );
    // The service's own catalog and job, run once as a worker would.
    const catalog: JobCatalog = jobCatalog({ sweepIntervalMs: 5_000 }).filter(
      (definition) => definition.name === deleteExpiredIdempotencyKeysName,
    );
    await scheduleRecurringJobs(db, catalog, now);
    const claimed = await claimJobs(db, catalog, 10, now);
    expect(claimed).toHaveLength(1);
    const [definition] = catalog;
    const [job] = claimed;
    if (definition === undefined || job === undefined) throw new Error('nothing claimed');
    const started = Date.now();
    const outcome = await runClaimedJob(db, definition, job, { log });
    expect(outcome).toBe('succeeded');
    const remaining = await sql<{ expired: number; live: number }>`
      SELECT count(*) FILTER (WHERE key LIKE 'expired-%')::integer AS expired,
             count(*) FILTER (WHERE key LIKE 'live-%')::integer AS live
      FROM idempotency_keys`.execute(db);
    expect(remaining.rows[0]).toEqual({ expired: 0, live: 300 });
    // Far above 200 requests a second: 20,000 keys (100 s of such traffic) in one run of well under 5 s.
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('succeeded jobs past their retention are deleted in batches; recent and dead ones stay', async () => {
    const now = new Date();
    const old = new Date(now.getTime() - succeededJobRetentionMs - 1).toISOString();
    const recent = new Date(now.getTime() - 1_000).toISOString();
    // 3 old dead jobs, 2,000 old succeeded ones, 497 recent succeeded ones.
    await sql`INSERT INTO jobs (id, name, status, attempts, max_attempts, run_at, finished_at)
      SELECT 'job_retention_' || n, 'test.retention', CASE WHEN n <= 3 THEN 'dead' ELSE 'succeeded' END, 1, 1,
        ${old}::timestamptz, CASE WHEN n <= 2003 THEN ${old}::timestamptz ELSE ${recent}::timestamptz END
      FROM generate_series(1, 2500) AS n`.execute(db);
    expect(await deleteSucceededJobs(db, { now, batchSize: 1_000, maxRounds: 5 })).toBe(2_000);
    const left = await jobsNamed('test.retention');
    expect(left.filter((job) => job.status === 'dead')).toHaveLength(3);
    expect(left.filter((job) => job.status === 'succeeded')).toHaveLength(497);
  });

  it('reports the depth and age of the due queue', async () => {
    const stats = defineJob<Record<string, never>>({
      name: 'test.stats',
      maxAttempts: 1,
      backoff: { baseMs: 1, maxMs: 1 },
      visibilityTimeoutMs: 1_000,
      run: async () => {},
    });
    const now = new Date('2034-01-01T00:00:00.000Z');
    const before = await queueStats(db, now);
    await enqueue([
      jobRequest(stats, {}, { runAt: new Date('2040-01-01T00:00:00.000Z') }),
      jobRequest(stats, {}, { runAt: new Date('2033-12-31T23:59:00.000Z') }),
    ]);
    const after = await queueStats(db, now);
    expect(after.depth).toBe(before.depth + 1);
    expect(after.oldestAgeSeconds).toBeGreaterThanOrEqual(60);
  });
});
