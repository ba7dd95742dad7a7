import { Type } from 'typebox';
import { type Db, dateOf } from '../platform/db.js';
import { dollars, iso, isoRequired } from '../platform/present.js';
import { BalanceDollars, Id, Nullable, NullableTimestamp, ObjectKind, OneOf, Timestamp } from '../platform/schemas.js';

/** A disbursement — the funding of a card for one verified milestone — and how the API presents it. */

/** awaiting_card → pending → processing → settled | failed. */
export const disbursementStatuses = ['awaiting_card', 'pending', 'processing', 'settled', 'failed'] as const;
export type DisbursementStatus = (typeof disbursementStatuses)[number];

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
    settledAt: dateOf(row.settled_at),
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
      description: 'awaiting_card → pending → processing → settled | failed.',
      examples: ['settled'],
    }),
    failureReason: Nullable(
      Type.String({ description: 'Why the funding failed.', examples: ['Card account is closed.'] }),
    ),
    settledAt: NullableTimestamp('Settled on the card.'),
    createdAt: Timestamp('Opened at completion.'),
    updatedAt: Timestamp('Last changed.'),
  },
  { $id: 'Disbursement' },
);

export function presentDisbursement(disbursement: Disbursement) {
  return {
    id: disbursement.id,
    object: 'disbursement' as const,
    userTaskId: disbursement.userTaskId,
    programId: disbursement.programId,
    userId: disbursement.userId,
    amount: dollars(disbursement.amountCents),
    status: disbursement.status,
    failureReason: disbursement.failureReason,
    settledAt: iso(disbursement.settledAt),
    createdAt: isoRequired(disbursement.createdAt),
    updatedAt: isoRequired(disbursement.updatedAt),
  };
}
