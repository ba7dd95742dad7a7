import type { AmountInput, SandboxContext } from './context.js';
import { type TRANSACTION_EVENTS, transactionEventNode } from './eventNodes.js';
import { type AuthorizationFacts, evaluateSpendRule, mccsOf } from './ruleEvaluation.js';
import {
  availableCents,
  type FinancialAccountRecord,
  type MerchantRecord,
  newId,
  nowIso,
  type PaymentCardRecord,
  type SandboxState,
  type SpendRuleResultRecord,
  type TransactionEventRecord,
  type TransactionRecord,
} from './store.js';
import { transactionEventView } from './transactionViews.js';
import { evaluateVelocityRule } from './velocity.js';
import { userError } from './viewPrimitives.js';

/*
 * simulateAuthorization decides as an issuer would, in this order: the card's status, the card's
 * spend rules, its velocity rules, then the balance. An approval puts a hold on the card's account:
 * the AVAILABLE_CASH debit grows by the amount. Clearing, reversal and refund live in settlement.ts.
 */

const DEFAULT_PROCESSING_TYPE = 'GOODS_AND_SERVICES';
const MERCHANT_NAME_MAX_LENGTH = 25;

interface MerchantDetailsInput {
  category?: string | null;
  countryCodeAlpha3?: string | null;
  description?: string | null;
  merchantId?: string | null;
  name?: string | null;
}

export interface SimulateAuthorizationInput {
  cardId: string;
  amount: AmountInput;
  merchantDetails?: MerchantDetailsInput | null;
  transactionProcessingType?: string | null;
  pointOfServiceDetails?: { category?: string | null } | null;
  cashbackAmount?: AmountInput | null;
}

function merchantOf(input: MerchantDetailsInput | null | undefined): MerchantRecord {
  const category = input?.category ?? null;
  return {
    category,
    categoryCode: mccsOf(category)[0] ?? null,
    merchantId: input?.merchantId ?? null,
    name: input?.name ?? null,
    description: input?.description ?? null,
    countryCodeAlpha3: input?.countryCodeAlpha3 ?? null,
  };
}

/** The decline a card or account status forces before any rule is looked at. */
function statusDecline(card: PaymentCardRecord, account: FinancialAccountRecord, now: Date): string | null {
  if (card.status === 'ACTIVATION_REQUIRED') return 'UNACTIVATED_CARD';
  if (card.status === 'SUSPENDED') return 'SUSPENDED_CARD';
  if (card.status === 'CLOSED') return 'TERMINATED_CARD';
  if (Date.parse(card.expirationDate) <= now.getTime()) return 'EXPIRED_CARD';
  if (account.accountStatus !== 'ACTIVE') return 'CLOSED_ACCOUNT';
  return null;
}

interface Decision {
  responseCode: string;
  results: SpendRuleResultRecord[];
}

function decide(
  state: SandboxState,
  card: PaymentCardRecord,
  account: FinancialAccountRecord,
  facts: AuthorizationFacts,
  now: Date,
): Decision {
  const forced = statusDecline(card, account, now);
  if (forced) return { responseCode: forced, results: [] };
  const results: SpendRuleResultRecord[] = [];
  let spendRuleBlocked = false;
  for (const attachment of card.attachedSpendRules) {
    const rule = state.spendRules.get(attachment.id);
    if (!rule) continue;
    const verdict = evaluateSpendRule(rule, facts);
    spendRuleBlocked ||= verdict.recommendation === 'BLOCK';
    results.push({ ruleId: rule.id, source: 'SpendRule', ...verdict });
  }
  let velocityCode: string | null = null;
  for (const attachment of card.attachedVelocityRules) {
    const rule = state.velocityRules.get(attachment.id);
    if (!rule) continue;
    const { limit, ...verdict } = evaluateVelocityRule(state, rule, card, facts, now);
    if (limit && velocityCode === null) {
      velocityCode = limit === 'COUNT' ? 'EXCEEDS_WITHDRAWAL_FREQUENCY_LIMIT' : 'EXCEEDS_APPROVAL_AMOUNT_LIMIT';
    }
    results.push({ ruleId: rule.id, source: 'VelocityRule', ...verdict });
  }
  if (spendRuleBlocked) return { responseCode: 'DO_NOT_HONOR', results };
  if (velocityCode) return { responseCode: velocityCode, results };
  if (facts.amountCents > availableCents(account)) return { responseCode: 'INSUFFICIENT_FUNDS', results };
  return { responseCode: 'APPROVED', results };
}

function accountHolderIdOf(state: SandboxState, account: FinancialAccountRecord): string | null {
  const application = account.applicationId ? state.applications.get(account.applicationId) : undefined;
  return application?.accountHolderId ?? null;
}

/** Records a transaction event, after the ledger moved, and announces it as `name`. */
export function recordTransactionEvent(
  context: SandboxContext,
  transaction: TransactionRecord,
  event: Omit<TransactionEventRecord, 'id' | 'transactionId' | 'createdAt' | 'availableAfterCents'>,
  name: keyof typeof TRANSACTION_EVENTS,
): TransactionEventRecord {
  const { state } = context;
  const account = state.financialAccounts.get(transaction.financialAccountId);
  const createdAt = nowIso();
  const recorded: TransactionEventRecord = {
    ...event,
    id: newId('te'),
    transactionId: transaction.id,
    availableAfterCents: account ? availableCents(account) : 0n,
    createdAt,
  };
  state.transactionEvents.set(recorded.id, recorded);
  transaction.eventIds.push(recorded.id);
  transaction.updatedAt = createdAt;
  context.notifier.emit(name, transactionEventNode(name, transaction, recorded));
  return recorded;
}

function simulateAuthorization(input: SimulateAuthorizationInput, context: SandboxContext) {
  const { state } = context;
  const card = state.paymentCards.get(input.cardId);
  if (!card) return userError('NOT_FOUND', 'payment card not found', ['cardId']);
  const account = state.financialAccounts.get(card.financialAccountId);
  if (!account) return userError('NOT_FOUND', "the card's financial account is gone", ['cardId']);
  const cashbackCents = input.cashbackAmount?.value ?? null;
  if (cashbackCents !== null && cashbackCents > input.amount.value) {
    return userError('INVALID_INPUT', 'cashbackAmount is part of amount and cannot exceed it', ['cashbackAmount']);
  }
  const merchantName = input.merchantDetails?.name;
  if (merchantName && merchantName.length > MERCHANT_NAME_MAX_LENGTH) {
    return userError('INVALID_INPUT', `merchant name must be at most ${MERCHANT_NAME_MAX_LENGTH} characters`, [
      'merchantDetails',
      'name',
    ]);
  }
  const facts: AuthorizationFacts = {
    amountCents: input.amount.value,
    cashbackCents: cashbackCents ?? 0n,
    merchant: merchantOf(input.merchantDetails),
    transactionProcessingType: input.transactionProcessingType ?? DEFAULT_PROCESSING_TYPE,
    pointOfServiceCategory: input.pointOfServiceDetails?.category ?? null,
  };
  const now = new Date();
  const decision = decide(state, card, account, facts, now);
  const approved = decision.responseCode === 'APPROVED';
  const approvedCents = approved ? facts.amountCents : 0n;
  if (approved) {
    account.availableCash.debitCents += approvedCents;
    account.availableCash.heldCents += approvedCents;
    account.updatedAt = now.toISOString();
  }
  const transaction: TransactionRecord = {
    id: newId('tx'),
    paymentCardId: card.id,
    financialAccountId: account.id,
    cardProductId: account.cardProductId,
    accountHolderId: accountHolderIdOf(state, account),
    responseCode: decision.responseCode,
    requestedCents: facts.amountCents,
    approvedCents,
    heldCents: approvedCents,
    clearedCents: 0n,
    reversedCents: 0n,
    refundedCents: 0n,
    cashbackCents,
    merchant: facts.merchant,
    transactionProcessingType: facts.transactionProcessingType,
    pointOfServiceCategory: facts.pointOfServiceCategory,
    eventIds: [],
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
  state.transactions.set(transaction.id, transaction);
  const event = recordTransactionEvent(
    context,
    transaction,
    {
      kind: 'AuthorizationEvent',
      responseCode: decision.responseCode,
      requestedCents: facts.amountCents,
      approvedCents,
      accountingDirection: 'DEBIT',
      transactionProcessingType: facts.transactionProcessingType,
      spendRuleResults: decision.results,
    },
    approved ? 'PAYMENT_CARD_AUTHORIZATION_APPROVED' : 'PAYMENT_CARD_AUTHORIZATION_DECLINED',
  );
  return transactionEventView(state, event);
}

export const authorizationMutations = { simulateAuthorization };
