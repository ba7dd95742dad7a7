import { sql } from 'kysely';
import { consentRequiredFailure, missingConsents, missingConsentsOfBatch } from '../agreements/consent.js';
import { participantsWithCards } from '../cards/service.js';
import { openDisbursement } from '../disbursements/service.js';
import type { LedgerOperation, LedgerRejection, LedgerResult } from '../ledger/ledger.js';
import { assert, type Failure, fail, ok, type Result } from '../platform/errors.js';
import type { EventType } from '../platform/events.js';
import {
  newId,
  resolutionTransferId,
  resolutionTransferIdOfColumn,
  resolutionTransferIdOfRow,
} from '../platform/ids.js';
import { needsApproval, type Verification } from '../tasks/verification.js';
import { type Answer, wroteNothing } from '../work/runner.js';
import { type LedgerRefusal, sharedBy, type UnitOfWork } from '../work/unit.js';
import {
  getUserTask,
  getUserTasks,
  openUserTaskStatuses,
  presentUserTask,
  type UserTask,
  type UserTaskRow,
  type UserTaskStatus,
  userTaskOf,
} from './usertask.js';

/** A user task row as a transition leaves it. */
export type MovedRow = Omit<UserTaskRow, 'disbursement_id'>;

/**
 * The only writer of a user task's state. Each transition names the states it starts from, the
 * state it ends in, what it does to the reservation and the event it emits; `transition` writes
 * the row, queues the ledger operation and emits the event together, for one user task or a
 * bounded set. Assignment, which creates the row and its reservation, lives here too.
 *
 * Under a dual-approval policy `complete` submits instead (`assigned → pending_approval`, the
 * reservation held), and a second person's `approve` releases it the way completion does (event
 * `usertask.approved`, then `usertask.completed`), or `reject` returns it to `assigned` to be
 * completed again. Funding (`completed → funded`) and a failed funding (`completed →
 * funding_failed`) are written by `usertasks/funding.ts`.
 */
export const transitions = {
  complete: { from: ['assigned'], to: 'completed', event: 'usertask.completed', ledger: 'post' },
  submit: { from: ['assigned'], to: 'pending_approval', event: 'usertask.pending_approval', ledger: null },
  approve: { from: ['pending_approval'], to: 'completed', event: 'usertask.approved', ledger: 'post' },
  reject: { from: ['pending_approval'], to: 'assigned', event: 'usertask.rejected', ledger: null },
  cancel: { from: openUserTaskStatuses, to: 'cancelled', event: 'usertask.cancelled', ledger: 'void' },
  expire: { from: openUserTaskStatuses, to: 'expired', event: 'usertask.expired', ledger: 'void' },
} as const satisfies Record<
  string,
  { from: readonly UserTaskStatus[]; to: UserTaskStatus; event: EventType; ledger: 'post' | 'void' | null }
>;

export type TransitionName = keyof typeof transitions;

/**
 * What a release writes beside the state. Completion, which writes per-row values (amount,
 * verifier, evidence) for a batch of units, has its own set-wise statement: `completeEach`.
 */
export type Change = { name: 'cancel'; reason: string } | { name: 'expire' };

/**
 * What a release of an open user task clears beside its state: the claim of a completion that
 * was awaiting approval (its events keep it). An assigned row has none to clear.
 */
const claimCleared = { completed_amount_cents: null, completed_by: null, evidence: null, completed_at: null } as const;

/** Which user tasks move: named ones, or a bounded set of a program's (or one participant's) open ones. */
export type Target =
  | { ids: readonly string[] }
  | { programId: string; userId?: string | undefined; limit: number }
  /** Due for expiry: claimed with SKIP LOCKED, so several workers share the sweep. */
  | { dueBy: Date; limit: number };

/**
 * Moves the targeted user tasks that are in one of the transition's starting states, and
 * answers with the rows it moved (their new state). The ledger operations are queued on the unit
 * with `refusal` (by default a refusal is a bug: a void cannot be refused).
 */
export async function transition(
  unit: UnitOfWork,
  change: Change,
  target: Target,
  refusal?: (results: readonly LedgerResult[], row: MovedRow) => Failure | undefined,
): Promise<MovedRow[]> {
  const spec = transitions[change.name];
  const { tx, organizationId, now } = unit;
  let query = tx
    .updateTable('user_tasks')
    .set({
      status: spec.to,
      resolution_transfer_id: resolutionTransferIdOfRow,
      updated_at: now,
      ...claimCleared,
      ...(change.name === 'cancel' ? { cancellation_reason: change.reason, cancelled_at: now } : { expired_at: now }),
    })
    .where('organization_id', '=', organizationId)
    .where('status', 'in', spec.from);
  if ('ids' in target) {
    if (target.ids.length === 0) return [];
    query = query.where('id', 'in', [...target.ids]);
  } else if ('programId' in target) {
    // The inner select takes no lock: the UPDATE waits for rows another unit holds and then
    // re-checks their state, so a release never skips a user task that is being completed.
    let inner = tx
      .selectFrom('user_tasks')
      .select('id')
      .where('organization_id', '=', organizationId)
      .where('program_id', '=', target.programId)
      .where('status', 'in', spec.from)
      .limit(target.limit);
    if (target.userId !== undefined) inner = inner.where('user_id', '=', target.userId);
    query = query.where('program_id', '=', target.programId).where('id', 'in', inner);
  } else {
    const inner = tx
      .selectFrom('user_tasks')
      .select('id')
      .where('organization_id', '=', organizationId)
      .where('status', 'in', spec.from)
      .where('expires_at', '<=', target.dueBy)
      .orderBy('expires_at')
      .limit(target.limit)
      .forUpdate()
      .skipLocked();
    query = query.where('id', 'in', inner);
  }
  const rows = await query.returningAll().execute();
  for (const row of rows) {
    queueMoved(unit, change.name, row, null, refusal === undefined ? undefined : (results) => refusal(results, row));
  }
  return rows;
}

/**
 * Queues what moving one row means beside its state: the ledger operation that resolves its
 * reservation, and its event.
 */
function queueMoved(
  unit: UnitOfWork,
  name: 'complete' | 'cancel' | 'expire',
  row: MovedRow,
  disbursementId: string | null,
  refusal: LedgerRefusal | undefined,
): void {
  const spec = transitions[name];
  assert(row.resolution_transfer_id === resolutionTransferId(row.id), `user task ${row.id} resolves under another id`);
  const operation: LedgerOperation =
    spec.ledger === 'post'
      ? {
          type: 'post',
          id: resolutionTransferId(row.id),
          pendingId: row.reservation_transfer_id,
          amountCents: row.completed_amount_cents ?? undefined,
        }
      : { type: 'void', id: resolutionTransferId(row.id), pendingId: row.reservation_transfer_id };
  unit.moveMoney([operation], refusal);
  unit.emit(spec.event, presentUserTask(userTaskOf({ ...row, disbursement_id: disbursementId })));
}

/**
 * Why one user task could not move: missing, an amount above its reservation (completion only),
 * or in a state the transition does not start from. One read, after the transition found no row.
 */
export async function refusalOf(unit: UnitOfWork, id: string, action: string): Promise<Result<never>> {
  return refusalFrom(await getUserTask(unit.tx, unit.organizationId, id), id, action, unit.now);
}

/** What a completion asked for, to tell why it could not move. */
interface Claim {
  amountCents?: bigint | undefined;
  completedBy?: string | undefined;
  referenced: boolean;
}

/** The same answer from a user task already read (`undefined`: it does not exist). */
export function refusalFrom(
  current: UserTask | undefined,
  id: string,
  action: string,
  now: Date,
  claim?: Claim,
): Result<never> {
  if (current === undefined) return fail('not_found', `No user task ${id}`);
  if (current.status === 'assigned' && claim !== undefined) {
    const refused = claimRefusal(current, claim);
    if (refused !== undefined) return refused;
  }
  if (current.expiresAt !== null && current.expiresAt <= now && openStatus(current.status)) {
    return fail('invalid_state', `User task ${id} expired at ${current.expiresAt.toISOString()}`);
  }
  return fail('invalid_state', `User task ${id} is ${current.status} and cannot be ${action}`);
}

function openStatus(status: UserTaskStatus): boolean {
  return (openUserTaskStatuses as readonly UserTaskStatus[]).includes(status);
}

/** Why an assigned user task refuses this completion, by its amount and its verification policy. */
function claimRefusal(current: UserTask, claim: Claim): Result<never> | undefined {
  if (claim.amountCents !== undefined && claim.amountCents > current.monetaryValueCents) {
    return fail('validation_error', 'amount cannot exceed the reserved monetaryValue', 'amount');
  }
  const { verification } = current;
  if (verification.mode === 'evidence' && !claim.referenced) {
    return fail(
      'validation_error',
      `User task ${current.id} requires evidence: at least one typed reference in evidence.references`,
      'evidence.references',
    );
  }
  if (needsApproval(verification, claim.amountCents ?? current.monetaryValueCents) && claim.completedBy === undefined) {
    return fail(
      'validation_error',
      `User task ${current.id} requires a second person's approval: completedBy names who completed it`,
      'completedBy',
    );
  }
  return undefined;
}

/** A refused reservation or release of one program's pool, in the API's words. */
export function programRefusal(reason: LedgerRejection, programId: string): Failure {
  switch (reason) {
    case 'exceeds_credits':
      return { code: 'insufficient_funds', message: `Program ${programId} has too little available in its pool` };
    case 'account_frozen':
      return { code: 'invalid_state', message: `Program ${programId} is not active; nothing is reserved or released` };
    default:
      // Any other refusal means the code built a wrong operation.
      assert(false, `the ledger refused a transfer of program ${programId}: ${reason}`);
  }
}

export function onlyRefusal(results: readonly LedgerResult[], programId: string): Failure | undefined {
  const [result] = results;
  assert(result !== undefined, 'the ledger answers every operation');
  return result.ok ? undefined : programRefusal(result.reason, programId);
}

/**
 * Cancels up to `limit` open user tasks of a program (or of one participant in it) and voids
 * their reservations; answers how many. Used by closing and by dismissal.
 */
export async function releaseOpenUserTasks(
  unit: UnitOfWork,
  scope: { programId: string; userId?: string | undefined },
  reason: string,
  limit: number,
): Promise<number> {
  const rows = await transition(unit, { name: 'cancel', reason }, { ...scope, limit });
  return rows.length;
}

export interface CompleteInput {
  amountCents?: bigint | undefined;
  completedBy?: string | undefined;
  evidence?: Record<string, unknown> | undefined;
}

/** Whether a completion's evidence carries a typed reference (the edge checked their shape). */
function referenced(evidence: Record<string, unknown> | undefined): boolean {
  const references = evidence?.references;
  return Array.isArray(references) && references.length > 0;
}

/**
 * Verifies a milestone: posts the reservation (a smaller `amount` posts only that and releases
 * the rest to the pool), moving the money to in_transit, and opens the disbursement — or, where
 * the policy asks for a second person, submits it for approval with the reservation held.
 */
export async function complete(unit: UnitOfWork, id: string, input: CompleteInput): Promise<Result<UserTask>> {
  const [answer] = await completeEach([unit], [{ id, ...input }]);
  assert(answer !== undefined, 'every completion is answered');
  return answer;
}

/**
 * The SQL of "this completion waits for approval", over the row being moved (`ut`) and the
 * completion's amount (`v.amount`); `needsApproval` says the same in code.
 */
const awaitsApproval = sql<boolean>`(ut.verification_mode = 'dual_approval' AND (ut.verification_threshold_cents IS NULL
        OR COALESCE(v.amount, ut.monetary_value_cents) > ut.verification_threshold_cents))`;

/**
 * Completes a batch of user tasks, one per unit, with one statement per table: the user tasks
 * move together (locked in id order), the disbursements open together, and each unit queues its
 * own post and events. Each row's verification policy is on the row itself, so the statement
 * decides per row between completing and submitting for approval (no money moves then), and
 * refuses a completion its policy does not accept: evidence mode without a reference, dual
 * approval without `completedBy`. A user task that cannot move answers its unit with why, having
 * written nothing. The ids must be distinct (the runner puts a second completion of one user
 * task in a later transaction).
 */
export async function completeEach(
  units: readonly UnitOfWork[],
  inputs: readonly (CompleteInput & { id: string })[],
): Promise<Answer<UserTask>[]> {
  const shared = sharedBy(units);
  if (shared === undefined) return [];
  const { tx, organizationId, now, interleaved } = shared;
  const values = [...inputs]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map(
      (input) =>
        sql`(${input.id}::text, ${input.amountCents ?? null}::bigint, ${input.completedBy ?? null}::text, ${input.evidence === undefined ? null : JSON.stringify(input.evidence)}::jsonb, ${referenced(input.evidence)}::boolean)`,
    );
  const at = sql`${now.toISOString()}::timestamptz`;
  // An assignment past its window can no longer complete; the sweep expires it. Where other
  // transactions run at the same time, the rows are locked in id order first (an UPDATE joined
  // to a list locks in whatever order its plan reads, and two batches sharing user tasks could
  // deadlock); the embedded database runs one transaction at a time and skips that cost. The
  // `= ANY` names the rows for the primary key's index, whatever the planner makes of the join.
  const ids = inputs.map((input) => input.id);
  const moved = await sql<MovedRow>`UPDATE user_tasks AS ut SET
      status = CASE WHEN ${awaitsApproval} THEN ${transitions.submit.to} ELSE ${transitions.complete.to} END,
      resolution_transfer_id = CASE WHEN ${awaitsApproval} THEN NULL
        ELSE ${resolutionTransferIdOfColumn(sql.ref('ut.id'))} END,
      updated_at = ${at},
      completed_amount_cents = COALESCE(v.amount, ut.monetary_value_cents),
      completed_by = v.completed_by,
      evidence = v.evidence,
      completed_at = ${at}
    FROM (VALUES ${sql.join(values)}) AS v (id, amount, completed_by, evidence, referenced)${
      interleaved
        ? sql`,
      (SELECT id FROM user_tasks
        WHERE organization_id = ${organizationId} AND id = ANY(${ids}::text[])
        ORDER BY id FOR NO KEY UPDATE) AS locked`
        : sql``
    }
    WHERE ut.organization_id = ${organizationId} AND ut.id = ANY(${ids}::text[])
      AND ut.id = v.id${interleaved ? sql` AND ut.id = locked.id` : sql``}
      AND ut.status IN (${sql.join(transitions.complete.from)})
      AND (ut.expires_at IS NULL OR ut.expires_at > ${at})
      AND (v.amount IS NULL OR ut.monetary_value_cents >= v.amount)
      AND (ut.verification_mode <> 'evidence' OR v.referenced)
      AND (v.completed_by IS NOT NULL OR NOT ${awaitsApproval})
    RETURNING ut.*`.execute(tx);
  const movedById = new Map(moved.rows.map((row) => [row.id, row]));
  const current = await getUserTasks(
    tx,
    organizationId,
    inputs.filter((input) => !movedById.has(input.id)).map((input) => input.id),
  );

  // A participant who has not accepted what the program requires may not complete: the unit
  // fails with 409, and the runner runs the batch again without it (its row moved in this batch).
  const owed = await missingConsentsOfBatch(
    tx,
    organizationId,
    moved.rows.map((row) => ({ programId: row.program_id, userId: row.user_id })),
  );
  const owedBy = (row: MovedRow) => owed.get(row.program_id)?.get(row.user_id);

  // Whose cards exist decides, per disbursement, between funding now and waiting for a card.
  const released = moved.rows.filter((row) => row.status === transitions.complete.to && owedBy(row) === undefined);
  const withCards = await participantsWithCards(
    tx,
    organizationId,
    released.map((row) => row.user_id),
  );
  const answers: Answer<UserTask>[] = [];
  inputs.forEach((input, index) => {
    const unit = units[index];
    assert(unit !== undefined, 'one unit per completion');
    const row = movedById.get(input.id);
    if (row === undefined) {
      const claim = {
        amountCents: input.amountCents,
        completedBy: input.completedBy,
        referenced: referenced(input.evidence),
      };
      answers.push(wroteNothing(refusalFrom(current.get(input.id), input.id, 'completed', now, claim)));
      return;
    }
    const missing = owedBy(row);
    if (missing !== undefined) {
      answers.push({ ok: false, failure: consentRequiredFailure(missing) });
      return;
    }
    assertPolicyHeld(row, input);
    if (row.status === transitions.submit.to) {
      const submitted = userTaskOf({ ...row, disbursement_id: null });
      unit.emit(transitions.submit.event, presentUserTask(submitted));
      answers.push(ok(submitted));
      return;
    }
    answers.push(ok(release(unit, row, newId('disbursement'), withCards.has(row.user_id))));
  });
  return answers;
}

/** The statement's choice, checked against the policy in code (a CHECK holds it in the table too). */
function assertPolicyHeld(row: MovedRow, input: CompleteInput): void {
  const verification: Verification = {
    mode: row.verification_mode,
    amountThresholdCents: row.verification_threshold_cents,
  };
  const amountCents = row.completed_amount_cents;
  assert(amountCents !== null && amountCents > 0n, `completed user task ${row.id} has no amount`);
  const waits = needsApproval(verification, amountCents);
  assert(
    row.status === (waits ? transitions.submit.to : transitions.complete.to),
    `user task ${row.id} moved to ${row.status} against its ${verification.mode} policy`,
  );
  assert(
    verification.mode !== 'evidence' || referenced(input.evidence),
    `user task ${row.id} completed without evidence`,
  );
}

/**
 * Releases a verified milestone, completed or approved, with one code path: posts its
 * reservation (the completed amount; the rest returns to the pool), emits `usertask.completed`
 * and opens its disbursement, funded at once when the participant has a card.
 */
function release(unit: UnitOfWork, row: MovedRow, disbursementId: string, hasCard: boolean): UserTask {
  const amountCents = row.completed_amount_cents;
  assert(amountCents !== null && amountCents > 0n, `completed user task ${row.id} has no amount`);
  queueMoved(unit, 'complete', row, disbursementId, (results) => onlyRefusal(results, row.program_id));
  openDisbursement(unit, {
    id: disbursementId,
    userTaskId: row.id,
    programId: row.program_id,
    userId: row.user_id,
    amountCents,
    hasCard,
  });
  return userTaskOf({ ...row, disbursement_id: disbursementId });
}

/**
 * A second person approves a completion awaiting approval: the milestone is released exactly as
 * completion releases it (`usertask.approved`, then `usertask.completed`, the post and the
 * disbursement). The actor who completed it cannot approve it (`403 forbidden`). Like completion,
 * approval moves money: a paused program refuses it, and an expired window ends it.
 */
export async function approve(unit: UnitOfWork, id: string, approvedBy: string): Promise<Result<UserTask>> {
  const { tx, organizationId, now } = unit;
  const row = await tx
    .updateTable('user_tasks')
    .set({
      status: transitions.approve.to,
      resolution_transfer_id: resolutionTransferIdOfRow,
      approved_by: approvedBy,
      approved_at: now,
      updated_at: now,
    })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .where('status', 'in', transitions.approve.from)
    .where('completed_by', '<>', approvedBy)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .returningAll()
    .executeTakeFirst();
  if (row === undefined) return decisionRefusal(unit, id, 'approved', approvedBy, 'approvedBy');
  // Consent withdrawn (or a new version required) since the completion: approval waits for it.
  const missing = (await missingConsents(tx, organizationId, row.program_id, [row.user_id])).get(row.user_id);
  if (missing !== undefined) return { ok: false, failure: consentRequiredFailure(missing) };
  const hasCard = (await participantsWithCards(tx, organizationId, [row.user_id])).has(row.user_id);
  const disbursementId = newId('disbursement');
  unit.emit(transitions.approve.event, presentUserTask(userTaskOf({ ...row, disbursement_id: disbursementId })));
  return ok(release(unit, row, disbursementId, hasCard));
}

/**
 * A second person rejects a completion awaiting approval: the user task returns to `assigned`
 * with its reservation held, so it can be completed again with better evidence; the completion's
 * claim is cleared (its `usertask.pending_approval` event keeps it) and the rejection is recorded
 * on the row and in `usertask.rejected`. No money moves, so a paused program takes it. The actor
 * who completed it cannot reject it either: a second person decides, either way.
 */
export async function reject(
  unit: UnitOfWork,
  id: string,
  input: { rejectedBy: string; reason?: string | undefined },
): Promise<Result<UserTask>> {
  const { tx, organizationId, now } = unit;
  const row = await tx
    .updateTable('user_tasks')
    .set({
      status: transitions.reject.to,
      ...claimCleared,
      rejected_by: input.rejectedBy,
      rejected_at: now,
      rejection_reason: input.reason ?? null,
      updated_at: now,
    })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .where('status', 'in', transitions.reject.from)
    .where('completed_by', '<>', input.rejectedBy)
    .returningAll()
    .executeTakeFirst();
  if (row === undefined) return decisionRefusal(unit, id, 'rejected', input.rejectedBy, 'rejectedBy');
  const rejected = userTaskOf({ ...row, disbursement_id: null });
  unit.emit(transitions.reject.event, presentUserTask(rejected));
  return ok(rejected);
}

/** Why an approval or rejection did not move the user task: one read, after the update found no row. */
async function decisionRefusal(
  unit: UnitOfWork,
  id: string,
  action: 'approved' | 'rejected',
  actor: string,
  param: string,
): Promise<Result<never>> {
  const current = await getUserTask(unit.tx, unit.organizationId, id);
  if (current?.status === 'pending_approval' && current.completedBy === actor) {
    return fail('forbidden', `User task ${id} was completed by ${actor}; a different actor must decide`, param);
  }
  return refusalFrom(current, id, action, unit.now);
}

/** Cancels an open milestone and voids its reservation; works in a paused program too. */
export async function cancel(unit: UnitOfWork, id: string): Promise<Result<UserTask>> {
  const [cancelled] = await transition(unit, { name: 'cancel', reason: 'cancelled_by_request' }, { ids: [id] });
  if (cancelled === undefined) return refusalOf(unit, id, 'cancelled');
  return ok(userTaskOf({ ...cancelled, disbursement_id: null }));
}

/** Expires up to `limit` of the organization's open user tasks whose window ended; answers how many. */
export async function expireDue(unit: UnitOfWork, limit: number): Promise<number> {
  const rows = await transition(unit, { name: 'expire' }, { dueBy: unit.now, limit });
  return rows.length;
}
