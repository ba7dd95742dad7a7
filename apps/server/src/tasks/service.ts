import type { Db } from '../platform/db.js';
import { assert, fail, ok, type Result } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { findProgram } from '../programs/program.js';
import type { UnitOfWork } from '../work/unit.js';
import { presentTask, type Task, taskOf } from './task.js';
import { attestation, type Verification, verificationColumns } from './verification.js';

export async function getTask(db: Db, organizationId: string, id: string): Promise<Task | undefined> {
  return (await getTasks(db, organizationId, [id])).get(id);
}

/** Several tasks by id, in one read; missing ones are absent from the map. */
export async function getTasks(db: Db, organizationId: string, ids: readonly string[]): Promise<Map<string, Task>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .selectFrom('tasks')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('id', 'in', [...ids])
    .execute();
  return new Map(rows.map((row) => [row.id, taskOf(row)]));
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
  verification?: Verification | undefined;
}

export async function createTask(unit: UnitOfWork, input: CreateTaskInput): Promise<Result<Task>> {
  const { tx, organizationId } = unit;
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
      ...verificationColumns(input.verification ?? attestation),
      created_at: unit.now,
      updated_at: unit.now,
    })
    .execute();
  const task = await getTask(tx, organizationId, id);
  assert(task !== undefined, `task ${id} vanished inside its own transaction`);
  unit.emit('task.created', presentTask(task));
  return ok(task);
}

export async function updateTask(
  unit: UnitOfWork,
  id: string,
  input: {
    name?: string;
    description?: string | null;
    endsAt?: string | null;
    metadata?: Record<string, string>;
    /** Applies to assignments made from now on; open ones keep the policy they were assigned under. */
    verification?: Verification | undefined;
  },
): Promise<Result<Task>> {
  const { tx, organizationId } = unit;
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
      ...(input.verification !== undefined ? verificationColumns(input.verification) : {}),
      updated_at: unit.now,
    })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .execute();
  const updated = await getTask(tx, organizationId, id);
  assert(updated !== undefined, `task ${id} vanished inside its own transaction`);
  unit.emit('task.updated', presentTask(updated));
  return ok(updated);
}
