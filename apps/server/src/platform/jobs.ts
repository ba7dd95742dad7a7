import type { FastifyBaseLogger } from 'fastify';
import { type ColumnType, sql } from 'kysely';
import { type Db, dateOf } from './db.js';
import { assert, fail, ok, type Result } from './errors.js';
import { newId } from './ids.js';
import { inTransaction } from './transaction.js';

/**
 * Durable jobs: a small queue on our own `jobs` table (migration 0003_jobs).
 *
 * Why not a library: pg-boss (12.x) requires Node >= 22.12 and graphile-worker (0.18) Node >= 22.18,
 * and neither is known to run on PGlite; our engines are node >= 20.19 and the embedded default is
 * PGlite. What we need is small: a job is a row enqueued in the transaction of the change that asks
 * for it (so it exists exactly when the change commits), claimed with `FOR UPDATE SKIP LOCKED` in a
 * short transaction that takes a lease (`locked_until`, the visibility timeout), run outside any
 * transaction, and finished by a second short transaction. While the handler runs, its worker renews
 * the lease (a heartbeat), so a long run is not taken for a dead one. A worker that dies leaves its
 * lease to expire, and the job is claimed again: delivery is at least once, so handlers are idempotent.
 * Finishing is fenced by the attempt number, so a worker whose lease was taken over cannot
 * overwrite the newer attempt's outcome.
 *
 * Failures go back to `queued` with exponential backoff and full jitter; after `maxAttempts` the job
 * is `dead` and stays until an operator retries it (`GET /v1/jobs?status=dead`). Succeeded jobs are
 * deleted after `succeededJobRetentionMs`, in bounded batches.
 *
 * Generic on purpose: nothing here knows a domain; catalogs of definitions live with the worker.
 */

export const jobStatuses = ['queued', 'running', 'succeeded', 'dead'] as const;
export type JobStatus = (typeof jobStatuses)[number];

/** Most jobs one `enqueueJobs` call writes; it is one INSERT, and a unit of work enqueues a few. */
export const maxJobsPerEnqueue = 1_000;
/** Largest payload, as JSON bytes. Payloads carry ids, not documents. */
export const maxJobPayloadBytes = 8 * 1024;
/** Longest `last_error` kept (a CHECK in the migration holds the same number). */
export const maxJobErrorLength = 1_000;
/** Longest job name and dedupe key (CHECKs in the migration hold the same numbers). */
export const maxJobNameLength = 100;
export const maxDedupeKeyLength = 200;
/** Most attempts a definition may allow (CHECK in the migration). */
export const maxJobAttemptsLimit = 100;
/** Most jobs one claim takes. */
export const maxClaimBatchSize = 100;
/** How long a succeeded job stays visible to operators before the retention job deletes it. */
export const succeededJobRetentionMs = 7 * 24 * 60 * 60 * 1000;
/** Succeeded jobs deleted per statement, and statements per run, by the retention job. */
export const jobRetentionBatchSize = 1_000;
export const maxJobRetentionRounds = 20;
/** Longest a backoff exponent grows; 2^30 times any base is past every sensible `maxMs`. */
const maxBackoffExponent = 30;
/**
 * Renewals per visibility timeout: a running job's lease is extended each time a third of it has
 * passed, so two renewals in a row can fail (a database blip) before the lease runs out.
 */
export const leaseRenewalsPerTimeout = 3;
/** Shortest time between two renewals of one lease, so a tiny timeout cannot busy-loop the database. */
export const minLeaseRenewalIntervalMs = 50;
/** Shortest visibility timeout a definition may declare: room for every renewal at the shortest interval. */
export const minVisibilityTimeoutMs = minLeaseRenewalIntervalMs * leaseRenewalsPerTimeout;
/**
 * Longest one run keeps renewing its lease. A handler that hangs would otherwise hold its job
 * forever; past this the lease runs out, the handler's signal is aborted, and the job is claimed
 * again (or goes dead) like one whose worker died.
 */
export const maxLeaseRenewalMs = 24 * 60 * 60 * 1000;

/**
 * Row type of `jobs`. Kept here rather than in `schema.ts` so that this module stays
 * self-contained; queries reach it through `jobsOf(db)`.
 */
export interface JobsTable {
  id: string;
  organization_id: string | null;
  name: string;
  payload: ColumnType<unknown, string, string>;
  status: ColumnType<JobStatus, JobStatus | undefined, JobStatus>;
  attempts: ColumnType<number, number | undefined, number>;
  max_attempts: number;
  run_at: ColumnType<Date, Date | string, Date | string>;
  locked_until: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  last_error: string | null;
  dedupe_key: string | null;
  created_at: ColumnType<Date, Date | string | undefined, Date | string>;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
  finished_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

function jobsOf(db: Db) {
  return db.withTables<{ jobs: JobsTable }>();
}

/** A job to enqueue. Build it with `jobRequest(definition, payload)` so the payload is type-checked. */
export interface JobRequest {
  name: string;
  /** JSON; ids only. */
  payload: unknown;
  /** The tenant the job acts for; null or absent for system-wide work. */
  organizationId?: string | null;
  /** Not before this time; now when absent. */
  runAt?: Date;
  /** While a job with this key is queued or running, enqueueing another is a no-op. */
  dedupeKey?: string;
  /** From the definition (see `jobRequest`); `defaultMaxAttempts` when absent. */
  maxAttempts?: number;
}

export const defaultMaxAttempts = 10;

export type JobLog = Pick<FastifyBaseLogger, 'info' | 'warn' | 'error'>;

/** What a handler gets besides its payload. */
export interface JobContext {
  db: Db;
  /** When this run started: one clock reading for the handler's comparisons. */
  now: Date;
  job: { id: string; name: string; attempt: number; organizationId: string | null };
  log: JobLog;
  /**
   * Aborted when the job's lease (its visibility timeout, renewed while the handler runs) runs out
   * or is taken over, or the worker stops. A handler working in rounds checks it between rounds
   * and returns; the rest is the next run's.
   */
  signal: AbortSignal;
}

export interface Backoff {
  /** Ceiling of the first retry's delay; doubles with every attempt. */
  baseMs: number;
  /** The ceiling never grows past this. */
  maxMs: number;
}

export interface JobDefinition<Payload> {
  readonly name: string;
  readonly maxAttempts: number;
  readonly backoff: Backoff;
  /**
   * How long a claim holds the job; past it the job counts as abandoned and is claimed again. The
   * running worker renews it every third of this, so it bounds how long a dead worker's job waits,
   * not how long a run may take.
   */
  readonly visibilityTimeoutMs: number;
  /**
   * A recurring job: every worker's scheduler enqueues it each `intervalMs` under one dedupe key
   * (so there is at most one queued or running), and each run that ends enqueues the next one
   * `intervalMs` later in the same transaction, so the cluster runs it once per interval.
   */
  readonly recurring?: { readonly intervalMs: number; readonly payload: Payload };
  // A method, not a function property: a catalog holds definitions of different payloads.
  run(context: JobContext, payload: Payload): Promise<void>;
}

/** A catalog holds definitions of any payload; the worker looks them up by name. */
export type AnyJobDefinition = JobDefinition<unknown>;
export type JobCatalog = readonly AnyJobDefinition[];

/** Declares a job, checking its limits once, at start. */
export function defineJob<Payload>(definition: JobDefinition<Payload>): JobDefinition<Payload> {
  const { name, maxAttempts, backoff, visibilityTimeoutMs, recurring } = definition;
  assert(name.length > 0 && name.length <= maxJobNameLength, `job name "${name}" is empty or too long`);
  assert(
    Number.isInteger(maxAttempts) && maxAttempts >= 1 && maxAttempts <= maxJobAttemptsLimit,
    `job ${name}: maxAttempts must be 1 to ${maxJobAttemptsLimit}`,
  );
  assert(backoff.baseMs > 0 && backoff.maxMs >= backoff.baseMs, `job ${name}: backoff needs 0 < baseMs <= maxMs`);
  assert(
    visibilityTimeoutMs >= minVisibilityTimeoutMs,
    `job ${name}: visibilityTimeoutMs must be at least ${minVisibilityTimeoutMs} ms`,
  );
  assert(recurring === undefined || recurring.intervalMs > 0, `job ${name}: recurring.intervalMs must be positive`);
  return definition;
}

/** A request for `definition` whose payload the compiler checks against the definition's type. */
export function jobRequest<Payload>(
  definition: JobDefinition<Payload>,
  payload: NoInfer<Payload>,
  options: { organizationId?: string | null; runAt?: Date; dedupeKey?: string } = {},
): JobRequest {
  return { name: definition.name, payload, maxAttempts: definition.maxAttempts, ...options };
}

/** The dedupe key under which a recurring job is enqueued. */
export function recurringDedupeKey(name: string): string {
  return `recurring:${name}`;
}

function nextOccurrence(definition: AnyJobDefinition, runAt: Date): JobRequest | undefined {
  if (definition.recurring === undefined) return undefined;
  return {
    name: definition.name,
    payload: definition.recurring.payload,
    maxAttempts: definition.maxAttempts,
    runAt,
    dedupeKey: recurringDedupeKey(definition.name),
  };
}

/**
 * Enqueues jobs in the caller's transaction with one multi-row INSERT: they exist if and only if
 * the caller commits. A job whose dedupe key is already queued or running is skipped.
 */
export async function enqueueJobs(tx: Db, requested: readonly JobRequest[], now: Date): Promise<void> {
  // Requests that share a dedupe key (the units of one batch asking for the same sweep) become one.
  const seen = new Set<string>();
  const jobs = requested.filter((job) => {
    if (job.dedupeKey === undefined) return true;
    if (seen.has(job.dedupeKey)) return false;
    seen.add(job.dedupeKey);
    return true;
  });
  if (jobs.length === 0) return;
  assert(jobs.length <= maxJobsPerEnqueue, `enqueueing ${jobs.length} jobs at once (limit ${maxJobsPerEnqueue})`);
  const rows = jobs.map((job) => {
    const payload = JSON.stringify(job.payload ?? {});
    assert(
      Buffer.byteLength(payload) <= maxJobPayloadBytes,
      `job ${job.name}: payload is larger than ${maxJobPayloadBytes} bytes`,
    );
    return {
      id: newId('job'),
      organization_id: job.organizationId ?? null,
      name: job.name,
      payload,
      status: 'queued' as const,
      attempts: 0,
      max_attempts: job.maxAttempts ?? defaultMaxAttempts,
      run_at: job.runAt ?? now,
      dedupe_key: job.dedupeKey ?? null,
      created_at: now,
      updated_at: now,
    };
  });
  await jobsOf(tx)
    .insertInto('jobs')
    .values(rows)
    // The predicate is literal SQL: PostgreSQL matches it against the partial index jobs_dedupe,
    // which a bound parameter could not be proven to imply.
    .onConflict((conflict) =>
      conflict.column('dedupe_key').where(sql<boolean>`status IN ('queued', 'running')`).doNothing(),
    )
    .execute();
}

/** Enqueues every recurring job of the catalog that is not already queued or running. */
export async function scheduleRecurringJobs(db: Db, catalog: JobCatalog, now: Date): Promise<void> {
  const requests = catalog.flatMap((definition) => nextOccurrence(definition, now) ?? []);
  await enqueueJobs(db, requests, now);
}

/** A claimed job, ready to run: its lease lasts until `lockedUntil`. */
export interface ClaimedJob {
  id: string;
  name: string;
  organizationId: string | null;
  payload: unknown;
  /** This run's attempt number, 1 for the first; it fences the finish. */
  attempt: number;
  maxAttempts: number;
  lockedUntil: Date;
}

interface ClaimedRow {
  id: string;
  name: string;
  organization_id: string | null;
  payload: unknown;
  attempts: number;
  max_attempts: number;
  locked_until: Date | string;
}

function claimedOf(row: ClaimedRow): ClaimedJob {
  return {
    id: row.id,
    name: row.name,
    organizationId: row.organization_id,
    payload: row.payload,
    attempt: row.attempts,
    maxAttempts: row.max_attempts,
    lockedUntil: dateOf(row.locked_until) as Date,
  };
}

/** Explains a lease that ran out to whoever reads the dead job. */
const abandonedError =
  'The lease ran out before the job finished (the worker stopped, or the run outlasted its timeout)';

/**
 * Claims up to `limit` due jobs of the given definitions in one short transaction: first running
 * jobs whose lease passed (their worker died; they count as an attempt, and a job with no attempts
 * left goes dead instead), then queued jobs whose `run_at` has come. Each claimed job is `running`
 * with `attempts + 1` and a lease of its definition's visibility timeout. Rows another worker is
 * claiming are skipped, never waited on.
 */
export async function claimJobs(db: Db, definitions: JobCatalog, limit: number, now: Date): Promise<ClaimedJob[]> {
  assert(Number.isInteger(limit) && limit >= 0 && limit <= maxClaimBatchSize, `claim limit ${limit} out of range`);
  if (definitions.length === 0 || limit === 0) return [];
  const names = sql.join(definitions.map((definition) => definition.name));
  const timeouts = JSON.stringify(
    Object.fromEntries(definitions.map((definition) => [definition.name, definition.visibilityTimeoutMs])),
  );
  const at = sql`${now.toISOString()}::timestamptz`;
  const lease = sql`${at} + (${timeouts}::jsonb ->> jobs.name)::integer * interval '1 millisecond'`;
  const returning = sql`RETURNING id, name, organization_id, payload, attempts, max_attempts, locked_until`;
  return inTransaction(db, async (tx) => {
    // Each statement locks its rows in a subquery and updates them by primary key (`id = ANY`),
    // which the planner answers with an index scan rather than a join over the table.
    await sql`
      UPDATE jobs SET status = 'dead', locked_until = NULL, finished_at = ${at}, updated_at = ${at},
        last_error = ${abandonedError}
      WHERE id = ANY(ARRAY(
        SELECT id FROM jobs
        WHERE status = 'running' AND locked_until <= ${at} AND attempts >= max_attempts AND name IN (${names})
        ORDER BY locked_until LIMIT ${limit} FOR UPDATE SKIP LOCKED
      ))`.execute(tx);
    const reclaimed = await sql<ClaimedRow>`
      UPDATE jobs SET attempts = attempts + 1, locked_until = ${lease}, updated_at = ${at}
      WHERE id = ANY(ARRAY(
        SELECT id FROM jobs
        WHERE status = 'running' AND locked_until <= ${at} AND attempts < max_attempts AND name IN (${names})
        ORDER BY locked_until LIMIT ${limit} FOR UPDATE SKIP LOCKED
      ))
      ${returning}`.execute(tx);
    const remaining = limit - reclaimed.rows.length;
    if (remaining === 0) return reclaimed.rows.map(claimedOf);
    const claimed = await sql<ClaimedRow>`
      UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_until = ${lease}, updated_at = ${at}
      WHERE id = ANY(ARRAY(
        SELECT id FROM jobs
        WHERE status = 'queued' AND run_at <= ${at} AND name IN (${names})
        ORDER BY run_at LIMIT ${remaining} FOR UPDATE SKIP LOCKED
      ))
      ${returning}`.execute(tx);
    return [...reclaimed.rows, ...claimed.rows].map(claimedOf);
  });
}

/** The delay before retry number `attempt` (1 after the first failure): full jitter under an exponential ceiling. */
export function backoffDelayMs(backoff: Backoff, attempt: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), maxBackoffExponent);
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** exponent);
  return Math.floor(random() * ceiling);
}

/** What a failure leaves in `last_error`: the message only (no stack, no payload), truncated. */
export function jobErrorText(error: unknown): string {
  const text =
    error instanceof Error
      ? `${error.name}: ${error.message}`
      : `A non-Error value was thrown (${error === null ? 'null' : typeof error})`;
  return text.length <= maxJobErrorLength ? text : `${text.slice(0, maxJobErrorLength - 1)}…`;
}

export type JobOutcome = 'succeeded' | 'retrying' | 'dead' | 'lease_lost';

/** The time between two renewals of a lease of `visibilityTimeoutMs`. */
export function leaseRenewalIntervalMs(visibilityTimeoutMs: number): number {
  return Math.max(minLeaseRenewalIntervalMs, Math.floor(visibilityTimeoutMs / leaseRenewalsPerTimeout));
}

/**
 * Extends a running job's lease to `now + visibilityTimeoutMs`, fenced like the finish: only while
 * the row is still running this attempt. False when it is not, so a worker whose lease was taken
 * over can never take it back.
 */
async function renewLease(db: Db, job: ClaimedJob, visibilityTimeoutMs: number, now: Date): Promise<boolean> {
  const updated = await jobsOf(db)
    .updateTable('jobs')
    .set({ locked_until: new Date(now.getTime() + visibilityTimeoutMs), updated_at: now })
    .where('id', '=', job.id)
    .where('status', '=', 'running')
    .where('attempts', '=', job.attempt)
    .executeTakeFirst();
  return updated.numUpdatedRows > 0n;
}

/** Why a run's signal was aborted by its lease (its `reason`, for the handler and the logs). */
export const leaseTakenOverMessage = 'The job was claimed again or finished elsewhere while this run held it';
export const leaseRanOutMessage = 'The lease ran out: it could not be renewed in time';

/** The lease of one run, renewed in the background until `release()`. */
interface HeldLease {
  /** Aborted when the lease runs out (no renewal in time) or a renewal finds it taken over. */
  signal: AbortSignal;
  /** True once a renewal found the row no longer this run's. */
  lost(): boolean;
  /** Stops renewing and waits for a renewal in flight, so the finish sees its result. */
  release(): Promise<void>;
}

/**
 * Holds a claimed job's lease while its handler runs (a heartbeat): every
 * `leaseRenewalIntervalMs` it renews the lease, and aborts `signal` when a renewal finds the row
 * taken over, or when the lease, as last renewed, runs out. A failed renewal (the database is down)
 * is logged and tried again at the next interval until then. Renewals never overlap: the next is
 * scheduled when the previous one settles. `abandon` stops the renewals for good, so the lease
 * runs out and another worker claims the job again.
 */
function holdLease(
  db: Db,
  definition: AnyJobDefinition,
  job: ClaimedJob,
  options: { log: JobLog; clock: () => Date; abandon: AbortSignal | undefined },
): HeldLease {
  const timeoutMs = definition.visibilityTimeoutMs;
  const intervalMs = leaseRenewalIntervalMs(timeoutMs);
  const fields = { id: job.id, name: job.name, attempt: job.attempt };
  const lease = new AbortController();
  const startedAtMs = Date.now();
  let lost = false;
  let released = false;
  let renewal: Promise<void> | undefined;
  let renewTimer: NodeJS.Timeout | undefined;
  let expiryTimer: NodeJS.Timeout | undefined;

  const stop = () => {
    released = true;
    clearTimeout(renewTimer);
    clearTimeout(expiryTimer);
    options.abandon?.removeEventListener('abort', stop);
  };
  const end = (message: string) => {
    stop();
    lease.abort(new Error(message));
  };
  // The lease as last written lasts `timeoutMs` from when that renewal was sent.
  const expireAt = (atMs: number) => {
    clearTimeout(expiryTimer);
    expiryTimer = setTimeout(() => {
      options.log.warn(fields, 'job lease ran out before it could be renewed; aborting the run');
      end(leaseRanOutMessage);
    }, atMs - Date.now());
    expiryTimer.unref();
  };
  const scheduleRenewal = () => {
    if (released) return;
    if (Date.now() - startedAtMs >= maxLeaseRenewalMs) {
      options.log.error(fields, 'job ran longer than any lease is renewed; leaving its lease to run out');
      return;
    }
    renewTimer = setTimeout(renew, intervalMs);
    renewTimer.unref();
  };
  const renew = () => {
    const sentAtMs = Date.now();
    renewal = renewLease(db, job, timeoutMs, options.clock())
      .then(
        (held) => {
          if (!held) {
            lost = true;
            options.log.warn(fields, 'job lease was taken over; aborting the run');
            end(leaseTakenOverMessage);
          } else if (!released) {
            expireAt(sentAtMs + timeoutMs);
            scheduleRenewal();
          }
        },
        (error: unknown) => {
          options.log.warn({ ...fields, err: error }, 'renewing a job lease failed; trying again until it runs out');
          scheduleRenewal();
        },
      )
      .finally(() => {
        renewal = undefined;
      });
  };

  expireAt(startedAtMs + timeoutMs);
  scheduleRenewal();
  options.abandon?.addEventListener('abort', stop, { once: true });
  if (options.abandon?.aborted === true) stop();
  return {
    signal: lease.signal,
    lost: () => lost,
    async release() {
      stop();
      await renewal;
    },
  };
}

/**
 * Runs one claimed job outside any transaction, then records the outcome in a short one: succeeded;
 * failed and queued again after a backoff; or dead after its last attempt. A recurring job that
 * ended (succeeded or dead) enqueues its next run in that same transaction. While the handler runs
 * its lease is renewed (see `holdLease`). When the lease was taken over meanwhile (`lease_lost`),
 * the newer attempt owns the row and nothing is written.
 */
export async function runClaimedJob(
  db: Db,
  definition: AnyJobDefinition,
  job: ClaimedJob,
  options: {
    log: JobLog;
    clock?: () => Date;
    /** The worker is stopping: the handler is asked to return, and its lease is still renewed meanwhile. */
    signal?: AbortSignal;
    /** The caller stopped waiting for this run: renewals stop, and the lease is left to run out. */
    abandon?: AbortSignal;
  },
): Promise<JobOutcome> {
  const clock = options.clock ?? (() => new Date());
  const lease = holdLease(db, definition, job, { log: options.log, clock, abandon: options.abandon });
  const signal = options.signal === undefined ? lease.signal : AbortSignal.any([lease.signal, options.signal]);
  const context: JobContext = {
    db,
    now: clock(),
    job: { id: job.id, name: job.name, attempt: job.attempt, organizationId: job.organizationId },
    log: options.log,
    signal,
  };
  let failure: { error: unknown } | undefined;
  try {
    await definition.run(context, job.payload);
  } catch (error) {
    failure = { error };
  } finally {
    await lease.release();
  }
  const fields = { id: job.id, name: job.name, attempt: job.attempt };
  if (lease.lost()) {
    options.log.warn(fields, 'job finished after its lease was taken over; the newer attempt owns it');
    return 'lease_lost';
  }
  const now = clock();
  const outcome: JobOutcome =
    failure === undefined ? 'succeeded' : job.attempt >= job.maxAttempts ? 'dead' : 'retrying';
  const recorded = await inTransaction(db, async (tx) => {
    const jobs = jobsOf(tx);
    let update = jobs.updateTable('jobs').set({ updated_at: now, locked_until: null });
    if (failure === undefined) {
      update = update.set({ status: 'succeeded', finished_at: now });
    } else {
      update = update.set({ last_error: jobErrorText(failure.error) });
      update =
        outcome === 'dead'
          ? update.set({ status: 'dead', finished_at: now })
          : update.set({
              status: 'queued',
              run_at: new Date(now.getTime() + backoffDelayMs(definition.backoff, job.attempt)),
            });
    }
    const updated = await update
      .where('id', '=', job.id)
      .where('status', '=', 'running')
      .where('attempts', '=', job.attempt)
      .executeTakeFirst();
    if (updated.numUpdatedRows === 0n) return false;
    const next =
      outcome === 'retrying'
        ? undefined
        : nextOccurrence(definition, new Date(now.getTime() + (definition.recurring?.intervalMs ?? 0)));
    if (next !== undefined) await enqueueJobs(tx, [next], now);
    return true;
  });
  if (!recorded) {
    options.log.warn(fields, 'job finished after its lease was taken over; the newer attempt owns it');
    return 'lease_lost';
  }
  if (failure !== undefined) {
    const log = outcome === 'dead' ? options.log.error.bind(options.log) : options.log.warn.bind(options.log);
    log({ ...fields, error: jobErrorText(failure.error) }, outcome === 'dead' ? 'job dead' : 'job failed; will retry');
  }
  return outcome;
}

/** A job as the operator sees it. */
export interface JobRecord {
  id: string;
  organizationId: string | null;
  name: string;
  status: JobStatus;
  attempts: number;
  maxAttempts: number;
  runAt: Date;
  lockedUntil: Date | null;
  lastError: string | null;
  dedupeKey: string | null;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}

function jobQuery(db: Db) {
  return jobsOf(db)
    .selectFrom('jobs')
    .select([
      'id',
      'organization_id',
      'name',
      'status',
      'attempts',
      'max_attempts',
      'run_at',
      'locked_until',
      'last_error',
      'dedupe_key',
      'created_at',
      'updated_at',
      'finished_at',
    ]);
}

type JobRow = Awaited<ReturnType<ReturnType<typeof jobQuery>['executeTakeFirstOrThrow']>>;

function jobRecordOf(row: JobRow): JobRecord {
  return {
    id: row.id,
    organizationId: row.organization_id,
    name: row.name,
    status: row.status,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    runAt: dateOf(row.run_at) as Date,
    lockedUntil: dateOf(row.locked_until),
    lastError: row.last_error,
    dedupeKey: row.dedupe_key,
    createdAt: dateOf(row.created_at) as Date,
    updatedAt: dateOf(row.updated_at) as Date,
    finishedAt: dateOf(row.finished_at),
  };
}

/** Jobs newest first, optionally of one status, after the cursor's id; `limit` rows at most. */
export async function listJobs(
  db: Db,
  filter: { status?: JobStatus | undefined; afterId?: string | undefined; limit: number },
): Promise<JobRecord[]> {
  let query = jobQuery(db).orderBy('id', 'desc').limit(filter.limit);
  if (filter.status !== undefined) query = query.where('status', '=', filter.status);
  if (filter.afterId !== undefined) query = query.where('id', '<', filter.afterId);
  return (await query.execute()).map(jobRecordOf);
}

export async function getJob(db: Db, id: string): Promise<JobRecord | undefined> {
  const row = await jobQuery(db).where('id', '=', id).executeTakeFirst();
  return row === undefined ? undefined : jobRecordOf(row);
}

/**
 * Puts a dead job back in the queue to run now with its attempts reset; its last error stays until
 * a run replaces it. Only a dead job can be retried; a dead recurring job whose next run is already
 * queued cannot, since the dedupe key allows one at a time (and that run does the same work).
 */
export async function retryDeadJob(tx: Db, id: string, now: Date): Promise<Result<JobRecord>> {
  const jobs = jobsOf(tx);
  const job = await jobs
    .selectFrom('jobs')
    .select(['status', 'dedupe_key'])
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  if (job === undefined) return fail('not_found', `No job ${id}`);
  if (job.status !== 'dead') return fail('invalid_state', `Job ${id} is ${job.status}; only a dead job can be retried`);
  if (job.dedupe_key !== null) {
    const twin = await jobs
      .selectFrom('jobs')
      .select('id')
      .where('dedupe_key', '=', job.dedupe_key)
      .where('status', 'in', ['queued', 'running'])
      .executeTakeFirst();
    if (twin !== undefined) {
      return fail('invalid_state', `Job ${twin.id} with the same dedupe key is already queued or running`);
    }
  }
  await jobs
    .updateTable('jobs')
    .set({ status: 'queued', attempts: 0, run_at: now, finished_at: null, updated_at: now })
    .where('id', '=', id)
    .execute();
  const retried = await getJob(tx, id);
  assert(retried !== undefined, `job ${id} vanished while retried`);
  return ok(retried);
}

/** Queued jobs that are due, for metrics: how many, and how long the oldest has waited. */
export async function queueStats(db: Db, now: Date): Promise<{ depth: number; oldestAgeSeconds: number }> {
  const at = sql`${now.toISOString()}::timestamptz`;
  const result = await sql<{ depth: number; oldest: Date | string | null }>`
    SELECT count(*)::integer AS depth, min(run_at) AS oldest
    FROM jobs WHERE status = 'queued' AND run_at <= ${at}`.execute(db);
  const row = result.rows[0];
  const oldest = dateOf(row?.oldest ?? null);
  return {
    depth: Number(row?.depth ?? 0),
    oldestAgeSeconds: oldest === null ? 0 : Math.max(0, (now.getTime() - oldest.getTime()) / 1000),
  };
}

/**
 * Deletes succeeded jobs older than the retention, `batchSize` rows per statement, until none are
 * left or `maxRounds` statements ran. Dead jobs are kept: they are the record of work that never
 * happened, until an operator retries them.
 */
export async function deleteSucceededJobs(
  db: Db,
  options: { now: Date; batchSize?: number; maxRounds?: number; signal?: AbortSignal },
): Promise<number> {
  const batchSize = options.batchSize ?? jobRetentionBatchSize;
  const maxRounds = options.maxRounds ?? maxJobRetentionRounds;
  const cutoff = sql`${new Date(options.now.getTime() - succeededJobRetentionMs).toISOString()}::timestamptz`;
  let deleted = 0;
  for (let round = 0; round < maxRounds && options.signal?.aborted !== true; round++) {
    const result = await sql`
      DELETE FROM jobs WHERE id = ANY(ARRAY(
        SELECT id FROM jobs WHERE status = 'succeeded' AND finished_at < ${cutoff}
        ORDER BY finished_at LIMIT ${batchSize} FOR UPDATE SKIP LOCKED
      ))`.execute(db);
    const count = Number(result.numAffectedRows ?? 0n);
    deleted += count;
    if (count < batchSize) break;
  }
  return deleted;
}
