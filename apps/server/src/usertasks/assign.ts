import { takeSeat } from '../enrollments/service.js';
import { dateOf } from '../platform/db.js';
import { fail, ok, type Result } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { getTask } from '../tasks/service.js';
import type { UnitOfWork } from '../work/unit.js';
import { onlyRefusal } from './transitions.js';
import { presentUserTask, type UserTask, userTaskOf } from './usertask.js';

export interface AssignInput {
  userId: string;
  programId?: string | undefined;
  taskId?: string | undefined;
  monetaryValueCents?: bigint | undefined;
  name?: string | undefined;
}

/** The earlier of two optional instants. */
function earliest(a: Date | null, b: Date | null): Date | null {
  if (a === null) return b;
  if (b === null) return a;
  return a < b ? a : b;
}

/**
 * Assigns a milestone: enrolls the user if needed and reserves the milestone's value from the
 * pool as a pending transfer, which the runner applies last. Either a task (whose value and
 * window apply) or a program and an amount for a one-off milestone. Assignments are taken only
 * inside the program's and the task's windows, and expire when the first of them ends.
 */
export async function assign(unit: UnitOfWork, input: AssignInput): Promise<Result<UserTask>> {
  const { tx, organizationId, now } = unit;
  let programId = input.programId;
  let amountCents = input.monetaryValueCents;
  let taskEndsAt: Date | null = null;
  let name = input.name ?? null;
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
    taskEndsAt = task.endsAt;
    name = name ?? task.name;
  }
  if (programId === undefined) return fail('validation_error', 'programId or taskId is required', 'programId');
  if (amountCents === undefined) return fail('validation_error', 'monetaryValue is required', 'monetaryValue');

  // One read for what the reservation needs of the program, and whether the participant exists.
  const found = await tx
    .selectFrom('programs as p')
    .select((eb) => [
      'p.status',
      'p.starts_at',
      'p.ends_at',
      'p.pool_account_id',
      'p.in_transit_account_id',
      eb
        .exists(
          eb
            .selectFrom('users as u')
            .select('u.id')
            .whereRef('u.organization_id', '=', 'p.organization_id')
            .where('u.id', '=', input.userId),
        )
        .as('user_exists'),
    ])
    .where('p.organization_id', '=', organizationId)
    .where('p.id', '=', programId)
    .executeTakeFirst();
  if (found === undefined) return fail('not_found', `No program ${programId}`, 'programId');
  const program = {
    status: found.status,
    startsAt: dateOf(found.starts_at),
    endsAt: dateOf(found.ends_at),
    poolAccountId: found.pool_account_id,
    inTransitAccountId: found.in_transit_account_id,
  };
  if (program.status !== 'active') {
    return fail('invalid_state', `Program ${programId} is ${program.status}; nothing new is reserved`);
  }
  if (program.startsAt !== null && program.startsAt > now) {
    return fail('invalid_state', `Program ${programId} opens at ${program.startsAt.toISOString()}`, 'programId');
  }
  if (program.endsAt !== null && program.endsAt <= now) {
    return fail('invalid_state', `Program ${programId} ended at ${program.endsAt.toISOString()}`, 'programId');
  }
  if (!found.user_exists) return fail('not_found', `No user ${input.userId}`, 'userId');
  const seat = await takeSeat(unit, programId, input.userId);
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
      expires_at: earliest(taskEndsAt, program.endsAt),
      created_at: now,
      updated_at: now,
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
  unit.moveMoney(
    [
      {
        type: 'create',
        id: reservationId,
        debitAccountId: program.poolAccountId,
        creditAccountId: program.inTransitAccountId,
        amountCents,
        pending: true,
        code: 'reservation',
        programId,
        userTaskId: id,
      },
    ],
    (results) => onlyRefusal(results, resolvedProgramId),
  );
  const userTask = userTaskOf({ ...inserted, disbursement_id: null });
  unit.emit('usertask.assigned', presentUserTask(userTask));
  return ok(userTask);
}
