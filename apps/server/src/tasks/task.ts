import type { Selectable } from 'kysely';
import { Type } from 'typebox';
import { dateOf } from '../platform/db.js';
import { dollars, iso, isoRequired } from '../platform/present.js';
import type { TasksTable } from '../platform/schema.js';
import {
  BalanceDollars,
  Id,
  Metadata,
  Nullable,
  NullableTimestamp,
  ObjectKind,
  Timestamp,
} from '../platform/schemas.js';
import { presentVerification, type Verification, VerificationSchema, verificationOf } from './verification.js';

/** A milestone of a program, and how the API presents it. */

export interface Task {
  id: string;
  programId: string;
  name: string;
  description: string | null;
  monetaryValueCents: bigint;
  startsAt: Date | null;
  endsAt: Date | null;
  metadata: Record<string, string>;
  /** What completing an assignment of it needs (see `verification.ts`). */
  verification: Verification;
  createdAt: Date;
  updatedAt: Date;
}

/** A row of `tasks` as a query selects it. */
type TaskRow = Selectable<TasksTable>;

export function taskOf(row: TaskRow): Task {
  return {
    id: row.id,
    programId: row.program_id,
    name: row.name,
    description: row.description,
    monetaryValueCents: row.monetary_value_cents,
    startsAt: dateOf(row.starts_at),
    endsAt: dateOf(row.ends_at),
    metadata: row.metadata as Record<string, string>,
    verification: verificationOf(row),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The example of a task's `description`, in the response and in the bodies that set it. */
export const taskDescriptionExample = 'Complete the OSHA 10-hour construction course and upload the DOL card.';

export const TaskSchema = Type.Object(
  {
    id: Id('tsk', 'Task id.'),
    object: ObjectKind('task'),
    programId: Id('prg', 'Program the milestone belongs to.'),
    name: Type.String({ description: 'Milestone name.', examples: ['OSHA 10 certificate'] }),
    description: Nullable(
      Type.String({ description: 'What the participant must do.', examples: [taskDescriptionExample] }),
    ),
    monetaryValue: BalanceDollars('Reserved for each assignment.', 500),
    startsAt: NullableTimestamp('Assignable from.'),
    endsAt: NullableTimestamp('Open reservations expire at this time.'),
    metadata: Metadata,
    verification: VerificationSchema,
    createdAt: Timestamp('Created.'),
    updatedAt: Timestamp('Last changed.'),
  },
  { $id: 'Task' },
);

export function presentTask(task: Task) {
  return {
    id: task.id,
    object: 'task' as const,
    programId: task.programId,
    name: task.name,
    description: task.description,
    monetaryValue: dollars(task.monetaryValueCents),
    startsAt: iso(task.startsAt),
    endsAt: iso(task.endsAt),
    metadata: task.metadata,
    verification: presentVerification(task.verification),
    createdAt: isoRequired(task.createdAt),
    updatedAt: isoRequired(task.updatedAt),
  };
}
