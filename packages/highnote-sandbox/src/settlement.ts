import { recordTransactionEvent } from './authorizations.js';
import type { AmountInput, SandboxContext } from './context.js';
import { nowIso, type TransactionRecord } from './store.js';
import { transactionEventView } from './transactionViews.js';
import { type UserErrorView, userError } from './viewPrimitives.js';

/*
 * What follows an approved authorization, on the card account's AVAILABLE_CASH ledger:
 * - clearing settles it once: the hold is released and the cleared amount (≤ the hold) is posted
 *   as a debit; any remainder of the hold is released with it.
 * - reversal releases all or part of the hold that has not cleared.
 * - refund credits back all or part of what cleared.
 * Each answers APPROVED; a request the transaction cannot take is a UserError.
 */

interface FollowUpInput {
  transactionId: string;
  amount?: AmountInput | null;
}

/** Takes a transaction id, or the id of one of its events (as the AuthorizationEvent's own id). */
function findTransaction(context: SandboxContext, id: string): TransactionRecord | null {
  const { state } = context;
  const direct = state.transactions.get(id);
  if (direct) return direct;
  const event = state.transactionEvents.get(id);
  return event ? (state.transactions.get(event.transactionId) ?? null) : null;
}

/** The amount asked for, by default all of `availableCents`; refused above it or at zero. */
function amountWithin(
  input: FollowUpInput,
  availableCents: bigint,
  what: string,
): { ok: true; cents: bigint } | { ok: false; error: UserErrorView } {
  if (availableCents <= 0n) {
    return { ok: false, error: userError('INVALID_TRANSACTION_STATE', `nothing left to ${what}`, ['transactionId']) };
  }
  const cents = input.amount?.value ?? availableCents;
  if (cents <= 0n || cents > availableCents) {
    const description = `amount must be from 1 to ${availableCents} (what is left to ${what})`;
    return { ok: false, error: userError('INVALID_AMOUNT', description, ['amount', 'value']) };
  }
  return { ok: true, cents };
}

/** Applies a change to the card account's AVAILABLE_CASH ledger. */
function moveLedger(
  context: SandboxContext,
  transaction: TransactionRecord,
  change: { creditCents?: bigint; debitCents?: bigint; heldCents?: bigint },
): void {
  const account = context.state.financialAccounts.get(transaction.financialAccountId);
  if (!account) return;
  account.availableCash.creditCents += change.creditCents ?? 0n;
  account.availableCash.debitCents += change.debitCents ?? 0n;
  account.availableCash.heldCents += change.heldCents ?? 0n;
  account.updatedAt = nowIso();
}

function simulateClearing(input: FollowUpInput, context: SandboxContext) {
  const transaction = findTransaction(context, input.transactionId);
  if (!transaction) return userError('NOT_FOUND', 'transaction not found', ['transactionId']);
  if (transaction.clearedCents > 0n) {
    return userError('INVALID_TRANSACTION_STATE', 'the transaction has already cleared', ['transactionId']);
  }
  const amount = amountWithin(input, transaction.heldCents, 'clear');
  if (!amount.ok) return amount.error;
  const released = transaction.heldCents;
  moveLedger(context, transaction, { debitCents: amount.cents - released, heldCents: -released });
  transaction.heldCents = 0n;
  transaction.clearedCents = amount.cents;
  const event = recordTransactionEvent(
    context,
    transaction,
    {
      kind: 'ClearingEvent',
      responseCode: 'APPROVED',
      requestedCents: amount.cents,
      approvedCents: amount.cents,
      accountingDirection: 'DEBIT',
      transactionProcessingType: transaction.transactionProcessingType,
      spendRuleResults: [],
    },
    'PAYMENT_CARD_CLEARED',
  );
  return transactionEventView(context.state, event);
}

function simulateReversal(input: FollowUpInput, context: SandboxContext) {
  const transaction = findTransaction(context, input.transactionId);
  if (!transaction) return userError('NOT_FOUND', 'transaction not found', ['transactionId']);
  const amount = amountWithin(input, transaction.heldCents, 'reverse');
  if (!amount.ok) return amount.error;
  moveLedger(context, transaction, { debitCents: -amount.cents, heldCents: -amount.cents });
  transaction.heldCents -= amount.cents;
  transaction.reversedCents += amount.cents;
  const event = recordTransactionEvent(
    context,
    transaction,
    {
      kind: 'ReversalEvent',
      responseCode: 'APPROVED',
      requestedCents: amount.cents,
      approvedCents: amount.cents,
      accountingDirection: 'CREDIT',
      transactionProcessingType: transaction.transactionProcessingType,
      spendRuleResults: [],
    },
    'PAYMENT_CARD_AUTHORIZATION_REVERSED',
  );
  return transactionEventView(context.state, event);
}

function simulateRefund(input: FollowUpInput, context: SandboxContext) {
  const transaction = findTransaction(context, input.transactionId);
  if (!transaction) return userError('NOT_FOUND', 'transaction not found', ['transactionId']);
  const amount = amountWithin(input, transaction.clearedCents - transaction.refundedCents, 'refund');
  if (!amount.ok) return amount.error;
  moveLedger(context, transaction, { creditCents: amount.cents });
  transaction.refundedCents += amount.cents;
  const event = recordTransactionEvent(
    context,
    transaction,
    {
      kind: 'ClearingEvent',
      responseCode: 'APPROVED',
      requestedCents: amount.cents,
      approvedCents: amount.cents,
      accountingDirection: 'CREDIT',
      transactionProcessingType: 'RETURNS',
      spendRuleResults: [],
    },
    'PAYMENT_CARD_CLEARED',
  );
  return transactionEventView(context.state, event);
}

export const settlementMutations = { simulateClearing, simulateReversal, simulateRefund };
