import type { SandboxState, SpendRuleRecord, VelocityRuleRecord } from './store.js';
import { amountView } from './viewPrimitives.js';

/* Spend rules (one GraphQL type per kind, all implementing SpendRule) and velocity rules. */

function settingsView(rule: SpendRuleRecord) {
  const settings = rule.settings;
  switch (settings.kind) {
    case 'AmountLimitSpendRule':
      return { maximumAmount: amountView(settings.maximumAmountCents) };
    case 'CountLimitSpendRule':
      return { maximumCount: settings.maximumCount };
    case 'MerchantCategorySpendRule':
      return {
        allowed: settings.allowed,
        blocked: settings.blocked,
        allowedMcc: settings.allowedMcc,
        blockedMcc: settings.blockedMcc,
      };
    default:
      return { allowed: settings.allowed, blocked: settings.blocked };
  }
}

export function spendRuleView(rule: SpendRuleRecord) {
  return {
    __typename: rule.settings.kind,
    id: rule.id,
    name: rule.name,
    version: rule.version,
    userType: rule.userType,
    createdAt: rule.createdAt,
    updatedAt: rule.updatedAt,
    ...settingsView(rule),
  };
}

export function spendRuleViewById(state: SandboxState, spendRuleId: string) {
  const rule = state.spendRules.get(spendRuleId);
  return rule ? spendRuleView(rule) : null;
}

export function velocityRuleView(state: SandboxState, rule: VelocityRuleRecord) {
  return {
    __typename: 'VelocityRule',
    id: rule.id,
    name: rule.name,
    velocityRuleWindow: rule.window,
    cumulativeRule: () => spendRuleViewById(state, rule.cumulativeRuleId),
    spendRules: () => rule.conditionRuleIds.map((id) => spendRuleViewById(state, id)),
    version: rule.version,
    velocityConstraintLevelOverride: rule.constraintLevelOverride,
    userType: rule.userType,
    createdAt: rule.createdAt,
    updatedAt: rule.updatedAt,
  };
}
