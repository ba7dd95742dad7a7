import { sql } from 'kysely';
import { auditChainJob, defaultAuditSettleMs } from '../audit/chain.js';
import { cardControlJobs } from '../cards/controls.js';
import { followApplicationJob } from '../cards/jobs.js';
import type { Issuers } from '../configurations/service.js';
import { awaitingCardSweepJob, fundDisbursementJob } from '../disbursements/funding.js';
import { applyNotificationJob } from '../notifications/apply.js';
import { registerTargetJob } from '../notifications/targets.js';
import type { Db } from '../platform/db.js';
import { type AnyJobDefinition, defineJob, deleteSucceededJobs, type JobCatalog } from '../platform/jobs.js';
import { releaseOpenJob } from '../programs/service.js';
import { defaultReconciliationIntervalMs, reconciliationJobs } from '../reconciliation/run.js';
import { expireDueJobName, expireDueUserTasks } from '../usertasks/expiry.js';
import { type WebhookDeliveryOptions, webhookJobs } from '../webhooks/delivery.js';

/**
 * The jobs this service runs. Recurring sweeps are built from the configuration; one-off jobs that
 * units of work enqueue (with `jobRequest(definition, payload)`) are module constants, so a caller
 * imports the definition and the compiler checks its payload. Add a definition to `jobCatalog`
 * and every worker runs it.
 */

/** A recurring sweep's payload: it has nothing to say, the database knows what is due. */
type NoPayload = Record<string, never>;

/** User tasks expired per transaction, and transactions per run, by `usertasks.expire_due`. */
export const userTaskExpiryBatchSize = 500;
export const maxUserTaskExpiryRounds = 20;

/**
 * Expired idempotency keys deleted per statement, and statements per run. 5,000 × 40 every 5 s is
 * 40,000 keys a second of headroom, far beyond the request rate one database takes.
 */
export const idempotencyCleanupBatchSize = 5_000;
export const maxIdempotencyCleanupRounds = 40;

/** How often succeeded jobs past their retention are deleted. */
export const jobRetentionIntervalMs = 60 * 60 * 1000;

/** Sweeps retry soon and never for long: the next interval runs them anyway. */
const sweepBackoff = { baseMs: 1_000, maxMs: 60_000 };
const sweepMaxAttempts = 5;
/** A sweep's rounds are bounded; a run longer than this is a worker that died. */
const sweepVisibilityTimeoutMs = 5 * 60 * 1000;

/**
 * Deletes idempotency keys past their lifetime, `batchSize` per statement (the oldest first,
 * through the `idempotency_keys_expiry` index; rows another worker is deleting are skipped),
 * repeating until a statement finds fewer than a batch or `maxRounds` ran. Each statement commits
 * on its own, so no lock outlives one batch.
 */
export async function deleteExpiredIdempotencyKeys(
  db: Db,
  options: { now: Date; batchSize?: number; maxRounds?: number; signal?: AbortSignal },
): Promise<{ deleted: number; caughtUp: boolean }> {
  const batchSize = options.batchSize ?? idempotencyCleanupBatchSize;
  const maxRounds = options.maxRounds ?? maxIdempotencyCleanupRounds;
  const now = sql`${options.now.toISOString()}::timestamptz`;
  let deleted = 0;
  for (let round = 0; round < maxRounds && options.signal?.aborted !== true; round++) {
    // By ctid, not by joining on the key: the array of row addresses makes a TID scan, where a
    // join on (scope, key) is planned as a hash join over the whole table. The rows are locked by
    // the subquery, so their addresses hold until the delete.
    const result = await sql`
      DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM idempotency_keys WHERE expires_at < ${now}
        ORDER BY expires_at LIMIT ${batchSize} FOR UPDATE SKIP LOCKED
      ))`.execute(db);
    const count = Number(result.numAffectedRows ?? 0n);
    deleted += count;
    if (count < batchSize) return { deleted, caughtUp: true };
  }
  return { deleted, caughtUp: false };
}

/** Expires user tasks whose window ended, a batch per transaction, until caught up or out of rounds. */
export async function expireDueUserTasksInRounds(
  db: Db,
  options: { now: Date; signal?: AbortSignal },
): Promise<number> {
  let expired = 0;
  for (let round = 0; round < maxUserTaskExpiryRounds && options.signal?.aborted !== true; round++) {
    const count = await expireDueUserTasks(db, { now: options.now, limit: userTaskExpiryBatchSize });
    expired += count;
    if (count < userTaskExpiryBatchSize) break;
  }
  return expired;
}

export const deleteExpiredIdempotencyKeysName = 'idempotency_keys.delete_expired';
export const deleteSucceededJobsName = 'jobs.delete_succeeded';

/**
 * Every job of the service; `sweepIntervalMs` is TRANCHE_SWEEP_INTERVAL_MS. Without `issuers`
 * the jobs that call Highnote are left out (tests of the queue itself).
 */
export function jobCatalog(options: {
  sweepIntervalMs: number;
  issuers?: Issuers;
  /** The funding job's lease; shorter in tests that kill a worker. */
  fundingVisibilityTimeoutMs?: number;
  /**
   * Partner webhook delivery (fan-out and attempts); left out without an encryption key, which
   * opens the endpoints' secrets. Tests shorten `retryDelaysMs` and `fanOutIntervalMs`.
   */
  webhooks?: WebhookDeliveryOptions;
  /** How often every configured organization is reconciled with Highnote; daily by default. */
  reconciliationIntervalMs?: number;
  /** How old an event must be before the audit chain seals it (a minute by default; tests shorten it). */
  auditSettleMs?: number;
}): JobCatalog {
  const sweep = (intervalMs: number) => ({
    maxAttempts: sweepMaxAttempts,
    backoff: sweepBackoff,
    visibilityTimeoutMs: sweepVisibilityTimeoutMs,
    recurring: { intervalMs, payload: {} },
  });
  const issuerJobs =
    options.issuers === undefined
      ? []
      : [
          fundDisbursementJob({
            issuers: options.issuers,
            ...(options.fundingVisibilityTimeoutMs === undefined
              ? {}
              : { visibilityTimeoutMs: options.fundingVisibilityTimeoutMs }),
          }),
          awaitingCardSweepJob({ sweepIntervalMs: options.sweepIntervalMs }),
          followApplicationJob({ issuers: options.issuers }),
          ...cardControlJobs({ issuers: options.issuers }),
          registerTargetJob({ issuers: options.issuers }),
          applyNotificationJob({ issuers: options.issuers }),
          ...reconciliationJobs({
            issuers: options.issuers,
            intervalMs: options.reconciliationIntervalMs ?? defaultReconciliationIntervalMs,
          }),
        ];
  const definitions: AnyJobDefinition[] = [
    ...(issuerJobs as AnyJobDefinition[]),
    releaseOpenJob,
    auditChainJob({ intervalMs: options.sweepIntervalMs, settleMs: options.auditSettleMs ?? defaultAuditSettleMs }),
    ...((options.webhooks === undefined ? [] : webhookJobs(options.webhooks)) as AnyJobDefinition[]),
    defineJob<NoPayload>({
      name: expireDueJobName,
      ...sweep(options.sweepIntervalMs),
      run: async (context) => {
        const expired = await expireDueUserTasksInRounds(context.db, context);
        if (expired > 0) context.log.info({ expired }, 'user tasks expired');
      },
    }),
    defineJob<NoPayload>({
      name: deleteExpiredIdempotencyKeysName,
      ...sweep(options.sweepIntervalMs),
      run: async (context) => {
        const { deleted, caughtUp } = await deleteExpiredIdempotencyKeys(context.db, context);
        // A run the worker stopped (its signal aborted) is not behind: it simply ended early.
        if (!caughtUp && !context.signal.aborted) {
          context.log.warn({ deleted }, 'idempotency key cleanup is behind; the next run continues');
        }
      },
    }),
    defineJob<NoPayload>({
      name: deleteSucceededJobsName,
      ...sweep(jobRetentionIntervalMs),
      run: async (context) => {
        await deleteSucceededJobs(context.db, context);
      },
    }),
  ];
  return definitions;
}
