/*
 * The onboarding and funding part of the subset of Highnote's Test API schema that the sandbox
 * serves. Type, field and enum names follow Highnote so that queries written for the real API
 * validate here; where the sandbox leaves a member out, a query that selects it fails validation
 * instead of silently reading null.
 */
export const BASE_SDL = /* GraphQL */ `
  "Non-negative integer; money values are minor units (cents for USD)."
  scalar UnsignedInt
  scalar IdempotencyKey

  interface Node {
    id: ID!
  }

  type Query {
    ping: String!
    node(id: ID!): Node
  }

  type Mutation {
    createUSPersonAccountHolder(input: CreateUSPersonAccountHolderInput!): CreateUSPersonAccountHolderPayload
    createAccountHolderCardProductApplication(
      input: CreateAccountHolderCardProductApplicationInput!
    ): CreateAccountHolderCardProductApplicationPayload
    simulateApplicationStatusChange(input: SimulateApplicationStatusChangeInput!): SimulateApplicationUpdatePayload
    issueFinancialAccountForApplication(
      input: IssueFinancialAccountForApplicationInput!
    ): IssueFinancialAccountForApplicationPayload
    issuePaymentCardForFinancialAccount(
      input: IssuePaymentCardForFinancialAccountInput!
    ): IssuePaymentCardForFinancialAccountPayload
    simulateDeposit(input: SimulateDepositInput!): SimulateDepositPayload
    initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount(
      input: InitiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccountInput!
    ): InitiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccountPayload
  }

  type FieldUserError {
    path: [String!]
    code: String
    description: String
    errorPath: [String!]
  }

  type UserError {
    errors: [FieldUserError!]
  }

  type AccessDeniedError {
    message: String!
  }

  enum ISO4217Alpha3SupportedCurrency {
    USD
  }

  input AmountInput {
    value: UnsignedInt!
    currencyCode: ISO4217Alpha3SupportedCurrency!
  }

  type Amount {
    value: UnsignedInt
    currencyCode: String
    decimalPlaces: UnsignedInt
  }

  # Account holders

  enum PhoneLabel {
    MOBILE
    HOME
    WORK
    SUPPORT
  }

  enum TaxIdentificationNumberType {
    SOCIAL_SECURITY_NUMBER
    INDIVIDUAL_TAXPAYER_IDENTIFICATION_NUMBER
    EMPLOYER_IDENTIFICATION_NUMBER
  }

  input PersonAccountHolderNameInput {
    givenName: String!
    middleName: String
    familyName: String!
    suffix: String
    title: String
  }

  input PhoneInput {
    countryCode: String!
    number: String!
    extension: String
    label: PhoneLabel!
  }

  input AddressInput {
    streetAddress: String!
    extendedAddress: String
    postalCode: String!
    region: String!
    locality: String!
    countryCodeAlpha3: String!
  }

  input TaxIdentificationDocumentInput {
    number: String!
    countryCodeAlpha3: String!
    taxIdentificationNumberType: TaxIdentificationNumberType
  }

  input USIdentificationDocumentInput {
    socialSecurityNumber: TaxIdentificationDocumentInput!
  }

  input USPersonAccountHolderInput {
    name: PersonAccountHolderNameInput!
    email: String
    phoneNumber: PhoneInput
    billingAddress: AddressInput
    billingAddressToken: ID
    dateOfBirth: String!
    identificationDocument: USIdentificationDocumentInput
    externalId: String
  }

  input CreateUSPersonAccountHolderInput {
    personAccountHolder: USPersonAccountHolderInput!
  }

  type PersonAccountHolderName {
    givenName: String
    middleName: String
    familyName: String
    suffix: String
    title: String
  }

  type Phone {
    countryCode: String
    number: String
    extension: String
    label: PhoneLabel
  }

  type Address {
    streetAddress: String
    extendedAddress: String
    postalCode: String
    region: String
    locality: String
    countryCodeAlpha3: String
  }

  "The identification document is accepted on input and never returned."
  type USPersonAccountHolder implements Node {
    id: ID!
    externalId: String
    name: PersonAccountHolderName
    email: String
    phoneNumbers: [Phone!]
    billingAddress: Address
    dateOfBirth: String
    createdAt: String
    updatedAt: String
  }

  union CreateUSPersonAccountHolderPayload = USPersonAccountHolder | UserError | AccessDeniedError

  # Applications (KYC)

  enum AccountHolderApplicationStatusCode {
    PENDING
    IN_REVIEW
    APPROVED
    DENIED
    CLOSED
  }

  enum AccountHolderApplicationDenialReason {
    DENIED_DUE_TO_APPLICATION_INACTIVITY
    DENIED_DUE_TO_OTHER
  }

  input IPAddressInput {
    v4: String
    v6: String
  }

  input ConsentInput {
    primaryAuthorizedPersonId: ID!
    consentTimestamp: String!
    consentIpAddress: IPAddressInput
  }

  input CreateAccountHolderCardProductApplicationInput {
    cardProductId: ID!
    accountHolderId: ID!
    cardHolderAgreementConsent: ConsentInput!
    ipAddress: IPAddressInput
  }

  input SimulateApplicationStatusChangeInput {
    applicationId: ID!
    newApplicationStatus: AccountHolderApplicationStatusCode!
  }

  type AccountHolderApplicationState {
    status: AccountHolderApplicationStatusCode!
  }

  type AccountHolderCardProductApplication implements Node {
    id: ID!
    applicationState: AccountHolderApplicationState
    applicationDenialReason: AccountHolderApplicationDenialReason
    cardProduct: CardProduct
    decisionedAt: String
    createdAt: String
    updatedAt: String
  }

  union CreateAccountHolderCardProductApplicationPayload =
    | AccountHolderCardProductApplication
    | UserError
    | AccessDeniedError

  union SimulateApplicationUpdatePayload = AccountHolderCardProductApplication | UserError | AccessDeniedError

  # Card products and financial accounts

  enum FinancialAccountStatus {
    UNACTIVATED
    ACTIVE
    SUSPENDED
    UNDER_REVIEW
    PENDING_CLOSURE
    CLOSED
  }

  enum FinancialAccountFeatureType {
    PRODUCT_FUNDING
    CARD_FUNDING_ACCOUNT
    PREPAID_PAYMENT_CARD
    DEBIT_PAYMENT_CARD
  }

  enum LedgerName {
    AVAILABLE_CASH
    CASH
  }

  enum LedgerNormalBalance {
    CREDIT
    DEBIT
  }

  type FinancialAccountFeature {
    featureType: FinancialAccountFeatureType!
    enabled: Boolean!
  }

  type Ledger {
    name: LedgerName!
    creditBalance: Amount!
    debitBalance: Amount!
    normalBalance: LedgerNormalBalance!
    asOf: String!
  }

  type FinancialAccount implements Node {
    id: ID!
    externalId: String
    name: String
    accountStatus: FinancialAccountStatus
    features: [FinancialAccountFeature!]
    cardProduct: CardProduct
    cardProductApplication: AccountHolderCardProductApplication
    ledgers(ledgerNames: [LedgerName!]): [Ledger!]
    "Transfers from or to this account, oldest first."
    interFinancialAccountTransfers(
      first: Int = 20
      after: String
      filterBy: InterFinancialAccountTransferFilterInput
    ): InterFinancialAccountTransferConnection
    createdAt: String
    updatedAt: String
  }

  input FinancialAccountFeatureFilterInput {
    includes: [FinancialAccountFeatureType!]
  }

  input AccountHolderFinancialAccountsFilterInput {
    features: FinancialAccountFeatureFilterInput
  }

  type PageInfo {
    hasNextPage: Boolean!
    hasPreviousPage: Boolean!
    startCursor: String
    endCursor: String
  }

  # Search filters, as Highnote's Search API takes them

  input TimestampFilterInputRange {
    start: String
    end: String
  }

  input TimestampFilterInput {
    equals: String
    notEquals: String
    lessThan: String
    lessThanOrEquals: String
    greaterThan: String
    greaterThanOrEquals: String
    between: TimestampFilterInputRange
  }

  input IDFilterInput {
    equals: ID
    notEquals: ID
    includes: [ID!]
    excludes: [ID!]
  }

  type FinancialAccountEdge {
    cursor: String!
    node: FinancialAccount
  }

  type FinancialAccountConnection {
    edges: [FinancialAccountEdge!]
    pageInfo: PageInfo!
  }

  type CardProduct implements Node {
    id: ID!
    name: String
    accounts(first: Int, after: String, filterBy: AccountHolderFinancialAccountsFilterInput): FinancialAccountConnection
  }

  input CustomFieldInput {
    key: String!
    value: String!
  }

  input IssueFinancialAccountForApplicationInput {
    applicationId: ID!
    name: String!
    externalId: String
    customFields: [CustomFieldInput!]
    idempotencyKey: IdempotencyKey
  }

  union IssueFinancialAccountForApplicationPayload = FinancialAccount | UserError | AccessDeniedError

  # Card issue

  enum IssuePaymentCardForFinancialAccountStatus {
    UNKNOWN
    PROCESSING
    SUCCESS
    FAILURE
  }

  input IssuePaymentCardOptionsInput {
    expirationDate: String!
    activateOnCreate: Boolean!
    cardProfileSetId: ID
    externalId: String
  }

  input IssuePaymentCardForFinancialAccountInput {
    financialAccountId: ID!
    options: IssuePaymentCardOptionsInput!
    customFields: [CustomFieldInput!]
    idempotencyKey: IdempotencyKey
  }

  "Declared so that queries written for Highnote validate; the sandbox always answers PaymentCard."
  type IssuePaymentCardForFinancialAccountResponse {
    status: IssuePaymentCardForFinancialAccountStatus
    failureReason: String
    paymentCard: PaymentCard
  }

  union IssuePaymentCardForFinancialAccountPayload =
    | IssuePaymentCardForFinancialAccountResponse
    | UserError
    | AccessDeniedError
    | PaymentCard

  # Money movement

  enum ElectronicFundTransferSource {
    WIRE
  }

  enum TransferStatus {
    PENDING
    PROCESSING
    COMPLETED
    FAILED
  }

  input SimulateDepositInput {
    amount: AmountInput!
    source: ElectronicFundTransferSource!
    toFinancialAccountId: ID!
    memo: String
  }

  type Transfer {
    id: ID!
    amount: Amount
    status: TransferStatus
    memo: String
    createdAt: String
  }

  "Declared so that queries written for Highnote validate; the sandbox always answers Transfer."
  type WireTransfer {
    id: ID!
    amount: Amount
    memo: String
  }

  union SimulateDepositPayload = Transfer | WireTransfer | UserError | AccessDeniedError

  enum InterFinancialAccountTransferStatus {
    PENDING
    PROCESSING
    COMPLETED
    FAILED
  }

  enum InterFinancialAccountTransferStatusReasonCode {
    INSUFFICIENT_FUNDS
    ACCOUNT_CLOSED
    ACCOUNT_NOT_FOUND
    ACCOUNT_NOT_ACTIVE
    CURRENCY_MISMATCH
    PREPAID_CARD_OR_DEBIT_CARD_FEATURE_NOT_ENABLED
    PRODUCT_FUNDING_OR_CARD_FUNDING_FEATURE_NOT_ENABLED
    TRANSFER_AMOUNT_IS_NEGATIVE_OR_ZERO
    ACCOUNTS_DO_NOT_BELONG_TO_SAME_PRODUCT
    IDEMPOTENCY_KEY_NOT_PROVIDED
    INTERNAL_SERVER_ERROR
  }

  enum InterFinancialAccountTransferActivityType {
    LOAD_PAYMENT_CARD_ACCOUNT
    GENERAL
  }

  input InitiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccountInput {
    fromFinancialAccountId: ID!
    toFinancialAccountId: ID!
    amount: AmountInput!
    memo: String
    idempotencyKey: IdempotencyKey
  }

  type InterFinancialAccountTransfer implements Node {
    id: ID!
    amount: Amount
    status: InterFinancialAccountTransferStatus
    statusReason: InterFinancialAccountTransferStatusReasonCode
    transferActivityType: InterFinancialAccountTransferActivityType
    memo: String
    fromFinancialAccount: FinancialAccount
    toFinancialAccount: FinancialAccount
    createdAt: String
    updatedAt: String
  }

  input InterFinancialAccountTransferStatusFilterInput {
    equals: InterFinancialAccountTransferStatus
    notEquals: InterFinancialAccountTransferStatus
    includes: [InterFinancialAccountTransferStatus!]
    excludes: [InterFinancialAccountTransferStatus!]
  }

  input InterFinancialAccountTransferActivityTypeFilterInput {
    equals: InterFinancialAccountTransferActivityType
    notEquals: InterFinancialAccountTransferActivityType
    includes: [InterFinancialAccountTransferActivityType!]
    excludes: [InterFinancialAccountTransferActivityType!]
  }

  "Highnote also filters on \`amount: MoneyFilterInput\`; the sandbox does not yet."
  input InterFinancialAccountTransferFilterInput {
    createdAt: TimestampFilterInput
    updatedAt: TimestampFilterInput
    transferActivityType: InterFinancialAccountTransferActivityTypeFilterInput
    status: InterFinancialAccountTransferStatusFilterInput
  }

  type InterFinancialAccountTransferEdge {
    cursor: String!
    node: InterFinancialAccountTransfer
  }

  type InterFinancialAccountTransferConnection {
    pageInfo: PageInfo!
    edges: [InterFinancialAccountTransferEdge!]
  }

  union InitiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccountPayload =
    | InterFinancialAccountTransfer
    | UserError
    | AccessDeniedError
`;
