import { type Db, dateOf } from '../platform/db.js';
import type { DisbursementStatus } from '../platform/schema.js';

export interface Disbursement {
  id: string;
  userTaskId: string;
  programId: string;
  userId: string;
  amountCents: bigint;
  status: DisbursementStatus;
  failureReason: string | null;
  settledAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

function disbursementQuery(db: Db, organizationId: string) {
  return db.selectFrom('disbursements').selectAll().where('organization_id', '=', organizationId);
}

type DisbursementRow = Awaited<ReturnType<ReturnType<typeof disbursementQuery>['executeTakeFirstOrThrow']>>;

function disbursementOf(row: DisbursementRow): Disbursement {
  return {
    id: row.id,
    userTaskId: row.user_task_id,
    programId: row.program_id,
    userId: row.user_id,
    amountCents: row.amount_cents,
    status: row.status,
    failureReason: row.failure_reason,
    settledAt: dateOf(row.settled_at),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function getDisbursement(db: Db, organizationId: string, id: string): Promise<Disbursement | undefined> {
  const row = await disbursementQuery(db, organizationId).where('id', '=', id).executeTakeFirst();
  return row === undefined ? undefined : disbursementOf(row);
}

export async function listDisbursements(
  db: Db,
  organizationId: string,
  filter: {
    afterId: string | undefined;
    limit: number;
    programId?: string | undefined;
    userId?: string | undefined;
    userTaskId?: string | undefined;
    status?: DisbursementStatus | undefined;
  },
): Promise<Disbursement[]> {
  let query = disbursementQuery(db, organizationId).orderBy('id', 'desc').limit(filter.limit);
  if (filter.afterId !== undefined) query = query.where('id', '<', filter.afterId);
  if (filter.programId !== undefined) query = query.where('program_id', '=', filter.programId);
  if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
  if (filter.userTaskId !== undefined) query = query.where('user_task_id', '=', filter.userTaskId);
  if (filter.status !== undefined) query = query.where('status', '=', filter.status);
  return (await query.execute()).map(disbursementOf);
}
