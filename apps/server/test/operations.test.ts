import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../src/app.js';
import { databaseUnavailableReason, openDatabase } from '../src/platform/db.js';
import { errorStatuses, serviceUnavailableRetryAfterSeconds } from '../src/platform/errors.js';
import {
  adminToken,
  type Call,
  type Client,
  client,
  createPostgresDatabase,
  freePort,
  newOrganization,
  programWithUser,
  startTestServer,
  type TestServer,
  testDatabaseKind,
} from './harness.js';

// Operations: what an operator relies on when things go wrong. Metrics, a drain on SIGTERM, and a
// database that restarts under load without the service going wrong with it.

/** How long a spawned server may take to answer /readyz with 200, in milliseconds. */
// A server process migrates a new embedded database before it is ready; on a loaded CI machine
// running other suites in parallel that has taken more than 30 s.
const serverReadyTimeoutMs = 90_000;
// The tests here start server processes: room for the start above and the test itself.
vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });
/** How long a spawned server may take to exit after SIGTERM, in milliseconds. */
const serverExitTimeoutMs = 30_000;
/** Callers running at once in a load stream. */
const loadConcurrency = 8;
/** Most requests one load stream sends, and longest it runs, in milliseconds. */
const maxLoadRequests = 5_000;
const maxLoadMs = 45_000;
/** Answers the SIGTERM stream collects before the signal is sent. */
const answersBeforeSignal = 60;
/** How often a condition is polled, and how long at most, in milliseconds. */
const pollIntervalMs = 50;
const maxPollMs = 30_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it is true; fails the test after `timeoutMs`. */
async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = maxPollMs): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(pollIntervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** An answer is acceptable when it is a success or an error from the closed list with its status. */
function isListedAnswer(answer: Call): boolean {
  if (answer.status >= 200 && answer.status < 300) return true;
  const code = answer.body?.error?.code as keyof typeof errorStatuses | undefined;
  if (code === undefined || !(code in errorStatuses) || errorStatuses[code] !== answer.status) return false;
  return (answer.status >= 400 && answer.status < 500) || code === 'service_unavailable';
}

interface LoadResult {
  answers: { call: Call; kind: 'read' | 'create_user'; at: number }[];
  /** Requests that got no HTTP answer (connection refused or reset), with when they failed. */
  networkErrors: { message: string; at: number }[];
}

/**
 * Runs `loadConcurrency` callers, each alternating a program read and a user creation, until
 * `stop()` says so, a caller hits a network error while `stopOnNetworkError()`, or the stream's
 * bounds (`maxLoadRequests`, `maxLoadMs`) are reached.
 */
function startLoad(
  call: Client,
  programId: string,
  options: { stop: () => boolean; stopOnNetworkError: () => boolean; onAnswer?: (count: number) => void },
): { result: LoadResult; done: Promise<void> } {
  const result: LoadResult = { answers: [], networkErrors: [] };
  const deadline = Date.now() + maxLoadMs;
  let sent = 0;
  const caller = async (index: number) => {
    while (!options.stop() && sent < maxLoadRequests && Date.now() < deadline) {
      const kind = (sent + index) % 2 === 0 ? 'read' : 'create_user';
      sent++;
      try {
        const answer =
          kind === 'read'
            ? await call('GET', `/v1/programs/${programId}`)
            : await call('POST', '/v1/users', {}, { 'Idempotency-Key': randomUUID() });
        result.answers.push({ call: answer, kind, at: Date.now() });
        options.onAnswer?.(result.answers.length);
      } catch (error) {
        result.networkErrors.push({ message: error instanceof Error ? error.message : String(error), at: Date.now() });
        if (options.stopOnNetworkError()) return;
        await sleep(pollIntervalMs);
      }
    }
  };
  const done = Promise.all(Array.from({ length: loadConcurrency }, (_, index) => caller(index))).then(() => {});
  return { result, done };
}

function tally(answers: LoadResult['answers']): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { call } of answers) {
    const key = call.status < 300 ? String(call.status) : `${call.status} ${call.body?.error?.code}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** One sample of a metric from the Prometheus text format, found by name and labels. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const found = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((pair) => [pair[1], pair[2]]),
    );
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[3]);
  }
  return undefined;
}

describe('GET /metrics', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it('counts requests by route pattern and status, with process, ledger and job queue metrics, for the operator only', async () => {
    const org = await newOrganization(server);
    const { programId, userId } = await programWithUser(org.call);
    for (let i = 0; i < 3; i++) expect((await org.call('GET', `/v1/programs/${programId}`)).status).toBe(200);
    expect((await org.call('GET', '/v1/programs/prg_00000000000000000000000000')).status).toBe(404);
    expect((await org.call('GET', `/no/such/route/${programId}`)).status).toBe(404);
    expect((await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 5 })).status).toBe(201);

    const anonymous = await client(server.baseUrl)('GET', '/metrics');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('unauthorized');
    expect((await org.call('GET', '/metrics')).status).toBe(401);

    const scraped = await client(server.baseUrl, adminToken)('GET', '/metrics');
    expect(scraped.status).toBe(200);
    expect(scraped.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = scraped.body as string;
    const route = '/v1/programs/:id';
    expect(sample(text, 'tranche_http_requests_total', { method: 'GET', route, status_code: '200' })).toBe(3);
    expect(sample(text, 'tranche_http_requests_total', { method: 'GET', route, status_code: '404' })).toBe(1);
    expect(sample(text, 'tranche_http_requests_total', { route: 'unmatched', status_code: '404' })).toBe(1);
    expect(sample(text, 'tranche_http_requests_total', { method: 'POST', route: '/v1/usertasks' })).toBe(1);
    expect(
      sample(text, 'tranche_http_request_duration_seconds_count', { method: 'GET', route, status_code: '200' }),
    ).toBe(3);
    expect(
      sample(text, 'tranche_http_request_duration_seconds_bucket', { route, status_code: '200', le: '+Inf' }),
    ).toBe(3);
    // Route patterns only: no id from a URL becomes a label.
    expect(text).not.toContain(programId);
    // Process-wide: the reservation above applied (at least) one ledger batch.
    expect(sample(text, 'tranche_ledger_batch_operations_count')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    // The job queue, read from the jobs table on this scrape.
    expect(sample(text, 'tranche_job_queue_depth')).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'tranche_job_queue_oldest_age_seconds')).toBeGreaterThanOrEqual(0);

    const document = (await client(server.baseUrl)('GET', '/openapi.json')).body;
    expect(Object.keys(document.paths)).not.toContain('/metrics');
  });

  it('reads the job queue through the reader it is given, and shows NaN (not 0) when that fails', async () => {
    const scrape = async (readJobQueue: () => Promise<{ depth: number; oldestAgeSeconds: number }>) => {
      const app = await buildApp({ adminToken, logLevel: 'silent' }, server.database, { logger: false, readJobQueue });
      try {
        const response = await app.inject({
          method: 'GET',
          url: '/metrics',
          headers: { authorization: `Bearer ${adminToken}` },
        });
        expect(response.statusCode).toBe(200);
        return response.body;
      } finally {
        await app.close();
      }
    };
    let reads = 0;
    const counted = await scrape(async () => {
      reads++;
      return { depth: 7, oldestAgeSeconds: 42.5 };
    });
    expect(sample(counted, 'tranche_job_queue_depth')).toBe(7);
    expect(sample(counted, 'tranche_job_queue_oldest_age_seconds')).toBe(42.5);
    expect(reads).toBe(1);
    // A fresh app starts counting its own requests from zero.
    expect(sample(counted, 'tranche_http_requests_total', { route: '/v1/programs/:id' })).toBeUndefined();

    const failed = await scrape(async () => {
      throw new Error('relation "jobs" does not exist');
    });
    expect(sample(failed, 'tranche_job_queue_depth')).toBeNaN();
    expect(sample(failed, 'tranche_job_queue_oldest_age_seconds')).toBeNaN();
  });
});

describe('which failures mean the database is unavailable', () => {
  const withCode = (code: string, message = 'failed') => Object.assign(new Error(message), { code });
  it.each([
    ['admin shutdown (57P01)', withCode('57P01'), '57P01'],
    ['crash shutdown (57P02)', withCode('57P02'), '57P02'],
    ['starting up (57P03)', withCode('57P03'), '57P03'],
    ['too many connections (53300)', withCode('53300'), '53300'],
    ['connection exception class 08', withCode('08006'), '08006'],
    ['refused', withCode('ECONNREFUSED'), 'ECONNREFUSED'],
    ['reset', withCode('ECONNRESET'), 'ECONNRESET'],
    ['broken pipe', withCode('EPIPE'), 'EPIPE'],
    ['timed out', withCode('ETIMEDOUT'), 'ETIMEDOUT'],
    ['pg: connection ended', new Error('Connection terminated unexpectedly'), 'Connection terminated unexpectedly'],
    [
      'pg-pool: no connection in time',
      new Error('timeout exceeded when trying to connect'),
      'timeout exceeded when trying to connect',
    ],
    ['both addresses refused', new AggregateError([withCode('ECONNREFUSED')], 'connect failed'), 'ECONNREFUSED'],
    ['wrapped', new Error('query failed', { cause: withCode('57P01') }), '57P01'],
  ])('%s', (_name, error, reason) => {
    expect(databaseUnavailableReason(error)).toBe(reason);
  });
  it.each([
    ['unique violation', withCode('23505')],
    ['serialization failure', withCode('40001')],
    ['statement timeout', withCode('57014')],
    ['a bug', new TypeError('x is undefined')],
    ['not an error', 'Connection terminated'],
  ])('not %s', (_name, error) => {
    expect(databaseUnavailableReason(error)).toBeUndefined();
  });
});

const binScript = fileURLToPath(new URL('../bin/tranche.js', import.meta.url));

/** Starts `tranche serve` as its own process, the way an operator runs it, and waits until it is ready. */
async function startServerProcess(
  env: Record<string, string>,
): Promise<{ child: ChildProcess; baseUrl: string; stderr: () => string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [binScript, 'serve'], {
    env: {
      ...process.env,
      PORT: String(port),
      TRANCHE_ADMIN_TOKEN: adminToken,
      LOG_LEVEL: 'warn',
      TRANCHE_DATABASE_POOL_SIZE: '10',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // Kept for the failure message; bounded so that a chatty child cannot fill the test's memory.
  const maxStderrChars = 20_000;
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    if (stderr.length < maxStderrChars) stderr += chunk.toString('utf8');
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      'the server process to be ready',
      async () => {
        if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${stderr}`);
        try {
          return (await fetch(`${baseUrl}/readyz`)).status === 200;
        } catch {
          return false;
        }
      },
      serverReadyTimeoutMs,
    );
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return { child, baseUrl, stderr: () => stderr };
}

describe('SIGTERM under load', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('drains: every answered request is a success or a listed error, the writes it answered are kept, and the process exits 0', async () => {
    const { started, child, dataDir, databaseUrl } = await serverOnNewDatabase('sigterm', cleanups);
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;

    const created = await client(started.baseUrl, adminToken)('POST', '/v1/organizations', { name: 'Drain' });
    expect(created.status).toBe(201);
    const organizationId = created.body.id as string;
    const call = client(started.baseUrl, created.body.apiKey);
    const { programId } = await programWithUser(call);

    let signalledAt: number | undefined;
    const load = startLoad(call, programId, {
      stop: () => false,
      // After the signal the server stops listening: a caller's first refused connection ends it.
      stopOnNetworkError: () => signalledAt !== undefined,
      onAnswer: (count) => {
        if (count >= answersBeforeSignal && signalledAt === undefined) {
          signalledAt = Date.now();
          child.kill('SIGTERM');
        }
      },
    });
    await load.done;
    let exitTimer: NodeJS.Timeout | undefined;
    const [code, signal] = await Promise.race([
      exited,
      new Promise<never>((_resolve, reject) => {
        exitTimer = setTimeout(
          () => reject(new Error(`server did not exit within ${serverExitTimeoutMs} ms of SIGTERM`)),
          serverExitTimeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(exitTimer));

    const { answers, networkErrors } = load.result;
    expect(signalledAt, 'the stream reached the signal').toBeDefined();
    expect(networkErrors.filter((error) => error.at < (signalledAt as number))).toEqual([]);
    expect(
      answers.filter((answer) => !isListedAnswer(answer.call)).map((answer) => answer.call),
      `answers: ${JSON.stringify(tally(answers))}`,
    ).toEqual([]);
    // Requests already sent when the signal came were finished, not dropped.
    expect(answers.filter((answer) => answer.at >= (signalledAt as number)).length).toBeGreaterThan(0);
    expect({ code, signal, stderr: started.stderr() }).toMatchObject({ code: 0, signal: null });

    // Every user the server answered 201 for is in the database it closed.
    const answeredUsers = answers.filter((answer) => answer.kind === 'create_user' && answer.call.status === 201);
    const database = await openDatabase({ databaseUrl, dataDir });
    try {
      const rows = await sql<{ count: string | bigint }>`
          SELECT count(*) AS count FROM users WHERE organization_id = ${organizationId}`.execute(database.db);
      // One user came from programWithUser; requests cut off mid-flight may have added more.
      expect(Number(rows.rows[0]?.count)).toBeGreaterThanOrEqual(answeredUsers.length + 1);
      for (const answer of answeredUsers.slice(0, 20)) {
        const found =
          await sql`SELECT 1 FROM users WHERE organization_id = ${organizationId} AND id = ${answer.call.body.id}`.execute(
            database.db,
          );
        expect(found.rows).toHaveLength(1);
      }
    } finally {
      await database.close();
    }
  });
});

/**
 * A server process on a database of its own (a data directory on PGlite, a new database on
 * PostgreSQL), with what removes both pushed to `cleanups`.
 */
async function serverOnNewDatabase(name: string, cleanups: (() => Promise<void> | void)[]) {
  const dataDir = mkdtempSync(join(tmpdir(), `tranche-${name}-`));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  let databaseUrl: string | undefined;
  if (testDatabaseKind === 'postgres') {
    const created = await createPostgresDatabase();
    databaseUrl = created.url;
    cleanups.push(() => created.drop());
  }
  const started = await startServerProcess(
    databaseUrl === undefined ? { TRANCHE_DATA_DIR: dataDir } : { DATABASE_URL: databaseUrl },
  );
  const { child } = started;
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { started, child, dataDir, databaseUrl };
}

/** Answers the crash stream collects before the process is killed. */
const answersBeforeKill = 150;
/** Callers of the crash stream: enough that every batch holds several requests. */
const crashConcurrency = 32;
/** Milestones assigned before the crash stream, for it to complete. */
const assignedBeforeCrash = 120;

describe('SIGKILL under load', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('a crash in the middle of batches loses no acknowledged assignment or completion, and the books hold', async () => {
    const { started, child, dataDir, databaseUrl } = await serverOnNewDatabase('sigkill', cleanups);
    const exited = once(child, 'exit');
    const created = await client(started.baseUrl, adminToken)('POST', '/v1/organizations', { name: 'Crash' });
    expect(created.status).toBe(201);
    const organizationId = created.body.id as string;
    const call = client(started.baseUrl, created.body.apiKey);
    const { programId, userId } = await programWithUser(call, 1_000_000, 10);
    const toComplete: string[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (toComplete.length < assignedBeforeCrash) {
          const assigned = await call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 10 });
          expect(assigned.status).toBe(201);
          toComplete.push(assigned.body.id);
        }
      }),
    );

    // Half the callers assign, half complete, each request with its own key, until the kill.
    const acknowledged = { assigned: [] as string[], completed: [] as string[] };
    let answers = 0;
    let killed = false;
    const caller = async (index: number) => {
      while (!killed) {
        const completing = index % 2 === 1 ? toComplete.pop() : undefined;
        if (index % 2 === 1 && completing === undefined) return;
        try {
          const answer =
            completing === undefined
              ? await call(
                  'POST',
                  '/v1/usertasks',
                  { programId, userId, monetaryValue: 10 },
                  { 'Idempotency-Key': randomUUID() },
                )
              : await call('PUT', `/v1/usertasks/${completing}/complete`, {}, { 'Idempotency-Key': randomUUID() });
          if (answer.status === 201) acknowledged.assigned.push(answer.body.id);
          else if (answer.status === 200) acknowledged.completed.push(answer.body.id);
          else throw new Error(`unexpected answer ${answer.status} ${JSON.stringify(answer.body)}`);
          if (++answers === answersBeforeKill) {
            killed = true;
            child.kill('SIGKILL');
          }
        } catch (error) {
          if (!killed) throw error;
        }
      }
    };
    await Promise.all(Array.from({ length: crashConcurrency }, (_, index) => caller(index)));
    await exited;
    expect(acknowledged.assigned.length + acknowledged.completed.length).toBeGreaterThanOrEqual(answersBeforeKill);

    // The database the killed process left, opened again (the embedded one recovers from its WAL).
    const database = await openDatabase({ databaseUrl, dataDir });
    try {
      const statuses = new Map(
        (
          await database.db
            .selectFrom('user_tasks as ut')
            .leftJoin('disbursements as d', (join) =>
              join.onRef('d.organization_id', '=', 'ut.organization_id').onRef('d.user_task_id', '=', 'ut.id'),
            )
            .select(['ut.id', 'ut.status', 'd.id as disbursement_id'])
            .where('ut.organization_id', '=', organizationId)
            .execute()
        ).map((row) => [row.id, row]),
      );
      for (const id of acknowledged.assigned) expect(statuses.get(id)?.status, id).toBeDefined();
      for (const id of acknowledged.completed) {
        expect(statuses.get(id)?.status, id).toBe('completed');
        expect(statuses.get(id)?.disbursement_id, id).toMatch(/^dsb_/);
      }
      // The books: what the pool reserved and released is what the user tasks say, to the cent.
      const sums = await sql<{ reserved: bigint; completed: bigint; pending: bigint; posted: bigint }>`
        SELECT
          (SELECT coalesce(sum(monetary_value_cents), 0) FROM user_tasks
            WHERE organization_id = ${organizationId} AND status = 'assigned')::bigint AS reserved,
          (SELECT coalesce(sum(completed_amount_cents), 0) FROM user_tasks
            WHERE organization_id = ${organizationId} AND status = 'completed')::bigint AS completed,
          a.debits_pending_cents AS pending, t.credits_posted_cents AS posted
        FROM programs p
        JOIN ledger_accounts a ON a.organization_id = p.organization_id AND a.id = p.pool_account_id
        JOIN ledger_accounts t ON t.organization_id = p.organization_id AND t.id = p.in_transit_account_id
        WHERE p.organization_id = ${organizationId} AND p.id = ${programId}`.execute(database.db);
      const [books] = sums.rows;
      expect(books?.pending).toBe(books?.reserved);
      expect(books?.posted).toBe(books?.completed);
    } finally {
      await database.close();
    }
  });
});

/** The newest PostgreSQL server binaries on this machine (Debian layout), if any. */
function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((name) => /^\d+$/.test(name))
    .sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = join(root, version, 'bin');
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin;
  }
  return undefined;
}

/**
 * A throwaway PostgreSQL cluster of this test's own, on its own port and socket directory, so
 * that stopping it touches nobody else's databases. PostgreSQL refuses to run as root; as root
 * the commands run as the `postgres` user.
 */
class PrivateCluster {
  readonly dataDir: string;
  readonly url: string;
  private constructor(
    private readonly bin: string,
    private readonly baseDir: string,
    private readonly port: number,
  ) {
    this.dataDir = join(baseDir, 'data');
    this.url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  }

  static async create(bin: string): Promise<PrivateCluster> {
    const baseDir = mkdtempSync(join(tmpdir(), 'tranche-pg-'));
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      chownSync(baseDir, uid, gid);
    }
    const cluster = new PrivateCluster(bin, baseDir, await freePort());
    cluster.run('initdb', ['-D', cluster.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    cluster.start();
    return cluster;
  }

  private run(command: string, args: string[]): void {
    const path = join(this.bin, command);
    const [file, argv] = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
    execFileSync(file, argv, { stdio: 'pipe', timeout: maxPollMs });
  }

  start(): void {
    const options = `-p ${this.port} -k ${this.baseDir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40`;
    this.run('pg_ctl', ['-D', this.dataDir, '-l', join(this.baseDir, 'log'), '-o', options, '-w', '-t', '30', 'start']);
  }

  /** A fast shutdown, as a restart does it: sessions are terminated, new connections refused. */
  stop(): void {
    this.run('pg_ctl', ['-D', this.dataDir, '-m', 'fast', '-w', '-t', '30', 'stop']);
  }

  remove(): void {
    try {
      this.run('pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', '-t', '30', 'stop']);
    } catch {
      // already stopped
    }
    rmSync(this.baseDir, { recursive: true, force: true });
  }
}

describe.runIf(testDatabaseKind === 'postgres')('PostgreSQL restarted under load', () => {
  const bin = postgresBinDir();
  let cluster: PrivateCluster | undefined;
  let server: TestServer | undefined;
  afterAll(async () => {
    await server?.close();
    cluster?.remove();
  });

  it('answers 503 service_unavailable with Retry-After while it is down, and recovers by itself', async (context) => {
    context.skip(
      bin === undefined,
      'no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql to run a private cluster',
    );
    cluster = await PrivateCluster.create(bin as string);
    server = await startTestServer({ databaseUrl: cluster.url, poolSize: 10 });
    const running = server;
    const org = await newOrganization(running);
    const { programId, userId } = await programWithUser(org.call, 50_000, 10_000);

    const retriedKey = randomUUID();
    let stopped = false;
    const load = startLoad(org.call, programId, { stop: () => stopped, stopOnNetworkError: () => false });
    try {
      await waitFor('load before the restart', () => load.result.answers.length >= 50);
      cluster.stop();
      const downAt = Date.now();

      // Down: the stream keeps being answered, with 503s, and /readyz says so.
      await waitFor('a 503 under load', () =>
        load.result.answers.some((answer) => answer.at > downAt && answer.call.status === 503),
      );
      const readiness = await client(running.baseUrl)('GET', '/readyz');
      expect(readiness.status).toBe(503);
      expect(readiness.body.status).toBe('not_ready');
      const down = await org.call('GET', `/v1/programs/${programId}`);
      expect(down.status).toBe(503);
      expect(down.body.error).toMatchObject({ code: 'service_unavailable' });
      expect(down.body.error.message).not.toMatch(/ECONNREFUSED|at .*\.ts/);
      expect(down.headers.get('retry-after')).toBe(String(serviceUnavailableRetryAfterSeconds));
      const rejected = await client(running.baseUrl, 'sk_never_seen_before_so_not_cached')('GET', '/v1/programs');
      expect(rejected.status).toBe(503);
      const writeDown = await org.call('POST', '/v1/users', {}, { 'Idempotency-Key': retriedKey });
      expect(writeDown.status).toBe(503);
      expect(writeDown.body.error.code).toBe('service_unavailable');

      // Back: the same process serves again, reads and writes, money included.
      cluster.start();
      const upAt = Date.now();
      await waitFor(
        '/readyz to be 200 again',
        async () => (await client(running.baseUrl)('GET', '/readyz')).status === 200,
      );
      await waitFor(
        'successes under load after the restart',
        () => load.result.answers.filter((answer) => answer.at > upAt && answer.call.status < 300).length >= 50,
      );
    } finally {
      stopped = true;
      await load.done;
    }

    const { answers, networkErrors } = load.result;
    expect(networkErrors).toEqual([]);
    const counts = tally(answers);
    expect(Object.keys(counts).sort(), JSON.stringify(counts)).toEqual(['200', '201', '503 service_unavailable']);
    for (const { call } of answers.filter((answer) => answer.call.status === 503)) {
      expect(call.headers.get('retry-after')).toBe(String(serviceUnavailableRetryAfterSeconds));
    }
    expect((await org.call('GET', `/v1/programs/${programId}`)).status).toBe(200);
    // The write that failed while the database was down left no claim on its key: the retry runs.
    const retried = await org.call('POST', '/v1/users', {}, { 'Idempotency-Key': retriedKey });
    expect(retried.status).toBe(201);
    expect(retried.headers.get('idempotent-replayed')).toBeNull();
    const reserved = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 25 });
    expect(reserved.status).toBe(201);
    const program = (await org.call('GET', `/v1/programs/${programId}`)).body;
    expect(program.balances).toMatchObject({ available: 50_000 - 25, reserved: 25 });

    // Users answered 201 exist; a 503 during COMMIT may or may not have committed its user.
    const answeredUsers = answers.filter((answer) => answer.kind === 'create_user' && answer.call.status === 201);
    const unavailableUsers = answers.filter((answer) => answer.kind === 'create_user' && answer.call.status === 503);
    const rows = await sql<{ count: string | bigint }>`
      SELECT count(*) AS count FROM users WHERE organization_id = ${org.id}`.execute(running.database.db);
    // Less the users of programWithUser and of the retried request.
    const count = Number(rows.rows[0]?.count) - 2;
    expect(count).toBeGreaterThanOrEqual(answeredUsers.length);
    expect(count).toBeLessThanOrEqual(answeredUsers.length + unavailableUsers.length);
  });
});
