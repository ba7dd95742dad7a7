import { CARD_EVENTS, ORDER_EVENTS, TRANSACTION_EVENTS } from '../eventNodes.js';

/* Webhook notification targets, notification events, and the event node types the sandbox emits. */

function typeWith(fields: string) {
  return (typeName: string) => `
  type ${typeName} {
    ${fields}
  }
`;
}

const cardEventType = typeWith(`
    id: ID!
    bin: String
    cardProductId: ID
    expirationDate: String
    formFactor: CardFormFactor
    last4: String
    network: PaymentCardNetwork
    status: PaymentCardStatus
    previousStatus: PaymentCardStatus
    updatedAt: String
`);

const orderEventType = typeWith(`
    id: ID!
    orderState: PaymentCardOrderStateDetail
    paymentCardId: ID
    createdAt: String
    updatedAt: String
`);

const TRANSFER_FIELDS = `
    id: ID!
    amount: Amount
    internalTransferStatus: InterFinancialAccountTransferStatus
    memo: String
    createdAt: String
    updatedAt: String
`;

const transactionEventType = typeWith(`
    id: ID!
    transactionId: ID
    cardId: ID
    financialAccountId: ID
    accountHolderId: ID
    responseCode: TransactionEventResponseCode
    approvedAmount: Amount
    requestedAmount: Amount
    merchantDetails: MerchantDetails
    accountingDirection: AccountingDirection
    currentFinancialAccountAvailableToSpendAmount: Amount
    transactionProcessingType: CardTransactionProcessingType
    createdAt: String
`);

const TRANSFER_PREFIX = 'InternalTransferFromFundingFinancialAccountToPaymentCardFinancialAccount';

const EVENT_NODE_TYPES = [
  'AccountHolderCardProductApplication',
  'NotificationTargetActivationEvent',
  ...Object.values(CARD_EVENTS),
  ...Object.values(ORDER_EVENTS),
  `${TRANSFER_PREFIX}PendingEvent`,
  `${TRANSFER_PREFIX}CompletedEvent`,
  `${TRANSFER_PREFIX}FailedEvent`,
  ...Object.values(TRANSACTION_EVENTS),
];

export const NOTIFICATIONS_SDL = /* GraphQL */ `
  extend type Query {
    notificationEvents(first: Int = 20, after: String, filterBy: NotificationEventsFilterInput): NotificationEventsConnection
  }

  extend type Mutation {
    addWebhookNotificationTarget(input: AddWebhookNotificationTargetInput!): AddWebhookNotificationTargetPayload
    activateNotificationTarget(input: ActivateNotificationTargetInput!): ActivateNotificationTargetPayload
    deactivateNotificationTarget(input: DeactivateNotificationTargetInput!): DeactivateNotificationTargetPayload
    removeNotificationTarget(input: RemoveNotificationTargetInput!): RemoveNotificationTargetPayload
    replayNotificationEvent(input: ReplayNotificationEventInput!): ReplayNotificationEventPayload
    rotateNotificationTargetSigningKey(
      input: RotateNotificationTargetSigningKeyInput!
    ): RotateNotificationTargetSigningKeyPayload
  }

  enum NotificationTargetStatus {
    PENDING_VERIFICATION
    ACTIVE
    DEACTIVATED
    ACTIVATION_FAILED
  }

  type SigningKey implements Node {
    id: ID!
    secret: String
    createdAt: String
    expiresAt: String
  }

  type WebhookNotificationTarget implements Node {
    id: ID!
    name: String
    uri: String
    email: String
    subscriptions: [NotificationEventName!]
    createdAt: String
    updatedAt: String
    deactivatedAt: String
    signingKeys: [SigningKey!]
    status: NotificationTargetStatus!
  }

  input AddWebhookNotificationTargetInput {
    name: String!
    uri: String!
    email: String
    subscriptions: [NotificationEventName!]!
  }

  input ActivateNotificationTargetInput {
    targetId: ID!
  }

  input DeactivateNotificationTargetInput {
    targetId: ID!
  }

  input RemoveNotificationTargetInput {
    targetId: ID!
  }

  input RotateNotificationTargetSigningKeyInput {
    targetId: ID!
  }

  input ReplayNotificationEventInput {
    notificationEventId: ID!
    targetIds: [ID!]
  }

  union AddWebhookNotificationTargetPayload = WebhookNotificationTarget | UserError | AccessDeniedError
  union ActivateNotificationTargetPayload = WebhookNotificationTarget | UserError | AccessDeniedError
  union DeactivateNotificationTargetPayload = WebhookNotificationTarget | UserError | AccessDeniedError
  union RemoveNotificationTargetPayload = WebhookNotificationTarget | UserError | AccessDeniedError
  union RotateNotificationTargetSigningKeyPayload = WebhookNotificationTarget | UserError | AccessDeniedError
  union ReplayNotificationEventPayload = NotificationEvent | UserError | AccessDeniedError

  type NotificationEvent implements Node {
    id: ID!
    createdAt: String
    expiresAt: String
    name: NotificationEventName
    node: NotificationEventNode
  }

  type NotificationEventEdge {
    cursor: String!
    node: NotificationEvent
  }

  type NotificationEventsConnection {
    pageInfo: PageInfo!
    edges: [NotificationEventEdge!]
  }

  input NotificationTimestampFilterInputRange {
    start: String
    end: String
  }

  input NotificationTimestampFilterInput {
    equals: String
    notEquals: String
    lessThan: String
    lessThanOrEquals: String
    greaterThan: String
    greaterThanOrEquals: String
    between: NotificationTimestampFilterInputRange
  }

  input NotificationEventsFilterInput {
    createdAt: NotificationTimestampFilterInput
    name: [NotificationEventName!]
  }

  type NotificationTargetActivationEvent {
    ping: String
  }

  ${Object.values(CARD_EVENTS).map(cardEventType).join('')}
  ${Object.values(ORDER_EVENTS).map(orderEventType).join('')}
  ${typeWith(TRANSFER_FIELDS)(`${TRANSFER_PREFIX}PendingEvent`)}
  ${typeWith(TRANSFER_FIELDS)(`${TRANSFER_PREFIX}CompletedEvent`)}
  ${typeWith(`${TRANSFER_FIELDS} internalTransferStatusReason: InterFinancialAccountTransferStatusReasonCode`)(`${TRANSFER_PREFIX}FailedEvent`)}
  ${Object.values(TRANSACTION_EVENTS).map(transactionEventType).join('')}

  union NotificationEventNode = ${EVENT_NODE_TYPES.join(' | ')}
`;
