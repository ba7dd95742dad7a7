import { sql } from 'kysely';
import { type Db, transactionsInterleave } from '../platform/db.js';
import type { Failure, Result } from '../platform/errors.js';
import { writeEvents } from '../platform/events.js';
import {
  claimIdempotencyKeys,
  type IdempotencyClaim,
  releaseIdempotencyKeys,
  type StoredResponse,
  storeIdempotentResponses,
} from '../platform/idempotency.js';
import { enqueueJobs } from '../platform/jobs.js';
import { observeUnitBatch } from '../platform/metrics.js';
import { inTransaction } from '../platform/transaction.js';
import {
  type Actor,
  applyLedgerOf,
  type DeferredInsert,
  type DeferredTable,
  type UnitContext,
  UnitFailure,
  UnitOfWork,
} from './unit.js';

/**
 * The one runner of state changes, for one unit or a batch of them. Inside one transaction, in
 * this order: claim the units' `Idempotency-Key`s (a replay answers from the stored response and
 * does nothing), run the work, store the responses and write the events in one statement, enqueue
 * the jobs, and last apply the ledger operations of every unit as one ledger batch — so a hot
 * pool's lock is held for the lock, one write and the commit.
 *
 * A batch answers each unit as if the units had run one after another in the batch's order:
 * - a unit that fails without having written anything gives its key back and answers alone;
 * - a unit that fails after writing (its work said so, or the ledger refused its money) cannot be
 *   taken out of the transaction, so the whole attempt rolls back and runs again without it;
 * - a lost deadlock or serialization race runs the attempt again;
 * - an exception (a bug, a database error) in a batch of several runs each unit again alone, so
 *   that it reaches only the caller whose unit raised it.
 * Two units with the same `Idempotency-Key`, or the same conflict key (two completions of one user
 * task), never share a transaction: the later waits for the next one, and sees what the first did.
 */

export interface UnitRequest<I, T> {
  context: UnitContext;
  input: I;
  /** Makes the unit idempotent: the key is claimed first and `respond(value)` is stored with it. */
  idempotency?: { claim: IdempotencyClaim; respond(value: T): StoredResponse } | undefined;
}

export type UnitOutcome<T> =
  | { ok: true; replayed: false; value: T }
  | { ok: true; replayed: true; response: StoredResponse }
  | { ok: false; failure: Failure };

/**
 * A unit's answer from set-wise work. A failure is assumed to have written something (so the
 * attempt is rolled back and run again without it) unless the work marks it `wroteNothing`.
 */
export type Answer<T> = Result<T> | { ok: false; failure: Failure; wroteNothing: true };

/** Work over several units at once; answers each unit, in order. Every unit shares one transaction. */
export type SetWork<I, T> = (units: readonly UnitOfWork[], inputs: readonly I[]) => Promise<Answer<T>[]>;

/** Work over one unit. */
export type Work<T> = (unit: UnitOfWork) => Promise<Result<T>>;

/** A failure that wrote nothing: the batch answers it without running again. */
export function wroteNothing<T>(result: Result<never>): Answer<T> {
  if (result.ok) return result;
  return { ok: false, failure: result.failure, wroteNothing: true };
}

export interface RunOptions {
  /** The units' clock reading; now by default. */
  now?: Date | undefined;
}

/** Runs one unit in its own transaction and commits it. An exception reaches the caller. */
export async function runUnit<T>(
  db: Db,
  context: UnitContext,
  work: Work<T>,
  options: RunOptions & {
    idempotency?: { claim: IdempotencyClaim; respond(value: T): StoredResponse } | undefined;
  } = {},
): Promise<UnitOutcome<T>> {
  const [settled] = await runUnits(
    db,
    [{ context, input: undefined, idempotency: options.idempotency }],
    async (units) => {
      const [unit] = units;
      if (unit === undefined) return [];
      return [await work(unit)];
    },
    options,
  );
  if (settled === undefined) throw new Error('the runner answers every unit');
  if ('error' in settled) throw settled.error;
  return settled.outcome;
}

/** A unit's end: its outcome, or the exception it raised. */
export type Settled<T> = { outcome: UnitOutcome<T> } | { error: unknown };

/**
 * Runs a batch of units of one organization and answers each, in order. See the comment at the
 * top of this file for how each unit is answered.
 */
export async function runUnits<I, T>(
  db: Db,
  requests: readonly UnitRequest<I, T>[],
  work: SetWork<I, T>,
  options: RunOptions & { conflictKey?: ((input: I) => string | undefined) | undefined } = {},
): Promise<Settled<T>[]> {
  const now = options.now ?? new Date();
  const settled: Settled<T>[] = new Array(requests.length);
  for (const wave of wavesOf(requests, options.conflictKey)) {
    const answers = await runWave(
      db,
      wave.map((index) => requests[index] as UnitRequest<I, T>),
      work,
      now,
    );
    wave.forEach((index, position) => {
      settled[index] = answers[position] as Settled<T>;
    });
  }
  return settled;
}

/**
 * Splits a batch into waves that each hold at most one unit per idempotency key and per conflict
 * key, keeping the batch's order; a later duplicate runs in a later wave, after the first commits.
 */
function wavesOf<I, T>(
  requests: readonly UnitRequest<I, T>[],
  conflictKey: ((input: I) => string | undefined) | undefined,
): number[][] {
  const waves: { members: number[]; keys: Set<string> }[] = [];
  requests.forEach((request, index) => {
    const keys: string[] = [];
    const claim = request.idempotency?.claim;
    if (claim !== undefined) keys.push(`idempotency\u0000${claim.scope}\u0000${claim.key}`);
    const conflict = conflictKey?.(request.input);
    if (conflict !== undefined) keys.push(`conflict\u0000${conflict}`);
    let wave = waves.find((candidate) => keys.every((key) => !candidate.keys.has(key)));
    if (wave === undefined) {
      wave = { members: [], keys: new Set() };
      waves.push(wave);
    }
    wave.members.push(index);
    for (const key of keys) wave.keys.add(key);
  });
  return waves.map((wave) => wave.members);
}

/** Ends an attempt with failures that are final; the attempt rolls back and runs without them. */
class RunAgainWithout extends Error {
  constructor(readonly failures: ReadonlyMap<number, Failure>) {
    super('a unit of the batch failed after writing; running the batch again without it');
  }
}

async function runWave<I, T>(
  db: Db,
  requests: readonly UnitRequest<I, T>[],
  work: SetWork<I, T>,
  now: Date,
): Promise<Settled<T>[]> {
  const settled: (Settled<T> | undefined)[] = new Array(requests.length);
  let remaining = requests.map((_, index) => index);
  let attempts = 0;
  while (remaining.length > 0) {
    attempts++;
    const members = remaining;
    try {
      const outcomes = await inTransaction(db, (tx) =>
        attempt(tx, transactionsInterleave(db), requests, members, work, now),
      );
      observeUnitBatch(members.length, attempts);
      members.forEach((index, position) => {
        settled[index] = { outcome: outcomes[position] as UnitOutcome<T> };
      });
      remaining = [];
    } catch (error) {
      if (error instanceof RunAgainWithout) {
        for (const [index, failure] of error.failures) settled[index] = { outcome: { ok: false, failure } };
        remaining = members.filter((index) => !error.failures.has(index));
      } else if (error instanceof UnitFailure && members.length === 1) {
        settled[members[0] as number] = { outcome: { ok: false, failure: error.failure } };
        remaining = [];
      } else if (members.length === 1) {
        settled[members[0] as number] = { error };
        remaining = [];
      } else {
        // Whose exception it was cannot be told inside one transaction: each unit runs alone.
        const alone = await Promise.all(
          members.map((index) => runWave(db, [requests[index] as UnitRequest<I, T>], work, now)),
        );
        members.forEach((index, position) => {
          settled[index] = alone[position]?.[0];
        });
        remaining = [];
      }
    }
  }
  return settled.map((answer) => {
    if (answer === undefined) throw new Error('the runner answers every unit');
    return answer;
  });
}

/** One attempt at the units `members` (indexes into `requests`), in the caller's transaction. */
async function attempt<I, T>(
  tx: Db,
  interleaved: boolean,
  requests: readonly UnitRequest<I, T>[],
  members: readonly number[],
  work: SetWork<I, T>,
  now: Date,
): Promise<UnitOutcome<T>[]> {
  const outcomes = new Map<number, UnitOutcome<T>>();
  const claimed = members.filter((index) => requests[index]?.idempotency !== undefined);
  const claims = await claimIdempotencyKeys(
    tx,
    claimed.map((index) => requests[index]?.idempotency?.claim as IdempotencyClaim),
    now,
  );
  claimed.forEach((index, position) => {
    const claim = claims[position];
    if (claim === undefined) throw new Error('every claim is answered');
    if (!claim.ok) outcomes.set(index, { ok: false, failure: claim.failure });
    else if (claim.value !== undefined) outcomes.set(index, { ok: true, replayed: true, response: claim.value });
  });

  const working = members.filter((index) => !outcomes.has(index));
  const units = working.map(
    (index) => new UnitOfWork(tx, (requests[index] as UnitRequest<I, T>).context, now, interleaved),
  );
  const answers =
    working.length === 0
      ? []
      : await work(
          units,
          working.map((index) => requests[index]?.input as I),
        );

  // Failures: final when the unit wrote nothing, or when it is the first that wrote (everything
  // before it either committed or wrote nothing, so its answer cannot depend on a rolled-back
  // write). Failures after a failed writer may be artifacts of its writes, so they run again.
  const final = new Map<number, Failure>();
  const released: IdempotencyClaim[] = [];
  let writerFailed = false;
  const succeeded: { index: number; unit: UnitOfWork; value: T }[] = [];
  working.forEach((index, position) => {
    const answer = answers[position];
    const unit = units[position];
    if (answer === undefined || unit === undefined) throw new Error('set-wise work answers every unit');
    if (answer.ok) {
      succeeded.push({ index, unit, value: answer.value });
    } else if ('wroteNothing' in answer) {
      final.set(index, answer.failure);
      const claim = requests[index]?.idempotency?.claim;
      if (claim !== undefined) released.push(claim);
    } else if (!writerFailed) {
      writerFailed = true;
      final.set(index, answer.failure);
    }
  });
  if (writerFailed || (succeeded.length === 0 && final.size > 0)) throw new RunAgainWithout(final);
  for (const [index, failure] of final) outcomes.set(index, { ok: false, failure });

  await releaseIdempotencyKeys(tx, released);
  const stored = succeeded.flatMap(({ index, value }) => {
    const idempotency = requests[index]?.idempotency;
    return idempotency === undefined ? [] : [{ claim: idempotency.claim, response: idempotency.respond(value) }];
  });
  const responses = storeIdempotentResponses(stored);
  await writeEvents(
    tx,
    succeeded.map(({ unit }) => ({
      context: { organizationId: unit.organizationId, requestId: unit.requestId, actor: actorName(unit.actor), now },
      drafts: unit.takeEvents(),
    })),
    [
      ...(responses === undefined ? [] : [responses]),
      ...insertsOf(
        tx,
        succeeded.map(({ unit }) => unit),
      ),
    ],
  );
  await enqueueJobs(
    tx,
    succeeded.flatMap(({ unit }) => unit.takeJobs()),
    now,
  );

  // Last: the money. A refused unit rolls the attempt back; the ledger took the units in order,
  // so each refusal is final up to the first unit the ledger applied in part.
  const refused = await applyLedgerOf(
    tx,
    succeeded.map(({ unit }) => unit),
  );
  if (refused.size > 0) {
    const failures = new Map<number, Failure>();
    for (const { index, unit } of succeeded) {
      const refusal = refused.get(unit);
      if (refusal === undefined) continue;
      failures.set(index, refusal.failure);
      if (refusal.partlyApplied) break;
    }
    throw new RunAgainWithout(failures);
  }
  for (const { index, value } of succeeded) outcomes.set(index, { ok: true, replayed: false, value });
  return members.map((index) => {
    const outcome = outcomes.get(index);
    if (outcome === undefined) throw new Error('every unit of an attempt is answered');
    return outcome;
  });
}

/** The rows units write with their events, as one INSERT per table. */
function insertsOf(tx: Db, units: readonly UnitOfWork[]) {
  const byTable = new Map<DeferredTable, DeferredInsert[]>();
  for (const unit of units) {
    for (const insert of unit.takeInserts()) {
      const rows = byTable.get(insert.table) ?? [];
      rows.push(insert);
      byTable.set(insert.table, rows);
    }
  }
  return [...byTable.entries()].map(
    ([table, inserts]) => sql`${tx.insertInto(table).values(inserts.map((insert) => insert.row))}`,
  );
}

/** How an actor is recorded beside what it did. */
export function actorName(actor: Actor): string {
  switch (actor.kind) {
    case 'api_key':
      return `api_key:${actor.id}`;
    case 'client':
      return `client:${actor.id}`;
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
