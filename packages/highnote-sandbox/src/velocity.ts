import { type AuthorizationFacts, evaluateSpendRule, type Verdict } from './ruleEvaluation.js';
import type {
  PaymentCardRecord,
  SandboxState,
  TransactionRecord,
  VelocityConstraintLevel,
  VelocityRuleRecord,
  VelocityRuleWindow,
} from './store.js';

/*
 * Velocity rules: a cumulative limit (amount or count) over a window, counted over the approved
 * authorizations that meet the rule's conditions. All windows are in UTC.
 */

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
const NINETY_DAYS_MS = 90 * DAY_MS;
const MONTHS_PER_QUARTER = 3;

/**
 * When the window holding `now` began; null for PER_TRANSACTION, which counts only the
 * authorization being judged. Calendar windows: DAILY is the UTC day, WEEKLY the ISO week (from
 * Monday), MONTHLY, QUARTERLY and YEARLY the calendar month, quarter and year. NINETY_DAYS,
 * COOLDOWN_MINUTE and COOLDOWN_HOUR are rolling: the 90 days, minute or hour before `now`.
 */
export function windowStart(window: VelocityRuleWindow, now: Date): Date | null {
  const year = now.getUTCFullYear();
  const month = now.getUTCMonth();
  const day = now.getUTCDate();
  switch (window) {
    case 'PER_TRANSACTION':
      return null;
    case 'DAILY':
      return new Date(Date.UTC(year, month, day));
    case 'WEEKLY': {
      const daysSinceMonday = (now.getUTCDay() + 6) % 7;
      return new Date(Date.UTC(year, month, day - daysSinceMonday));
    }
    case 'MONTHLY':
      return new Date(Date.UTC(year, month, 1));
    case 'QUARTERLY':
      return new Date(Date.UTC(year, month - (month % MONTHS_PER_QUARTER), 1));
    case 'YEARLY':
      return new Date(Date.UTC(year, 0, 1));
    case 'NINETY_DAYS':
      return new Date(now.getTime() - NINETY_DAYS_MS);
    case 'COOLDOWN_MINUTE':
      return new Date(now.getTime() - MINUTE_MS);
    case 'COOLDOWN_HOUR':
      return new Date(now.getTime() - HOUR_MS);
  }
}

export function factsOf(transaction: TransactionRecord): AuthorizationFacts {
  return {
    amountCents: transaction.requestedCents,
    cashbackCents: transaction.cashbackCents ?? 0n,
    merchant: transaction.merchant,
    transactionProcessingType: transaction.transactionProcessingType,
    pointOfServiceCategory: transaction.pointOfServiceCategory,
  };
}

/** Whether an earlier transaction counts against the same limit as one on `card`. */
function inScope(
  state: SandboxState,
  level: VelocityConstraintLevel,
  card: PaymentCardRecord,
  transaction: TransactionRecord,
): boolean {
  switch (level) {
    case 'CARD':
    case 'CARD_LINEAGE':
      return transaction.paymentCardId === card.id;
    case 'ACCOUNT':
      return transaction.financialAccountId === card.financialAccountId;
    case 'PRODUCT':
      return transaction.cardProductId === state.financialAccounts.get(card.financialAccountId)?.cardProductId;
    case 'ACCOUNT_HOLDER': {
      const account = state.financialAccounts.get(card.financialAccountId);
      const application = account?.applicationId ? state.applications.get(account.applicationId) : undefined;
      return application !== undefined && transaction.accountHolderId === application.accountHolderId;
    }
    case 'PLATFORM':
      return true;
  }
}

export interface VelocityVerdict extends Verdict {
  /** Which limit blocked, for the response code. */
  limit: 'AMOUNT' | 'COUNT' | null;
}

/**
 * Judges an authorization on `card` against one velocity rule. A rule whose conditions the
 * authorization does not meet does not apply (NONE). The amount counted for earlier
 * authorizations is what was approved less what was reversed.
 */
export function evaluateVelocityRule(
  state: SandboxState,
  rule: VelocityRuleRecord,
  card: PaymentCardRecord,
  facts: AuthorizationFacts,
  now: Date,
): VelocityVerdict {
  const conditions = rule.conditionRuleIds.flatMap((id) => state.spendRules.get(id) ?? []);
  const meetsConditions = (candidate: AuthorizationFacts) =>
    conditions.every((condition) => evaluateSpendRule(condition, candidate).recommendation !== 'BLOCK');
  const cumulative = state.spendRules.get(rule.cumulativeRuleId);
  if (!cumulative || !meetsConditions(facts)) {
    return { recommendation: 'NONE', message: 'the velocity rule does not apply', valuesTested: [], limit: null };
  }
  const start = windowStart(rule.window, now);
  const level = rule.constraintLevelOverride ?? 'CARD';
  const earlier =
    start === null
      ? []
      : [...state.transactions.values()].filter(
          (transaction) =>
            transaction.approvedCents > 0n &&
            Date.parse(transaction.createdAt) >= start.getTime() &&
            inScope(state, level, card, transaction) &&
            meetsConditions(factsOf(transaction)),
        );
  const settings = cumulative.settings;
  if (settings.kind === 'CountLimitSpendRule') {
    const count = earlier.length + 1;
    const over = count > settings.maximumCount;
    return {
      recommendation: over ? 'BLOCK' : 'ALLOW',
      message: `${count} of at most ${settings.maximumCount} authorizations in the ${rule.window} window`,
      valuesTested: [String(count)],
      limit: over ? 'COUNT' : null,
    };
  }
  if (settings.kind !== 'AmountLimitSpendRule') {
    return { recommendation: 'NONE', message: 'the cumulative rule is not a limit', valuesTested: [], limit: null };
  }
  const total = earlier.reduce(
    (sum, transaction) => sum + transaction.approvedCents - transaction.reversedCents,
    facts.amountCents,
  );
  const over = total > settings.maximumAmountCents;
  return {
    recommendation: over ? 'BLOCK' : 'ALLOW',
    message: `${total} of at most ${settings.maximumAmountCents} in the ${rule.window} window`,
    valuesTested: [total],
    limit: over ? 'AMOUNT' : null,
  };
}
