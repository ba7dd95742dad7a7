import { cardFormFactor, cardProductIdOf, PAYMENT_CARD_BIN, PAYMENT_CARD_NETWORK } from './cardViews.js';
import type {
  ApplicationRecord,
  ApplicationStatus,
  JsonObject,
  PaymentCardRecord,
  PaymentCardStatus,
  PhysicalOrderRecord,
  SandboxState,
  TransactionEventRecord,
  TransactionRecord,
  TransferRecord,
} from './store.js';
import { amountJson } from './viewPrimitives.js';

/*
 * The typed node inside a notification event, as plain JSON: a snapshot of the record when the
 * event happened. It is what a webhook receives and what `notificationEvents` answers later.
 */

export const APPLICATION_EVENT_NAMES: Partial<Record<ApplicationStatus, string>> = {
  APPROVED: 'CARD_PRODUCT_APPLICATION_APPROVED',
  DENIED: 'CARD_PRODUCT_APPLICATION_DENIED',
  IN_REVIEW: 'CARD_PRODUCT_APPLICATION_MANUAL_REVIEW',
  CLOSED: 'CARD_PRODUCT_APPLICATION_CLOSED',
};

export function applicationEventNode(application: ApplicationRecord): JsonObject {
  return {
    __typename: 'AccountHolderCardProductApplication',
    id: application.id,
    applicationState: { status: application.status },
    applicationDenialReason: application.status === 'DENIED' ? 'DENIED_DUE_TO_OTHER' : null,
    decisionedAt: application.decisionedAt,
    createdAt: application.createdAt,
    updatedAt: application.updatedAt,
  };
}

export const CARD_EVENTS = {
  PAYMENT_CARD_ISSUED: 'PaymentCardIssuedEvent',
  PAYMENT_CARD_ACTIVATED: 'PaymentCardActivatedEvent',
  PAYMENT_CARD_SUSPENDED: 'PaymentCardSuspendedEvent',
  PAYMENT_CARD_UNSUSPENDED: 'PaymentCardUnsuspendedEvent',
  PAYMENT_CARD_CLOSED: 'PaymentCardClosedEvent',
} as const;

export function cardEventNode(
  state: SandboxState,
  name: keyof typeof CARD_EVENTS,
  card: PaymentCardRecord,
  previousStatus: PaymentCardStatus | null,
): JsonObject {
  return {
    __typename: CARD_EVENTS[name],
    id: card.id,
    bin: PAYMENT_CARD_BIN,
    cardProductId: cardProductIdOf(state, card),
    expirationDate: card.expirationDate,
    formFactor: cardFormFactor(state, card),
    last4: card.last4,
    network: PAYMENT_CARD_NETWORK,
    status: card.status,
    previousStatus,
    updatedAt: card.updatedAt,
  };
}

export const ORDER_EVENTS = {
  PHYSICAL_PAYMENT_CARD_SHIPPED: 'PhysicalPaymentCardShippedEvent',
  PHYSICAL_PAYMENT_CARD_SHIP_FAILED: 'PhysicalPaymentCardShipFailedEvent',
} as const;

export function orderEventNode(name: keyof typeof ORDER_EVENTS, order: PhysicalOrderRecord): JsonObject {
  return {
    __typename: ORDER_EVENTS[name],
    id: order.id,
    orderState: { status: order.status },
    paymentCardId: order.paymentCardId,
    createdAt: order.createdAt,
    updatedAt: order.updatedAt,
  };
}

const TRANSFER_EVENT_PREFIX = 'INTERNAL_TRANSFER_FROM_FUNDING_FINANCIAL_ACCOUNT_TO_PAYMENT_CARD_FINANCIAL_ACCOUNT';
const TRANSFER_EVENT_TYPENAME_PREFIX = 'InternalTransferFromFundingFinancialAccountToPaymentCardFinancialAccount';

/** The event name and node for a funding → card transfer in its current status. */
export function transferEvent(transfer: TransferRecord): { name: string; node: JsonObject } {
  const suffix = { PENDING: 'Pending', COMPLETED: 'Completed', FAILED: 'Failed' }[transfer.status];
  const node: JsonObject = {
    __typename: `${TRANSFER_EVENT_TYPENAME_PREFIX}${suffix}Event`,
    id: transfer.id,
    amount: amountJson(transfer.amountCents),
    internalTransferStatus: transfer.status,
    memo: transfer.memo,
    createdAt: transfer.createdAt,
    updatedAt: transfer.updatedAt,
  };
  if (transfer.status === 'FAILED') node.internalTransferStatusReason = transfer.statusReason;
  return { name: `${TRANSFER_EVENT_PREFIX}_${transfer.status}`, node };
}

export const TRANSACTION_EVENTS = {
  PAYMENT_CARD_AUTHORIZATION_APPROVED: 'PaymentCardAuthorizationApprovedEvent',
  PAYMENT_CARD_AUTHORIZATION_DECLINED: 'PaymentCardAuthorizationDeclinedEvent',
  PAYMENT_CARD_AUTHORIZATION_REVERSED: 'PaymentCardAuthorizationReversedEvent',
  PAYMENT_CARD_CLEARED: 'PaymentCardClearedEvent',
} as const;

export function transactionEventNode(
  name: keyof typeof TRANSACTION_EVENTS,
  transaction: TransactionRecord,
  event: TransactionEventRecord,
): JsonObject {
  return {
    __typename: TRANSACTION_EVENTS[name],
    id: event.id,
    transactionId: transaction.id,
    cardId: transaction.paymentCardId,
    financialAccountId: transaction.financialAccountId,
    accountHolderId: transaction.accountHolderId,
    responseCode: event.responseCode,
    approvedAmount: amountJson(event.approvedCents),
    requestedAmount: amountJson(event.requestedCents),
    merchantDetails: { ...transaction.merchant },
    accountingDirection: event.accountingDirection,
    currentFinancialAccountAvailableToSpendAmount: amountJson(event.availableAfterCents),
    transactionProcessingType: event.transactionProcessingType,
    createdAt: event.createdAt,
  };
}
