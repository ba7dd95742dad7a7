import { applicationOf } from '../cards/application.js';
import { cardStatusOf } from '../cards/card.js';
import { recordApplicationDecision } from '../cards/jobs.js';
import { recordCardStatus, recordPhysicalOrderStatus } from '../cards/service.js';
import type { Issuers } from '../configurations/service.js';
import { disbursementOf } from '../disbursements/disbursement.js';
import { failFunding, settleFunding } from '../disbursements/funding.js';
import { centsOf } from '../issuer/highnote.js';
import type { ApplicationStatusCode } from '../issuer/highnote-cards.js';
import { assert, ok } from '../platform/errors.js';
import { defineJob, type JobContext } from '../platform/jobs.js';
import { merchantOf, recordSpendEvent, type SpendEventInput, type SpendEventKind } from '../spend/spend.js';
import { runUnit } from '../work/runner.js';
import type { UnitContext } from '../work/unit.js';
import {
  type ApplyNotificationPayload,
  applyNotificationJobName,
  applyNotificationMaxAttempts,
  readNotification,
} from './store.js';
import {
  applicationEvents,
  cardLifecycleEvents,
  physicalOrderEvents,
  spendEvents,
  transferCompleted,
  transferFailed,
} from './subscriptions.js';

/**
 * Applying a stored notification. Every state it touches only moves forward (a disbursement
 * settles or fails once, an application is decided once, a closed card stays closed, an order
 * status never goes back), so duplicates and any order of arrival end in the same state; the
 * polling jobs that follow the same things get there too when a notification is lost.
 *
 * Card transactions (authorizations, reversals, clearings, refunds) become spend events, each once
 * by Highnote's event id (spend/spend.ts). Account statuses are stored and acknowledged only:
 * Tranche keeps no financial account state of its own.
 */

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `data.node.node`: the typed event object inside the envelope. */
function eventNodeOf(payload: unknown): Json {
  const data = isObject(payload) ? payload.data : undefined;
  const notification = isObject(data) ? data.node : undefined;
  const node = isObject(notification) ? notification.node : undefined;
  return isObject(node) ? node : {};
}

const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

export function applyNotificationJob(deps: { issuers: Issuers }) {
  return defineJob<ApplyNotificationPayload>({
    name: applyNotificationJobName,
    maxAttempts: applyNotificationMaxAttempts,
    backoff: { baseMs: 250, maxMs: 10 * 60 * 1000 },
    visibilityTimeoutMs: 60_000,
    run: (context, payload) => apply(context, deps.issuers, payload.notificationId),
  });
}

async function apply(context: JobContext, issuers: Issuers, notificationId: string): Promise<void> {
  const organizationId = context.job.organizationId;
  assert(organizationId !== null, 'a notification belongs to an organization');
  const notification = await readNotification(context.db, organizationId, notificationId);
  if (notification === undefined) return;
  const unitContext: UnitContext = {
    organizationId,
    actor: { kind: 'system', id: context.job.id },
    requestId: null,
  };
  const node = eventNodeOf(notification.payload);
  const name = notification.name;
  if (name === transferCompleted || name === transferFailed) {
    await applyTransfer(context, unitContext, node, name === transferCompleted);
  } else if ((applicationEvents as readonly string[]).includes(name)) {
    await applyApplication(context, issuers, unitContext, node);
  } else if ((cardLifecycleEvents as readonly string[]).includes(name)) {
    await applyCardStatus(context, issuers, unitContext, node, name);
  } else if ((physicalOrderEvents as readonly string[]).includes(name)) {
    await applyPhysicalOrder(context, unitContext, node, name);
  } else if ((spendEvents as readonly string[]).includes(name)) {
    const input = spendEventOfNotification(name, node);
    if (input !== undefined) {
      await runUnit(context.db, unitContext, async (unit) => ok(await recordSpendEvent(unit, input, 'notification')));
    }
  }
}

function amountCentsOf(value: unknown): bigint | undefined {
  if (!isObject(value) || (typeof value.value !== 'string' && typeof value.value !== 'number')) return undefined;
  return centsOf(value as unknown as Parameters<typeof centsOf>[0]);
}

/**
 * A card transaction notification as a spend event. A clearing that credits the account is a
 * refund; a declined authorization records what was asked for (it takes nothing).
 */
export function spendEventOfNotification(name: string, node: Json): SpendEventInput | undefined {
  const id = text(node.id);
  const transactionId = text(node.transactionId);
  const paymentCardId = text(node.cardId) ?? (isObject(node.card) ? text(node.card.id) : undefined);
  const occurredAt = text(node.createdAt);
  if (id === undefined || transactionId === undefined || paymentCardId === undefined || occurredAt === undefined) {
    return undefined;
  }
  let kind: SpendEventKind;
  if (name === 'PAYMENT_CARD_AUTHORIZATION_APPROVED') kind = 'authorization_approved';
  else if (name === 'PAYMENT_CARD_AUTHORIZATION_DECLINED') kind = 'authorization_declined';
  else if (name === 'PAYMENT_CARD_AUTHORIZATION_REVERSED') kind = 'reversal';
  else kind = text(node.accountingDirection) === 'CREDIT' ? 'refund' : 'clearing';
  const amountCents =
    kind === 'authorization_declined'
      ? amountCentsOf(node.requestedAmount)
      : (amountCentsOf(node.approvedAmount) ?? amountCentsOf(node.requestedAmount));
  if (amountCents === undefined) return undefined;
  return {
    id,
    transactionId,
    paymentCardId,
    kind,
    amountCents,
    responseCode: text(node.responseCode) ?? null,
    merchant: merchantOf(node.merchantDetails),
    occurredAt: new Date(occurredAt),
  };
}

/**
 * A transfer completed or failed: the disbursement following it settles or fails, once, whoever
 * gets there first (this job or the funding job). A transfer whose id the funding job has not
 * recorded yet is left to the funding job, which follows it itself.
 */
async function applyTransfer(context: JobContext, unitContext: UnitContext, node: Json, completed: boolean) {
  const transferId = text(node.id);
  if (transferId === undefined) return;
  const row = await context.db
    .selectFrom('disbursements')
    .selectAll()
    .where('organization_id', '=', unitContext.organizationId)
    .where('highnote_transfer_id', '=', transferId)
    .executeTakeFirst();
  if (row === undefined) return;
  const disbursement = disbursementOf(row);
  if (disbursement.status !== 'processing') return;
  if (completed) {
    const amount = node.amount;
    if (isObject(amount)) {
      const cents = centsOf(amount as unknown as Parameters<typeof centsOf>[0]);
      assert(
        cents === disbursement.amountCents,
        `transfer ${transferId} moved ${cents} cents for disbursement ${disbursement.id} of ${disbursement.amountCents}`,
      );
    }
    await settleFunding(context.db, unitContext, disbursement.id);
    return;
  }
  const reason = text(node.internalTransferStatusReason) ?? text(node.statusReason) ?? 'FAILED';
  await failFunding(context.db, unitContext, disbursement.id, reason, `Highnote failed the transfer: ${reason}`);
}

const applicationStatusCodes: readonly ApplicationStatusCode[] = [
  'PENDING',
  'IN_REVIEW',
  'APPROVED',
  'DENIED',
  'CLOSED',
];

/** An application decided: recorded through the follow job's own path (approval issues the account). */
async function applyApplication(context: JobContext, issuers: Issuers, unitContext: UnitContext, node: Json) {
  const highnoteApplicationId = text(node.id);
  const state = isObject(node.applicationState) ? text(node.applicationState.status) : undefined;
  if (highnoteApplicationId === undefined || state === undefined) return;
  if (!(applicationStatusCodes as readonly string[]).includes(state)) return;
  const row = await context.db
    .selectFrom('applications')
    .selectAll()
    .where('organization_id', '=', unitContext.organizationId)
    .where('highnote_application_id', '=', highnoteApplicationId)
    .executeTakeFirst();
  if (row === undefined) return;
  const application = applicationOf(row);
  if (application.status === 'denied' || application.status === 'closed') return;
  const issuer = await issuers.forOrganization(unitContext.organizationId);
  if (!issuer.ok) throw new Error(issuer.failure.message);
  await recordApplicationDecision(context.db, unitContext, issuer.value.highnote, application, {
    status: state as ApplicationStatusCode,
    denialReason: text(node.applicationDenialReason) ?? null,
  });
}

/**
 * A card's status changed. Closing is final, so a close is recorded as it comes. Activation and
 * suspension go back and forth, so the order notifications arrive in says nothing: the card's
 * status is read from Highnote and recorded, which is the same whichever arrives last.
 */
async function applyCardStatus(
  context: JobContext,
  issuers: Issuers,
  unitContext: UnitContext,
  node: Json,
  name: string,
) {
  const paymentCardId = text(node.id);
  if (paymentCardId === undefined) return;
  const card = await context.db
    .selectFrom('cards')
    .select(['id', 'status'])
    .where('organization_id', '=', unitContext.organizationId)
    .where('highnote_payment_card_id', '=', paymentCardId)
    .executeTakeFirst();
  // A card not recorded yet is recorded by the request that issued it, with the status Highnote answered.
  if (card === undefined || card.status === 'closed') return;
  let status = 'CLOSED';
  if (name !== 'PAYMENT_CARD_CLOSED') {
    const issuer = await issuers.forOrganization(unitContext.organizationId);
    if (!issuer.ok) throw new Error(issuer.failure.message);
    const read = await issuer.value.highnote.card(paymentCardId);
    if (!read.ok) throw new Error(read.failure.message);
    status = read.value.status;
  }
  const recorded = cardStatusOf(status);
  if (recorded === 'activation_required' || recorded === card.status) return;
  await runUnit(context.db, unitContext, async (unit) => {
    await recordCardStatus(unit, card.id, recorded);
    return ok(null);
  });
}

/** A physical card shipped, or its shipment failed: the order's status moves forward only. */
async function applyPhysicalOrder(context: JobContext, unitContext: UnitContext, node: Json, name: string) {
  const orderId = text(node.id);
  if (orderId === undefined) return;
  const status = name === 'PHYSICAL_PAYMENT_CARD_SHIPPED' ? 'SHIPPED' : 'SHIP_FAILED';
  await runUnit(context.db, unitContext, async (unit) => ok(await recordPhysicalOrderStatus(unit, orderId, status)));
}
