import type { Db } from '../platform/db.js';
import type { UnitOfWork } from '../work/unit.js';
import {
  type Disbursement,
  type DisbursementStatus,
  disbursementOf,
  disbursementQuery,
  presentDisbursement,
} from './disbursement.js';

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

/** Opens the disbursement of a verified milestone, in the unit that completes it. */
export async function openDisbursement(
  unit: UnitOfWork,
  input: { id: string; userTaskId: string; programId: string; userId: string; amountCents: bigint },
): Promise<Disbursement> {
  const row = await unit.tx
    .insertInto('disbursements')
    .values({
      organization_id: unit.organizationId,
      id: input.id,
      user_task_id: input.userTaskId,
      program_id: input.programId,
      user_id: input.userId,
      amount_cents: input.amountCents,
      status: 'pending',
      created_at: unit.now,
      updated_at: unit.now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  const disbursement = disbursementOf(row);
  unit.emit('disbursement.created', presentDisbursement(disbursement));
  return disbursement;
}
