import { paymentCardView } from './cardViews.js';
import type { SandboxContext } from './context.js';
import { type CARD_EVENTS, cardEventNode } from './eventNodes.js';
import { nowIso, type PaymentCardRecord, type PaymentCardStatus } from './store.js';
import { userError } from './viewPrimitives.js';

/*
 * Card lifecycle. ACTIVATION_REQUIRED → ACTIVE ⇄ SUSPENDED, and CLOSED from anywhere, for good.
 * Asking for the status a card already has answers the card unchanged, so a client may retry;
 * the exceptions are the ones Highnote refuses: closing a closed card, activating a closed one.
 */

export function announceCard(
  context: Pick<SandboxContext, 'state' | 'notifier'>,
  name: keyof typeof CARD_EVENTS,
  card: PaymentCardRecord,
  previousStatus: PaymentCardStatus | null,
): void {
  context.notifier.emit(name, cardEventNode(context.state, name, card, previousStatus));
}

interface PaymentCardIdInput {
  paymentCardId: string;
}

function findCard(context: SandboxContext, input: PaymentCardIdInput) {
  return context.state.paymentCards.get(input.paymentCardId) ?? null;
}

const CARD_NOT_FOUND = () => userError('NOT_FOUND', 'payment card not found', ['paymentCardId']);

function move(
  context: SandboxContext,
  card: PaymentCardRecord,
  status: PaymentCardStatus,
  event: keyof typeof CARD_EVENTS,
): void {
  const previous = card.status;
  card.status = status;
  card.updatedAt = nowIso();
  announceCard(context, event, card, previous);
}

function activatePaymentCard(input: PaymentCardIdInput, context: SandboxContext) {
  const card = findCard(context, input);
  if (!card) return CARD_NOT_FOUND();
  if (card.status === 'CLOSED') {
    return userError('PAYMENT_CARD_CLOSED', 'a closed payment card cannot be activated', ['paymentCardId']);
  }
  if (card.status === 'ACTIVATION_REQUIRED') move(context, card, 'ACTIVE', 'PAYMENT_CARD_ACTIVATED');
  if (card.status === 'SUSPENDED') move(context, card, 'ACTIVE', 'PAYMENT_CARD_UNSUSPENDED');
  return paymentCardView(context.state, card);
}

function suspendPaymentCard(input: PaymentCardIdInput, context: SandboxContext) {
  const card = findCard(context, input);
  if (!card) return CARD_NOT_FOUND();
  if (card.status === 'CLOSED') {
    return userError('PAYMENT_CARD_CLOSED', 'a closed payment card cannot be suspended', ['paymentCardId']);
  }
  if (card.status === 'ACTIVATION_REQUIRED') {
    return userError('PAYMENT_CARD_NOT_ACTIVE', 'only an active payment card can be suspended', ['paymentCardId']);
  }
  if (card.status === 'ACTIVE') move(context, card, 'SUSPENDED', 'PAYMENT_CARD_SUSPENDED');
  return paymentCardView(context.state, card);
}

function closePaymentCard(input: PaymentCardIdInput, context: SandboxContext) {
  const card = findCard(context, input);
  if (!card) return CARD_NOT_FOUND();
  if (card.status === 'CLOSED') {
    return userError('PAYMENT_CARD_ALREADY_CLOSED', 'the payment card is already closed', ['paymentCardId']);
  }
  move(context, card, 'CLOSED', 'PAYMENT_CARD_CLOSED');
  return paymentCardView(context.state, card);
}

export const cardLifecycleMutations = { activatePaymentCard, suspendPaymentCard, closePaymentCard };
