import { physicalOrderView } from './cardViews.js';
import type { SandboxContext } from './context.js';
import { type ORDER_EVENTS, orderEventNode } from './eventNodes.js';
import {
  type Address,
  newId,
  nowIso,
  type PersonName,
  type PhysicalOrderRecord,
  type PhysicalOrderStatus,
} from './store.js';
import { userError } from './viewPrimitives.js';

/*
 * Physical card orders: NEW → SENT_TO_PRINTER → APPROVED → SHIPPED or SHIP_FAILED, moved by the
 * Test-only simulations; CANCELED only from NEW.
 */

/** Highnote's rule for personalization lines (see PaymentCardPersonalizationTextLinesInput). */
const TEXT_LINE_MAX_LENGTH = 23;
const TEXT_LINE_PATTERN = /^[0-9A-Za-z &\-,./'$]*$/;
const TRACKING_NUMBER_MAX_LENGTH = 50;
const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
/** Used when an order names no courier. */
const DEFAULT_SHIPPING_METHOD = 'USPS_GROUND';

interface TextLinesInput {
  line1: string;
  line2?: string | null;
  line3?: string | null;
}

interface OrderPhysicalPaymentCardInput {
  paymentCardId: string;
  deliveryDetails: { name: PersonName; companyName?: string | null; address: Address };
  cardPersonalization: { textLines: TextLinesInput };
  courier?: { method: string; signatureRequiredOnDelivery: boolean } | null;
  requestedShipDate?: string | null;
}

function isCalendarDate(value: string): boolean {
  if (!DATE_PATTERN.test(value)) return false;
  const parsed = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(parsed.getTime()) && parsed.toISOString().slice(0, 10) === value;
}

function textLinesProblem(lines: TextLinesInput) {
  for (const key of ['line1', 'line2', 'line3'] as const) {
    const line = lines[key];
    if (line === undefined || line === null) continue;
    if (line.length < 1 || line.length > TEXT_LINE_MAX_LENGTH || !TEXT_LINE_PATTERN.test(line)) {
      const description = `${key} must be 1-${TEXT_LINE_MAX_LENGTH} letters, digits, spaces or & - , . / ' $`;
      return userError('INVALID_INPUT', description, ['cardPersonalization', 'textLines', key]);
    }
  }
  return null;
}

function upper(line: string | null | undefined): string | null {
  return line === undefined || line === null ? null : line.toUpperCase();
}

function orderPhysicalPaymentCard(input: OrderPhysicalPaymentCardInput, context: SandboxContext) {
  const card = context.state.paymentCards.get(input.paymentCardId);
  if (!card) return userError('NOT_FOUND', 'payment card not found', ['paymentCardId']);
  if (card.status === 'CLOSED') {
    return userError('PAYMENT_CARD_CLOSED', 'a closed payment card cannot be ordered', ['paymentCardId']);
  }
  const linesProblem = textLinesProblem(input.cardPersonalization.textLines);
  if (linesProblem) return linesProblem;
  const { name } = input.deliveryDetails;
  if (name.givenName.trim() === '' || name.familyName.trim() === '') {
    return userError('INVALID_INPUT', 'givenName and familyName are required', ['deliveryDetails', 'name']);
  }
  if (input.requestedShipDate && !isCalendarDate(input.requestedShipDate)) {
    return userError('INVALID_INPUT', 'requestedShipDate must be a YYYY-MM-DD date', ['requestedShipDate']);
  }
  const createdAt = nowIso();
  const { textLines } = input.cardPersonalization;
  const order: PhysicalOrderRecord = {
    id: newId('pco'),
    paymentCardId: card.id,
    status: 'NEW',
    stateHistory: [{ previousStatus: null, newStatus: 'NEW', createdAt }],
    deliveryDetails: {
      name: input.deliveryDetails.name,
      companyName: input.deliveryDetails.companyName ?? null,
      address: input.deliveryDetails.address,
    },
    textLines: { line1: textLines.line1.toUpperCase(), line2: upper(textLines.line2), line3: upper(textLines.line3) },
    courier: input.courier ?? { method: DEFAULT_SHIPPING_METHOD, signatureRequiredOnDelivery: false },
    requestedShipDate: input.requestedShipDate ?? null,
    trackingNumber: null,
    actualShipDate: null,
    createdAt,
    updatedAt: createdAt,
  };
  context.state.physicalOrders.set(order.id, order);
  return physicalOrderView(context.state, order);
}

const ORDER_EVENT_BY_STATUS: Partial<Record<PhysicalOrderStatus, keyof typeof ORDER_EVENTS>> = {
  SHIPPED: 'PHYSICAL_PAYMENT_CARD_SHIPPED',
  SHIP_FAILED: 'PHYSICAL_PAYMENT_CARD_SHIP_FAILED',
};

interface OrderIdInput {
  physicalPaymentCardOrderId: string;
}

/** Moves an order from one of `from` to `to`, or says why it cannot. */
function transition(
  context: SandboxContext,
  input: OrderIdInput,
  from: readonly PhysicalOrderStatus[],
  to: PhysicalOrderStatus,
  update: (order: PhysicalOrderRecord) => void = () => {},
) {
  const order = context.state.physicalOrders.get(input.physicalPaymentCardOrderId);
  if (!order) return userError('NOT_FOUND', 'physical payment card order not found', ['physicalPaymentCardOrderId']);
  if (!from.includes(order.status)) {
    const description = `the order is ${order.status}; moving it to ${to} needs ${from.join(' or ')}`;
    return userError('INVALID_ORDER_STATUS', description, ['physicalPaymentCardOrderId']);
  }
  const changedAt = nowIso();
  order.stateHistory.push({ previousStatus: order.status, newStatus: to, createdAt: changedAt });
  order.status = to;
  order.updatedAt = changedAt;
  update(order);
  const event = ORDER_EVENT_BY_STATUS[to];
  if (event) context.notifier.emit(event, orderEventNode(event, order));
  return physicalOrderView(context.state, order);
}

function simulateShipped(
  input: OrderIdInput & { trackingNumber?: string | null; actualShipDate?: string | null },
  context: SandboxContext,
) {
  if (input.trackingNumber && input.trackingNumber.length > TRACKING_NUMBER_MAX_LENGTH) {
    return userError('INVALID_INPUT', `trackingNumber must be at most ${TRACKING_NUMBER_MAX_LENGTH} characters`, [
      'trackingNumber',
    ]);
  }
  if (input.actualShipDate && !isCalendarDate(input.actualShipDate)) {
    return userError('INVALID_INPUT', 'actualShipDate must be a YYYY-MM-DD date', ['actualShipDate']);
  }
  return transition(context, input, ['APPROVED'], 'SHIPPED', (order) => {
    order.trackingNumber = input.trackingNumber ?? null;
    order.actualShipDate = input.actualShipDate ?? order.updatedAt.slice(0, 10);
  });
}

export const physicalOrderMutations = {
  orderPhysicalPaymentCard,
  cancelPhysicalPaymentCardOrder: (input: OrderIdInput, context: SandboxContext) =>
    transition(context, input, ['NEW'], 'CANCELED'),
  simulatePhysicalPaymentCardOrderSendToPrinter: (input: OrderIdInput, context: SandboxContext) =>
    transition(context, input, ['NEW'], 'SENT_TO_PRINTER'),
  simulatePhysicalPaymentCardOrderApproval: (input: OrderIdInput, context: SandboxContext) =>
    transition(context, input, ['SENT_TO_PRINTER'], 'APPROVED'),
  simulatePhysicalPaymentCardOrderShipped: simulateShipped,
  simulatePhysicalPaymentCardOrderShipmentFailed: (input: OrderIdInput, context: SandboxContext) =>
    transition(context, input, ['APPROVED'], 'SHIP_FAILED'),
};
