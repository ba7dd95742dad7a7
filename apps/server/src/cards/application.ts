import type { Selectable } from 'kysely';
import { Type } from 'typebox';
import { dateOf } from '../platform/db.js';
import { iso, isoRequired } from '../platform/present.js';
import type { ApplicationsTable } from '../platform/schema.js';
import { Id, Nullable, NullableTimestamp, ObjectKind, OneOf, Timestamp } from '../platform/schemas.js';

/** A participant's card product application (Highnote's KYC), and how the API presents it. */

/** pending → in_review → approved | denied; closed later. The states Highnote reports. */
export const applicationStatuses = ['pending', 'in_review', 'approved', 'denied', 'closed'] as const;
export type ApplicationStatus = (typeof applicationStatuses)[number];

/** Still waiting for Highnote's decision. */
export const undecidedApplicationStatuses = ['pending', 'in_review'] as const satisfies readonly ApplicationStatus[];

export interface Application {
  id: string;
  userId: string;
  cardProductId: string;
  highnoteApplicationId: string;
  status: ApplicationStatus;
  consentAcceptedAt: Date;
  consentIpAddress: string | null;
  highnoteFinancialAccountId: string | null;
  denialReason: string | null;
  decidedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export function applicationOf(row: Selectable<ApplicationsTable>): Application {
  return {
    id: row.id,
    userId: row.user_id,
    cardProductId: row.card_product_id,
    highnoteApplicationId: row.highnote_application_id,
    status: row.status,
    consentAcceptedAt: row.consent_accepted_at,
    consentIpAddress: row.consent_ip_address,
    highnoteFinancialAccountId: row.highnote_financial_account_id,
    denialReason: row.denial_reason,
    decidedAt: dateOf(row.decided_at),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export const ApplicationSchema = Type.Object(
  {
    id: Id('app', 'Application id.'),
    object: ObjectKind('application'),
    userId: Id('usr', 'Applicant.'),
    cardProductId: Type.String({ description: 'Card product applied for.', examples: ['cp_9xWq7'] }),
    highnoteApplicationId: Type.String({ description: 'Highnote’s application id.', examples: ['ap_5kQ'] }),
    status: OneOf(applicationStatuses, {
      description: 'pending (checks running) → in_review (manual review) → approved | denied; closed later.',
      examples: ['approved'],
    }),
    consent: Type.Object(
      {
        acceptedAt: Timestamp('When the participant accepted the cardholder agreement.'),
        ipAddress: Nullable(Type.String({ description: 'From where.', examples: ['203.0.113.7'] })),
      },
      { description: 'The cardholder-agreement consent sent with the application.' },
    ),
    highnoteFinancialAccountId: Nullable(
      Type.String({ description: 'The financial account issued on approval.', examples: ['fa_7Hq'] }),
    ),
    denialReason: Nullable(Type.String({ description: 'Why Highnote denied it.', examples: ['DENIED_DUE_TO_OTHER'] })),
    decidedAt: NullableTimestamp('Approved or denied at.'),
    createdAt: Timestamp('Applied.'),
    updatedAt: Timestamp('Last changed.'),
  },
  { $id: 'Application' },
);

export function presentApplication(application: Application) {
  return {
    id: application.id,
    object: 'application' as const,
    userId: application.userId,
    cardProductId: application.cardProductId,
    highnoteApplicationId: application.highnoteApplicationId,
    status: application.status,
    consent: { acceptedAt: isoRequired(application.consentAcceptedAt), ipAddress: application.consentIpAddress },
    highnoteFinancialAccountId: application.highnoteFinancialAccountId,
    denialReason: application.denialReason,
    decidedAt: iso(application.decidedAt),
    createdAt: isoRequired(application.createdAt),
    updatedAt: isoRequired(application.updatedAt),
  };
}
