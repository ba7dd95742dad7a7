/* Spend rules (the SpendRule interface and the kinds the sandbox evaluates) and velocity rules. */

const SPEND_RULE_COMMON_FIELDS = `
    id: ID!
    name: String
    version: String
    createdAt: String
    updatedAt: String
    userType: ApplicableRuleUserType
`;

function listRule(typeName: string, valueType: string): string {
  return `
  type ${typeName} implements Node & SpendRule {
    ${SPEND_RULE_COMMON_FIELDS}
    allowed: [${valueType}!]
    blocked: [${valueType}!]
  }

  input Create${typeName}Input {
    name: String!
    allowed: [${valueType}!]
    blocked: [${valueType}!]
    userType: ApplicableRuleUserType
  }

  union Create${typeName}Payload = ${typeName} | UserError | AccessDeniedError
`;
}

export const RULES_SDL = /* GraphQL */ `
  extend type Mutation {
    createAmountLimitSpendRule(input: CreateAmountLimitSpendRuleInput!): CreateAmountLimitSpendRulePayload
    createCountLimitSpendRule(input: CreateCountLimitSpendRuleInput!): CreateCountLimitSpendRulePayload
    createMerchantCategorySpendRule(input: CreateMerchantCategorySpendRuleInput!): CreateMerchantCategorySpendRulePayload
    createMerchantIdentifierSpendRule(
      input: CreateMerchantIdentifierSpendRuleInput!
    ): CreateMerchantIdentifierSpendRulePayload
    createCardTransactionProcessingTypeConditionSpendRule(
      input: CreateCardTransactionProcessingTypeConditionSpendRuleInput!
    ): CreateCardTransactionProcessingTypeConditionSpendRulePayload
    createPointOfServiceCategorySpendRule(
      input: CreatePointOfServiceCategorySpendRuleInput!
    ): CreatePointOfServiceCategorySpendRulePayload
    deleteSpendRule(input: DeleteSpendRuleInput!): DeleteSpendRulePayload
    attachSpendRuleToPaymentCard(input: AttachSpendRuleToPaymentCardInput!): AttachSpendRuleToPaymentCardPayload
    detachSpendRuleFromPaymentCard(input: DetachSpendRuleFromPaymentCardInput!): DetachSpendRuleFromPaymentCardPayload
    createVelocityRule(input: CreateVelocityRuleInput!): CreateVelocityRulePayload
    attachPaymentCardVelocityRule(input: AttachPaymentCardVelocityRuleInput!): AttachPaymentCardVelocityRulePayload
    detachPaymentCardVelocityRule(input: DetachPaymentCardVelocityRuleInput!): DetachPaymentCardVelocityRulePayload
  }

  enum ApplicableRuleUserType {
    AUTHORIZED_USER
  }

  interface SpendRule implements Node {
    ${SPEND_RULE_COMMON_FIELDS}
  }

  type SpendRuleEdge {
    cursor: String!
    node: SpendRule
  }

  type SpendRuleConnection {
    pageInfo: PageInfo!
    edges: [SpendRuleEdge!]
  }

  type SpendRuleContainer {
    spendRule: SpendRule
  }

  type AmountLimitSpendRule implements Node & SpendRule {
    ${SPEND_RULE_COMMON_FIELDS}
    maximumAmount: Amount
  }

  input CreateAmountLimitSpendRuleInput {
    name: String!
    maximumAmount: AmountInput!
    userType: ApplicableRuleUserType
  }

  union CreateAmountLimitSpendRulePayload = AmountLimitSpendRule | UserError | AccessDeniedError

  type CountLimitSpendRule implements Node & SpendRule {
    ${SPEND_RULE_COMMON_FIELDS}
    maximumCount: Int
  }

  input CreateCountLimitSpendRuleInput {
    name: String!
    maximumCount: Int!
    userType: ApplicableRuleUserType
  }

  union CreateCountLimitSpendRulePayload = CountLimitSpendRule | UserError | AccessDeniedError

  type MerchantCategorySpendRule implements Node & SpendRule {
    ${SPEND_RULE_COMMON_FIELDS}
    allowed: [MerchantCategory!]
    blocked: [MerchantCategory!]
    allowedMcc: [String!]
    blockedMcc: [String!]
  }

  input CreateMerchantCategorySpendRuleInput {
    name: String!
    allowed: [MerchantCategory!]
    blocked: [MerchantCategory!]
    allowedMcc: [String!]
    blockedMcc: [String!]
    userType: ApplicableRuleUserType
  }

  union CreateMerchantCategorySpendRulePayload = MerchantCategorySpendRule | UserError | AccessDeniedError

  ${listRule('MerchantIdentifierSpendRule', 'String')}
  ${listRule('PointOfServiceCategorySpendRule', 'PointOfServiceCategoryCondition')}

  type CardTransactionProcessingTypeConditionSpendRule implements Node & SpendRule {
    ${SPEND_RULE_COMMON_FIELDS}
    allowed: [CardTransactionProcessingType!]
    blocked: [CardTransactionProcessingType!]
  }

  "Unlike the other rule inputs, Highnote leaves name optional here."
  input CreateCardTransactionProcessingTypeConditionSpendRuleInput {
    name: String
    allowed: [CardTransactionProcessingType!]
    blocked: [CardTransactionProcessingType!]
    userType: ApplicableRuleUserType
  }

  union CreateCardTransactionProcessingTypeConditionSpendRulePayload =
    | CardTransactionProcessingTypeConditionSpendRule
    | UserError
    | AccessDeniedError

  input DeleteSpendRuleInput {
    spendRuleId: ID!
  }

  union DeleteSpendRulePayload = SpendRuleContainer | UserError | AccessDeniedError

  input AttachSpendRuleInput {
    id: ID!
    version: String!
  }

  input DetachSpendRuleInput {
    id: ID!
  }

  input AttachSpendRuleToPaymentCardInput {
    paymentCardId: ID!
    spendRule: AttachSpendRuleInput!
  }

  input DetachSpendRuleFromPaymentCardInput {
    paymentCardId: ID!
    spendRule: DetachSpendRuleInput!
  }

  union AttachSpendRuleToPaymentCardPayload = PaymentCard | UserError | AccessDeniedError
  union DetachSpendRuleFromPaymentCardPayload = PaymentCard | UserError | AccessDeniedError

  # Velocity rules

  enum VelocityRuleWindow {
    DAILY
    WEEKLY
    MONTHLY
    NINETY_DAYS
    YEARLY
    PER_TRANSACTION
    COOLDOWN_MINUTE
    COOLDOWN_HOUR
    QUARTERLY
  }

  enum VelocityConstraintLevel {
    CARD
    ACCOUNT
    CARD_LINEAGE
    PLATFORM
    PRODUCT
    ACCOUNT_HOLDER
  }

  type VelocityRule implements Node {
    id: ID!
    name: String
    velocityRuleWindow: VelocityRuleWindow
    cumulativeRule: SpendRule
    spendRules: [SpendRule]
    version(filterBy: String): String
    createdAt: String
    updatedAt: String
    velocityConstraintLevelOverride: VelocityConstraintLevel
    userType: ApplicableRuleUserType
  }

  type VelocityRuleEdge {
    cursor: String!
    node: VelocityRule
  }

  type VelocityRuleConnection {
    pageInfo: PageInfo!
    edges: [VelocityRuleEdge!]
  }

  input CreateVelocityRuleInput {
    name: String!
    cumulativeRule: AttachSpendRuleInput!
    spendRules: [AttachSpendRuleInput!]
    velocityRuleWindow: VelocityRuleWindow!
    velocityConstraintLevelOverride: VelocityConstraintLevel
    userType: ApplicableRuleUserType
  }

  union CreateVelocityRulePayload = VelocityRule | UserError | AccessDeniedError

  input VelocityRuleInput {
    velocityRuleId: ID!
    version: String
  }

  input AttachPaymentCardVelocityRuleInput {
    paymentCardId: ID!
    velocityRule: VelocityRuleInput!
  }

  input DetachPaymentCardVelocityRuleInput {
    paymentCardId: ID!
    velocityRule: VelocityRuleInput!
  }

  union VelocityRuleAssociatedType = PaymentCard | CardProduct

  type VelocityRuleAssociation {
    velocityRule: VelocityRule
    name: String
    associatedTo: VelocityRuleAssociatedType
    version: String
    createdAt: String
    updatedAt: String
  }

  union AttachPaymentCardVelocityRulePayload = VelocityRuleAssociation | UserError | AccessDeniedError
  union DetachPaymentCardVelocityRulePayload = VelocityRuleAssociation | UserError | AccessDeniedError
`;
