import type { Db } from '../platform/db.js';
import type { Failure, Result } from '../platform/errors.js';
import { writeEvents } from '../platform/events.js';
import {
  claimIdempotencyKey,
  type IdempotencyClaim,
  type StoredResponse,
  storeIdempotentResponse,
} from '../platform/idempotency.js';
import { enqueueJobs } from '../platform/jobs.js';
import { inTransaction } from '../platform/transaction.js';
import { type Actor, type UnitContext, UnitFailure, UnitOfWork } from './unit.js';

/**
 * The one runner of state changes. Inside one transaction, in this order: claim the
 * `Idempotency-Key` (a replay answers from the stored response and does nothing), run the work,
 * store its response, write its events and jobs, and last apply its ledger operations — so a hot
 * pool's lock is held for the lock, one write and the commit. A failure from the work or a ledger
 * refusal rolls everything back, the key's claim included. A lost deadlock or serialization race
 * runs the whole unit again.
 */

export interface RunOptions<T> {
  /** Makes the unit idempotent: the key is claimed first and `respond(value)` is stored with it. */
  idempotency?: { claim: IdempotencyClaim; respond(value: T): StoredResponse } | undefined;
  /** The unit's clock reading; now by default. */
  now?: Date | undefined;
}

export type UnitOutcome<T> =
  | { ok: true; replayed: false; value: T }
  | { ok: true; replayed: true; response: StoredResponse }
  | { ok: false; failure: Failure };

export type Work<T> = (unit: UnitOfWork) => Promise<Result<T>>;

/** Runs one unit in its own transaction and commits it. */
export async function runUnit<T>(
  db: Db,
  context: UnitContext,
  work: Work<T>,
  options: RunOptions<T> = {},
): Promise<UnitOutcome<T>> {
  try {
    const now = options.now ?? new Date();
    return await inTransaction(db, (tx) => runUnitIn(tx, context, now, work, options));
  } catch (error) {
    if (error instanceof UnitFailure) return { ok: false, failure: error.failure };
    throw error;
  }
}

/**
 * Runs one unit inside a transaction the caller owns (a savepoint of a batch, or the runner's
 * own). A failure is thrown as `UnitFailure` so that the caller rolls back what the unit wrote.
 */
export async function runUnitIn<T>(
  tx: Db,
  context: UnitContext,
  now: Date,
  work: Work<T>,
  options: RunOptions<T>,
): Promise<UnitOutcome<T>> {
  const unit = new UnitOfWork(tx, context, now);
  const idempotency = options.idempotency;
  if (idempotency !== undefined) {
    const claimed = await claimIdempotencyKey(tx, idempotency.claim, now);
    if (!claimed.ok) throw new UnitFailure(claimed.failure);
    if (claimed.value !== undefined) return { ok: true, replayed: true, response: claimed.value };
  }
  const result = await work(unit);
  if (!result.ok) throw new UnitFailure(result.failure);
  await writeEvents(
    tx,
    { organizationId: unit.organizationId, requestId: unit.requestId, actor: actorName(unit.actor), now },
    unit.takeEvents(),
    idempotency === undefined
      ? undefined
      : storeIdempotentResponse(idempotency.claim, idempotency.respond(result.value)),
  );
  await enqueueJobs(tx, unit.takeJobs(), now);
  // Last: the money. A refusal rolls back everything above, the stored response included.
  await unit.flushLedger();
  return { ok: true, replayed: false, value: result.value };
}

/** How an actor is recorded beside what it did. */
export function actorName(actor: Actor): string {
  switch (actor.kind) {
    case 'api_key':
      return `api_key:${actor.id}`;
    case 'operator':
      return 'operator';
    case 'system':
      return `system:${actor.id}`;
  }
}

/** The context of work done by the system itself, e.g. a job, for one organization. */
export function systemContext(organizationId: string, jobName: string): UnitContext {
  return { organizationId, actor: { kind: 'system', id: jobName }, requestId: null };
}
