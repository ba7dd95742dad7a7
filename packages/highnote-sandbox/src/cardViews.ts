import { spendRuleView, velocityRuleView } from './ruleViews.js';
import type { PaymentCardRecord, PhysicalOrderRecord, RuleAttachment, SandboxState } from './store.js';
import { connection, type PageArguments } from './viewPrimitives.js';
import { cardProductViewById, financialAccountViewById } from './views.js';

/* Payment cards, their physical orders and their velocity-rule associations as GraphQL objects. */

export const PAYMENT_CARD_BIN = '411111';
export const PAYMENT_CARD_NETWORK = 'VISA';

/** A card is PHYSICAL once a physical card has been ordered for it (and the order not canceled). */
export function cardFormFactor(state: SandboxState, card: PaymentCardRecord): 'VIRTUAL' | 'PHYSICAL' {
  const ordered = [...state.physicalOrders.values()].some(
    (order) => order.paymentCardId === card.id && order.status !== 'CANCELED',
  );
  return ordered ? 'PHYSICAL' : 'VIRTUAL';
}

export function cardProductIdOf(state: SandboxState, card: PaymentCardRecord): string | null {
  return state.financialAccounts.get(card.financialAccountId)?.cardProductId ?? null;
}

function ordersOf(state: SandboxState, card: PaymentCardRecord): PhysicalOrderRecord[] {
  return [...state.physicalOrders.values()].filter((order) => order.paymentCardId === card.id);
}

function attachedSpendRules(state: SandboxState, attachments: readonly RuleAttachment[], args: PageArguments) {
  const rules = attachments.flatMap((attachment) => state.spendRules.get(attachment.id) ?? []);
  return connection(rules, args, (rule) => rule.id, spendRuleView);
}

export function paymentCardView(state: SandboxState, card: PaymentCardRecord) {
  const expiration = new Date(card.expirationDate);
  return {
    __typename: 'PaymentCard',
    id: card.id,
    externalId: card.externalId,
    bin: PAYMENT_CARD_BIN,
    last4: card.last4,
    expirationDate: card.expirationDate,
    expirationMonth: String(expiration.getUTCMonth() + 1).padStart(2, '0'),
    expirationYear: String(expiration.getUTCFullYear()),
    network: PAYMENT_CARD_NETWORK,
    status: () => card.status,
    formFactor: () => cardFormFactor(state, card),
    financialAccounts: () => [financialAccountViewById(state, card.financialAccountId)].filter((view) => view),
    cardProduct: () => {
      const cardProductId = cardProductIdOf(state, card);
      return cardProductId === null ? null : cardProductViewById(state, cardProductId);
    },
    physicalPaymentCardOrders: () => ordersOf(state, card).map((order) => physicalOrderView(state, order)),
    attachedSpendRules: (args: PageArguments) => attachedSpendRules(state, card.attachedSpendRules, args),
    attachedVelocityRules: (args: PageArguments) => {
      const rules = card.attachedVelocityRules.flatMap((attachment) => state.velocityRules.get(attachment.id) ?? []);
      return connection(
        rules,
        args,
        (rule) => rule.id,
        (rule) => velocityRuleView(state, rule),
      );
    },
  };
}

export function paymentCardViewById(state: SandboxState, paymentCardId: string) {
  const card = state.paymentCards.get(paymentCardId);
  return card ? paymentCardView(state, card) : null;
}

export function physicalOrderView(state: SandboxState, order: PhysicalOrderRecord) {
  return {
    __typename: 'PhysicalPaymentCardOrder',
    id: order.id,
    orderState: () => ({ status: order.status }),
    stateHistory: () => order.stateHistory,
    cardPersonalization: { textLines: order.textLines },
    paymentCardShipment: () => ({
      requestedShipDate: order.requestedShipDate,
      deliveryDetails: order.deliveryDetails,
      courier: {
        method: order.courier.method,
        signatureRequiredOnDelivery: order.courier.signatureRequiredOnDelivery,
        tracking:
          order.trackingNumber === null && order.actualShipDate === null
            ? null
            : { trackingNumber: order.trackingNumber, actualShipDateLocal: order.actualShipDate },
      },
    }),
    paymentCard: () => paymentCardViewById(state, order.paymentCardId),
    createdAt: order.createdAt,
    updatedAt: () => order.updatedAt,
  };
}

export function velocityRuleAssociationView(state: SandboxState, card: PaymentCardRecord, attachment: RuleAttachment) {
  const rule = state.velocityRules.get(attachment.id);
  return {
    __typename: 'VelocityRuleAssociation',
    velocityRule: rule ? velocityRuleView(state, rule) : null,
    name: rule?.name ?? null,
    associatedTo: paymentCardView(state, card),
    version: attachment.version,
    createdAt: attachment.attachedAt,
    updatedAt: attachment.attachedAt,
  };
}
