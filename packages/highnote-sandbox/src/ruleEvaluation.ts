import { MerchantCategoryMccs } from './generated/highnoteEnums.js';
import type {
  AllowBlockLists,
  MerchantRecord,
  SpendRuleRecommendation,
  SpendRuleRecord,
  SpendRuleSettings,
} from './store.js';

/*
 * How one spend rule judges one authorization. A value in `blocked` blocks; a non-empty `allowed`
 * blocks everything not in it. The verdict is Highnote's SpendRuleRecommendation.
 */

const MCCS_BY_CATEGORY = new Map(MerchantCategoryMccs.map(([category, mccs]) => [category, mccs]));
const CASH_BACK_TYPE = 'GOODS_AND_SERVICES_WITH_CASH_DISBURSEMENT';
/** Blocking CASH blocks every processing type that hands out cash. */
const CASH_TYPES = new Set(['CASH', 'CASH_DISBURSEMENT', CASH_BACK_TYPE]);

/** The MCCs Highnote's schema lists for a MerchantCategory; the first is the primary one. */
export function mccsOf(category: string | null): readonly string[] {
  return category === null ? [] : (MCCS_BY_CATEGORY.get(category) ?? []);
}

/** What the sandbox knows about an authorization when it judges it. */
export interface AuthorizationFacts {
  amountCents: bigint;
  cashbackCents: bigint;
  merchant: MerchantRecord;
  transactionProcessingType: string;
  pointOfServiceCategory: string | null;
}

export interface Verdict {
  recommendation: SpendRuleRecommendation;
  message: string;
  valuesTested: (string | bigint)[];
}

function listVerdict(
  tested: readonly string[],
  lists: AllowBlockLists,
  what: string,
  blocks: (blocked: readonly string[], value: string) => boolean = (blocked, value) => blocked.includes(value),
): Verdict {
  const blockedValue = tested.find((value) => blocks(lists.blocked, value));
  if (blockedValue !== undefined) {
    return { recommendation: 'BLOCK', message: `${what} ${blockedValue} is blocked`, valuesTested: [...tested] };
  }
  if (lists.allowed.length > 0) {
    const outside = tested.length === 0 ? 'none' : tested.find((value) => !lists.allowed.includes(value));
    if (outside !== undefined) {
      return { recommendation: 'BLOCK', message: `${what} ${outside} is not allowed`, valuesTested: [...tested] };
    }
  }
  return { recommendation: 'ALLOW', message: `${what} is permitted`, valuesTested: [...tested] };
}

function merchantCategoryVerdict(
  settings: Extract<SpendRuleSettings, { kind: 'MerchantCategorySpendRule' }>,
  merchant: MerchantRecord,
): Verdict {
  const category = merchant.category;
  const mccs = [...new Set([...mccsOf(category), ...(merchant.categoryCode ? [merchant.categoryCode] : [])])];
  const tested = category === null ? [] : [category];
  const blocked =
    (category !== null && settings.blocked.includes(category)) || mccs.some((mcc) => settings.blockedMcc.includes(mcc));
  if (blocked)
    return {
      recommendation: 'BLOCK',
      message: `merchant category ${category ?? mccs[0]} is blocked`,
      valuesTested: tested,
    };
  const hasAllowList = settings.allowed.length > 0 || settings.allowedMcc.length > 0;
  const allowed =
    (category !== null && settings.allowed.includes(category)) || mccs.some((mcc) => settings.allowedMcc.includes(mcc));
  if (hasAllowList && !allowed) {
    return {
      recommendation: 'BLOCK',
      message: `merchant category ${category ?? 'none'} is not allowed`,
      valuesTested: tested,
    };
  }
  return { recommendation: 'ALLOW', message: 'merchant category is permitted', valuesTested: tested };
}

/** Cash back turns any purchase into one with a cash disbursement. */
function processingTypesTested(facts: AuthorizationFacts): string[] {
  const types = [facts.transactionProcessingType];
  if (facts.cashbackCents > 0n && !types.includes(CASH_BACK_TYPE)) types.push(CASH_BACK_TYPE);
  return types;
}

export function evaluateSpendRule(rule: SpendRuleRecord, facts: AuthorizationFacts): Verdict {
  const settings = rule.settings;
  switch (settings.kind) {
    case 'AmountLimitSpendRule': {
      const over = facts.amountCents > settings.maximumAmountCents;
      return {
        recommendation: over ? 'BLOCK' : 'ALLOW',
        message: over
          ? `amount ${facts.amountCents} exceeds the limit of ${settings.maximumAmountCents}`
          : 'amount is within the limit',
        valuesTested: [facts.amountCents],
      };
    }
    case 'CountLimitSpendRule':
      return { recommendation: 'NONE', message: 'a count limit applies only within a velocity rule', valuesTested: [] };
    case 'MerchantCategorySpendRule':
      return merchantCategoryVerdict(settings, facts.merchant);
    case 'MerchantIdentifierSpendRule':
      return listVerdict(facts.merchant.merchantId === null ? [] : [facts.merchant.merchantId], settings, 'merchant');
    case 'CardTransactionProcessingTypeConditionSpendRule':
      return listVerdict(
        processingTypesTested(facts),
        settings,
        'processing type',
        (blocked, value) => blocked.includes(value) || (blocked.includes('CASH') && CASH_TYPES.has(value)),
      );
    case 'PointOfServiceCategorySpendRule':
      return listVerdict(
        facts.pointOfServiceCategory === null ? [] : [facts.pointOfServiceCategory],
        settings,
        'point-of-service category',
      );
  }
}
