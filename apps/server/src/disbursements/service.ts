import type { Db } from '../platform/db.js';
import type { UnitOfWork } from '../work/unit.js';
import {
  type Disbursement,
  type DisbursementStatus,
  disbursementOf,
  disbursementQuery,
  presentDisbursement,
} from './disbursement.js';
import { fundRequest } from './funding.js';

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
  /** Whether the participant has a card to fund; without one the disbursement waits for it. */
  hasCard: boolean;
}

/**
 * Opens the disbursement of a verified milestone in the unit that completes it. Nothing in the unit
 * reads it back, so its row goes out with the unit's events (for a batch, one INSERT for all).
 * With a card to pay, its funding job is enqueued with it; without one it waits in
 * `awaiting_card`, and issuing the card (or the sweep) sends it to funding.
 */
export function openDisbursement(unit: UnitOfWork, input: OpenDisbursement): Disbursement {
  const disbursement: Disbursement = {
    id: input.id,
    userTaskId: input.userTaskId,
    programId: input.programId,
    userId: input.userId,
    amountCents: input.amountCents,
    status: input.hasCard ? 'pending' : 'awaiting_card',
    failureReason: null,
    failureCode: null,
    attempt: 1,
    cardId: null,
    transferIdempotencyKey: null,
    highnoteTransferId: null,
    settledAt: null,
    cancelledAt: null,
    createdAt: unit.now,
    updatedAt: unit.now,
  };
  unit.insertWithEvents('disbursements', {
    organization_id: unit.organizationId,
    id: disbursement.id,
    user_task_id: disbursement.userTaskId,
    program_id: disbursement.programId,
    user_id: disbursement.userId,
    amount_cents: disbursement.amountCents,
    status: disbursement.status,
    created_at: disbursement.createdAt,
    updated_at: disbursement.updatedAt,
  });
  unit.emit('disbursement.created', presentDisbursement(disbursement));
  if (input.hasCard) unit.enqueue(fundRequest(disbursement.id, { dedupe: false }));
  return disbursement;
}
