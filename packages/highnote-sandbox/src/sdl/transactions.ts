/* Simulated card transactions: authorization, clearing, reversal and refund, and their events. */

const TRANSACTION_EVENT_FIELDS = `
    id: ID!
    transactionId: ID @deprecated(reason: "Use transaction instead")
    transaction: Transaction
    responseCode: TransactionEventResponseCode
    approvedAmount: Amount
    requestedAmount: Amount
    accountingDirection: AccountingDirection
    createdAt: String
    paymentCard: PaymentCard
    cardProduct: CardProduct
    merchantDetails: MerchantDetails
    currentFinancialAccountAvailableToSpendAmount: Amount
    transactionProcessingType: CardTransactionProcessingType
    pointOfServiceDetails: PointOfServiceDetails
    cashbackAmount: Amount
`;

function spendRuleResult(ruleType: string, valueType: string): string {
  return `
  type ${ruleType}Result implements SpendRuleResult {
    recommendation: SpendRuleRecommendation
    message: String
    valuesTested: [${valueType}!]
    spendRule: ${ruleType}
    attachedLevel: AttachedLevel
  }
`;
}

export const TRANSACTIONS_SDL = /* GraphQL */ `
  extend type Mutation {
    simulateAuthorization(input: SimulateAuthorizationInput!): SimulateAuthorizationPayload
    simulateClearing(input: SimulateClearingInput!): SimulateClearingPayload
    simulateReversal(input: SimulateReversalInput!): SimulateReversalPayload
    simulateRefund(input: SimulateRefundInput!): SimulateRefundPayload
  }

  extend type FinancialAccount {
    "The card transaction events on this account, oldest first."
    transactionEvents(first: Int = 20, after: String, filterBy: TransactionEventsFilterInput): TransactionEventConnection
  }

  enum AccountingDirection {
    DEBIT
    CREDIT
  }

  enum SpendRuleRecommendation {
    ALLOW
    BLOCK
    NONE
  }

  enum AttachedLevel {
    UNSPECIFIED
    PLATFORM
    PRODUCT
    CARD
    ACCOUNT
  }

  enum TransactionEventFilter {
    AUTHORIZATION_EVENT
    REVERSAL_EVENT
    CLEARING_EVENT
    AUTHORIZATION_AND_CLEAR_EVENT
    BALANCE_INQUIRY_EVENT
    VERIFICATION_EVENT
    ISSUER_PRELIMINARY_AUTHORIZATION_EVENT
    ENHANCED_DATA_EVENT
    ADJUSTMENT_EVENT
  }

  input TransactionEventFilterInput {
    equals: TransactionEventFilter
    notEquals: TransactionEventFilter
    includes: [TransactionEventFilter!]
    excludes: [TransactionEventFilter!]
  }

  input TransactionEventResponseCodeFilterInput {
    equals: TransactionEventResponseCode
    notEquals: TransactionEventResponseCode
    includes: [TransactionEventResponseCode!]
    excludes: [TransactionEventResponseCode!]
  }

  "The subset of Highnote's filter the sandbox applies; amounts, merchants and network codes are not here yet."
  input TransactionEventsFilterInput {
    eventType: TransactionEventFilterInput
    responseCode: TransactionEventResponseCodeFilterInput
    paymentCardId: IDFilterInput
    transactionId: IDFilterInput
    id: IDFilterInput
    createdAt: TimestampFilterInput
  }

  input MerchantDetailsInput {
    category: MerchantCategory
    countryCodeAlpha3: ISO3166Alpha3Country
    description: String
    merchantId: String
    name: String
  }

  input PointOfServiceDetailsInput {
    category: PointOfServiceCategory
    isCardHolderPresent: Boolean
    isCardPresent: Boolean
    isRecurring: Boolean
    terminalSupportsPartialApproval: Boolean
  }

  input SimulateAuthorizationInput {
    cardId: ID!
    amount: AmountInput!
    merchantDetails: MerchantDetailsInput
    transactionProcessingType: CardTransactionProcessingType
    pointOfServiceDetails: PointOfServiceDetailsInput
    cashbackAmount: AmountInput
  }

  input SimulateClearingInput {
    transactionId: ID!
    amount: AmountInput
  }

  input SimulateReversalInput {
    transactionId: ID!
    amount: AmountInput
  }

  input SimulateRefundInput {
    transactionId: ID!
    amount: AmountInput
  }

  type MerchantDetails {
    merchantId: String
    category: MerchantCategory
    categoryCode: String
    countryCodeAlpha3: ISO3166Alpha3Country
    description: String
    name: String
  }

  type PointOfServiceDetails {
    category: PointOfServiceCategory
  }

  interface TransactionEvent implements Node {
    id: ID!
    transaction: Transaction
    approvedAmount: Amount
    accountingDirection: AccountingDirection
    paymentCard: PaymentCard
    cardProduct: CardProduct
    createdAt: String
    responseCode: TransactionEventResponseCode
    currentFinancialAccountAvailableToSpendAmount: Amount
    transactionProcessingType: CardTransactionProcessingType
    pointOfServiceDetails: PointOfServiceDetails
  }

  type TransactionEventEdge {
    cursor: String!
    node: TransactionEvent
  }

  type TransactionEventConnection {
    pageInfo: PageInfo!
    edges: [TransactionEventEdge!]
  }

  type DebitTransaction implements Node {
    id: ID!
    transactionEvents(eventTypes: [TransactionEventFilter!]): [TransactionEvent!]
  }

  "Declared so that selections written for Highnote validate; card purchases here are DebitTransaction."
  type CreditTransaction implements Node {
    id: ID!
    transactionEvents(eventTypes: [TransactionEventFilter!]): [TransactionEvent!]
  }

  union Transaction = CreditTransaction | DebitTransaction

  interface SpendRuleResult {
    recommendation: SpendRuleRecommendation
    message: String
    attachedLevel: AttachedLevel
  }

  ${spendRuleResult('AmountLimitSpendRule', 'Amount')}
  ${spendRuleResult('MerchantCategorySpendRule', 'MerchantCategory')}
  ${spendRuleResult('MerchantIdentifierSpendRule', 'String')}
  ${spendRuleResult('CardTransactionProcessingTypeConditionSpendRule', 'CardTransactionProcessingType')}
  ${spendRuleResult('PointOfServiceCategorySpendRule', 'PointOfServiceCategory')}

  type VelocityRuleResult implements SpendRuleResult {
    recommendation: SpendRuleRecommendation
    message: String
    velocityRule: VelocityRule
    attachedLevel: AttachedLevel
  }

  type SpendRuleResultEdge {
    cursor: String!
    node: SpendRuleResult
  }

  type SpendRuleResultConnection {
    pageInfo: PageInfo!
    edges: [SpendRuleResultEdge!]
  }

  type AuthorizationEvent implements Node & TransactionEvent {
    ${TRANSACTION_EVENT_FIELDS}
    spendRuleResults(first: Int = 20, after: String): SpendRuleResultConnection
  }

  type ClearingEvent implements Node & TransactionEvent {
    ${TRANSACTION_EVENT_FIELDS}
  }

  type ReversalEvent implements Node & TransactionEvent {
    ${TRANSACTION_EVENT_FIELDS}
  }

  union SimulateAuthorizationPayload = AuthorizationEvent | UserError | AccessDeniedError
  union SimulateClearingPayload = ClearingEvent | UserError | AccessDeniedError
  union SimulateReversalPayload = ReversalEvent | UserError | AccessDeniedError
  union SimulateRefundPayload = ClearingEvent | UserError | AccessDeniedError
`;
