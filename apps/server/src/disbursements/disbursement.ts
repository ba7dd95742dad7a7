import { Type } from 'typebox';
import { type Db, dateOf } from '../platform/db.js';
import { dollars, iso, isoRequired } from '../platform/present.js';
import { BalanceDollars, Id, Nullable, NullableTimestamp, ObjectKind, OneOf, Timestamp } from '../platform/schemas.js';

/** A disbursement — the funding of a card for one verified milestone — and how the API presents it. */

/**
 * awaiting_card → pending → processing → settled | failed; a failed one is retried (→ pending) or
 * cancelled, which returns its money to the program's pool.
 */
export const disbursementStatuses = [
  'awaiting_card',
  'pending',
  'processing',
  'settled',
  'failed',
  'cancelled',
] as const;
export type DisbursementStatus = (typeof disbursementStatuses)[number];

export interface Disbursement {
  id: string;
  userTaskId: string;
  programId: string;
  userId: string;
  amountCents: bigint;
  status: DisbursementStatus;
  failureReason: string | null;
  /** Highnote's reason code when the transfer failed (e.g. `INSUFFICIENT_FUNDS`). */
  failureCode: string | null;
  /** Which funding attempt this is; a retry starts the next. */
  attempt: number;
  cardId: string | null;
  /** The key the transfer is initiated with, committed before the call. */
  transferIdempotencyKey: string | null;
  highnoteTransferId: string | null;
  settledAt: Date | null;
  cancelledAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export function disbursementQuery(db: Db, organizationId: string) {
  return db.selectFrom('disbursements').selectAll().where('organization_id', '=', organizationId);
}

type DisbursementRow = Awaited<ReturnType<ReturnType<typeof disbursementQuery>['executeTakeFirstOrThrow']>>;

export function disbursementOf(row: DisbursementRow): Disbursement {
  return {
    id: row.id,
    userTaskId: row.user_task_id,
    programId: row.program_id,
    userId: row.user_id,
    amountCents: row.amount_cents,
    status: row.status,
    failureReason: row.failure_reason,
    failureCode: row.failure_code,
    attempt: row.attempt,
    cardId: row.card_id,
    transferIdempotencyKey: row.transfer_idempotency_key,
    highnoteTransferId: row.highnote_transfer_id,
    settledAt: dateOf(row.settled_at),
    cancelledAt: dateOf(row.cancelled_at),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export const DisbursementSchema = Type.Object(
  {
    id: Id('dsb', 'Disbursement id.'),
    object: ObjectKind('disbursement'),
    userTaskId: Id('ut', 'The verified milestone this pays for.'),
    programId: Id('prg', 'Program.'),
    userId: Id('usr', 'Participant.'),
    amount: BalanceDollars('Amount funded to the card.', 500),
    status: OneOf(disbursementStatuses, {
      description: 'awaiting_card → pending → processing → settled | failed; a failed one is retried or cancelled.',
      examples: ['settled'],
    }),
    failureReason: Nullable(
      Type.String({
        description: 'Why the funding failed.',
        examples: ['Highnote failed the transfer: INSUFFICIENT_FUNDS'],
      }),
    ),
    failureCode: Nullable(
      Type.String({ description: 'Highnote’s reason code for a failed transfer.', examples: ['INSUFFICIENT_FUNDS'] }),
    ),
    attempt: Type.Integer({ minimum: 1, description: 'Funding attempt; each retry starts the next.', examples: [1] }),
    cardId: Nullable(Id('card', 'The card funded.')),
    highnoteTransferId: Nullable(
      Type.String({ description: 'Highnote’s transfer id, once initiated.', examples: ['iftr_8Kd'] }),
    ),
    settledAt: NullableTimestamp('Settled on the card.'),
    spent: BalanceDollars(
      'How much of it the participant has spent: card spend is attributed first-in-first-out to the settled disbursements that funded the card.',
      120,
    ),
    remaining: BalanceDollars('What of it is still on the card; 0 until it settles.', 380),
    cancelledAt: NullableTimestamp('Cancelled, its money returned to the pool.'),
    createdAt: Timestamp('Opened at completion.'),
    updatedAt: Timestamp('Last changed.'),
  },
  { $id: 'Disbursement' },
);

/** `spentCents`: from the card account's FIFO attribution (see spend/spend.ts); nothing spent when left out. */
export function presentDisbursement(disbursement: Disbursement, spentCents = 0n) {
  const settled = disbursement.status === 'settled';
  const spent = settled ? spentCents : 0n;
  return {
    id: disbursement.id,
    object: 'disbursement' as const,
    userTaskId: disbursement.userTaskId,
    programId: disbursement.programId,
    userId: disbursement.userId,
    amount: dollars(disbursement.amountCents),
    status: disbursement.status,
    failureReason: disbursement.failureReason,
    failureCode: disbursement.failureCode,
    attempt: disbursement.attempt,
    cardId: disbursement.cardId,
    highnoteTransferId: disbursement.highnoteTransferId,
    settledAt: iso(disbursement.settledAt),
    spent: dollars(spent),
    remaining: dollars(settled ? disbursement.amountCents - spent : 0n),
    cancelledAt: iso(disbursement.cancelledAt),
    createdAt: isoRequired(disbursement.createdAt),
    updatedAt: isoRequired(disbursement.updatedAt),
  };
}
