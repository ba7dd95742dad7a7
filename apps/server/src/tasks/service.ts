import {
  applyLedgerBatch,
  assertAllApplied,
  type LedgerOperation,
  type LedgerRejection,
  type LedgerResult,
  type LedgerStep,
} from '../ledger/ledger.js';
import { type Db, dateOf } from '../platform/db.js';
import { assert, type Failure, fail, ok, type Result } from '../platform/errors.js';
import { newId, resolutionTransferId, resolutionTransferIdOfRow } from '../platform/ids.js';
import type { UserTaskStatus } from '../platform/schema.js';
import { findProgram } from '../programs/service.js';
import { getUser, takeSeat } from '../users/service.js';

export interface Task {
  id: string;
  programId: string;
  name: string;
  description: string | null;
  monetaryValueCents: bigint;
  startsAt: Date | null;
  endsAt: Date | null;
  metadata: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

type TaskRow = {
  id: string;
  program_id: string;
  name: string;
  description: string | null;
  monetary_value_cents: bigint;
  starts_at: Date | string | null;
  ends_at: Date | string | null;
  metadata: unknown;
  created_at: Date;
  updated_at: Date;
};

function taskOf(row: TaskRow): Task {
  return {
    id: row.id,
    programId: row.program_id,
    name: row.name,
    description: row.description,
    monetaryValueCents: row.monetary_value_cents,
    startsAt: dateOf(row.starts_at),
    endsAt: dateOf(row.ends_at),
    metadata: row.metadata as Record<string, string>,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function getTask(db: Db, organizationId: string, id: string): Promise<Task | undefined> {
  const row = await db
    .selectFrom('tasks')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined ? undefined : taskOf(row);
}

export async function listTasks(
  db: Db,
  organizationId: string,
  options: { afterId: string | undefined; limit: number; programId: string | undefined },
): Promise<Task[]> {
  let query = db
    .selectFrom('tasks')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .orderBy('id', 'desc')
    .limit(options.limit);
  if (options.afterId !== undefined) query = query.where('id', '<', options.afterId);
  if (options.programId !== undefined) query = query.where('program_id', '=', options.programId);
  return (await query.execute()).map(taskOf);
}

export interface CreateTaskInput {
  programId: string;
  name: string;
  description?: string | undefined;
  monetaryValueCents: bigint;
  startsAt?: string | undefined;
  endsAt?: string | undefined;
  metadata?: Record<string, string> | undefined;
}

export async function createTask(tx: Db, organizationId: string, input: CreateTaskInput): Promise<Result<Task>> {
  const program = await findProgram(tx, organizationId, input.programId);
  if (!program.ok) return program;
  if (program.value.status === 'closed') return fail('invalid_state', `Program ${input.programId} is closed`);
  if (
    input.startsAt !== undefined &&
    input.endsAt !== undefined &&
    new Date(input.startsAt) >= new Date(input.endsAt)
  ) {
    return fail('validation_error', 'endsAt must be after startsAt', 'endsAt');
  }
  const id = newId('task');
  await tx
    .insertInto('tasks')
    .values({
      organization_id: organizationId,
      id,
      program_id: input.programId,
      name: input.name,
      description: input.description ?? null,
      monetary_value_cents: input.monetaryValueCents,
      starts_at: input.startsAt ?? null,
      ends_at: input.endsAt ?? null,
      metadata: JSON.stringify(input.metadata ?? {}),
    })
    .execute();
  const task = await getTask(tx, organizationId, id);
  assert(task !== undefined, `task ${id} vanished inside its own transaction`);
  return ok(task);
}

export async function updateTask(
  tx: Db,
  organizationId: string,
  id: string,
  input: { name?: string; description?: string | null; endsAt?: string | null; metadata?: Record<string, string> },
): Promise<Result<Task>> {
  const task = await getTask(tx, organizationId, id);
  if (task === undefined) return fail('not_found', `No task ${id}`);
  if (input.endsAt && task.startsAt !== null && new Date(input.endsAt) <= task.startsAt) {
    return fail('validation_error', 'endsAt must be after startsAt', 'endsAt');
  }
  await tx
    .updateTable('tasks')
    .set({
      ...(input.name !== undefined ? { name: input.name } : {}),
      ...(input.description !== undefined ? { description: input.description } : {}),
      ...(input.endsAt !== undefined ? { ends_at: input.endsAt } : {}),
      ...(input.metadata !== undefined ? { metadata: JSON.stringify(input.metadata) } : {}),
      updated_at: new Date(),
    })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .execute();
  const updated = await getTask(tx, organizationId, id);
  assert(updated !== undefined, `task ${id} vanished inside its own transaction`);
  return ok(updated);
}

export interface UserTask {
  id: string;
  programId: string;
  userId: string;
  taskId: string | null;
  name: string | null;
  status: UserTaskStatus;
  monetaryValueCents: bigint;
  completedAmountCents: bigint | null;
  completedBy: string | null;
  evidence: Record<string, unknown> | null;
  cancellationReason: string | null;
  disbursementId: string | null;
  expiresAt: Date | null;
  completedAt: Date | null;
  cancelledAt: Date | null;
  expiredAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

function userTaskQuery(db: Db, organizationId: string) {
  return db
    .selectFrom('user_tasks as ut')
    .leftJoin('disbursements as d', (join) =>
      join.onRef('d.organization_id', '=', 'ut.organization_id').onRef('d.user_task_id', '=', 'ut.id'),
    )
    .selectAll('ut')
    .select('d.id as disbursement_id')
    .where('ut.organization_id', '=', organizationId);
}

type UserTaskRow = Awaited<ReturnType<ReturnType<typeof userTaskQuery>['executeTakeFirstOrThrow']>>;

function userTaskOf(row: UserTaskRow): UserTask {
  return {
    id: row.id,
    programId: row.program_id,
    userId: row.user_id,
    taskId: row.task_id,
    name: row.name,
    status: row.status,
    monetaryValueCents: row.monetary_value_cents,
    completedAmountCents: row.completed_amount_cents,
    completedBy: row.completed_by,
    evidence: (row.evidence ?? null) as Record<string, unknown> | null,
    cancellationReason: row.cancellation_reason,
    disbursementId: row.disbursement_id,
    expiresAt: dateOf(row.expires_at),
    completedAt: dateOf(row.completed_at),
    cancelledAt: dateOf(row.cancelled_at),
    expiredAt: dateOf(row.expired_at),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function getUserTask(db: Db, organizationId: string, id: string): Promise<UserTask | undefined> {
  const row = await userTaskQuery(db, organizationId).where('ut.id', '=', id).executeTakeFirst();
  return row === undefined ? undefined : userTaskOf(row);
}

export interface UserTaskFilter {
  afterId: string | undefined;
  limit: number;
  programId?: string | undefined;
  userId?: string | undefined;
  taskId?: string | undefined;
  status?: UserTaskStatus | undefined;
}

export async function listUserTasks(db: Db, organizationId: string, filter: UserTaskFilter): Promise<UserTask[]> {
  let query = userTaskQuery(db, organizationId).orderBy('ut.id', 'desc').limit(filter.limit);
  if (filter.afterId !== undefined) query = query.where('ut.id', '<', filter.afterId);
  if (filter.programId !== undefined) query = query.where('ut.program_id', '=', filter.programId);
  if (filter.userId !== undefined) query = query.where('ut.user_id', '=', filter.userId);
  if (filter.taskId !== undefined) query = query.where('ut.task_id', '=', filter.taskId);
  if (filter.status !== undefined) query = query.where('ut.status', '=', filter.status);
  return (await query.execute()).map(userTaskOf);
}

/** A domain value whose money still has to move, as the request's last step. */
export interface Staged<T> {
  value: T;
  ledger: LedgerStep;
}

function onlyRefusal(results: readonly LedgerResult[], programId: string) {
  const [result] = results;
  assert(result !== undefined, 'the ledger answers every operation');
  return result.ok ? undefined : programRefusal(result.reason, programId);
}

function programRefusal(reason: LedgerRejection, programId: string): Failure {
  switch (reason) {
    case 'exceeds_credits':
      return { code: 'insufficient_funds', message: `Program ${programId} has too little available in its pool` };
    case 'account_frozen':
      return { code: 'invalid_state', message: `Program ${programId} is not active; nothing is reserved or released` };
    default:
      return { code: 'internal_error', message: `The ledger refused the transfer: ${reason}` };
  }
}

export interface AssignInput {
  userId: string;
  programId?: string | undefined;
  taskId?: string | undefined;
  monetaryValueCents?: bigint | undefined;
  name?: string | undefined;
}

/**
 * Assigns a milestone: enrolls the user if needed and reserves the milestone's value from the
 * pool as a pending transfer. Either a task (whose value and window apply) or a program and an
 * amount for a one-off milestone.
 */
export async function assign(tx: Db, organizationId: string, input: AssignInput): Promise<Result<Staged<UserTask>>> {
  let programId = input.programId;
  let amountCents = input.monetaryValueCents;
  let expiresAt: Date | null = null;
  let name = input.name ?? null;
  const now = new Date();
  if (input.taskId !== undefined) {
    const task = await getTask(tx, organizationId, input.taskId);
    if (task === undefined) return fail('not_found', `No task ${input.taskId}`, 'taskId');
    if (programId !== undefined && programId !== task.programId) {
      return fail('validation_error', `Task ${task.id} belongs to program ${task.programId}`, 'programId');
    }
    if (task.startsAt !== null && task.startsAt > now) {
      return fail('invalid_state', `Task ${task.id} opens at ${task.startsAt.toISOString()}`, 'taskId');
    }
    if (task.endsAt !== null && task.endsAt <= now) {
      return fail('invalid_state', `Task ${task.id} ended at ${task.endsAt.toISOString()}`, 'taskId');
    }
    programId = task.programId;
    amountCents = amountCents ?? task.monetaryValueCents;
    expiresAt = task.endsAt;
    name = name ?? task.name;
  }
  if (programId === undefined) return fail('validation_error', 'programId or taskId is required', 'programId');
  if (amountCents === undefined) return fail('validation_error', 'monetaryValue is required', 'monetaryValue');

  const program = await findProgram(tx, organizationId, programId);
  if (!program.ok) return program;
  if (program.value.status !== 'active') {
    return fail('invalid_state', `Program ${programId} is ${program.value.status}; nothing new is reserved`);
  }
  const user = await getUser(tx, organizationId, input.userId);
  if (user === undefined) return fail('not_found', `No user ${input.userId}`, 'userId');
  const seat = await takeSeat(tx, organizationId, programId, input.userId);
  if (!seat.ok) return seat;

  const id = newId('userTask');
  const reservationId = newId('transfer');
  const inserted = await tx
    .insertInto('user_tasks')
    .values({
      organization_id: organizationId,
      id,
      program_id: programId,
      user_id: input.userId,
      task_id: input.taskId ?? null,
      name,
      status: 'assigned',
      monetary_value_cents: amountCents,
      reservation_transfer_id: reservationId,
      expires_at: expiresAt,
    })
    .onConflict((conflict) =>
      conflict
        .columns(['organization_id', 'task_id', 'user_id'])
        .where('task_id', 'is not', null)
        .where('status', 'not in', ['cancelled', 'expired'])
        .doNothing(),
    )
    .returningAll()
    .executeTakeFirst();
  if (inserted === undefined) {
    return fail('invalid_state', `Task ${input.taskId} is already assigned to user ${input.userId}`, 'taskId');
  }
  const resolvedProgramId = programId;
  return ok({
    value: userTaskOf({ ...inserted, disbursement_id: null }),
    ledger: {
      organizationId,
      operations: [
        {
          type: 'create',
          id: reservationId,
          debitAccountId: program.value.poolAccountId,
          creditAccountId: program.value.inTransitAccountId,
          amountCents,
          pending: true,
          code: 'reservation',
          programId,
          userTaskId: id,
        },
      ],
      refusal: (results) => onlyRefusal(results, resolvedProgramId),
    },
  });
}

export interface CompleteInput {
  amountCents?: bigint | undefined;
  completedBy?: string | undefined;
  evidence?: Record<string, unknown> | undefined;
}

/** Why a user task could not move: missing, or in a state the transition does not start from. */
async function refusal(tx: Db, organizationId: string, id: string, action: string): Promise<Result<never>> {
  const current = await getUserTask(tx, organizationId, id);
  if (current === undefined) return fail('not_found', `No user task ${id}`);
  if (current.expiresAt !== null && current.expiresAt <= new Date() && current.status === 'assigned') {
    return fail('invalid_state', `User task ${id} expired at ${current.expiresAt.toISOString()}`);
  }
  return fail('invalid_state', `User task ${id} is ${current.status} and cannot be ${action}`);
}

/**
 * Verifies a milestone: posts the reservation (a smaller `amount` posts only that and releases
 * the rest to the pool), moving the money to in_transit, and opens the disbursement.
 */
export async function complete(
  tx: Db,
  organizationId: string,
  id: string,
  input: CompleteInput,
): Promise<Result<Staged<UserTask>>> {
  const now = new Date();
  const completed = await tx
    .updateTable('user_tasks')
    .set((eb) => ({
      status: 'completed',
      completed_amount_cents:
        input.amountCents === undefined ? eb.ref('monetary_value_cents') : eb.val(input.amountCents),
      resolution_transfer_id: resolutionTransferId(id),
      completed_by: input.completedBy ?? null,
      evidence: input.evidence === undefined ? null : JSON.stringify(input.evidence),
      completed_at: now,
      updated_at: now,
    }))
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .where('status', '=', 'assigned')
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .where((eb) =>
      input.amountCents === undefined ? eb.lit(true) : eb('monetary_value_cents', '>=', input.amountCents),
    )
    .returningAll()
    .executeTakeFirst();
  if (completed === undefined) {
    const current = await getUserTask(tx, organizationId, id);
    if (
      current !== undefined &&
      current.status === 'assigned' &&
      input.amountCents !== undefined &&
      input.amountCents > current.monetaryValueCents
    ) {
      return fail('validation_error', 'amount cannot exceed the reserved monetaryValue', 'amount');
    }
    return refusal(tx, organizationId, id, 'completed');
  }
  const amountCents = completed.completed_amount_cents;
  assert(amountCents !== null && amountCents > 0n, `completed user task ${id} has no amount`);
  const disbursementId = newId('disbursement');
  await tx
    .insertInto('disbursements')
    .values({
      organization_id: organizationId,
      id: disbursementId,
      user_task_id: id,
      program_id: completed.program_id,
      user_id: completed.user_id,
      amount_cents: amountCents,
      status: 'pending',
    })
    .execute();
  return ok({
    value: userTaskOf({ ...completed, disbursement_id: disbursementId }),
    ledger: {
      organizationId,
      operations: [
        { type: 'post', id: resolutionTransferId(id), pendingId: completed.reservation_transfer_id, amountCents },
      ],
      refusal: (results) => onlyRefusal(results, completed.program_id),
    },
  });
}

/** Cancels an open milestone and voids its reservation; works in a paused program too. */
export async function cancel(tx: Db, organizationId: string, id: string): Promise<Result<UserTask>> {
  const now = new Date();
  const cancelled = await tx
    .updateTable('user_tasks')
    .set({
      status: 'cancelled',
      cancellation_reason: 'cancelled_by_request',
      resolution_transfer_id: resolutionTransferId(id),
      cancelled_at: now,
      updated_at: now,
    })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .where('status', 'in', ['assigned', 'pending_approval'])
    .returningAll()
    .executeTakeFirst();
  if (cancelled === undefined) return refusal(tx, organizationId, id, 'cancelled');
  const [result] = await applyLedgerBatch(tx, organizationId, [
    { type: 'void', id: resolutionTransferId(id), pendingId: cancelled.reservation_transfer_id },
  ]);
  assert(result?.ok, `voiding the reservation of ${id} failed`);
  return ok(userTaskOf({ ...cancelled, disbursement_id: null }));
}

/** Most user tasks one sweep round expires. */
export const expiryBatchSize = 500;

/**
 * Expires open user tasks whose window has ended and voids their reservations. Rows are claimed
 * with SKIP LOCKED, so any number of workers can sweep at once. Returns how many expired.
 */
export async function expireDueUserTasks(tx: Db, now: Date = new Date()): Promise<number> {
  const due = await tx
    .selectFrom('user_tasks')
    .select(['organization_id', 'id', 'reservation_transfer_id'])
    .where('status', 'in', ['assigned', 'pending_approval'])
    .where('expires_at', '<=', now)
    .orderBy('expires_at')
    .limit(expiryBatchSize)
    .forUpdate()
    .skipLocked()
    .execute();
  if (due.length === 0) return 0;
  await tx
    .updateTable('user_tasks')
    .set({ status: 'expired', expired_at: now, updated_at: now, resolution_transfer_id: resolutionTransferIdOfRow })
    .where(
      'id',
      'in',
      due.map((row) => row.id),
    )
    .execute();
  const byOrganization = new Map<string, LedgerOperation[]>();
  for (const row of due) {
    const operations = byOrganization.get(row.organization_id) ?? [];
    operations.push({ type: 'void', id: resolutionTransferId(row.id), pendingId: row.reservation_transfer_id });
    byOrganization.set(row.organization_id, operations);
  }
  for (const [organizationId, operations] of byOrganization) {
    const results = await applyLedgerBatch(tx, organizationId, operations);
    assertAllApplied(results, 'expiring reservations');
  }
  return due.length;
}
