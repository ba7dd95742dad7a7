/**
 * `npm run bench [-- --seconds N --connections N]`
 *
 * Measures what one machine does with Tranche's hot path, in four parts, on a scratch PostgreSQL
 * database that is dropped at the end (also on failure or Ctrl-C):
 *   1. ceiling: the cheapest possible "reserve from one pool row + append an entry" transaction,
 *      straight over `pg`, as many connections as the service gets;
 *   2. the real server (a child process) over HTTP: assignments and completions on one hot program;
 *   3. the same over 1,000 programs, where rows are not contended;
 *   4. the domain functions in-process (no HTTP) on one hot program, to separate database
 *      contention from the cost of HTTP, validation and JSON.
 * Then it checks every program's books over HTTP and prints one table.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openDatabase } from '../src/platform/db.js';
import type { Failure } from '../src/platform/errors.js';
import { assign } from '../src/usertasks/assign.js';
import { complete } from '../src/usertasks/transitions.js';
import { runUnit } from '../src/work/runner.js';
import type { UnitContext } from '../src/work/unit.js';

// ---------------------------------------------------------------------------------------------
// Limits and workload sizes, each with its unit.

/** Length of each timed phase, in seconds, unless `--seconds` says otherwise. */
const defaultPhaseSeconds = 10;
const maxPhaseSeconds = 600;
/** Concurrent callers (and database connections) per phase, unless `--connections` says otherwise. */
const defaultConnections = 16;
/** PostgreSQL's default max_connections is 100; the server and the in-process pool each take this many. */
const maxConnections = 40;
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

/** Error messages kept per phase to show what went wrong, and server log lines echoed. */
const maxErrorSamples = 5;
const maxEchoedServerLines = 30;

// ---------------------------------------------------------------------------------------------
// Arguments.

function parseOptions(): { seconds: number; connections: number; adminUrl: string } {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: String(defaultPhaseSeconds) },
      connections: { type: 'string', default: String(defaultConnections) },
    },
    strict: true,
  });
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

function summarize(result: PhaseResult): Row {
  const sorted = Float64Array.from(result.latenciesMs).sort();
  return {
    phase: result.name,
    ops: result.ok,
    opsPerSecond: result.elapsedSeconds > 0 ? result.ok / result.elapsedSeconds : 0,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    errors: result.errors,
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
  child: ChildProcess;
  errorLines: () => number;
  stop(): Promise<void>;
}

async function startServer(options: {
  repoRoot: string;
  databaseUrl: string;
  adminToken: string;
  poolSize: number;
}): Promise<ServerProcess> {
  const port = await freePort();
  // TRANCHE_BENCH_CPU_PROFILE_DIR: the server writes a V8 CPU profile there when it exits.
  const profileDir = process.env.TRANCHE_BENCH_CPU_PROFILE_DIR;
  const profile = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', 'apps/server/src/main.ts', 'serve'], {
    cwd: options.repoRoot,
    env: {
      ...process.env,
      DATABASE_URL: options.databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      TRANCHE_ADMIN_TOKEN: options.adminToken,
      LOG_LEVEL: 'warn',
      TRANCHE_DATABASE_POOL_SIZE: String(options.poolSize),
    },
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
  return { baseUrl, child, errorLines: () => errorLines, stop };
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
  /** Requests whose outcome is unknown (no HTTP answer): the server may or may not have applied them. */
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

/** Counts an outcome: an HTTP answer is definite, anything else (timeout, reset) is not. */
async function counted(expectation: Expectation, field: 'assigned' | 'completed', work: () => Promise<void>) {
  try {
    await work();
    expectation[field]++;
  } catch (error) {
    if (!(error instanceof HttpError)) expectation.indeterminate++;
    throw error;
  }
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

async function assignAndCompleteOverHttp(
  api: Api,
  label: string,
  workloads: readonly Workload[],
  expectations: Map<string, Expectation>,
  connections: number,
  seconds: number,
): Promise<[PhaseResult, PhaseResult]> {
  const created: { id: string; programId: string }[] = [];
  const assignments = await runPhase(`${label} assign (HTTP)`, connections, seconds, () => {
    const workload = pick(workloads);
    const userId = pick(workload.userIds);
    const expectation = expectationOf(expectations, workload.programId);
    return () =>
      counted(expectation, 'assigned', async () => {
        const userTask = await api.call<{ id: string }>('POST', '/v1/usertasks', {
          programId: workload.programId,
          userId,
          monetaryValue: taskValueDollars,
        });
        created.push({ id: userTask.id, programId: workload.programId });
      });
  });
  const queue = shuffle([...created]);
  let cursor = 0;
  const completions = await runPhase(`${label} complete (HTTP)`, connections, seconds, () => {
    const userTask = queue[cursor++];
    if (userTask === undefined) return undefined;
    const expectation = expectationOf(expectations, userTask.programId);
    return () =>
      counted(expectation, 'completed', async () => {
        await api.call('PUT', `/v1/usertasks/${userTask.id}/complete`, {});
      });
  });
  return [assignments, completions];
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
  connections: number,
  seconds: number,
): Promise<[PhaseResult, PhaseResult]> {
  const database = await openDatabase({ databaseUrl, dataDir: 'memory://', poolSize: connections });
  try {
    const created: string[] = [];
    // The same runner as the routes: the unit's rows, events and, last, its money.
    const context: UnitContext = { organizationId, actor: { kind: 'system', id: 'bench' }, requestId: null };
    const assignments = await runPhase('hot program assign (in-process)', connections, seconds, () => {
      const userId = pick(workload.userIds);
      return async () => {
        const outcome = await runUnit(database.db, context, (unit) =>
          assign(unit, { programId: workload.programId, userId, monetaryValueCents: taskValueCents }),
        );
        if (!outcome.ok) throw new DomainError(outcome.failure);
        if (outcome.replayed) throw new Error('a unit without an idempotency key never replays');
        expectation.assigned++;
        created.push(outcome.value.id);
      };
    });
    const queue = shuffle([...created]);
    let cursor = 0;
    const completions = await runPhase('hot program complete (in-process)', connections, seconds, () => {
      const id = queue[cursor++];
      if (id === undefined) return undefined;
      return async () => {
        const outcome = await runUnit(database.db, context, (unit) => complete(unit, id, {}));
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

function printTable(rows: Row[]): void {
  const header = ['phase', 'ops', 'ops/s', 'p50 ms', 'p99 ms', 'errors'];
  const cells = rows.map((row) => [
    row.phase,
    String(row.ops),
    row.opsPerSecond.toFixed(0),
    row.p50.toFixed(1),
    row.p99.toFixed(1),
    String(row.errors),
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

function printErrors(results: PhaseResult[]): void {
  for (const result of results) {
    if (result.errors === 0) continue;
    const kinds = [...result.errorKinds].map(([kind, count]) => `${kind} ×${count}`).join(', ');
    console.log(`errors in "${result.name}": ${kinds}`);
    for (const sample of result.errorSamples) console.log(`  e.g. ${sample}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Main.

async function main(): Promise<number> {
  const benchStarted = performance.now();
  const options = parseOptions();
  const { seconds, connections } = options;
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
  const databaseName = `tranche_bench_${randomBytes(6).toString('hex')}`;
  const scratchUrl = new URL(options.adminUrl);
  scratchUrl.pathname = `/${databaseName}`;
  const databaseUrl = scratchUrl.toString();

  let server: ServerProcess | undefined;
  let databaseCreated = false;
  let cleaned: Promise<void> | undefined;
  const cleanUp = () => {
    cleaned ??= (async () => {
      await server?.stop().catch((error: unknown) => console.error(`stopping the server: ${errorText(error)}`));
      if (databaseCreated) {
        await withAdmin(options.adminUrl, (client) =>
          client.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`),
        ).catch((error: unknown) => console.error(`dropping ${databaseName}: ${errorText(error)}`));
      }
    })();
    return cleaned;
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping the server and dropping ${databaseName}`);
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
      await client.query(`CREATE DATABASE ${databaseName}`);
      databaseCreated = true;
      return result;
    });
    const cpuModel = cpus()[0]?.model.trim() ?? 'unknown CPU';
    const machine = [
      `machine: ${cpus().length} cores (${cpuModel}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}`,
      `PostgreSQL ${facts.version}: synchronous_commit=${facts.synchronousCommit}, fsync=${facts.fsync}, shared_buffers=${facts.sharedBuffers}, max_connections=${facts.maxConnections}`,
      `run: ${seconds} s per phase, ${connections} concurrent callers / connections, database ${databaseName}`,
    ];
    for (const line of machine) console.log(line);

    const results: PhaseResult[] = [];
    const phaseDone = (result: PhaseResult) => {
      results.push(result);
      const row = summarize(result);
      console.log(
        `  ${row.phase}: ${row.ops} ops in ${result.elapsedSeconds.toFixed(1)} s, ${row.opsPerSecond.toFixed(0)}/s, p50 ${row.p50.toFixed(1)} ms, p99 ${row.p99.toFixed(1)} ms, ${row.errors} errors`,
      );
    };

    console.log('ceiling: one pool row, BEGIN; UPDATE … WHERE available >= $1; INSERT entry; COMMIT');
    phaseDone(await ceilingPhase(databaseUrl, connections, seconds));

    console.log('starting the server');
    const adminToken = `bench_admin_${randomBytes(16).toString('hex')}`;
    server = await startServer({ repoRoot, databaseUrl, adminToken, poolSize: connections });
    const operator = new Api(server.baseUrl, adminToken);
    const organization = await operator.call<{ id: string; apiKey: string }>('POST', '/v1/organizations', {
      name: 'Bench organization',
    });
    const api = new Api(server.baseUrl, organization.apiKey);
    const expectations = new Map<string, Expectation>();

    console.log(`setup: hot program with ${hotUsers} users`);
    const hot = await createProgramWithUsers(
      api,
      'Bench hot program',
      hotPoolDollars,
      hotMaxParticipants,
      hotUsers,
      connections,
    );
    expectationOf(expectations, hot.programId);
    for (const result of await assignAndCompleteOverHttp(
      api,
      'hot program',
      [hot],
      expectations,
      connections,
      seconds,
    )) {
      phaseDone(result);
    }

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
    for (const result of await assignAndCompleteOverHttp(
      api,
      `${spreadPrograms} programs`,
      spread,
      expectations,
      connections,
      seconds,
    )) {
      phaseDone(result);
    }

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
      organization.id,
      inProcess,
      expectationOf(expectations, inProcess.programId),
      connections,
      seconds,
    )) {
      phaseDone(result);
    }

    console.log(`checking the books of ${expectations.size} programs`);
    const books = await checkBooks(api, expectations, connections);
    const serverErrorLines = server.errorLines();
    await server.stop();

    const rows = results.map(summarize);
    const ceiling = rows[0];
    const hotCompletions = rows.find((row) => row.phase === 'hot program complete (HTTP)');
    console.log('');
    for (const line of machine) console.log(line);
    console.log('');
    printTable(rows);
    console.log('');
    if (ceiling !== undefined && hotCompletions !== undefined && ceiling.opsPerSecond > 0) {
      const ratio = (100 * hotCompletions.opsPerSecond) / ceiling.opsPerSecond;
      console.log(`hot-program completions / ceiling = ${ratio.toFixed(1)}%`);
    }
    const totalErrors = rows.reduce((sum, row) => sum + row.errors, 0);
    printErrors(results);
    console.log(`server log lines at level error or fatal: ${serverErrorLines}`);
    console.log(
      books.problems.length === 0
        ? `books: ${books.checked} programs balance (total = available + reserved + disbursing + disbursed + returned) and match the counted operations`
        : `books: ${books.problems.length} of ${books.checked} programs DO NOT balance`,
    );
    for (const problem of books.problems.slice(0, maxErrorSamples)) console.log(`  ${problem}`);
    console.log(`bench wall time: ${((performance.now() - benchStarted) / 1000).toFixed(1)} s`);
    if (books.problems.length > 0) return 1;
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
      console.error('usage: npm run bench -- [--seconds N] [--connections N]');
      process.exitCode = 2;
      return;
    }
    console.error(error);
    process.exitCode = 1;
  },
);
