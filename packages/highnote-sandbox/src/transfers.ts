import assert from 'node:assert/strict';
import {
  availableCents,
  type FinancialAccountRecord,
  hasAnyFeature,
  nowIso,
  type SandboxState,
  type TransferFailureReason,
  type TransferRecord,
} from './store.js';

type TransferDecision = { ok: true } | { ok: false; reason: TransferFailureReason };

const FUNDING_FEATURES = ['PRODUCT_FUNDING', 'CARD_FUNDING_ACCOUNT'] as const;
const CARD_ACCOUNT_FEATURES = ['PREPAID_PAYMENT_CARD', 'DEBIT_PAYMENT_CARD'] as const;

/*
 * Decided when the transfer settles, not when it is initiated, so that two pending transfers
 * cannot both spend the same funds: settlements run one at a time on the event loop.
 */
function decideTransfer(
  transfer: TransferRecord,
  from: FinancialAccountRecord,
  to: FinancialAccountRecord,
): TransferDecision {
  // Highnote has a failure reason for a missing key; the sandbox enforces it so callers always send one.
  if (transfer.idempotencyKey === null) return { ok: false, reason: 'IDEMPOTENCY_KEY_NOT_PROVIDED' };
  if (transfer.amountCents <= 0n) return { ok: false, reason: 'TRANSFER_AMOUNT_IS_NEGATIVE_OR_ZERO' };
  if (!hasAnyFeature(from, FUNDING_FEATURES)) {
    return { ok: false, reason: 'PRODUCT_FUNDING_OR_CARD_FUNDING_FEATURE_NOT_ENABLED' };
  }
  if (!hasAnyFeature(to, CARD_ACCOUNT_FEATURES)) {
    return { ok: false, reason: 'PREPAID_CARD_OR_DEBIT_CARD_FEATURE_NOT_ENABLED' };
  }
  if (from.accountStatus !== 'ACTIVE' || to.accountStatus !== 'ACTIVE') {
    return { ok: false, reason: 'ACCOUNT_NOT_ACTIVE' };
  }
  if (from.cardProductId !== to.cardProductId) return { ok: false, reason: 'ACCOUNTS_DO_NOT_BELONG_TO_SAME_PRODUCT' };
  if (availableCents(from) < transfer.amountCents) return { ok: false, reason: 'INSUFFICIENT_FUNDS' };
  return { ok: true };
}

function accountOf(state: SandboxState, financialAccountId: string): FinancialAccountRecord {
  const account = state.financialAccounts.get(financialAccountId);
  assert(account, `transfer refers to financial account ${financialAccountId}, which was checked at initiation`);
  return account;
}

/** Completes or fails a PENDING transfer, moving money between the two AVAILABLE_CASH ledgers. */
export function settleTransfer(state: SandboxState, transfer: TransferRecord): void {
  assert.equal(transfer.status, 'PENDING');
  const from = accountOf(state, transfer.fromFinancialAccountId);
  const to = accountOf(state, transfer.toFinancialAccountId);
  const decision = decideTransfer(transfer, from, to);
  const settledAt = nowIso();
  transfer.updatedAt = settledAt;
  if (!decision.ok) {
    transfer.status = 'FAILED';
    transfer.statusReason = decision.reason;
    return;
  }
  from.availableCash.debitCents += transfer.amountCents;
  to.availableCash.creditCents += transfer.amountCents;
  from.updatedAt = settledAt;
  to.updatedAt = settledAt;
  transfer.status = 'COMPLETED';
  assert(availableCents(from) >= 0n, 'a completed transfer never overdraws its source');
}

/** A simulated wire lands at once on the product funding account. */
export function creditDeposit(account: FinancialAccountRecord, amountCents: bigint): void {
  assert(amountCents > 0n, 'deposit amount is checked positive before crediting');
  account.availableCash.creditCents += amountCents;
  account.updatedAt = nowIso();
}
