/* Payment cards, their lifecycle, and physical card orders. */
export const CARDS_SDL = /* GraphQL */ `
  extend type Mutation {
    activatePaymentCard(input: ActivatePaymentCardInput!): ActivatePaymentCardPayload
    suspendPaymentCard(input: SuspendPaymentCardInput!): SuspendPaymentCardPayload
    closePaymentCard(input: ClosePaymentCardInput!): ClosePaymentCardPayload
    orderPhysicalPaymentCard(input: OrderPhysicalPaymentCardInput!): OrderPhysicalPaymentCardPayload
    cancelPhysicalPaymentCardOrder(input: CancelPhysicalPaymentCardOrderInput!): CancelPhysicalPaymentCardPayload
    simulatePhysicalPaymentCardOrderSendToPrinter(
      input: SimulatePhysicalPaymentCardSendToPrinterInput!
    ): SimulatePhysicalPaymentCardPayload
    simulatePhysicalPaymentCardOrderApproval(
      input: SimulatePhysicalPaymentCardApprovalInput!
    ): SimulatePhysicalPaymentCardPayload
    simulatePhysicalPaymentCardOrderShipped(
      input: SimulatePhysicalPaymentCardShippedInput!
    ): SimulatePhysicalPaymentCardPayload
    simulatePhysicalPaymentCardOrderShipmentFailed(
      input: SimulatePhysicalPaymentCardShipmentFailedInput!
    ): SimulatePhysicalPaymentCardPayload
  }

  enum PaymentCardStatus {
    ACTIVATION_REQUIRED
    ACTIVE
    SUSPENDED
    CLOSED
  }

  enum CardFormFactor {
    VIRTUAL
    PHYSICAL
  }

  enum PaymentCardNetwork {
    MASTERCARD
    VISA
  }

  "No PAN or CVV is ever generated or stored; only the last four digits exist."
  type PaymentCard implements Node {
    id: ID!
    externalId: String
    bin: String
    last4: String
    expirationDate: String
    expirationMonth: String
    expirationYear: String
    network: PaymentCardNetwork
    cardProduct: CardProduct
    status: PaymentCardStatus
    formFactor: CardFormFactor
    financialAccounts: [FinancialAccount!]
    physicalPaymentCardOrders: [PhysicalPaymentCardOrder]
    attachedSpendRules(first: Int = 20, after: String): SpendRuleConnection
    attachedVelocityRules(first: Int = 20, after: String): VelocityRuleConnection
  }

  input ActivatePaymentCardInput {
    paymentCardId: ID!
  }

  input SuspendPaymentCardInput {
    paymentCardId: ID!
  }

  input ClosePaymentCardInput {
    paymentCardId: ID!
  }

  union ActivatePaymentCardPayload = PaymentCard | UserError | AccessDeniedError
  union SuspendPaymentCardPayload = PaymentCard | UserError | AccessDeniedError
  union ClosePaymentCardPayload = PaymentCard | UserError | AccessDeniedError

  # Physical cards

  enum PaymentCardOrderStatus {
    NEW
    SENT_TO_PRINTER
    APPROVED
    CANCELED
    SHIPPED
    SHIP_FAILED
    COMPLETED
  }

  enum PaymentCardShippingMethod {
    USPS_GROUND
    USPS_PRIORITY
    USPS_EXPRESS
    UPS_GROUND
    UPS_SECOND_DAY
    UPS_NEXT_DAY
    FEDEX_OVERNIGHT
    FEDEX_ONE_RATE
    FEDEX_PRIORITY_OVERNIGHT
    FEDEX_2_DAY
    FEDEX_GROUND
    FEDEX_INTERNATIONAL_PRIORITY
    SAME_DAY_USPS_GROUND
    SAME_DAY_USPS_PRIORITY
    SAME_DAY_UPS_GROUND
    SAME_DAY_UPS_SECOND_DAY
    SAME_DAY_UPS_NEXT_DAY
    SAME_DAY_FEDEX_GROUND
    SAME_DAY_FEDEX_1_DAY
  }

  input NameInput {
    givenName: String!
    middleName: String
    familyName: String!
    suffix: String
    title: String
  }

  input PaymentCardDeliveryDetailsInput {
    name: NameInput!
    companyName: String
    address: AddressInput!
  }

  input PaymentCardPersonalizationTextLinesInput {
    line1: String!
    line2: String
    line3: String
  }

  input PaymentCardPersonalizationInput {
    textLines: PaymentCardPersonalizationTextLinesInput!
  }

  input PaymentCardShipmentCourierInput {
    method: PaymentCardShippingMethod!
    signatureRequiredOnDelivery: Boolean!
  }

  input OrderPhysicalPaymentCardInput {
    paymentCardId: ID!
    deliveryDetails: PaymentCardDeliveryDetailsInput!
    cardPersonalization: PaymentCardPersonalizationInput!
    courier: PaymentCardShipmentCourierInput
    requestedShipDate: String
  }

  input CancelPhysicalPaymentCardOrderInput {
    physicalPaymentCardOrderId: ID!
  }

  input SimulatePhysicalPaymentCardSendToPrinterInput {
    physicalPaymentCardOrderId: ID!
  }

  input SimulatePhysicalPaymentCardApprovalInput {
    physicalPaymentCardOrderId: ID!
  }

  input SimulatePhysicalPaymentCardShipmentFailedInput {
    physicalPaymentCardOrderId: ID!
  }

  input SimulatePhysicalPaymentCardShippedInput {
    physicalPaymentCardOrderId: ID!
    trackingNumber: String
    actualShipDate: String
  }

  type Name {
    givenName: String
    middleName: String
    familyName: String
    suffix: String
    title: String
  }

  type PaymentCardDeliveryDetails {
    name: Name
    companyName: String
    address: Address
  }

  type PaymentCardShipmentTracking {
    trackingNumber: String
    actualShipDateLocal: String
  }

  type PaymentCardShipmentCourier {
    method: PaymentCardShippingMethod
    signatureRequiredOnDelivery: Boolean
    tracking: PaymentCardShipmentTracking
  }

  type PaymentCardShipment {
    courier: PaymentCardShipmentCourier
    requestedShipDate: String
    deliveryDetails: PaymentCardDeliveryDetails
  }

  type PaymentCardPersonalizationTextLines {
    line1: String!
    line2: String
    line3: String
  }

  type PaymentCardPersonalization {
    textLines: PaymentCardPersonalizationTextLines!
  }

  type PaymentCardOrderStateDetail {
    status: PaymentCardOrderStatus
  }

  type PaymentCardOrderStateDetailHistory {
    previousStatus: PaymentCardOrderStatus
    newStatus: PaymentCardOrderStatus
    createdAt: String
  }

  type PhysicalPaymentCardOrder implements Node {
    id: ID!
    paymentCardShipment: PaymentCardShipment
    orderState: PaymentCardOrderStateDetail
    cardPersonalization: PaymentCardPersonalization
    stateHistory: [PaymentCardOrderStateDetailHistory]
    paymentCard: PaymentCard
    createdAt: String
    updatedAt: String
  }

  union OrderPhysicalPaymentCardPayload = PhysicalPaymentCardOrder | UserError | AccessDeniedError
  union CancelPhysicalPaymentCardPayload = PhysicalPaymentCardOrder | UserError | AccessDeniedError
  union SimulatePhysicalPaymentCardPayload = PhysicalPaymentCardOrder | UserError | AccessDeniedError
`;
