import type { Selectable } from 'kysely';
import { Type } from 'typebox';
import { dateOf } from '../platform/db.js';
import { iso, isoRequired } from '../platform/present.js';
import type { CardsTable } from '../platform/schema.js';
import { Id, Nullable, NullableTimestamp, ObjectKind, OneOf, Timestamp } from '../platform/schemas.js';

/** A participant's payment card, and how the API presents it: never a card number. */

export const cardFormFactors = ['virtual', 'physical'] as const;
export type CardFormFactor = (typeof cardFormFactors)[number];

/** Highnote's `PaymentCardStatus`, in our casing. */
export const cardStatuses = ['activation_required', 'active', 'suspended', 'closed'] as const;
export type CardStatus = (typeof cardStatuses)[number];

export interface Shipping {
  recipient: { firstName: string; lastName: string };
  address: { line1: string; line2?: string; city: string; state: string; postalCode: string; country: string };
  method: string;
  signatureRequired: boolean;
}

export interface Card {
  id: string;
  userId: string;
  applicationId: string;
  cardProductId: string;
  highnotePaymentCardId: string;
  highnoteFinancialAccountId: string;
  formFactor: CardFormFactor;
  status: CardStatus;
  last4: string | null;
  network: string | null;
  expirationDate: string | null;
  physicalOrderId: string | null;
  physicalOrderStatus: string | null;
  shipping: Shipping | null;
  spendRules: unknown[];
  spendControlsDigest: string | null;
  createdAt: Date;
  updatedAt: Date;
  closedAt: Date | null;
}

export function cardOf(row: Selectable<CardsTable>): Card {
  return {
    id: row.id,
    userId: row.user_id,
    applicationId: row.application_id,
    cardProductId: row.card_product_id,
    highnotePaymentCardId: row.highnote_payment_card_id,
    highnoteFinancialAccountId: row.highnote_financial_account_id,
    formFactor: row.form_factor,
    status: row.status,
    last4: row.last4,
    network: row.network,
    expirationDate: row.expiration_date,
    physicalOrderId: row.physical_order_id,
    physicalOrderStatus: row.physical_order_status,
    shipping: (row.shipping as Shipping | null) ?? null,
    spendRules: (row.spend_rules as unknown[]) ?? [],
    spendControlsDigest: row.spend_controls_digest,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    closedAt: dateOf(row.closed_at),
  };
}

/** Highnote's card status in ours. */
export function cardStatusOf(highnote: string): CardStatus {
  switch (highnote) {
    case 'ACTIVATION_REQUIRED':
      return 'activation_required';
    case 'ACTIVE':
      return 'active';
    case 'SUSPENDED':
      return 'suspended';
    case 'CLOSED':
      return 'closed';
    default:
      throw new Error(`a payment card in status ${highnote}`);
  }
}

const AddressSchema = Type.Object(
  {
    line1: Type.String({ minLength: 1, maxLength: 200, description: 'Street address.', examples: ['123 Main St'] }),
    line2: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'Apartment, suite.', examples: ['Apt 4'] }),
    ),
    city: Type.String({ minLength: 1, maxLength: 100, description: 'City.', examples: ['San Francisco'] }),
    state: Type.String({ pattern: '^[A-Z]{2}$', description: 'Two-letter state code.', examples: ['CA'] }),
    postalCode: Type.String({ pattern: '^[0-9]{5}(-[0-9]{4})?$', description: 'ZIP or ZIP+4.', examples: ['94105'] }),
    country: Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 3166 alpha-3 country code.', examples: ['USA'] }),
  },
  {
    additionalProperties: false,
    description: 'A US postal address.',
    examples: [{ line1: '123 Main St', city: 'San Francisco', state: 'CA', postalCode: '94105', country: 'USA' }],
  },
);

/** The address shape of users and shipping, one schema for both. */
export const PostalAddressSchema = AddressSchema;

export const CardSchema = Type.Object(
  {
    id: Id('card', 'Card id.'),
    object: ObjectKind('card'),
    userId: Id('usr', 'Cardholder.'),
    applicationId: Id('app', 'The approved application it was issued under.'),
    cardProductId: Type.String({ description: 'Card product.', examples: ['cp_9xWq7'] }),
    status: OneOf(cardStatuses, {
      description: 'activation_required (a physical card not yet activated), active, suspended, closed.',
      examples: ['active'],
    }),
    formFactor: OneOf(cardFormFactors, {
      description: 'virtual, or physical once one is ordered.',
      examples: ['virtual'],
    }),
    last4: Nullable(
      Type.String({ description: 'Last four digits; the number itself is never here.', examples: ['4242'] }),
    ),
    network: Nullable(Type.String({ description: 'Card network.', examples: ['VISA'] })),
    expirationDate: Nullable(Type.String({ description: 'Expires at.', examples: ['2029-11-30T23:59:59Z'] })),
    highnotePaymentCardId: Type.String({ description: 'Highnote’s payment card id.', examples: ['pc_9Jd'] }),
    highnoteFinancialAccountId: Type.String({
      description: 'The card’s financial account at Highnote.',
      examples: ['fa_7Hq'],
    }),
    physicalOrder: Nullable(
      Type.Object(
        {
          id: Type.String({ description: 'Highnote’s order id.', examples: ['po_3Xz'] }),
          status: Type.String({
            description:
              'Highnote’s order status: NEW, SENT_TO_PRINTER, APPROVED, SHIPPED, SHIP_FAILED, CANCELED, COMPLETED.',
            examples: ['NEW'],
          }),
          shippingMethod: Type.String({ description: 'Courier method.', examples: ['USPS_EXPRESS'] }),
        },
        {
          description: 'The physical card order, once one is placed.',
          examples: [{ id: 'po_3Xz', status: 'NEW', shippingMethod: 'USPS_EXPRESS' }],
        },
      ),
    ),
    createdAt: Timestamp('Issued.'),
    updatedAt: Timestamp('Last changed.'),
    closedAt: NullableTimestamp('Closed at.'),
  },
  { $id: 'Card' },
);

export function presentCard(card: Card) {
  return {
    id: card.id,
    object: 'card' as const,
    userId: card.userId,
    applicationId: card.applicationId,
    cardProductId: card.cardProductId,
    status: card.status,
    formFactor: card.formFactor,
    last4: card.last4,
    network: card.network,
    expirationDate: card.expirationDate,
    highnotePaymentCardId: card.highnotePaymentCardId,
    highnoteFinancialAccountId: card.highnoteFinancialAccountId,
    physicalOrder:
      card.physicalOrderId === null
        ? null
        : {
            id: card.physicalOrderId,
            status: card.physicalOrderStatus ?? 'NEW',
            shippingMethod: card.shipping?.method ?? 'USPS_EXPRESS',
          },
    createdAt: isoRequired(card.createdAt),
    updatedAt: isoRequired(card.updatedAt),
    closedAt: iso(card.closedAt),
  };
}
