import { sql } from 'kysely';
import { takeSeats } from '../enrollments/service.js';
import { dateOf } from '../platform/db.js';
import { assert, fail, ok, type Result } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { getTasks } from '../tasks/service.js';
import type { Task } from '../tasks/task.js';
import { attestation, type Verification, verificationColumns } from '../tasks/verification.js';
import { type Answer, wroteNothing } from '../work/runner.js';
import { sharedBy, type UnitOfWork } from '../work/unit.js';
import { onlyRefusal } from './transitions.js';
import { presentUserTask, type UserTask, userTaskOf } from './usertask.js';

export interface AssignInput {
  userId: string;
  programId?: string | undefined;
  taskId?: string | undefined;
  monetaryValueCents?: bigint | undefined;
  name?: string | undefined;
  /** A one-off milestone's own policy (attestation when not given); a task's assignment takes the task's. */
  verification?: Verification | undefined;
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
  const [answer] = await assignEach([unit], [input]);
  assert(answer !== undefined, 'every assignment is answered');
  return answer;
}

/** Two assignments of one task to one participant never share a batch: the second sees the first. */
export function assignmentConflict(input: AssignInput): string | undefined {
  return input.taskId === undefined ? undefined : `${input.taskId}\u0000${input.userId}`;
}

/** What an assignment needs once its task is resolved. */
interface Plan {
  programId: string;
  amountCents: bigint;
  taskEndsAt: Date | null;
  name: string | null;
  verification: Verification;
}

/**
 * Assigns a batch of milestones, one per unit (units of one transaction, in the batch's order),
 * with one statement per table: the tasks, programs and participants read together, the seats
 * taken together, the user tasks inserted together, and each unit queues its own reservation and
 * events. A unit refused before anything was written for it answers as having written nothing.
 * Two assignments of one task to one participant must not share a batch (the runner sees to it).
 */
export async function assignEach(
  units: readonly UnitOfWork[],
  inputs: readonly AssignInput[],
): Promise<Answer<UserTask>[]> {
  const shared = sharedBy(units);
  if (shared === undefined) return [];
  const { tx, organizationId, now } = shared;
  const answers: (Answer<UserTask> | undefined)[] = inputs.map(() => undefined);
  const refuse = (index: number, result: Result<never>) => {
    answers[index] = wroteNothing(result);
  };

  const tasks = await getTasks(tx, organizationId, distinct(inputs.flatMap((input) => input.taskId ?? [])));
  const plans = inputs.map((input, index) => {
    const plan = planOf(input, tasks, now);
    if (plan.ok) return plan.value;
    refuse(index, plan);
    return undefined;
  });

  // What the reservations need of the programs, and which of the participants exist: one read.
  // The participants come with each program row, from a subquery that does not depend on the row,
  // so PostgreSQL runs it once; when no program is found, every assignment is refused for its
  // program before its participant is looked at.
  const programIds = distinct(plans.flatMap((plan) => plan?.programId ?? []));
  const userIds = distinct(inputs.flatMap((input, index) => (plans[index] === undefined ? [] : [input.userId])));
  const found =
    programIds.length === 0
      ? []
      : await tx
          .selectFrom('programs as p')
          .select((eb) => [
            'p.id',
            'p.status',
            'p.starts_at',
            'p.ends_at',
            'p.pool_account_id',
            'p.in_transit_account_id',
            sql<string[]>`ARRAY(${eb
              .selectFrom('users as u')
              .select('u.id')
              .where('u.organization_id', '=', organizationId)
              .where('u.id', 'in', userIds)})`.as('existing_user_ids'),
          ])
          .where('p.organization_id', '=', organizationId)
          .where('p.id', 'in', programIds)
          .execute();
  const programs = new Map(found.map((row) => [row.id, row]));
  const users = new Set(found[0]?.existing_user_ids ?? []);

  const seating: number[] = [];
  plans.forEach((plan, index) => {
    if (plan === undefined) return;
    const checked = reservable(programs.get(plan.programId), plan.programId, now, users, inputs[index] as AssignInput);
    if (checked.ok) seating.push(index);
    else refuse(index, checked);
  });
  if (seating.length === 0) return everyAnswered(answers);

  const seats = await takeSeats(
    seating.map((index) => ({
      unit: units[index] as UnitOfWork,
      programId: (plans[index] as Plan).programId,
      userId: (inputs[index] as AssignInput).userId,
    })),
  );
  const inserting: { index: number; id: string; reservationId: string; seated: boolean }[] = [];
  seating.forEach((index, position) => {
    const seat = seats[position];
    assert(seat !== undefined, 'every seat is answered');
    // A refused seat comes after its enrollment was written: the unit has written.
    if (!seat.ok) answers[index] = seat;
    else
      inserting.push({ index, id: newId('userTask'), reservationId: newId('transfer'), seated: seat.value !== null });
  });
  if (inserting.length === 0) return everyAnswered(answers);

  const inserted = await tx
    .insertInto('user_tasks')
    .values(
      inserting.map(({ index, id, reservationId }) => {
        const input = inputs[index] as AssignInput;
        const plan = plans[index] as Plan;
        const program = programs.get(plan.programId);
        assert(program !== undefined, `program ${plan.programId} was read`);
        return {
          organization_id: organizationId,
          id,
          program_id: plan.programId,
          user_id: input.userId,
          task_id: input.taskId ?? null,
          name: plan.name,
          status: 'assigned' as const,
          monetary_value_cents: plan.amountCents,
          ...verificationColumns(plan.verification),
          reservation_transfer_id: reservationId,
          expires_at: earliest(plan.taskEndsAt, dateOf(program.ends_at)),
          created_at: now,
          updated_at: now,
        };
      }),
    )
    .onConflict((conflict) =>
      conflict
        .columns(['organization_id', 'task_id', 'user_id'])
        .where('task_id', 'is not', null)
        .where('status', 'not in', ['cancelled', 'expired'])
        .doNothing(),
    )
    .returningAll()
    .execute();
  const insertedById = new Map(inserted.map((row) => [row.id, row]));
  for (const { index, id, seated } of inserting) {
    const input = inputs[index] as AssignInput;
    const unit = units[index] as UnitOfWork;
    const row = insertedById.get(id);
    if (row === undefined) {
      const refused = fail<never>(
        'invalid_state',
        `Task ${input.taskId} is already assigned to user ${input.userId}`,
        'taskId',
      );
      // Only the seat this unit took (if any) was written for it.
      answers[index] = seated ? refused : wroteNothing(refused);
      continue;
    }
    const program = programs.get(row.program_id);
    assert(program !== undefined, `program ${row.program_id} was read`);
    const programId = row.program_id;
    unit.moveMoney(
      [
        {
          type: 'create',
          id: row.reservation_transfer_id,
          debitAccountId: program.pool_account_id,
          creditAccountId: program.in_transit_account_id,
          amountCents: row.monetary_value_cents,
          pending: true,
          code: 'reservation',
          programId,
          userTaskId: row.id,
        },
      ],
      (results) => onlyRefusal(results, programId),
    );
    const userTask = userTaskOf({ ...row, disbursement_id: null });
    unit.emit('usertask.assigned', presentUserTask(userTask));
    answers[index] = ok(userTask);
  }
  return everyAnswered(answers);
}

/** The program, amount, window and name of one assignment, from its task when it names one. */
function planOf(input: AssignInput, tasks: ReadonlyMap<string, Task>, now: Date): Result<Plan> {
  let programId = input.programId;
  let amountCents = input.monetaryValueCents;
  let taskEndsAt: Date | null = null;
  let name = input.name ?? null;
  let verification = input.verification ?? attestation;
  if (input.taskId !== undefined) {
    const task = tasks.get(input.taskId);
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
    if (input.verification !== undefined) {
      return fail('validation_error', `Task ${task.id} has its own verification policy`, 'verification');
    }
    verification = task.verification;
  }
  if (programId === undefined) return fail('validation_error', 'programId or taskId is required', 'programId');
  if (amountCents === undefined) return fail('validation_error', 'monetaryValue is required', 'monetaryValue');
  return ok({ programId, amountCents, taskEndsAt, name, verification });
}

/** Whether the program takes new reservations now, and the participant exists. */
function reservable(
  found: { status: string; starts_at: Date | string | null; ends_at: Date | string | null } | undefined,
  programId: string,
  now: Date,
  users: ReadonlySet<string>,
  input: AssignInput,
): Result<void> {
  if (found === undefined) return fail('not_found', `No program ${programId}`, 'programId');
  const startsAt = dateOf(found.starts_at);
  const endsAt = dateOf(found.ends_at);
  if (found.status !== 'active') {
    return fail('invalid_state', `Program ${programId} is ${found.status}; nothing new is reserved`);
  }
  if (startsAt !== null && startsAt > now) {
    return fail('invalid_state', `Program ${programId} opens at ${startsAt.toISOString()}`, 'programId');
  }
  if (endsAt !== null && endsAt <= now) {
    return fail('invalid_state', `Program ${programId} ended at ${endsAt.toISOString()}`, 'programId');
  }
  if (!users.has(input.userId)) return fail('not_found', `No user ${input.userId}`, 'userId');
  return ok(undefined);
}

function distinct(values: readonly string[]): string[] {
  return [...new Set(values)];
}

function everyAnswered<T>(answers: readonly (Answer<T> | undefined)[]): Answer<T>[] {
  return answers.map((answer, index) => {
    assert(answer !== undefined, `assignment ${index} of the batch is answered`);
    return answer;
  });
}
