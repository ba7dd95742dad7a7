import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  Kysely,
  PostgresAdapter,
  PostgresDialect,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;

/** Databases that run one transaction at a time (PGlite: one session), by their root handle. */
const oneSession = new WeakSet<Db>();

/**
 * Whether transactions of this database can run at once and so wait on each other's row locks.
 * Not on the embedded database, where they take turns: lock order cannot matter there.
 */
export function transactionsInterleave(db: Db): boolean {
  return !oneSession.has(db);
}

export interface DatabaseHandle {
  db: Db;
  kind: 'postgres' | 'pglite';
  close(): Promise<void>;
}

/**
 * How long taking a PostgreSQL connection may last, in milliseconds: opening a new one, or
 * waiting for a free one when the pool is busy. Past it the request fails as unavailable (503)
 * instead of hanging while the database is down or overloaded.
 */
export const databaseConnectTimeoutMs = 5_000;

const int8Oid = 20;
const numericOid = 1700;
const dateOid = 1082;
const timestamptzOid = 1184;

/**
 * PGlite's own timestamptz parser reads years 0001–0099 as 19xx. The text PostgreSQL sends
 * (`0050-01-01 00:00:00.5+00`) becomes ISO 8601, which Date reads right for every year.
 */
function parseTimestamptz(value: string): Date {
  return new Date(value.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00'));
}

/**
 * Opens PostgreSQL when a URL is given, otherwise the embedded PGlite database in `dataDir`
 * (`memory://` keeps it in memory). Both return int8 as `bigint`, so money never passes
 * through a float.
 */
export async function openDatabase(options: {
  databaseUrl: string | undefined;
  dataDir: string;
  poolSize?: number;
  onIdleConnectionError?: (error: Error) => void;
}): Promise<DatabaseHandle> {
  if (options.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolSize ?? 20,
      connectionTimeoutMillis: databaseConnectTimeoutMs,
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
          if (oid === int8Oid) return (value: string) => BigInt(value);
          // A calendar date stays the text it is; a Date object would shift it by the time zone.
          if (oid === dateOid) return (value: string) => value;
          return pg.types.getTypeParser(oid, format);
        }) as typeof pg.types.getTypeParser,
      },
    });
    // An idle connection that the server drops (restart, failover, a terminated backend) is
    // removed from the pool by pg, and the next checkout opens a new one. Without a listener the
    // 'error' event would end the process.
    pool.on('error', (error) => options.onIdleConnectionError?.(error));
    // A connection that breaks while checked out (between two statements of a transaction) emits
    // 'error' on its client, where the pool listens only while the client is idle; unheard, that
    // event would end the process. The statement in flight fails on its own, and the pool drops
    // the client when it is released, since pg marks it not queryable.
    pool.on('connect', (client) => {
      client.on('error', () => {});
    });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { db, kind: 'postgres', close: () => db.destroy() };
  }
  const dataDir = options.dataDir === 'memory://' ? options.dataDir : join(options.dataDir, 'pglite');
  if (dataDir !== 'memory://') mkdirSync(dataDir, { recursive: true });
  const client = await PGlite.create(dataDir, {
    parsers: {
      [int8Oid]: (value: string) => BigInt(value),
      [numericOid]: (value: string) => value,
      [dateOid]: (value: string) => value,
      [timestamptzOid]: parseTimestamptz,
    },
  });
  const db = new Kysely<Database>({ dialect: new PGliteDialect(client) });
  oneSession.add(db);
  return { db, kind: 'pglite', close: () => db.destroy() };
}

/**
 * PGlite is one session. Kysely hands out a "connection" per query and holds one for the length
 * of a transaction, so every hand-out takes a lock: two transactions never interleave their
 * statements on the one session (the published kysely-pglite driver shares the session without
 * a lock, which lets concurrent transactions corrupt each other).
 */
class PGliteDialect implements Dialect {
  constructor(private readonly client: PGlite) {}
  createAdapter() {
    return new PostgresAdapter();
  }
  createDriver(): Driver {
    return new PGliteDriver(this.client);
  }
  createQueryCompiler() {
    return new PostgresQueryCompiler();
  }
  createIntrospector(db: Kysely<unknown>) {
    return new PostgresIntrospector(db);
  }
}

class PGliteDriver implements Driver {
  #queue: Promise<void> = Promise.resolve();
  #releases = new WeakMap<DatabaseConnection, () => void>();
  constructor(private readonly client: PGlite) {}
  async init() {}
  async acquireConnection(): Promise<DatabaseConnection> {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const previous = this.#queue;
    this.#queue = previous.then(() => held);
    await previous;
    const connection = new PGliteConnection(this.client);
    this.#releases.set(connection, release);
    return connection;
  }
  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings) {
    const isolation = settings.isolationLevel ? ` ISOLATION LEVEL ${settings.isolationLevel.toUpperCase()}` : '';
    await connection.executeQuery(CompiledQuery.raw(`BEGIN${isolation}`));
  }
  async commitTransaction(connection: DatabaseConnection) {
    await connection.executeQuery(CompiledQuery.raw('COMMIT'));
  }
  async rollbackTransaction(connection: DatabaseConnection) {
    await connection.executeQuery(CompiledQuery.raw('ROLLBACK'));
  }
  async releaseConnection(connection: DatabaseConnection) {
    this.#releases.get(connection)?.();
    this.#releases.delete(connection);
  }
  async destroy() {
    await this.#queue;
    await this.client.close();
  }
}

class PGliteConnection implements DatabaseConnection {
  constructor(private readonly client: PGlite) {}
  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    // A statement without parameters may hold several commands (a migration); only the simple
    // protocol, `exec`, runs those. Its last result is the one Kysely asked for.
    const result =
      compiledQuery.parameters.length === 0
        ? ((await this.client.exec(compiledQuery.sql)).at(-1) as Awaited<ReturnType<PGlite['query']>>)
        : await this.client.query<R>(compiledQuery.sql, [...compiledQuery.parameters]);
    const affected = result?.affectedRows;
    return {
      rows: (result?.rows ?? []) as R[],
      ...(affected !== undefined && compiledQuery.query.kind !== 'SelectQueryNode'
        ? { numAffectedRows: BigInt(affected) }
        : {}),
    };
  }
  // biome-ignore lint/correctness/useYield: PGlite has no cursor streaming; Kysely requires the method.
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('PGlite does not support streaming queries');
  }
}

/** Maps a PostgreSQL error to its SQLSTATE code and constraint name, for both drivers. */
export function databaseErrorOf(error: unknown): { code: string; constraint: string | undefined } | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || code.length !== 5) return undefined;
  const constraint = (error as { constraint?: unknown }).constraint;
  return { code, constraint: typeof constraint === 'string' ? constraint : undefined };
}

/** A nullable timestamp column as a Date: the drivers return Date, the row types also allow the text written. */
export function dateOf(value: Date | string | null): Date | null {
  if (value === null) return null;
  return value instanceof Date ? value : new Date(value);
}

/** SQLSTATEs that say the server cannot serve now: it is shutting down, starting, or full. */
const unavailableSqlStates = new Set(['57P01', '57P02', '57P03', '53300']);
/** SQLSTATE class 08: connection exceptions. */
const connectionExceptionClass = '08';
/** Socket errors from Node when the database's host or port does not answer. */
const unavailableSocketCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
/**
 * pg's own errors carry no code, only these messages: a connection ended under a query
 * ("Connection terminated unexpectedly", "… due to connection timeout"), the pool's wait for a
 * connection ran out, a client broken earlier was used again.
 */
const unavailableMessages = [/^Connection terminated/, /^timeout exceeded when trying to connect/, /not queryable/];
/** How deep `cause` and `errors` (AggregateError) chains are followed. */
const maxErrorChainDepth = 4;

/**
 * Why the database cannot be reached, when the error says so: the SQLSTATE, socket code or pg
 * message (for a log line), or undefined for every other error. Such a failure is the
 * database's, not the request's, and is answered 503 so that the client retries later.
 */
export function databaseUnavailableReason(error: unknown, depth = 0): string | undefined {
  if (typeof error !== 'object' || error === null || depth > maxErrorChainDepth) return undefined;
  const { code, message, cause, errors } = error as {
    code?: unknown;
    message?: unknown;
    cause?: unknown;
    errors?: unknown;
  };
  if (typeof code === 'string') {
    if (unavailableSqlStates.has(code) || unavailableSocketCodes.has(code)) return code;
    if (code.length === 5 && code.startsWith(connectionExceptionClass)) return code;
  }
  if (typeof message === 'string' && unavailableMessages.some((pattern) => pattern.test(message))) return message;
  if (Array.isArray(errors)) {
    for (const inner of errors.slice(0, maxErrorChainDepth)) {
      const reason = databaseUnavailableReason(inner, depth + 1);
      if (reason !== undefined) return reason;
    }
  }
  return databaseUnavailableReason(cause, depth + 1);
}
