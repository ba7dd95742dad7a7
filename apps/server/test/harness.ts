import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { buildApp } from '../src/app.js';
import { Issuers } from '../src/configurations/service.js';
import { type DatabaseHandle, openDatabase } from '../src/platform/db.js';
import type { App } from '../src/platform/http.js';
import { migrateToLatest } from '../src/platform/migrate.js';
import { jobCatalog } from '../src/worker/catalog.js';
import { startWorker } from '../src/worker/worker.js';

/**
 * Starts the real HTTP server on a real database: embedded PGlite (in memory) by default, or a
 * fresh PostgreSQL database when TRANCHE_TEST_DATABASE=postgres. Tests talk to it with fetch.
 */

export const testDatabaseKind = process.env.TRANCHE_TEST_DATABASE === 'postgres' ? 'postgres' : 'pglite';
export const postgresAdminUrl = process.env.TRANCHE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const adminToken = 'tra_admin_test_token_0123456789';

/** Seals API keys in tests (32 bytes). */
export const testEncryptionKey = Buffer.alloc(32, 7);

/** The worker's log: silent, unless TRANCHE_TEST_WORKER_LOG=1 prints it while a test is written. */
const silentLog =
  process.env.TRANCHE_TEST_WORKER_LOG === '1'
    ? { info: console.log, warn: console.warn, error: console.error }
    : { info() {}, warn() {}, error() {} };

export interface TestServer {
  issuers: Issuers;
  app: App;
  baseUrl: string;
  database: DatabaseHandle;
  /** The database URL when on PostgreSQL, so other processes can join. */
  databaseUrl: string | undefined;
  /** Stops the in-process worker (if any): jobs in flight end and are left for a later worker. */
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

/** Creates an empty PostgreSQL database for one test file and returns its URL and a dropper. */
export async function createPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `tranche_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresAdminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(postgresAdminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: postgresAdminUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

/**
 * `databaseUrl` points the server at a database the caller made and will remove (it is not
 * dropped). `sandbox` connects organizations to a running Highnote sandbox, and runs a worker with
 * the service's jobs beside the server.
 */
export async function startTestServer(
  options: {
    poolSize?: number;
    databaseUrl?: string;
    sandbox?: { url: string };
    /** With a sandbox, whether to run the worker in this process too (yes by default). */
    worker?: boolean;
    /** The server's log (none by default). */
    logger?: NonNullable<Parameters<typeof buildApp>[2]>['logger'];
    fundingVisibilityTimeoutMs?: number;
    /** How often the worker queues a reconciliation run for every configured organization. */
    reconciliationIntervalMs?: number;
    /** Runs the worker (without a sandbox too) with the audit chain sealing events this old. */
    auditSettleMs?: number;
    /** How often the worker's recurring jobs run (a minute by default, so they stay out of the way). */
    sweepIntervalMs?: number;
    /**
     * Runs partner webhook delivery in the worker (without a sandbox too), with a shorter
     * schedule so that retries happen within a test.
     */
    webhooks?: { retryDelaysMs?: readonly number[]; fanOutIntervalMs?: number; requestTimeoutMs?: number };
  } = {},
): Promise<TestServer> {
  let databaseUrl = options.databaseUrl;
  let drop: (() => Promise<void>) | undefined;
  if (databaseUrl === undefined && testDatabaseKind === 'postgres') {
    const created = await createPostgresDatabase();
    databaseUrl = created.url;
    drop = created.drop;
  }
  const database = await openDatabase({ databaseUrl, dataDir: 'memory://', poolSize: options.poolSize ?? 20 });
  await migrateToLatest(database.db);
  const issuers = new Issuers(database.db, {
    sandboxUrl: options.sandbox?.url,
    encryptionKey: testEncryptionKey,
    limits: { requestTimeoutMs: 2_000, retryBaseDelayMs: 10, retryMaxDelayMs: 100 },
  });
  const app = await buildApp({ adminToken, logLevel: 'silent' }, database, {
    logger: options.logger ?? false,
    issuers,
    encryptionKey: testEncryptionKey,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  // Highnote's notifications come to this server's own URL, known once it listens.
  const listening = app.server.address();
  if (listening !== null && typeof listening !== 'string') issuers.usePublicUrl(`http://127.0.0.1:${listening.port}`);
  const worker =
    (options.sandbox === undefined && options.webhooks === undefined && options.auditSettleMs === undefined) ||
    options.worker === false
      ? undefined
      : startWorker(database.db, {
          catalog: jobCatalog({
            sweepIntervalMs: options.sweepIntervalMs ?? 60_000,
            ...(options.sandbox === undefined ? {} : { issuers }),
            ...(options.fundingVisibilityTimeoutMs === undefined
              ? {}
              : { fundingVisibilityTimeoutMs: options.fundingVisibilityTimeoutMs }),
            ...(options.reconciliationIntervalMs === undefined
              ? {}
              : { reconciliationIntervalMs: options.reconciliationIntervalMs }),
            ...(options.auditSettleMs === undefined ? {} : { auditSettleMs: options.auditSettleMs }),
            ...(options.webhooks === undefined
              ? {}
              : { webhooks: { encryptionKey: testEncryptionKey, fanOutIntervalMs: 50, ...options.webhooks } }),
          }),
          log: silentLog,
          pollIntervalMs: 20,
          concurrency: 8,
        });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('server has no TCP address');
  return {
    app,
    baseUrl: `http://127.0.0.1:${address.port}`,
    database,
    databaseUrl,
    issuers,
    async stopWorker() {
      await worker?.stop();
    },
    async close() {
      await worker?.stop();
      await app.close();
      await database.close();
      await drop?.();
    },
  };
}

export interface Call {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies of every shape
  body: any;
  headers: Headers;
}

/** A thin HTTP client for tests: JSON in, JSON out, nothing hidden. */
export function client(baseUrl: string, apiKey?: string) {
  return async function call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Call> {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        ...(apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      // leave as text
    }
    return { status: response.status, body: parsed, headers: response.headers };
  };
}

export type Client = ReturnType<typeof client>;

/** Creates an organization through the operator route and returns a client holding its key. */
export async function newOrganization(server: TestServer, name = 'Acme Workforce') {
  const operator = client(server.baseUrl, adminToken);
  const created = await operator('POST', '/v1/organizations', { name });
  if (created.status !== 201) throw new Error(`organization: ${created.status} ${JSON.stringify(created.body)}`);
  return {
    id: created.body.id as string,
    apiKey: created.body.apiKey as string,
    call: client(server.baseUrl, created.body.apiKey),
  };
}

/** A program with `pool` dollars and a participant, the usual starting point. */
export async function programWithUser(call: Client, pool = 50_000, maxParticipants = 100) {
  const program = await call('POST', '/v1/programs', {
    name: 'OSHA completion funding',
    cardProductId: 'cp_test',
    totalAwardPool: pool,
    maxParticipants,
  });
  if (program.status !== 201) throw new Error(`program: ${program.status} ${JSON.stringify(program.body)}`);
  const user = await call('POST', '/v1/users', { highnoteAccountHolderId: 'ach_1842' });
  if (user.status !== 201) throw new Error(`user: ${user.status} ${JSON.stringify(user.body)}`);
  return { programId: program.body.id as string, userId: user.body.id as string };
}

/** Counts rows of a table for one organization: tests check what a request left behind. */
export async function countRows(server: TestServer, table: string, organizationId: string): Promise<number> {
  const { sql } = await import('kysely');
  const result = await sql<{
    count: string | bigint;
  }>`SELECT count(*) AS count FROM ${sql.table(table)} WHERE organization_id = ${organizationId}`.execute(
    server.database.db,
  );
  return Number(result.rows[0]?.count ?? 0);
}

/** A TCP port nobody listens on right now, for a server process a test starts. */
export async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const address = probe.address();
  probe.close();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Every item of a list endpoint, following `nextCursor`; bounded so a broken cursor cannot loop. */
// biome-ignore lint/suspicious/noExplicitAny: tests read response bodies of every shape
export async function listAll(call: Client, path: string, maxPages = 100): Promise<any[]> {
  // biome-ignore lint/suspicious/noExplicitAny: as above
  const items: any[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < maxPages; pages++) {
    const separator = path.includes('?') ? '&' : '?';
    const url = `${path}${separator}limit=100${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
    const listed = await call('GET', url);
    if (listed.status !== 200) throw new Error(`GET ${url}: ${listed.status} ${JSON.stringify(listed.body)}`);
    items.push(...listed.body.data);
    if (!listed.body.hasMore) return items;
    cursor = listed.body.nextCursor;
  }
  throw new Error(`${path}: more than ${maxPages} pages`);
}

const mainScript = fileURLToPath(new URL('../src/main.ts', import.meta.url));
/** How long a spawned server may take to answer /readyz with 200, in milliseconds. */
// A server process migrates a new database before it is ready: on a loaded CI machine that has taken over 30 s.
const serverProcessReadyTimeoutMs = 90_000;

export interface ServerProcess {
  child: ChildProcess;
  baseUrl: string;
  /** Everything the process wrote to stderr (its warn and error log lines). */
  stderr: string[];
}

/** Starts `tranche serve` as its own process on a shared PostgreSQL database, its stderr captured. */
export async function startServerProcess(databaseUrl: string): Promise<ServerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', mainScript, 'serve'], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      TRANCHE_ADMIN_TOKEN: adminToken,
      LOG_LEVEL: 'warn',
      TRANCHE_DATABASE_POOL_SIZE: '10',
      TRANCHE_SANDBOX_PORT: '0',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr: string[] = [];
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => stderr.push(chunk));
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + serverProcessReadyTimeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${baseUrl}/readyz`)).status === 200) return { child, baseUrl, stderr };
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill();
  throw new Error(`server process did not become ready: ${stderr.join('')}`);
}

/** Starts `tranche worker` as its own process against a database and a running sandbox. */
export function startWorkerProcess(
  databaseUrl: string,
  sandboxUrl: string,
  env: Record<string, string> = {},
): ServerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', mainScript, 'worker'], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      TRANCHE_ADMIN_TOKEN: adminToken,
      TRANCHE_SANDBOX_URL: sandboxUrl,
      TRANCHE_ENCRYPTION_KEY: testEncryptionKey.toString('base64'),
      TRANCHE_WORKER_POLL_INTERVAL_MS: '20',
      LOG_LEVEL: 'warn',
      TRANCHE_DATABASE_POOL_SIZE: '5',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr: string[] = [];
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => stderr.push(chunk));
  return { child, baseUrl: '', stderr };
}

/**
 * Reads until `done` holds, every `intervalMs`, and fails with the last value read after
 * `deadlineMs`: a slow machine makes a test slower, not flaky.
 */
export async function pollUntil<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  options: { what?: string; deadlineMs: number; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + options.deadlineMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${options.deadlineMs} ms waiting for ${options.what ?? 'a condition'}: ${JSON.stringify(value)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 25));
  }
}
