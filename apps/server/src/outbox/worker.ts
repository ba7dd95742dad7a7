import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../platform/db.js';
import { inTransaction } from '../platform/http.js';
import { expireDueUserTasks, expiryBatchSize } from '../tasks/service.js';

/** Most rounds one sweep runs before yielding to the next tick. */
const maxRoundsPerSweep = 20;
/** Most expired idempotency keys deleted in one round. */
const idempotencyCleanupBatchSize = 1_000;

/**
 * Background jobs of this issue: expiring reservations whose task window ended, and deleting
 * idempotency keys past their 24 hours. Each round is one short transaction claiming rows with
 * SKIP LOCKED, so several workers can share a database.
 */
export async function sweepOnce(db: Db): Promise<{ expired: number; keysDeleted: number }> {
  let expired = 0;
  for (let round = 0; round < maxRoundsPerSweep; round++) {
    const count = await inTransaction(db, (tx) => expireDueUserTasks(tx));
    expired += count;
    if (count < expiryBatchSize) break;
  }
  const deleted = await db
    .deleteFrom('idempotency_keys')
    .where(
      'key',
      'in',
      db
        .selectFrom('idempotency_keys')
        .select('key')
        .where('expires_at', '<', new Date())
        .limit(idempotencyCleanupBatchSize),
    )
    .where('expires_at', '<', new Date())
    .executeTakeFirst();
  return { expired, keysDeleted: Number(deleted.numDeletedRows) };
}

export interface Worker {
  stop(): Promise<void>;
}

export function startWorker(
  db: Db,
  options: { intervalMs: number; log: FastifyBaseLogger; keepAlive?: boolean },
): Worker {
  let running: Promise<void> | undefined;
  let stopped = false;
  const tick = () => {
    if (running !== undefined || stopped) return;
    running = sweepOnce(db)
      .then((result) => {
        if (result.expired > 0) options.log.info(result, 'worker swept');
      })
      .catch((error: unknown) => options.log.error({ err: error }, 'worker sweep failed'))
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(tick, options.intervalMs);
  if (options.keepAlive !== true) timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
