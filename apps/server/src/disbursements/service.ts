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

export interface OpenDisbursement {
  id: string;
  userTaskId: string;
  programId: string;
  userId: string;
  amountCents: bigint;
}

/**
 * Opens the disbursements of verified milestones, each in the unit that completes it, with one
 * statement for all of them (the units share a transaction).
 */
export async function openDisbursements(
  opened: readonly { unit: UnitOfWork; disbursement: OpenDisbursement }[],
): Promise<Disbursement[]> {
  const [first] = opened;
  if (first === undefined) return [];
  const rows = await first.unit.tx
    .insertInto('disbursements')
    .values(
      opened.map(({ unit, disbursement }) => ({
        organization_id: unit.organizationId,
        id: disbursement.id,
        user_task_id: disbursement.userTaskId,
        program_id: disbursement.programId,
        user_id: disbursement.userId,
        amount_cents: disbursement.amountCents,
        status: 'pending' as const,
        created_at: unit.now,
        updated_at: unit.now,
      })),
    )
    .returningAll()
    .execute();
  const byId = new Map(rows.map((row) => [row.id, disbursementOf(row)]));
  return opened.map(({ unit, disbursement }) => {
    const created = byId.get(disbursement.id);
    if (created === undefined) throw new Error(`disbursement ${disbursement.id} was not written`);
    unit.emit('disbursement.created', presentDisbursement(created));
    return created;
  });
}
