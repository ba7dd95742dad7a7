/**
 * `npm run bench [-- --seconds N --connections N --phases hot,spread,in-process,two-processes,embedded]`
 *
 * Measures what one machine does with Tranche's hot path, on a scratch PostgreSQL database that is
 * dropped at the end (also on failure or Ctrl-C). Each phase reports ops/s, p50, p99, errors and
 * its ratio to the ceiling measured in the same run:
 *   1. ceiling: the cheapest possible "reserve from one pool row + append an entry" transaction,
 *      straight over `pg`, with as many connections as one server process's pool;
 *   2. the real server (a child process) over HTTP, driven by wrk (`usertasks.lua`) at
 *      `--connections`: assignments, then completions of those user tasks, on one hot program;
 *   3. the same over 1,000 programs, where rows are not contended;
 *   4. the domain functions in-process (no HTTP) on one hot program, to separate database
 *      contention from the cost of HTTP, validation and JSON;
 *   5. two server processes on one hot program, one wrk against each, half the connections each;
 *   6. the embedded default: a server on PGlite (no DATABASE_URL, a temporary TRANCHE_DATA_DIR).
 * Then it checks every program's books over HTTP and prints one table, with the ledger's batch
 * sizes from each server's /metrics. Without wrk on PATH the HTTP phases are skipped, with a hint:
 * a load generator slower than the server would measure itself.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openDatabase } from '../src/platform/db.js';
import type { Failure } from '../src/platform/errors.js';
import { userTaskBatchers } from '../src/usertasks/batchers.js';
import type { UnitContext } from '../src/work/unit.js';
import { findWrk, mergedPercentileMs, runWrk, settle } from './wrk.js';

// ---------------------------------------------------------------------------------------------
// Limits and workload sizes, each with its unit.

/** Length of each timed phase, in seconds, unless `--seconds` says otherwise. */
const defaultPhaseSeconds = 10;
const maxPhaseSeconds = 600;
/** Concurrent HTTP connections (wrk) and in-process callers per phase, unless `--connections` says otherwise. */
const defaultConnections = 64;
const maxConnections = 1_000;
/**
 * Database connections of one server process's pool, and of the ceiling and in-process phases.
 * Two processes run at once (the two-process phase, and the first server beside the in-process
 * pool), so twice this plus the bench's own clients must fit in PostgreSQL's max_connections
 * (100 by default); the bench checks that before it starts.
 */
const poolConnections = 40;
const processesSharingDatabase = 2;
/** Connections the bench itself holds beside the pools: an admin client, a settling margin, in connections. */
const benchOwnConnections = 5;
const defaultAdminUrl = 'postgres://postgres@127.0.0.1:5432/postgres';

/** How long the server child may take to answer `/readyz` with 200, in milliseconds. */
const serverReadyTimeoutMs = 30_000;
const readyPollIntervalMs = 100;
/** How long the server child gets to exit after SIGTERM before SIGKILL, in milliseconds. */
const serverStopTimeoutMs = 10_000;
/** A request that has not answered after this long counts as an error, in milliseconds. */
const requestTimeoutMs = 30_000;

/** Ceiling: the pool row's starting balance and the amount taken per transaction, in cents. */
const ceilingPoolCents = 1_000_000_000_000_000n;
const ceilingAmountCents = 100;

/** Every milestone is worth this many dollars. */
const taskValueDollars = 1;
const taskValueCents = 100n;
/** Hot program: the largest pool the API accepts, in dollars, a participant cap, and users enrolled up front. */
const hotPoolDollars = 1_000_000_000;
const hotMaxParticipants = 1_000_000;
const hotUsers = 200;
/** Spread: this many programs, each with a pool in dollars, a cap, and users enrolled up front. */
const spreadPrograms = 1_000;
const spreadPoolDollars = 1_000_000;
const spreadMaxParticipants = 100;
const spreadUsersPerProgram = 3;
/** Programs created at once during the untimed setup. */
const programCreationConcurrency = 8;

/** Users enrolled in the two-process and the embedded hot programs. */
const secondaryHotUsers = 100;

/** Error messages kept per phase to show what went wrong, and server log lines echoed. */
const maxErrorSamples = 5;
const maxEchoedServerLines = 30;

// ---------------------------------------------------------------------------------------------
// Arguments.

/** Phases `--phases` can name (the ceiling always runs: every ratio needs it). */
const phaseNames = ['hot', 'spread', 'in-process', 'two-processes', 'embedded'] as const;
type PhaseName = (typeof phaseNames)[number];

function parseOptions(): { seconds: number; connections: number; adminUrl: string; phases: Set<PhaseName> } {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: String(defaultPhaseSeconds) },
      connections: { type: 'string', default: String(defaultConnections) },
      phases: { type: 'string', default: phaseNames.join(',') },
    },
    strict: true,
  });
  const phases = new Set<PhaseName>();
  for (const name of (values.phases ?? '').split(',')) {
    if (!(phaseNames as readonly string[]).includes(name)) {
      throw new UsageError(`--phases takes a comma-separated list of ${phaseNames.join(', ')}; got "${name}"`);
    }
    phases.add(name as PhaseName);
  }
  const integer = (name: string, raw: string | undefined, max: number): number => {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1 || value > max) {
      throw new UsageError(`--${name} must be an integer from 1 to ${max}, got "${raw}"`);
    }
    return value;
  };
  return {
    seconds: integer('seconds', values.seconds, maxPhaseSeconds),
    connections: integer('connections', values.connections, maxConnections),
    adminUrl: process.env.BENCH_POSTGRES_URL?.trim() || defaultAdminUrl,
    phases,
  };
}

class UsageError extends Error {}

// ---------------------------------------------------------------------------------------------
// Measuring.

interface PhaseResult {
  name: string;
  ok: number;
  errors: number;
  elapsedSeconds: number;
  latenciesMs: number[];
  errorKinds: Map<string, number>;
  errorSamples: string[];
}

/** A unit of work; undefined when there is no more. */
type NextOperation = () => (() => Promise<void>) | undefined;

/**
 * Runs `concurrency` loops, each taking the next operation until the phase's time is up or
 * the work runs out. Every operation's latency is kept, failed ones included.
 */
async function runPhase(name: string, concurrency: number, seconds: number, next: NextOperation): Promise<PhaseResult> {
  const result: PhaseResult = {
    name,
    ok: 0,
    errors: 0,
    elapsedSeconds: 0,
    latenciesMs: [],
    errorKinds: new Map(),
    errorSamples: [],
  };
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const loop = async () => {
    while (performance.now() < deadline) {
      const operation = next();
      if (operation === undefined) return;
      const t0 = performance.now();
      try {
        await operation();
        result.ok++;
      } catch (error) {
        result.errors++;
        const kind = error instanceof HttpError ? `${error.status} ${error.code}` : errorName(error);
        result.errorKinds.set(kind, (result.errorKinds.get(kind) ?? 0) + 1);
        if (result.errorSamples.length < maxErrorSamples) result.errorSamples.push(errorText(error));
      }
      result.latenciesMs.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  result.elapsedSeconds = (performance.now() - started) / 1000;
  return result;
}

function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

interface Row {
  phase: string;
  ops: number;
  opsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

/** A finished phase: its row, and what to say about its errors and the ledger's batches. */
interface Measured {
  row: Row;
  elapsedSeconds: number;
  errorKinds: Map<string, number>;
  errorSamples: string[];
  /** The ledger's batches during the phase, from /metrics; undefined for phases without a server. */
  batches?: LedgerBatches | undefined;
}

function summarize(result: PhaseResult): Measured {
  const sorted = Float64Array.from(result.latenciesMs).sort();
  return {
    row: {
      phase: result.name,
      ops: result.ok,
      opsPerSecond: result.elapsedSeconds > 0 ? result.ok / result.elapsedSeconds : 0,
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      errors: result.errors,
    },
    elapsedSeconds: result.elapsedSeconds,
    errorKinds: result.errorKinds,
    errorSamples: result.errorSamples,
  };
}

function errorName(error: unknown): string {
  if (error instanceof Error) return (error as { code?: unknown }).code?.toString() ?? error.name;
  return 'unknown';
}

function errorText(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? ` (cause: ${error.cause.message})` : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}

async function forEachConcurrently<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let cursor = 0;
  const loop = async () => {
    while (cursor < items.length) {
      const index = cursor++;
      await work(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)] as T;
}

// ---------------------------------------------------------------------------------------------
// HTTP.

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A minimal client the way the SDK behaves: bearer key, JSON, a fresh Idempotency-Key per mutation. */
class Api {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
  ) {}

  async call<T>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (method !== 'GET') {
      headers['idempotency-key'] = randomUUID();
      headers['content-type'] = 'application/json';
    }
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      ...(method === 'GET' ? {} : { body: JSON.stringify(body ?? {}) }),
      signal: AbortSignal.timeout(requestTimeoutMs),
    });
    const text = await response.text();
    if (response.status < 200 || response.status > 299) {
      let code = 'unknown';
      let message = text.slice(0, 300);
      try {
        const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
        code = parsed.error?.code ?? code;
        message = parsed.error?.message ?? message;
      } catch {
        // not JSON; keep the text
      }
      throw new HttpError(response.status, code, `${method} ${path} → ${response.status} ${code}: ${message}`);
    }
    return JSON.parse(text) as T;
  }
}

interface ProgramBody {
  id: string;
  totalAwardPool: number;
  balances: { available: number; reserved: number; disbursing: number; disbursed: number; returned: number };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done, failed) => {
    server.once('error', failed);
    server.listen(0, '127.0.0.1', done);
  });
  const address = server.address();
  await new Promise<void>((done) => server.close(() => done()));
  if (address === null || typeof address === 'string') throw new Error('no TCP port for the server');
  return address.port;
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

// ---------------------------------------------------------------------------------------------
// The server child process.

interface ServerProcess {
  baseUrl: string;
  adminToken: string;
  child: ChildProcess;
  errorLines: () => number;
  stop(): Promise<void>;
}

async function startServer(options: {
  repoRoot: string;
  /** PostgreSQL; undefined runs the embedded default (PGlite in `dataDir`). */
  databaseUrl: string | undefined;
  dataDir?: string;
  adminToken: string;
  poolSize: number;
}): Promise<ServerProcess> {
  const port = await freePort();
  // TRANCHE_BENCH_CPU_PROFILE_DIR: the server writes a V8 CPU profile there when it exits.
  const profileDir = process.env.TRANCHE_BENCH_CPU_PROFILE_DIR;
  const profile = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    TRANCHE_ADMIN_TOKEN: options.adminToken,
    LOG_LEVEL: 'warn',
    TRANCHE_DATABASE_POOL_SIZE: String(options.poolSize),
    // Each server's Highnote sandbox on a port of its own choosing, so two servers never collide.
    TRANCHE_SANDBOX_PORT: '0',
    // The bench drives thousands of requests a second with one key: the per-credential rate
    // limit is set far above what it sends, so that its cost is measured but it never answers 429.
    TRANCHE_RATE_LIMIT_PER_SECOND: '1000000',
    TRANCHE_RATE_LIMIT_BURST: '1000000',
  };
  // The embedded default is what a server without DATABASE_URL runs, so none may leak in from the shell.
  delete env.DATABASE_URL;
  if (options.databaseUrl !== undefined) env.DATABASE_URL = options.databaseUrl;
  if (options.dataDir !== undefined) env.TRANCHE_DATA_DIR = options.dataDir;
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', 'apps/server/src/main.ts', 'serve'], {
    cwd: options.repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let exited: string | undefined;
  let echoed = 0;
  let errorLines = 0;
  const onLine = (line: string) => {
    if (line.trim() === '') return;
    // pino: 50 is error, 60 is fatal.
    if (/"level":(50|60)[,}]/.test(line)) errorLines++;
    if (echoed < maxEchoedServerLines) {
      echoed++;
      console.error(`[server] ${line.slice(0, 500)}`);
    } else if (echoed === maxEchoedServerLines) {
      echoed++;
      console.error('[server] … further lines not shown');
    }
  };
  for (const stream of [child.stdout, child.stderr]) {
    let buffered = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    });
  }
  const exitPromise = new Promise<void>((done) => {
    child.once('exit', (code, signal) => {
      exited = `exited with ${signal ?? code}`;
      done();
    });
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (exited !== undefined) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), serverStopTimeoutMs);
    await exitPromise;
    clearTimeout(timer);
  };
  const readyBy = performance.now() + serverReadyTimeoutMs;
  for (;;) {
    if (exited !== undefined) throw new Error(`the server ${exited} before it was ready`);
    try {
      const response = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(readyPollIntervalMs * 10) });
      await response.text();
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (performance.now() > readyBy) {
      await stop();
      throw new Error(`the server did not answer /readyz with 200 within ${serverReadyTimeoutMs} ms`);
    }
    await sleep(readyPollIntervalMs);
  }
  return { baseUrl, adminToken: options.adminToken, child, errorLines: () => errorLines, stop };
}

// ---------------------------------------------------------------------------------------------
// Scratch database.

async function withAdmin<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Phases.

async function ceilingPhase(databaseUrl: string, connections: number, seconds: number): Promise<PhaseResult> {
  await withAdmin(databaseUrl, async (client) => {
    await client.query('CREATE TABLE pool (id int PRIMARY KEY, available bigint NOT NULL)');
    await client.query('CREATE TABLE entries (id bigserial PRIMARY KEY, amount bigint NOT NULL)');
    await client.query('INSERT INTO pool (id, available) VALUES (1, $1)', [ceilingPoolCents.toString()]);
  });
  const clients = await Promise.all(
    Array.from({ length: connections }, async () => {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      return client;
    }),
  );
  // One loop per client: a loop takes a free client for the length of a transaction.
  const idle = [...clients];
  try {
    const result = await runPhase('ceiling (pg, 1 row)', connections, seconds, () => async () => {
      const client = idle.pop();
      if (client === undefined) throw new Error('more loops than connections');
      try {
        await client.query('BEGIN');
        const updated = await client.query(
          'UPDATE pool SET available = available - $1 WHERE id = 1 AND available >= $1',
          [ceilingAmountCents],
        );
        if (updated.rowCount !== 1) throw new Error('the pool row refused the amount');
        await client.query('INSERT INTO entries (amount) VALUES ($1)', [ceilingAmountCents]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        idle.push(client);
      }
    });
    // The ceiling keeps books too: every committed entry came out of the pool.
    const check = await clients[0]?.query<{ available: string; spent: string | null; entries: string }>(
      'SELECT (SELECT available FROM pool WHERE id = 1) AS available, sum(amount) AS spent, count(*) AS entries FROM entries',
    );
    const row = check?.rows[0];
    if (row === undefined) throw new Error('ceiling: no balance row');
    const spent = BigInt(row.spent ?? '0');
    if (BigInt(row.available) + spent !== ceilingPoolCents || Number(row.entries) !== result.ok) {
      throw new Error(
        `ceiling books do not balance: available ${row.available} + spent ${spent} ≠ ${ceilingPoolCents}, or ${row.entries} entries ≠ ${result.ok} commits`,
      );
    }
    return result;
  } finally {
    await Promise.all(clients.map((client) => client.end()));
    await withAdmin(databaseUrl, (client) => client.query('DROP TABLE pool, entries'));
  }
}

/** What the bench expects each program's books to say, counted from the answers it got. */
interface Expectation {
  assigned: number;
  completed: number;
  /** Requests whose outcome stayed unknown (no answer, even when resent): the server may or may not have applied them. */
  indeterminate: number;
}

function expectationOf(expectations: Map<string, Expectation>, programId: string): Expectation {
  let expectation = expectations.get(programId);
  if (expectation === undefined) {
    expectation = { assigned: 0, completed: 0, indeterminate: 0 };
    expectations.set(programId, expectation);
  }
  return expectation;
}

interface Workload {
  programId: string;
  userIds: string[];
}

async function createProgramWithUsers(
  api: Api,
  name: string,
  poolDollars: number,
  maxParticipants: number,
  users: number,
  concurrency: number,
): Promise<Workload> {
  const program = await api.call<ProgramBody>('POST', '/v1/programs', {
    name,
    totalAwardPool: poolDollars,
    maxParticipants,
  });
  const userIds: string[] = [];
  await forEachConcurrently(Array.from({ length: users }), concurrency, async () => {
    const user = await api.call<{ id: string }>('POST', '/v1/users', { programId: program.id });
    userIds.push(user.id);
  });
  return { programId: program.id, userIds };
}

/** What the HTTP phases share: wrk, a scratch directory, the running wrk processes, the phase length. */
interface WrkContext {
  wrk: string;
  scratchDir: string;
  children: Set<ChildProcess>;
  connections: number;
  seconds: number;
  /** Makes every phase's Idempotency-Keys unique. */
  runId: string;
}

/** One server and the organization key wrk uses against it. */
interface Target {
  server: ServerProcess;
  apiKey: string;
}

/**
 * One HTTP phase: a wrk process per target, the connections split between them, each given its
 * share of `input` (assign: every pair; complete: every `targets.length`-th user task). What wrk
 * left open is settled afterwards, so `expectations` count every outcome. Answers the user tasks
 * that now exist (assign) or were completed (complete), as [id, programId].
 */
async function wrkPhase(
  context: WrkContext,
  name: string,
  mode: 'assign' | 'complete',
  targets: readonly Target[],
  input: readonly (readonly [string, string])[],
  expectations: Map<string, Expectation>,
): Promise<{ measured: Measured; done: [string, string][] }> {
  const keyPrefix = `${context.runId}-${name.replace(/[^a-z0-9]+/gi, '-')}`;
  const batchesBefore = await ledgerBatchesOf(targets.map((target) => target.server));
  const reports = await Promise.all(
    targets.map((target, index) =>
      runWrk({
        wrk: context.wrk,
        baseUrl: target.server.baseUrl,
        token: target.apiKey,
        mode,
        input: mode === 'assign' ? input : input.filter((_, line) => line % targets.length === index),
        connections: Math.max(1, Math.floor(context.connections / targets.length)),
        seconds: context.seconds,
        keyPrefix: `${keyPrefix}-${index}`,
        amountDollars: taskValueDollars,
        scratchDir: context.scratchDir,
        children: context.children,
      }),
    ),
  );
  const batchesAfter = await ledgerBatchesOf(targets.map((target) => target.server));
  const field = mode === 'assign' ? 'assigned' : 'completed';
  const done: [string, string][] = [];
  const errorKinds = new Map<string, number>();
  const errorSamples: string[] = [];
  const addKind = (kind: string, count: number) => errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + count);
  let settledCount = 0;
  const settledOutcomes = { succeeded: 0, refused: 0, unknown: 0 };
  for (const [index, report] of reports.entries()) {
    const target = targets[index] as Target;
    for (const [status, count] of report.statuses) addKind(`HTTP ${status}`, count);
    if (report.socketErrors > 0) addKind('socket error or timeout', report.socketErrors);
    // The settling answers count in the books, not in the phase's ops: they came after its time.
    const settled = await settle(target.server.baseUrl, target.apiKey, report.pending);
    settledCount += report.pending.length;
    settledOutcomes.succeeded += settled.succeeded.length;
    settledOutcomes.refused += settled.refused.length;
    settledOutcomes.unknown += settled.unknown.length;
    for (const item of [...report.succeeded, ...settled.succeeded]) {
      expectationOf(expectations, item.programId)[field]++;
      done.push([item.id, item.programId]);
    }
    for (const item of settled.unknown) expectationOf(expectations, item.programId).indeterminate++;
    for (const item of settled.refused) {
      if (errorSamples.length < maxErrorSamples) errorSamples.push(`resent: ${item.status} ${item.text}`);
    }
  }
  const ops = reports.reduce((sum, report) => sum + report.succeeded.length, 0);
  const elapsedSeconds = Math.max(...reports.map((report) => report.durationSeconds));
  const errors = [...errorKinds.values()].reduce((sum, count) => sum + count, 0);
  console.log(
    `  ${name}: resent ${settledCount} requests wrk left open (in flight at its end, or refused): ${settledOutcomes.succeeded} succeeded, ${settledOutcomes.refused} refused, ${settledOutcomes.unknown} unknown`,
  );
  return {
    measured: {
      row: {
        phase: name,
        ops,
        opsPerSecond: elapsedSeconds > 0 ? ops / elapsedSeconds : 0,
        p50: mergedPercentileMs(reports, 50),
        p99: mergedPercentileMs(reports, 99),
        errors,
      },
      elapsedSeconds,
      errorKinds,
      errorSamples,
      batches: difference(batchesAfter, batchesBefore),
    },
    done,
  };
}

/** Assignments on `workloads`, then completions of every user task they created, over HTTP with wrk. */
async function assignAndCompleteOverHttp(
  context: WrkContext,
  label: string,
  targets: readonly Target[],
  workloads: readonly Workload[],
  expectations: Map<string, Expectation>,
): Promise<Measured[]> {
  const pairs = shuffle(
    workloads.flatMap((workload) => workload.userIds.map((userId) => [workload.programId, userId] as const)),
  );
  const assigned = await wrkPhase(context, `${label} assign`, 'assign', targets, pairs, expectations);
  const completed = await wrkPhase(
    context,
    `${label} complete`,
    'complete',
    targets,
    shuffle(assigned.done),
    expectations,
  );
  return [assigned.measured, completed.measured];
}

/**
 * The batch histograms of one or more server processes: ledger batches and the operations in
 * them, and committed batches of units (requests) and the units in them.
 */
interface LedgerBatches {
  batches: number;
  operations: number;
  unitBatches: number;
  units: number;
  /** The longest the event loop of any of the servers lagged since the scrape before, in seconds. */
  eventLoopLagMaxSeconds: number;
}

/** Sums `tranche_ledger_batch_operations` over the servers' /metrics; undefined when one cannot be read. */
async function ledgerBatchesOf(servers: readonly ServerProcess[]): Promise<LedgerBatches | undefined> {
  const total: LedgerBatches = { batches: 0, operations: 0, unitBatches: 0, units: 0, eventLoopLagMaxSeconds: 0 };
  for (const server of servers) {
    try {
      const response = await fetch(`${server.baseUrl}/metrics`, {
        headers: { authorization: `Bearer ${server.adminToken}` },
        signal: AbortSignal.timeout(requestTimeoutMs),
      });
      const text = await response.text();
      if (response.status !== 200) return undefined;
      const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
      total.batches += value('tranche_ledger_batch_operations_count');
      total.operations += value('tranche_ledger_batch_operations_sum');
      total.unitBatches += value('tranche_unit_batch_units_count');
      total.units += value('tranche_unit_batch_units_sum');
      total.eventLoopLagMaxSeconds = Math.max(total.eventLoopLagMaxSeconds, value('nodejs_eventloop_lag_max_seconds'));
    } catch {
      return undefined;
    }
  }
  return Object.values(total).every(Number.isFinite) ? total : undefined;
}

function difference(after: LedgerBatches | undefined, before: LedgerBatches | undefined): LedgerBatches | undefined {
  if (after === undefined || before === undefined) return undefined;
  return {
    batches: after.batches - before.batches,
    operations: after.operations - before.operations,
    unitBatches: after.unitBatches - before.unitBatches,
    units: after.units - before.units,
    // The lag gauges restart at every scrape, so the one after the phase covers the phase.
    eventLoopLagMaxSeconds: after.eventLoopLagMaxSeconds,
  };
}

class DomainError extends Error {
  constructor(readonly failure: Failure) {
    super(`${failure.code}: ${failure.message}`);
  }
}

async function assignAndCompleteInProcess(
  databaseUrl: string,
  organizationId: string,
  workload: Workload,
  expectation: Expectation,
  callers: number,
  seconds: number,
): Promise<[PhaseResult, PhaseResult]> {
  // The callers queue for a pool the size of a server's, as the server's requests do.
  const database = await openDatabase({ databaseUrl, dataDir: 'memory://', poolSize: poolConnections });
  try {
    const created: string[] = [];
    // The same batchers as the routes: the units of the organization commit in batches.
    const context: UnitContext = { organizationId, actor: { kind: 'system', id: 'bench' }, requestId: null };
    const { assignments: assigning, completions: completing } = userTaskBatchers(database.db);
    const assignments = await runPhase('hot program assign (in-process)', callers, seconds, () => {
      const userId = pick(workload.userIds);
      return async () => {
        const outcome = await assigning.run(organizationId, {
          context,
          input: { programId: workload.programId, userId, monetaryValueCents: taskValueCents },
        });
        if (!outcome.ok) throw new DomainError(outcome.failure);
        if (outcome.replayed) throw new Error('a unit without an idempotency key never replays');
        expectation.assigned++;
        created.push(outcome.value.id);
      };
    });
    const queue = shuffle([...created]);
    let cursor = 0;
    const completions = await runPhase('hot program complete (in-process)', callers, seconds, () => {
      const id = queue[cursor++];
      if (id === undefined) return undefined;
      return async () => {
        const outcome = await completing.run(organizationId, { context, input: { id } });
        if (!outcome.ok) throw new DomainError(outcome.failure);
        expectation.completed++;
      };
    });
    return [assignments, completions];
  } finally {
    await database.close();
  }
}

function centsOfDollars(dollars: number): bigint {
  return BigInt(Math.round(dollars * 100));
}

/** Every program's identity, and that its reservations match the answers the bench counted. */
async function checkBooks(
  api: Api,
  expectations: Map<string, Expectation>,
  connections: number,
): Promise<{ checked: number; problems: string[] }> {
  const problems: string[] = [];
  const ids = [...expectations.keys()];
  await forEachConcurrently(ids, connections, async (id) => {
    const program = await api.call<ProgramBody>('GET', `/v1/programs/${id}`);
    const b = program.balances;
    const total = centsOfDollars(program.totalAwardPool);
    const available = centsOfDollars(b.available);
    const reserved = centsOfDollars(b.reserved);
    const moved = centsOfDollars(b.disbursing) + centsOfDollars(b.disbursed);
    const sum = available + reserved + moved + centsOfDollars(b.returned);
    if (total !== sum) {
      problems.push(`${id}: totalAwardPool ${program.totalAwardPool} ≠ sum of balances ${JSON.stringify(b)}`);
    }
    const expectation = expectations.get(id);
    if (expectation === undefined || expectation.indeterminate > 0) return;
    const wantReserved = BigInt(expectation.assigned - expectation.completed) * taskValueCents;
    const wantMoved = BigInt(expectation.completed) * taskValueCents;
    if (reserved !== wantReserved || moved !== wantMoved) {
      problems.push(
        `${id}: reserved ${reserved}¢ / disbursing+disbursed ${moved}¢, expected ${wantReserved}¢ / ${wantMoved}¢ from ${expectation.assigned} assignments and ${expectation.completed} completions`,
      );
    }
  });
  return { checked: ids.length, problems };
}

// ---------------------------------------------------------------------------------------------
// Report.

function printTable(rows: Row[], ceilingOpsPerSecond: number): void {
  const header = ['phase', 'ops', 'ops/s', 'p50 ms', 'p99 ms', 'errors', '× ceiling'];
  const cells = rows.map((row) => [
    row.phase,
    String(row.ops),
    row.opsPerSecond.toFixed(0),
    row.p50.toFixed(1),
    row.p99.toFixed(1),
    String(row.errors),
    ceilingOpsPerSecond > 0 ? (row.opsPerSecond / ceilingOpsPerSecond).toFixed(3) : '?',
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((line) => line[column]?.length ?? 0)),
  );
  const format = (line: string[]) =>
    line
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0)))
      .join(' | ');
  console.log(format(header));
  console.log(widths.map((width) => '-'.repeat(width)).join('-|-'));
  for (const line of cells) console.log(format(line));
}

function batchesText(batches: LedgerBatches): string {
  const mean = batches.batches > 0 ? (batches.operations / batches.batches).toFixed(2) : '-';
  const unitMean = batches.unitBatches > 0 ? (batches.units / batches.unitBatches).toFixed(2) : '-';
  return `${batches.batches} batches, ${batches.operations} operations, ${mean} per batch; commits: ${batches.unitBatches} batches of ${batches.units} units, ${unitMean} per batch; event loop lag max ${(batches.eventLoopLagMaxSeconds * 1000).toFixed(0)} ms`;
}

function printBatches(phases: Measured[]): void {
  const withBatches = phases.filter((phase) => phase.batches !== undefined);
  if (withBatches.length === 0) return;
  console.log(
    'batches during each server phase (tranche_ledger_batch_operations and tranche_unit_batch_units, count/sum from /metrics):',
  );
  for (const phase of withBatches) {
    if (phase.batches !== undefined) console.log(`  ${phase.row.phase}: ${batchesText(phase.batches)}`);
  }
}

function printErrors(phases: Measured[]): void {
  for (const phase of phases) {
    if (phase.row.errors === 0 && phase.errorSamples.length === 0) continue;
    const kinds = [...phase.errorKinds].map(([kind, count]) => `${kind} ×${count}`).join(', ');
    console.log(`errors in "${phase.row.phase}": ${kinds}`);
    for (const sample of phase.errorSamples) console.log(`  e.g. ${sample}`);
  }
}

function printBooks(label: string, books: { checked: number; problems: string[] }): void {
  console.log(
    books.problems.length === 0
      ? `books (${label}): ${books.checked} programs balance (total = available + reserved + disbursing + disbursed + returned) and match the counted operations`
      : `books (${label}): ${books.problems.length} of ${books.checked} programs DO NOT balance`,
  );
  for (const problem of books.problems.slice(0, maxErrorSamples)) console.log(`  ${problem}`);
}

// ---------------------------------------------------------------------------------------------
// Main.

/** Everything the bench starts, so that one cleanup ends it, also on failure or a signal. */
interface Resources {
  servers: Set<ServerProcess>;
  wrkChildren: Set<ChildProcess>;
  databaseCreated: boolean;
  scratchDir: string | undefined;
}

async function startTracked(resources: Resources, options: Parameters<typeof startServer>[0]): Promise<ServerProcess> {
  const server = await startServer(options);
  resources.servers.add(server);
  return server;
}

async function stopTracked(resources: Resources, server: ServerProcess): Promise<void> {
  await server.stop();
  resources.servers.delete(server);
}

/** A server's organization and hot program, with its users, ready for wrk. */
async function prepareHotProgram(
  server: ServerProcess,
  name: string,
  users: number,
  concurrency: number,
): Promise<{ api: Api; organizationId: string; target: Target; workload: Workload }> {
  const operator = new Api(server.baseUrl, server.adminToken);
  const organization = await operator.call<{ id: string; apiKey: string }>('POST', '/v1/organizations', {
    name: `Bench organization (${name})`,
  });
  const api = new Api(server.baseUrl, organization.apiKey);
  const workload = await createProgramWithUsers(api, name, hotPoolDollars, hotMaxParticipants, users, concurrency);
  return { api, organizationId: organization.id, target: { server, apiKey: organization.apiKey }, workload };
}

async function createSpreadPrograms(api: Api, expectations: Map<string, Expectation>, connections: number) {
  const setupStarted = performance.now();
  console.log(`setup: ${spreadPrograms} programs with ${spreadUsersPerProgram} users each`);
  const spread: Workload[] = [];
  await forEachConcurrently(Array.from({ length: spreadPrograms }), programCreationConcurrency, async (_, index) => {
    const program = await api.call<ProgramBody>('POST', '/v1/programs', {
      name: `Bench program ${index + 1}`,
      totalAwardPool: spreadPoolDollars,
      maxParticipants: spreadMaxParticipants,
    });
    spread.push({ programId: program.id, userIds: [] });
    expectationOf(expectations, program.id);
  });
  const enrollments = spread.flatMap((workload) => Array.from({ length: spreadUsersPerProgram }, () => workload));
  await forEachConcurrently(enrollments, connections, async (workload) => {
    const user = await api.call<{ id: string }>('POST', '/v1/users', { programId: workload.programId });
    workload.userIds.push(user.id);
  });
  const setupSeconds = (performance.now() - setupStarted) / 1000;
  const setupRequests = spreadPrograms + enrollments.length;
  console.log(
    `  setup: ${setupRequests} requests in ${setupSeconds.toFixed(1)} s (${(setupRequests / setupSeconds).toFixed(0)}/s)`,
  );
  return spread;
}

async function main(): Promise<number> {
  const benchStarted = performance.now();
  const options = parseOptions();
  const { seconds, connections, phases: wanted } = options;
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
  const runId = randomBytes(6).toString('hex');
  const databaseName = `tranche_bench_${runId}`;
  const scratchUrl = new URL(options.adminUrl);
  scratchUrl.pathname = `/${databaseName}`;
  const databaseUrl = scratchUrl.toString();
  const wrk = findWrk();

  const resources: Resources = {
    servers: new Set(),
    wrkChildren: new Set(),
    databaseCreated: false,
    scratchDir: undefined,
  };
  let cleaned: Promise<void> | undefined;
  const cleanUp = () => {
    cleaned ??= (async () => {
      for (const child of resources.wrkChildren) child.kill('SIGKILL');
      await Promise.all(
        [...resources.servers].map((server) =>
          server.stop().catch((error: unknown) => console.error(`stopping a server: ${errorText(error)}`)),
        ),
      );
      if (resources.databaseCreated) {
        await withAdmin(options.adminUrl, (client) =>
          client.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`),
        ).catch((error: unknown) => console.error(`dropping ${databaseName}: ${errorText(error)}`));
      }
      if (resources.scratchDir !== undefined) {
        await rm(resources.scratchDir, { recursive: true, force: true }).catch((error: unknown) =>
          console.error(`removing ${resources.scratchDir}: ${errorText(error)}`),
        );
      }
    })();
    return cleaned;
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping the servers and wrk, dropping ${databaseName}`);
      void cleanUp().finally(() => process.exit(130));
    });
  }

  try {
    const facts = await withAdmin(options.adminUrl, async (client) => {
      const setting = async (name: string) =>
        (await client.query<{ value: string }>(`SELECT current_setting($1) AS value`, [name])).rows[0]?.value ?? '?';
      const result = {
        version: await setting('server_version'),
        synchronousCommit: await setting('synchronous_commit'),
        fsync: await setting('fsync'),
        sharedBuffers: await setting('shared_buffers'),
        maxConnections: await setting('max_connections'),
      };
      const needed = processesSharingDatabase * poolConnections + benchOwnConnections;
      if (Number(result.maxConnections) < needed) {
        throw new UsageError(
          `PostgreSQL allows ${result.maxConnections} connections; the bench needs ${needed} (${processesSharingDatabase} pools of ${poolConnections}, and its own)`,
        );
      }
      await client.query(`CREATE DATABASE ${databaseName}`);
      resources.databaseCreated = true;
      return result;
    });
    resources.scratchDir = await mkdtemp(join(tmpdir(), 'tranche-bench-'));
    const cpuModel = cpus()[0]?.model.trim() ?? 'unknown CPU';
    const machine = [
      `machine: ${cpus().length} cores (${cpuModel}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}`,
      `PostgreSQL ${facts.version}: synchronous_commit=${facts.synchronousCommit}, fsync=${facts.fsync}, shared_buffers=${facts.sharedBuffers}, max_connections=${facts.maxConnections}`,
      `run: ${seconds} s per phase, ${connections} HTTP connections (wrk) / in-process callers, ${poolConnections} database connections per pool, database ${databaseName}`,
      wrk === undefined
        ? 'wrk: not found on PATH, so the HTTP phases are skipped; install it (`apt-get install wrk`, `brew install wrk`) and run again'
        : `wrk: ${wrk}`,
    ];
    for (const line of machine) console.log(line);

    const phases: Measured[] = [];
    const phaseDone = (measured: Measured) => {
      phases.push(measured);
      const row = measured.row;
      const batches = measured.batches === undefined ? '' : `; ledger: ${batchesText(measured.batches)}`;
      console.log(
        `  ${row.phase}: ${row.ops} ops in ${measured.elapsedSeconds.toFixed(1)} s, ${row.opsPerSecond.toFixed(0)}/s, p50 ${row.p50.toFixed(1)} ms, p99 ${row.p99.toFixed(1)} ms, ${row.errors} errors${batches}`,
      );
    };
    const context: WrkContext | undefined =
      wrk === undefined
        ? undefined
        : { wrk, scratchDir: resources.scratchDir, children: resources.wrkChildren, connections, seconds, runId };
    let serverErrorLines = 0;
    let booksFailed = false;

    console.log('ceiling: one pool row, BEGIN; UPDATE … WHERE available >= $1; INSERT entry; COMMIT');
    const ceiling = summarize(await ceilingPhase(databaseUrl, poolConnections, seconds));
    phaseDone(ceiling);

    console.log('starting the server');
    const adminToken = `bench_admin_${randomBytes(16).toString('hex')}`;
    const server = await startTracked(resources, { repoRoot, databaseUrl, adminToken, poolSize: poolConnections });
    const expectations = new Map<string, Expectation>();
    console.log(`setup: hot program with ${hotUsers} users`);
    const hot = await prepareHotProgram(server, 'Bench hot program', hotUsers, connections);
    expectationOf(expectations, hot.workload.programId);
    const api = hot.api;
    if (context !== undefined && wanted.has('hot')) {
      for (const measured of await assignAndCompleteOverHttp(
        context,
        'hot program',
        [hot.target],
        [hot.workload],
        expectations,
      )) {
        phaseDone(measured);
      }
    }
    if (context !== undefined && wanted.has('spread')) {
      const spread = await createSpreadPrograms(api, expectations, connections);
      for (const measured of await assignAndCompleteOverHttp(
        context,
        `${spreadPrograms} programs`,
        [hot.target],
        spread,
        expectations,
      )) {
        phaseDone(measured);
      }
    }

    if (wanted.has('in-process')) {
      console.log(`setup: in-process hot program with ${hotUsers} users`);
      const inProcess = await createProgramWithUsers(
        api,
        'Bench hot program (in-process)',
        hotPoolDollars,
        hotMaxParticipants,
        hotUsers,
        connections,
      );
      for (const result of await assignAndCompleteInProcess(
        databaseUrl,
        hot.organizationId,
        inProcess,
        expectationOf(expectations, inProcess.programId),
        connections,
        seconds,
      )) {
        phaseDone(summarize(result));
      }
    }

    if (context !== undefined && wanted.has('two-processes')) {
      console.log('starting a second server on the same database');
      const second = await startTracked(resources, { repoRoot, databaseUrl, adminToken, poolSize: poolConnections });
      const shared = await createProgramWithUsers(
        api,
        'Bench hot program (two processes)',
        hotPoolDollars,
        hotMaxParticipants,
        secondaryHotUsers,
        connections,
      );
      expectationOf(expectations, shared.programId);
      const targets = [hot.target, { server: second, apiKey: hot.target.apiKey }];
      for (const measured of await assignAndCompleteOverHttp(
        context,
        'two processes, hot program',
        targets,
        [shared],
        expectations,
      )) {
        phaseDone(measured);
      }
      serverErrorLines += second.errorLines();
      await stopTracked(resources, second);
    }

    console.log(`checking the books of ${expectations.size} programs`);
    const books = await checkBooks(api, expectations, connections);
    serverErrorLines += server.errorLines();
    await stopTracked(resources, server);
    booksFailed ||= books.problems.length > 0;

    let embeddedBooks: { checked: number; problems: string[] } | undefined;
    if (context !== undefined && wanted.has('embedded')) {
      console.log('starting the embedded default: a server on PGlite in a temporary data directory');
      const dataDir = await mkdtemp(join(resources.scratchDir, 'data-'));
      const embedded = await startTracked(resources, {
        repoRoot,
        databaseUrl: undefined,
        dataDir,
        adminToken,
        poolSize: poolConnections,
      });
      const embeddedExpectations = new Map<string, Expectation>();
      const embeddedHot = await prepareHotProgram(
        embedded,
        'Bench hot program (embedded)',
        secondaryHotUsers,
        connections,
      );
      expectationOf(embeddedExpectations, embeddedHot.workload.programId);
      for (const measured of await assignAndCompleteOverHttp(
        context,
        'embedded (PGlite), hot program',
        [embeddedHot.target],
        [embeddedHot.workload],
        embeddedExpectations,
      )) {
        phaseDone(measured);
      }
      embeddedBooks = await checkBooks(embeddedHot.api, embeddedExpectations, connections);
      serverErrorLines += embedded.errorLines();
      await stopTracked(resources, embedded);
      booksFailed ||= embeddedBooks.problems.length > 0;
    }

    console.log('');
    for (const line of machine) console.log(line);
    console.log('');
    printTable(
      phases.map((phase) => phase.row),
      ceiling.row.opsPerSecond,
    );
    console.log('');
    printBatches(phases);
    const totalErrors = phases.reduce((sum, phase) => sum + phase.row.errors, 0);
    printErrors(phases);
    console.log(`server log lines at level error or fatal: ${serverErrorLines}`);
    printBooks('PostgreSQL', books);
    if (embeddedBooks !== undefined) printBooks('embedded', embeddedBooks);
    console.log(`bench wall time: ${((performance.now() - benchStarted) / 1000).toFixed(1)} s`);
    if (booksFailed) return 1;
    if (totalErrors > 0) console.log(`${totalErrors} operations failed; see above`);
    return 0;
  } finally {
    await cleanUp();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      console.error(error.message);
      console.error(`usage: npm run bench -- [--seconds N] [--connections N] [--phases ${phaseNames.join(',')}]`);
      process.exitCode = 2;
      return;
    }
    console.error(error);
    process.exitCode = 1;
  },
);
