import type { Db } from '../platform/db.js';
import { fail, ok, type Result } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import type { UnitOfWork } from '../work/unit.js';
import { type Application, type ApplicationStatus, applicationOf, presentApplication } from './application.js';
import { type Card, type CardFormFactor, type CardStatus, cardOf, presentCard, type Shipping } from './card.js';

/**
 * Applications and cards as rows: what the routes and jobs write once Highnote has answered.
 * Calls to Highnote happen before a unit starts (never inside a transaction); these functions
 * record their outcome, with events, in one unit.
 */

export async function getApplication(db: Db, organizationId: string, id: string): Promise<Application | undefined> {
  const row = await db
    .selectFrom('applications')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined ? undefined : applicationOf(row);
}

export async function listApplications(
  db: Db,
  organizationId: string,
  filter: {
    afterId: string | undefined;
    limit: number;
    userId?: string | undefined;
    status?: ApplicationStatus | undefined;
  },
): Promise<Application[]> {
  let query = db
    .selectFrom('applications')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .orderBy('id', 'desc')
    .limit(filter.limit);
  if (filter.afterId !== undefined) query = query.where('id', '<', filter.afterId);
  if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
  if (filter.status !== undefined) query = query.where('status', '=', filter.status);
  return (await query.execute()).map(applicationOf);
}

/** The participant's open (pending, in review or approved) application for a card product. */
export async function openApplicationOf(
  db: Db,
  organizationId: string,
  userId: string,
  cardProductId: string,
): Promise<Application | undefined> {
  const row = await db
    .selectFrom('applications')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('user_id', '=', userId)
    .where('card_product_id', '=', cardProductId)
    .where('status', 'in', ['pending', 'in_review', 'approved'])
    .executeTakeFirst();
  return row === undefined ? undefined : applicationOf(row);
}

export interface RecordApplication {
  userId: string;
  cardProductId: string;
  highnoteApplicationId: string;
  consentAcceptedAt: Date;
  consentIpAddress: string | null;
}

/** Records an application Highnote accepted, still undecided; the follow job tracks its decision. */
export async function recordApplication(unit: UnitOfWork, input: RecordApplication): Promise<Result<Application>> {
  const open = await openApplicationOf(unit.tx, unit.organizationId, input.userId, input.cardProductId);
  if (open !== undefined) {
    return fail('invalid_state', `User ${input.userId} already has application ${open.id} (${open.status})`, 'userId');
  }
  const row = await unit.tx
    .insertInto('applications')
    .values({
      organization_id: unit.organizationId,
      id: newId('application'),
      user_id: input.userId,
      card_product_id: input.cardProductId,
      highnote_application_id: input.highnoteApplicationId,
      status: 'pending',
      consent_accepted_at: input.consentAcceptedAt,
      consent_ip_address: input.consentIpAddress,
      created_at: unit.now,
      updated_at: unit.now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  const application = applicationOf(row);
  unit.emit('application.created', presentApplication(application));
  return ok(application);
}

export type Decision =
  | { status: 'in_review' }
  | { status: 'approved'; highnoteFinancialAccountId: string }
  | { status: 'denied' | 'closed'; reason: string | null };

/**
 * Moves an application forward to what Highnote decided. States only move forward (pending →
 * in_review → a decision), so a late or repeated report changes nothing; answers whether it moved.
 */
export async function decideApplication(unit: UnitOfWork, id: string, decision: Decision): Promise<boolean> {
  const from: ApplicationStatus[] =
    decision.status === 'in_review'
      ? ['pending']
      : decision.status === 'closed'
        ? ['pending', 'in_review', 'approved']
        : ['pending', 'in_review'];
  const row = await unit.tx
    .updateTable('applications')
    .set({
      status: decision.status,
      updated_at: unit.now,
      ...(decision.status === 'in_review' ? {} : { decided_at: unit.now }),
      ...(decision.status === 'approved' ? { highnote_financial_account_id: decision.highnoteFinancialAccountId } : {}),
      ...(decision.status === 'denied' || decision.status === 'closed' ? { denial_reason: decision.reason } : {}),
    })
    .where('organization_id', '=', unit.organizationId)
    .where('id', '=', id)
    .where('status', 'in', from)
    .returningAll()
    .executeTakeFirst();
  if (row === undefined) return false;
  unit.emit(`application.${decision.status}`, presentApplication(applicationOf(row)));
  return true;
}

export async function getCard(db: Db, organizationId: string, id: string): Promise<Card | undefined> {
  const row = await db
    .selectFrom('cards')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined ? undefined : cardOf(row);
}

export async function listCards(
  db: Db,
  organizationId: string,
  filter: { afterId: string | undefined; limit: number; userId?: string | undefined },
): Promise<Card[]> {
  let query = db
    .selectFrom('cards')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .orderBy('id', 'desc')
    .limit(filter.limit);
  if (filter.afterId !== undefined) query = query.where('id', '<', filter.afterId);
  if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
  return (await query.execute()).map(cardOf);
}

/** The participant's card on a card product that can take money: any that is not closed. */
export async function cardForFunding(
  db: Db,
  organizationId: string,
  userId: string,
  cardProductId: string,
): Promise<Card | undefined> {
  const row = await db
    .selectFrom('cards')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('user_id', '=', userId)
    .where('card_product_id', '=', cardProductId)
    .where('status', '<>', 'closed')
    .executeTakeFirst();
  return row === undefined ? undefined : cardOf(row);
}

/** Which of these participants hold a card that can take money, in one read. */
export async function participantsWithCards(
  db: Db,
  organizationId: string,
  userIds: readonly string[],
): Promise<Set<string>> {
  if (userIds.length === 0) return new Set();
  const rows = await db
    .selectFrom('cards')
    .select('user_id')
    .where('organization_id', '=', organizationId)
    .where('user_id', 'in', [...new Set(userIds)])
    .where('status', '<>', 'closed')
    .execute();
  return new Set(rows.map((row) => row.user_id));
}

export interface RecordCard {
  userId: string;
  application: Application;
  highnotePaymentCardId: string;
  formFactor: CardFormFactor;
  status: CardStatus;
  last4: string | null;
  network: string | null;
  expirationDate: string | null;
  physicalOrder: { id: string; status: string; shipping: Shipping } | null;
}

/**
 * Records an issued card, and sends the participant's disbursements that were waiting for a card
 * back to funding.
 */
export async function recordCard(
  unit: UnitOfWork,
  input: RecordCard,
  fundWaiting: (disbursementId: string) => void,
): Promise<Result<Card>> {
  const application = input.application;
  if (application.highnoteFinancialAccountId === null) {
    return fail('invalid_state', `Application ${application.id} has no financial account yet`);
  }
  const existing = await cardForFunding(unit.tx, unit.organizationId, input.userId, application.cardProductId);
  if (existing !== undefined) {
    return fail('invalid_state', `User ${input.userId} already has card ${existing.id} on this card product`, 'userId');
  }
  const row = await unit.tx
    .insertInto('cards')
    .values({
      organization_id: unit.organizationId,
      id: newId('card'),
      user_id: input.userId,
      application_id: application.id,
      card_product_id: application.cardProductId,
      highnote_payment_card_id: input.highnotePaymentCardId,
      highnote_financial_account_id: application.highnoteFinancialAccountId,
      form_factor: input.formFactor,
      status: input.status,
      last4: input.last4,
      network: input.network,
      expiration_date: input.expirationDate,
      physical_order_id: input.physicalOrder?.id ?? null,
      physical_order_status: input.physicalOrder?.status ?? null,
      shipping: input.physicalOrder === null ? null : JSON.stringify(input.physicalOrder.shipping),
      created_at: unit.now,
      updated_at: unit.now,
      closed_at: input.status === 'closed' ? unit.now : null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  const card = cardOf(row);
  unit.emit('card.created', presentCard(card));
  const waiting = await unit.tx
    .selectFrom('disbursements')
    .select('id')
    .where('organization_id', '=', unit.organizationId)
    .where('user_id', '=', input.userId)
    .where('status', '=', 'awaiting_card')
    .execute();
  for (const { id } of waiting) fundWaiting(id);
  return ok(card);
}

/** Records a physical order placed for an existing virtual card. */
export async function recordPhysicalOrder(
  unit: UnitOfWork,
  cardId: string,
  order: { id: string; status: string; shipping: Shipping },
): Promise<Result<Card>> {
  const row = await unit.tx
    .updateTable('cards')
    .set({
      form_factor: 'physical',
      physical_order_id: order.id,
      physical_order_status: order.status,
      shipping: JSON.stringify(order.shipping),
      updated_at: unit.now,
    })
    .where('organization_id', '=', unit.organizationId)
    .where('id', '=', cardId)
    .where('physical_order_id', 'is', null)
    .returningAll()
    .executeTakeFirst();
  if (row === undefined) return fail('invalid_state', `Card ${cardId} already has a physical card ordered`);
  const card = cardOf(row);
  unit.emit('card.physical_ordered', presentCard(card));
  return ok(card);
}

const statusEvents = {
  active: 'card.activated',
  suspended: 'card.suspended',
  closed: 'card.closed',
} as const;

/**
 * Records the status Highnote reports for a card; a closed card never opens again. A card already
 * in that status is answered as it is, with no event: the route that changed it and Highnote's
 * notification of the change both report it, and the change happened once.
 */
export async function recordCardStatus(
  unit: UnitOfWork,
  cardId: string,
  status: Exclude<CardStatus, 'activation_required'>,
): Promise<Result<Card>> {
  const row = await unit.tx
    .updateTable('cards')
    .set({ status, updated_at: unit.now, ...(status === 'closed' ? { closed_at: unit.now } : {}) })
    .where('organization_id', '=', unit.organizationId)
    .where('id', '=', cardId)
    .where('status', '<>', 'closed')
    .where('status', '<>', status)
    .returningAll()
    .executeTakeFirst();
  if (row === undefined) {
    const current = await getCard(unit.tx, unit.organizationId, cardId);
    if (current === undefined) return fail('not_found', `No card ${cardId}`);
    if (current.status === status) return ok(current);
    return fail('invalid_state', `Card ${cardId} is closed`);
  }
  const card = cardOf(row);
  unit.emit(statusEvents[status], presentCard(card));
  return ok(card);
}

/**
 * Highnote's physical order statuses in the order an order moves through them; the last ones are
 * ends. A report only moves an order forward, so a late or repeated one changes nothing.
 */
const physicalOrderProgress: Readonly<Record<string, number>> = {
  NEW: 0,
  SENT_TO_PRINTER: 1,
  APPROVED: 2,
  SHIPPED: 3,
  SHIP_FAILED: 3,
  CANCELED: 3,
  COMPLETED: 4,
};

const physicalOrderEvents = { SHIPPED: 'card.physical_shipped', SHIP_FAILED: 'card.physical_ship_failed' } as const;

/** Records an order status Highnote reports, forward only; answers the card when it moved. */
export async function recordPhysicalOrderStatus(
  unit: UnitOfWork,
  physicalOrderId: string,
  status: keyof typeof physicalOrderEvents,
): Promise<Card | undefined> {
  const rank = physicalOrderProgress[status] ?? 0;
  const behind = Object.entries(physicalOrderProgress)
    .filter(([, progress]) => progress < rank)
    .map(([name]) => name);
  const row = await unit.tx
    .updateTable('cards')
    .set({ physical_order_status: status, updated_at: unit.now })
    .where('organization_id', '=', unit.organizationId)
    .where('physical_order_id', '=', physicalOrderId)
    .where('physical_order_status', 'in', behind)
    .returningAll()
    .executeTakeFirst();
  if (row === undefined) return undefined;
  const card = cardOf(row);
  unit.emit(physicalOrderEvents[status], presentCard(card));
  return card;
}
