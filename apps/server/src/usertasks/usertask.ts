import type { ColumnType } from 'kysely';
import { Type } from 'typebox';
import { type Db, dateOf } from '../platform/db.js';
import { dollars, iso, isoRequired } from '../platform/present.js';
import { BalanceDollars, Id, Nullable, NullableTimestamp, ObjectKind, OneOf, Timestamp } from '../platform/schemas.js';
import { presentVerification, type Verification, VerificationSchema, verificationOf } from '../tasks/verification.js';

/** A user task — a milestone assigned to a participant — how the API presents it, and how it is read. */

/**
 * assigned (budget reserved) → [pending_approval] → completed (verified, funding initiated) →
 * funded (settled on the card); cancelled, expired and funding_failed on the side.
 */
export const userTaskStatuses = [
  'assigned',
  'pending_approval',
  'completed',
  'funded',
  'cancelled',
  'expired',
  'funding_failed',
] as const;
export type UserTaskStatus = (typeof userTaskStatuses)[number];

// The approval columns migration 0012 adds to `user_tasks`, typed for Kysely here (the policy's
// columns are in `tasks/verification.ts`).
type NullableColumn<T> = ColumnType<T | null, T | null | undefined, T | null>;
declare module '../platform/schema.js' {
  interface UserTasksTable {
    approved_by: NullableColumn<string>;
    approved_at: NullableColumn<Date | string>;
    rejected_by: NullableColumn<string>;
    rejected_at: NullableColumn<Date | string>;
    rejection_reason: NullableColumn<string>;
  }
}

/** The states that still hold a reservation. */
export const openUserTaskStatuses = ['assigned', 'pending_approval'] as const satisfies readonly UserTaskStatus[];

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
  /** The policy the user task was assigned under. */
  verification: Verification;
  approvedBy: string | null;
  approvedAt: Date | null;
  /** The last rejection of a completion, kept after the milestone is completed again. */
  rejectedBy: string | null;
  rejectedAt: Date | null;
  rejectionReason: string | null;
  disbursementId: string | null;
  expiresAt: Date | null;
  completedAt: Date | null;
  cancelledAt: Date | null;
  expiredAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export function userTaskQuery(db: Db, organizationId: string) {
  return db
    .selectFrom('user_tasks as ut')
    .leftJoin('disbursements as d', (join) =>
      join.onRef('d.organization_id', '=', 'ut.organization_id').onRef('d.user_task_id', '=', 'ut.id'),
    )
    .selectAll('ut')
    .select('d.id as disbursement_id')
    .where('ut.organization_id', '=', organizationId);
}

export type UserTaskRow = Awaited<ReturnType<ReturnType<typeof userTaskQuery>['executeTakeFirstOrThrow']>>;

export function userTaskOf(row: UserTaskRow): UserTask {
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
    verification: verificationOf(row),
    approvedBy: row.approved_by,
    approvedAt: dateOf(row.approved_at),
    rejectedBy: row.rejected_by,
    rejectedAt: dateOf(row.rejected_at),
    rejectionReason: row.rejection_reason,
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
  return (await getUserTasks(db, organizationId, [id])).get(id);
}

/** Several user tasks by id, in one read; missing ones are absent from the map. */
export async function getUserTasks(
  db: Db,
  organizationId: string,
  ids: readonly string[],
): Promise<Map<string, UserTask>> {
  if (ids.length === 0) return new Map();
  const rows = await userTaskQuery(db, organizationId)
    .where('ut.id', 'in', [...ids])
    .execute();
  return new Map(rows.map((row) => [row.id, userTaskOf(row)]));
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

export const UserTaskSchema = Type.Object(
  {
    id: Id('ut', 'User task id.'),
    object: ObjectKind('user_task'),
    programId: Id('prg', 'Program id.'),
    userId: Id('usr', 'Participant.'),
    taskId: Nullable(Id('tsk', 'The task assigned, or null for a one-off milestone.')),
    name: Nullable(Type.String({ description: 'Milestone name.', examples: ['OSHA 10 certificate'] })),
    status: OneOf(userTaskStatuses, {
      description:
        'assigned → [pending_approval] → completed → funded; cancelled, expired or funding_failed on the side.',
      examples: ['completed'],
    }),
    monetaryValue: BalanceDollars('Reserved from the pool at assignment.', 500),
    completedAmount: Nullable(
      BalanceDollars(
        'Released at completion (pending_approval: released when approved); the rest returned to the pool.',
        500,
      ),
    ),
    completedBy: Nullable(Type.String({ description: 'Who verified the milestone.', examples: ['instructor:42'] })),
    evidence: Nullable(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'What the verifier saw.',
        examples: [{ certificateNumber: 'OSHA-10-88231' }],
      }),
    ),
    cancellationReason: Nullable(
      Type.String({ description: 'Why the reservation was released.', examples: ['cancelled_by_request'] }),
    ),
    verification: VerificationSchema,
    approvedBy: Nullable(
      Type.String({ description: 'Who approved the completion (dual approval).', examples: ['supervisor:7'] }),
    ),
    approvedAt: NullableTimestamp('Approved.'),
    rejectedBy: Nullable(
      Type.String({ description: 'Who last rejected a completion (dual approval).', examples: ['supervisor:7'] }),
    ),
    rejectedAt: NullableTimestamp('Last rejected; the user task went back to assigned.'),
    rejectionReason: Nullable(
      Type.String({
        description: 'Why the last completion was rejected.',
        examples: ['Certificate number unreadable'],
      }),
    ),
    disbursementId: Nullable(Id('dsb', 'The card funding opened at completion.')),
    expiresAt: NullableTimestamp('The reservation expires unless completed before.'),
    completedAt: NullableTimestamp('Verified (pending_approval: submitted for approval).'),
    cancelledAt: NullableTimestamp('Cancelled.'),
    expiredAt: NullableTimestamp('Expired.'),
    createdAt: Timestamp('Assigned.'),
    updatedAt: Timestamp('Last changed.'),
  },
  { $id: 'UserTask' },
);

export function presentUserTask(userTask: UserTask) {
  return {
    id: userTask.id,
    object: 'user_task' as const,
    programId: userTask.programId,
    userId: userTask.userId,
    taskId: userTask.taskId,
    name: userTask.name,
    status: userTask.status,
    monetaryValue: dollars(userTask.monetaryValueCents),
    completedAmount: userTask.completedAmountCents === null ? null : dollars(userTask.completedAmountCents),
    completedBy: userTask.completedBy,
    evidence: userTask.evidence,
    cancellationReason: userTask.cancellationReason,
    verification: presentVerification(userTask.verification),
    approvedBy: userTask.approvedBy,
    approvedAt: iso(userTask.approvedAt),
    rejectedBy: userTask.rejectedBy,
    rejectedAt: iso(userTask.rejectedAt),
    rejectionReason: userTask.rejectionReason,
    disbursementId: userTask.disbursementId,
    expiresAt: iso(userTask.expiresAt),
    completedAt: iso(userTask.completedAt),
    cancelledAt: iso(userTask.cancelledAt),
    expiredAt: iso(userTask.expiredAt),
    createdAt: isoRequired(userTask.createdAt),
    updatedAt: isoRequired(userTask.updatedAt),
  };
}
