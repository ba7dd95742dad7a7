import { paymentCardView, velocityRuleAssociationView } from './cardViews.js';
import type { AmountInput, SandboxContext } from './context.js';
import { spendRuleView, velocityRuleView } from './ruleViews.js';
import {
  newId,
  nowIso,
  type SpendRuleKind,
  type SpendRuleRecord,
  type SpendRuleSettings,
  type VelocityConstraintLevel,
  type VelocityRuleRecord,
  type VelocityRuleWindow,
} from './store.js';
import { type UserErrorView, userError } from './viewPrimitives.js';

/*
 * Spend rules and velocity rules: created once, then attached to cards by id and version. Rules are
 * never revised here, so each has the single version `1`; `LATEST` names it too.
 */

const RULE_VERSION = '1';
const LATEST_VERSION = 'LATEST';
const MAX_LIST_LENGTH = 5_000;
const MAX_VELOCITY_CONDITIONS = 3;
const MCC_PATTERN = /^\d{4}$/;
const CUMULATIVE_KINDS: readonly SpendRuleKind[] = ['AmountLimitSpendRule', 'CountLimitSpendRule'];

interface RuleCommonInput {
  name?: string | null;
  userType?: string | null;
}

interface ListsInput extends RuleCommonInput {
  allowed?: string[] | null;
  blocked?: string[] | null;
}

function saveRule(context: SandboxContext, input: RuleCommonInput, settings: SpendRuleSettings) {
  const createdAt = nowIso();
  const rule: SpendRuleRecord = {
    id: newId('sr'),
    name: input.name ?? null,
    version: RULE_VERSION,
    userType: input.userType ?? null,
    settings,
    createdAt,
    updatedAt: createdAt,
  };
  context.state.spendRules.set(rule.id, rule);
  return spendRuleView(rule);
}

function nameProblem(input: RuleCommonInput, required: boolean): UserErrorView | null {
  if (input.name === undefined || input.name === null) {
    return required ? userError('INVALID_INPUT', 'name is required', ['name']) : null;
  }
  return input.name.trim() === '' ? userError('INVALID_INPUT', 'name must not be empty', ['name']) : null;
}

/** Each list, when given, holds 1-5000 values; at least one list must be given. */
function listsProblem(lists: Record<string, string[] | null | undefined>): UserErrorView | null {
  const given = Object.entries(lists).filter(([, values]) => values !== undefined && values !== null);
  for (const [field, values] of given) {
    if (!values || values.length < 1 || values.length > MAX_LIST_LENGTH) {
      return userError('INVALID_INPUT', `${field} must hold 1-${MAX_LIST_LENGTH} values`, [field]);
    }
  }
  if (given.length === 0) {
    return userError('INVALID_INPUT', `give at least one of ${Object.keys(lists).join(', ')}`, []);
  }
  return null;
}

function allowBlock(input: ListsInput) {
  return { allowed: [...new Set(input.allowed ?? [])], blocked: [...new Set(input.blocked ?? [])] };
}

function createListRule(
  kind:
    | 'MerchantIdentifierSpendRule'
    | 'CardTransactionProcessingTypeConditionSpendRule'
    | 'PointOfServiceCategorySpendRule',
  nameRequired: boolean,
) {
  return (input: ListsInput, context: SandboxContext) =>
    nameProblem(input, nameRequired) ??
    listsProblem({ allowed: input.allowed, blocked: input.blocked }) ??
    saveRule(context, input, { kind, ...allowBlock(input) });
}

function createAmountLimitSpendRule(input: RuleCommonInput & { maximumAmount: AmountInput }, context: SandboxContext) {
  return (
    nameProblem(input, true) ??
    saveRule(context, input, { kind: 'AmountLimitSpendRule', maximumAmountCents: input.maximumAmount.value })
  );
}

function createCountLimitSpendRule(input: RuleCommonInput & { maximumCount: number }, context: SandboxContext) {
  if (input.maximumCount < 0) return userError('INVALID_INPUT', 'maximumCount must not be negative', ['maximumCount']);
  return (
    nameProblem(input, true) ??
    saveRule(context, input, { kind: 'CountLimitSpendRule', maximumCount: input.maximumCount })
  );
}

function createMerchantCategorySpendRule(
  input: ListsInput & { allowedMcc?: string[] | null; blockedMcc?: string[] | null },
  context: SandboxContext,
) {
  const problem =
    nameProblem(input, true) ??
    listsProblem({
      allowed: input.allowed,
      blocked: input.blocked,
      allowedMcc: input.allowedMcc,
      blockedMcc: input.blockedMcc,
    });
  if (problem) return problem;
  for (const field of ['allowedMcc', 'blockedMcc'] as const) {
    if ((input[field] ?? []).some((mcc) => !MCC_PATTERN.test(mcc))) {
      return userError('INVALID_INPUT', `${field} holds four-digit merchant category codes`, [field]);
    }
  }
  return saveRule(context, input, {
    kind: 'MerchantCategorySpendRule',
    ...allowBlock(input),
    allowedMcc: [...new Set(input.allowedMcc ?? [])],
    blockedMcc: [...new Set(input.blockedMcc ?? [])],
  });
}

/** A rule that is attached to a card or used by a velocity rule cannot be deleted. */
function deleteSpendRule(input: { spendRuleId: string }, context: SandboxContext) {
  const { state } = context;
  const rule = state.spendRules.get(input.spendRuleId);
  if (!rule) return userError('NOT_FOUND', 'spend rule not found', ['spendRuleId']);
  const attached = [...state.paymentCards.values()].some((card) =>
    card.attachedSpendRules.some((attachment) => attachment.id === rule.id),
  );
  const used = [...state.velocityRules.values()].some(
    (velocity) => velocity.cumulativeRuleId === rule.id || velocity.conditionRuleIds.includes(rule.id),
  );
  if (attached || used) {
    return userError('SPEND_RULE_IN_USE', 'detach the spend rule from every card and velocity rule first', [
      'spendRuleId',
    ]);
  }
  state.spendRules.delete(rule.id);
  return { __typename: 'SpendRuleContainer', spendRule: spendRuleView(rule) };
}

/** The rule a reference names, or why it cannot be used; `version` must be `LATEST` or the rule's own. */
function referencedRule(
  context: SandboxContext,
  reference: { id: string; version: string },
  path: string[],
): SpendRuleRecord | UserErrorView {
  const rule = context.state.spendRules.get(reference.id);
  if (!rule) return userError('NOT_FOUND', 'spend rule not found', [...path, 'id']);
  if (reference.version !== LATEST_VERSION && reference.version !== rule.version) {
    return userError('INVALID_VERSION', `spend rule has version ${rule.version} (or use LATEST)`, [...path, 'version']);
  }
  return rule;
}

function isRule(value: SpendRuleRecord | UserErrorView): value is SpendRuleRecord {
  return !('__typename' in value);
}

interface AttachSpendRuleInput {
  paymentCardId: string;
  spendRule: { id: string; version: string };
}

function attachSpendRuleToPaymentCard(input: AttachSpendRuleInput, context: SandboxContext) {
  const card = context.state.paymentCards.get(input.paymentCardId);
  if (!card) return userError('NOT_FOUND', 'payment card not found', ['paymentCardId']);
  const rule = referencedRule(context, input.spendRule, ['spendRule']);
  if (!isRule(rule)) return rule;
  if (rule.settings.kind === 'CountLimitSpendRule') {
    return userError(
      'UNSUPPORTED',
      "a count limit counts within a window: use it as a velocity rule's cumulativeRule",
      ['spendRule', 'id'],
    );
  }
  const attachedAt = nowIso();
  const others = card.attachedSpendRules.filter((attachment) => attachment.id !== rule.id);
  card.attachedSpendRules = [...others, { id: rule.id, version: input.spendRule.version, attachedAt }];
  card.updatedAt = attachedAt;
  return paymentCardView(context.state, card);
}

/** Detaching a rule the card does not have answers the card unchanged, so a retry is harmless. */
function detachSpendRuleFromPaymentCard(
  input: { paymentCardId: string; spendRule: { id: string } },
  context: SandboxContext,
) {
  const card = context.state.paymentCards.get(input.paymentCardId);
  if (!card) return userError('NOT_FOUND', 'payment card not found', ['paymentCardId']);
  card.attachedSpendRules = card.attachedSpendRules.filter((attachment) => attachment.id !== input.spendRule.id);
  return paymentCardView(context.state, card);
}

interface CreateVelocityRuleInput extends RuleCommonInput {
  name: string;
  cumulativeRule: { id: string; version: string };
  spendRules?: { id: string; version: string }[] | null;
  velocityRuleWindow: VelocityRuleWindow;
  velocityConstraintLevelOverride?: VelocityConstraintLevel | null;
}

function createVelocityRule(input: CreateVelocityRuleInput, context: SandboxContext) {
  const problem = nameProblem(input, true);
  if (problem) return problem;
  const cumulative = referencedRule(context, input.cumulativeRule, ['cumulativeRule']);
  if (!isRule(cumulative)) return cumulative;
  if (!CUMULATIVE_KINDS.includes(cumulative.settings.kind)) {
    return userError('INVALID_CUMULATIVE_RULE', 'cumulativeRule must be an amount limit or a count limit', [
      'cumulativeRule',
      'id',
    ]);
  }
  const references = input.spendRules ?? [];
  if (references.length > MAX_VELOCITY_CONDITIONS) {
    return userError('INVALID_INPUT', `at most ${MAX_VELOCITY_CONDITIONS} spendRules`, ['spendRules']);
  }
  const conditions: SpendRuleRecord[] = [];
  for (const [index, reference] of references.entries()) {
    const condition = referencedRule(context, reference, ['spendRules', String(index)]);
    if (!isRule(condition)) return condition;
    if (condition.settings.kind === 'CountLimitSpendRule') {
      return userError('INVALID_INPUT', 'a count limit cannot be a condition', ['spendRules', String(index), 'id']);
    }
    conditions.push(condition);
  }
  const createdAt = nowIso();
  const rule: VelocityRuleRecord = {
    id: newId('vr'),
    name: input.name,
    version: RULE_VERSION,
    window: input.velocityRuleWindow,
    cumulativeRuleId: cumulative.id,
    conditionRuleIds: conditions.map((condition) => condition.id),
    constraintLevelOverride: input.velocityConstraintLevelOverride ?? null,
    userType: input.userType ?? null,
    createdAt,
    updatedAt: createdAt,
  };
  context.state.velocityRules.set(rule.id, rule);
  return velocityRuleView(context.state, rule);
}

interface CardVelocityRuleInput {
  paymentCardId: string;
  velocityRule: { velocityRuleId: string; version?: string | null };
}

function cardAndVelocityRule(input: CardVelocityRuleInput, context: SandboxContext) {
  const card = context.state.paymentCards.get(input.paymentCardId);
  if (!card) return userError('NOT_FOUND', 'payment card not found', ['paymentCardId']);
  const rule = context.state.velocityRules.get(input.velocityRule.velocityRuleId);
  if (!rule) return userError('NOT_FOUND', 'velocity rule not found', ['velocityRule', 'velocityRuleId']);
  const version = input.velocityRule.version ?? LATEST_VERSION;
  if (version !== LATEST_VERSION && version !== rule.version) {
    return userError('INVALID_VERSION', `velocity rule has version ${rule.version} (or use LATEST)`, [
      'velocityRule',
      'version',
    ]);
  }
  return { card, rule, version };
}

function attachPaymentCardVelocityRule(input: CardVelocityRuleInput, context: SandboxContext) {
  const found = cardAndVelocityRule(input, context);
  if ('__typename' in found) return found;
  const { card, rule, version } = found;
  const attachment = { id: rule.id, version, attachedAt: nowIso() };
  card.attachedVelocityRules = [
    ...card.attachedVelocityRules.filter((attached) => attached.id !== rule.id),
    attachment,
  ];
  card.updatedAt = attachment.attachedAt;
  return velocityRuleAssociationView(context.state, card, attachment);
}

/** As for spend rules, detaching what is not attached answers the association without error. */
function detachPaymentCardVelocityRule(input: CardVelocityRuleInput, context: SandboxContext) {
  const found = cardAndVelocityRule(input, context);
  if ('__typename' in found) return found;
  const { card, rule, version } = found;
  const attachment = card.attachedVelocityRules.find((attached) => attached.id === rule.id) ?? {
    id: rule.id,
    version,
    attachedAt: nowIso(),
  };
  card.attachedVelocityRules = card.attachedVelocityRules.filter((attached) => attached.id !== rule.id);
  return velocityRuleAssociationView(context.state, card, attachment);
}

export const ruleMutations = {
  createAmountLimitSpendRule,
  createCountLimitSpendRule,
  createMerchantCategorySpendRule,
  createMerchantIdentifierSpendRule: createListRule('MerchantIdentifierSpendRule', true),
  createCardTransactionProcessingTypeConditionSpendRule: createListRule(
    'CardTransactionProcessingTypeConditionSpendRule',
    false,
  ),
  createPointOfServiceCategorySpendRule: createListRule('PointOfServiceCategorySpendRule', true),
  deleteSpendRule,
  attachSpendRuleToPaymentCard,
  detachSpendRuleFromPaymentCard,
  createVelocityRule,
  attachPaymentCardVelocityRule,
  detachPaymentCardVelocityRule,
};
