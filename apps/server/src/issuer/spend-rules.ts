import { createHash } from 'node:crypto';
import { assert } from '../platform/errors.js';
import { allowsNothing, type SpendControls, type SpendWindow, type TerminalType } from '../programs/spend-controls.js';
import { callIssuer, type GraphqlOperation, type IssuerConnection, type IssuerResult } from './graphql.js';

/**
 * A card's spend controls as Highnote rules, and keeping a card's rules in step with them.
 *
 * - `perTransactionLimit` → `AmountLimitSpendRule` (`maximumAmount`);
 * - each of `windowLimits` → `VelocityRule` (`DAILY`, `WEEKLY`, `MONTHLY`) whose cumulative rule
 *   is an `AmountLimitSpendRule`;
 * - merchant categories → `MerchantCategorySpendRule` (`allowed`, `blocked`);
 * - MCCs → a second `MerchantCategorySpendRule` (`allowedMcc`, `blockedMcc`);
 * - merchant ids → `MerchantIdentifierSpendRule` (`allowed`, `blocked`);
 * - `blockCash` → `CardTransactionProcessingTypeConditionSpendRule` blocking `cashProcessingTypes`;
 * - `blockedTerminalTypes` → `PointOfServiceCategorySpendRule` blocking `AUTOMATED_TELLER_MACHINE`,
 *   `AUTOMATED_FUEL_DISPENSER`;
 * - an empty allow-list (programs that allow disjoint lists) → an `AmountLimitSpendRule` of 0,
 *   which declines every authorization.
 *
 * Categories and MCCs are separate rules because each is its own condition (see
 * `programs/spend-controls.ts`): a merchant must pass both, whatever Highnote does with a rule that
 * holds both kinds of list.
 *
 * Each rule is named `tranche <what> <fingerprint>`, the fingerprint a hash of what the rule says,
 * so a rule's name says what it does: a sync keeps an attached rule whose name is still wanted and
 * makes no call for it.
 */

/** Most entries Highnote takes in one list of a rule; a longer block-list is split over several rules. */
export const highnoteMaxRuleListItems = 5_000;
/** Rules read per page of a card's attached rules, and most pages read: a card of ours has about ten. */
export const attachedRulesPageSize = 50;
export const maxAttachedRulePages = 10;
/** How the name of every rule Tranche creates begins; a rule attached under another name is left alone. */
export const spendRuleNamePrefix = 'tranche ';

/** A rule attached to a card, as the card row stores it (JSON). */
export interface AttachedRule {
  kind: 'spend' | 'velocity';
  /** Highnote's id of the spend rule or velocity rule. */
  id: string;
  /** `tranche <what> <fingerprint>`; the same name is the same rule. */
  name: string;
}

const spendRuleTypes = {
  createAmountLimitSpendRule: { input: 'CreateAmountLimitSpendRuleInput', type: 'AmountLimitSpendRule' },
  createMerchantCategorySpendRule: { input: 'CreateMerchantCategorySpendRuleInput', type: 'MerchantCategorySpendRule' },
  createMerchantIdentifierSpendRule: {
    input: 'CreateMerchantIdentifierSpendRuleInput',
    type: 'MerchantIdentifierSpendRule',
  },
  createCardTransactionProcessingTypeConditionSpendRule: {
    input: 'CreateCardTransactionProcessingTypeConditionSpendRuleInput',
    type: 'CardTransactionProcessingTypeConditionSpendRule',
  },
  createPointOfServiceCategorySpendRule: {
    input: 'CreatePointOfServiceCategorySpendRuleInput',
    type: 'PointOfServiceCategorySpendRule',
  },
} as const;
type SpendRuleMutation = keyof typeof spendRuleTypes;

/** One rule a card should carry: a spend rule and the input that creates it, or a window limit. */
export type HighnoteRule =
  | { kind: 'spend'; name: string; mutation: SpendRuleMutation; input: Record<string, unknown> }
  | { kind: 'velocity'; name: string; window: VelocityWindow; maximumAmountCents: bigint };

const velocityWindows = { daily: 'DAILY', weekly: 'WEEKLY', monthly: 'MONTHLY' } as const satisfies Record<
  SpendWindow,
  string
>;
type VelocityWindow = (typeof velocityWindows)[SpendWindow];

/** What `blockCash` blocks: cash withdrawals, cash back with a purchase, and quasi-cash. */
export const cashProcessingTypes = [
  'CASH',
  'GOODS_AND_SERVICES_WITH_CASH_DISBURSEMENT',
  'QUASI_CASH_AND_SCRIP',
] as const;

export const pointOfServiceCategories = {
  atm: 'AUTOMATED_TELLER_MACHINE',
  fuel: 'AUTOMATED_FUEL_DISPENSER',
} as const satisfies Record<TerminalType, string>;

/** Highnote's `AmountInput`; zero is a limit too (the rule that declines everything). */
function amountInput(amountCents: bigint): { value: number; currencyCode: 'USD' } {
  assert(
    amountCents >= 0n && amountCents <= BigInt(Number.MAX_SAFE_INTEGER),
    `an amount of ${amountCents} cents cannot be sent`,
  );
  return { value: Number(amountCents), currencyCode: 'USD' };
}

function fingerprint(content: unknown): string {
  const json = JSON.stringify(content, (_key, value) => (typeof value === 'bigint' ? value.toString() : value));
  return createHash('sha256').update(json).digest('hex').slice(0, 16);
}

function spendRule(what: string, mutation: SpendRuleMutation, settings: Record<string, unknown>): HighnoteRule {
  const name = `${spendRuleNamePrefix}${what} ${fingerprint({ mutation, settings })}`;
  return { kind: 'spend', name, mutation, input: { name, ...settings } };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let start = 0; start < items.length; start += size) out.push(items.slice(start, start + size));
  return out;
}

/**
 * An allow-list and a block-list as rules of one kind: the allow-list (never longer than a
 * program's list, so within Highnote's limit) with the first part of the block-list, and the rest
 * of a long block-list in more rules. An empty allow-list is not sent (Highnote takes 1 to 5,000
 * entries): `allowsNothing` covers it.
 */
function listRules(
  what: string,
  mutation: SpendRuleMutation,
  keys: { allowed: string; blocked: string },
  allowed: readonly string[] | null,
  blocked: readonly string[],
): HighnoteRule[] {
  const allowing = allowed !== null && allowed.length > 0 ? allowed : undefined;
  // An intersection is never longer than a program's list, which is far shorter than Highnote's.
  assert(
    allowing === undefined || allowing.length <= highnoteMaxRuleListItems,
    `an allow-list of ${allowing?.length} entries is longer than any program's`,
  );
  const parts = chunks(blocked, highnoteMaxRuleListItems);
  if (allowing === undefined && parts.length === 0) return [];
  const rules: HighnoteRule[] = [];
  for (const [index, part] of (parts.length === 0 ? [[]] : parts).entries()) {
    const settings: Record<string, unknown> = {};
    if (index === 0 && allowing !== undefined) settings[keys.allowed] = [...allowing];
    if (part.length > 0) settings[keys.blocked] = part;
    rules.push(spendRule(what, mutation, settings));
  }
  return rules;
}

/** The rules that enforce `controls` (combined over a card's programs), in the order of the list above. */
export function highnoteRulesFor(controls: SpendControls): HighnoteRule[] {
  const rules: HighnoteRule[] = [];
  if (allowsNothing(controls)) {
    rules.push(spendRule('nothing-allowed', 'createAmountLimitSpendRule', { maximumAmount: amountInput(0n) }));
  }
  if (controls.perTransactionLimitCents !== null) {
    rules.push(
      spendRule('per-transaction', 'createAmountLimitSpendRule', {
        maximumAmount: amountInput(controls.perTransactionLimitCents),
      }),
    );
  }
  for (const limit of controls.windowLimits) {
    const window = velocityWindows[limit.window];
    const name = `${spendRuleNamePrefix}${limit.window} ${fingerprint({ window, amountCents: limit.amountCents })}`;
    rules.push({ kind: 'velocity', name, window, maximumAmountCents: limit.amountCents });
  }
  rules.push(
    ...listRules(
      'merchant-categories',
      'createMerchantCategorySpendRule',
      { allowed: 'allowed', blocked: 'blocked' },
      controls.allowedMerchantCategories,
      controls.blockedMerchantCategories,
    ),
    ...listRules(
      'mccs',
      'createMerchantCategorySpendRule',
      { allowed: 'allowedMcc', blocked: 'blockedMcc' },
      controls.allowedMccs,
      controls.blockedMccs,
    ),
    ...listRules(
      'merchants',
      'createMerchantIdentifierSpendRule',
      { allowed: 'allowed', blocked: 'blocked' },
      controls.allowedMerchantIds,
      controls.blockedMerchantIds,
    ),
  );
  if (controls.blockCash) {
    rules.push(
      spendRule('cash', 'createCardTransactionProcessingTypeConditionSpendRule', { blocked: [...cashProcessingTypes] }),
    );
  }
  if (controls.blockedTerminalTypes.length > 0) {
    rules.push(
      spendRule('terminals', 'createPointOfServiceCategorySpendRule', {
        blocked: controls.blockedTerminalTypes.map((type) => pointOfServiceCategories[type]),
      }),
    );
  }
  return rules;
}

// ---------------------------------------------------------------------------------------------
// Calls

const errorFragments = `
  ... on UserError { errors { code description errorPath } }
  ... on AccessDeniedError { message }
`;

/**
 * None of these inputs has an `idempotencyKey`, yet each is safe to send twice: a rule created
 * twice is an extra rule attached to nothing, and an attach or detach that already happened is
 * answered with a `UserError`, which the sync checks against the card (see `confirmed`).
 */
function operation(field: string, inputType: string, selection: string, input: unknown): GraphqlOperation {
  return {
    field,
    document: `mutation ${field[0]?.toUpperCase()}${field.slice(1)}($input: ${inputType}!) {
      ${field}(input: $input) { __typename ${selection} ${errorFragments} }
    }`,
    variables: { input },
    retryable: true,
  };
}

async function createSpendRule(
  connection: IssuerConnection,
  mutation: SpendRuleMutation,
  input: Record<string, unknown>,
): Promise<IssuerResult<{ id: string }>> {
  const { input: inputType, type } = spendRuleTypes[mutation];
  return callIssuer<{ id: string }>(connection, operation(mutation, inputType, `... on ${type} { id name }`, input));
}

/** Creates the rule (a window limit: its amount rule, then the velocity rule over it). */
async function createRule(connection: IssuerConnection, rule: HighnoteRule): Promise<IssuerResult<string>> {
  if (rule.kind === 'spend') {
    const created = await createSpendRule(connection, rule.mutation, rule.input);
    return created.ok ? { ...created, value: created.value.id } : created;
  }
  const amount = await createSpendRule(connection, 'createAmountLimitSpendRule', {
    name: `${rule.name} amount`,
    maximumAmount: amountInput(rule.maximumAmountCents),
  });
  if (!amount.ok) return amount;
  const velocity = await callIssuer<{ id: string }>(
    connection,
    operation('createVelocityRule', 'CreateVelocityRuleInput', '... on VelocityRule { id name }', {
      name: rule.name,
      cumulativeRule: { id: amount.value.id, version: 'LATEST' },
      velocityRuleWindow: rule.window,
      // No velocityConstraintLevelOverride: attached to a card, the window counts that card's spend.
    }),
  );
  return velocity.ok ? { ...velocity, value: velocity.value.id } : velocity;
}

async function attach(connection: IssuerConnection, paymentCardId: string, rule: AttachedRule) {
  return rule.kind === 'spend'
    ? callIssuer(
        connection,
        operation('attachSpendRuleToPaymentCard', 'AttachSpendRuleToPaymentCardInput', '... on PaymentCard { id }', {
          paymentCardId,
          spendRule: { id: rule.id, version: 'LATEST' },
        }),
      )
    : callIssuer(
        connection,
        operation(
          'attachPaymentCardVelocityRule',
          'AttachPaymentCardVelocityRuleInput',
          '... on VelocityRuleAssociation { name }',
          // No version: the latest, as for the spend rules.
          { paymentCardId, velocityRule: { velocityRuleId: rule.id } },
        ),
      );
}

async function detach(connection: IssuerConnection, paymentCardId: string, rule: AttachedRule) {
  return rule.kind === 'spend'
    ? callIssuer(
        connection,
        operation(
          'detachSpendRuleFromPaymentCard',
          'DetachSpendRuleFromPaymentCardInput',
          '... on PaymentCard { id }',
          { paymentCardId, spendRule: { id: rule.id } },
        ),
      )
    : callIssuer(
        connection,
        operation(
          'detachPaymentCardVelocityRule',
          'DetachPaymentCardVelocityRuleInput',
          '... on VelocityRuleAssociation { name }',
          { paymentCardId, velocityRule: { velocityRuleId: rule.id } },
        ),
      );
}

interface RulePage {
  pageInfo?: { hasNextPage?: boolean; endCursor?: string | null } | null;
  edges?: { node?: { id?: string; name?: string | null } | null }[] | null;
}

/** Every rule of one kind attached to the card, as Highnote says now, a bounded number of pages. */
async function attachedOfKind(
  connection: IssuerConnection,
  paymentCardId: string,
  kind: AttachedRule['kind'],
): Promise<IssuerResult<AttachedRule[]>> {
  const connectionField = kind === 'spend' ? 'attachedSpendRules' : 'attachedVelocityRules';
  const rules: AttachedRule[] = [];
  let after: string | null = null;
  for (let page = 0; page < maxAttachedRulePages; page++) {
    const read: IssuerResult<Record<string, RulePage | null | undefined>> = await callIssuer(connection, {
      field: 'node',
      document: `query AttachedRules($id: ID!, $first: Int!, $after: String) {
        node(id: $id) {
          __typename
          ... on PaymentCard {
            ${connectionField}(first: $first, after: $after) {
              pageInfo { hasNextPage endCursor }
              edges { node { id name } }
            }
          }
        }
      }`,
      variables: { id: paymentCardId, first: attachedRulesPageSize, after },
      retryable: true,
    });
    if (!read.ok) return read;
    const found: RulePage | null | undefined = read.value[connectionField];
    if (found === undefined || found === null) {
      return unexpected(`node: ${paymentCardId} is not a payment card (${String(read.value.__typename)})`);
    }
    for (const edge of found.edges ?? []) {
      if (typeof edge.node?.id === 'string') rules.push({ kind, id: edge.node.id, name: edge.node.name ?? '' });
    }
    const next: string | null = found.pageInfo?.endCursor ?? null;
    if (found.pageInfo?.hasNextPage !== true || next === null || next === after) {
      return { ok: true, value: rules, requestId: read.requestId };
    }
    after = next;
  }
  return unexpected(
    `node: ${paymentCardId} has more than ${maxAttachedRulePages * attachedRulesPageSize} ${kind} rules`,
  );
}

/** The spend and velocity rules attached to the card now. */
export async function attachedRulesOf(
  connection: IssuerConnection,
  paymentCardId: string,
): Promise<IssuerResult<AttachedRule[]>> {
  const spend = await attachedOfKind(connection, paymentCardId, 'spend');
  if (!spend.ok) return spend;
  const velocity = await attachedOfKind(connection, paymentCardId, 'velocity');
  if (!velocity.ok) return velocity;
  return { ok: true, value: [...spend.value, ...velocity.value], requestId: velocity.requestId };
}

function unexpected<T>(message: string): IssuerResult<T> {
  return { ok: false, failure: { kind: 'unexpected', message, attempts: 1 } };
}

const sameRule = (a: AttachedRule) => (b: AttachedRule) => a.kind === b.kind && a.id === b.id;

/**
 * An attach (`want: true`) or detach Highnote refused (`rejected`) may have happened already: a
 * retry after a lost answer, a sync re-run after a crash, two syncs at once. The card says.
 */
async function confirmed(
  connection: IssuerConnection,
  paymentCardId: string,
  rule: AttachedRule,
  want: boolean,
  answer: IssuerResult<unknown>,
): Promise<IssuerResult<null>> {
  if (answer.ok) return { ok: true, value: null, requestId: answer.requestId };
  if (answer.failure.kind !== 'rejected') return answer;
  const now = await attachedRulesOf(connection, paymentCardId);
  if (!now.ok) return now;
  return now.value.some(sameRule(rule)) === want ? { ok: true, value: null, requestId: now.requestId } : answer;
}

/**
 * Makes the card carry exactly the rules of `controls` (the combination over its programs) among
 * the rules Tranche put on it, and answers them, for the card row to store.
 *
 * The card is read first: a rule it carries whose name is wanted is kept (a rule's name says what
 * it does), the rules missing are created and attached, and only then are the rules no longer
 * wanted detached, so that while the sync runs the card carries the old and the new rules together
 * — never fewer controls than either. Ours to detach are the rules named `tranche …` and those in
 * `card.attached`; a rule someone attached in Highnote's dashboard under another name is left alone.
 *
 * Re-running it after a crash, or after any failure it answers, is safe: a rule attached by the
 * run that crashed is found on the card and kept (or detached), a rule it created and did not
 * attach stays attached to nothing, and an attach or detach that had already happened is checked
 * against the card. None of these calls has an idempotency key; none needs one.
 */
export async function syncCardSpendRules(
  connection: IssuerConnection,
  card: { paymentCardId: string; attached: readonly AttachedRule[] },
  controls: SpendControls,
): Promise<IssuerResult<AttachedRule[]>> {
  const { paymentCardId } = card;
  const present = await attachedRulesOf(connection, paymentCardId);
  if (!present.ok) return present;
  const kept: AttachedRule[] = [];
  for (const rule of highnoteRulesFor(controls)) {
    const carried = present.value.find(
      (attached) => attached.kind === rule.kind && attached.name === rule.name && !kept.some(sameRule(attached)),
    );
    if (carried !== undefined) {
      kept.push(carried);
      continue;
    }
    const created = await createRule(connection, rule);
    if (!created.ok) return created;
    const attachedRule: AttachedRule = { kind: rule.kind, id: created.value, name: rule.name };
    const attached = await confirmed(
      connection,
      paymentCardId,
      attachedRule,
      true,
      await attach(connection, paymentCardId, attachedRule),
    );
    if (!attached.ok) return attached;
    kept.push(attachedRule);
  }
  const ours = (rule: AttachedRule) => rule.name.startsWith(spendRuleNamePrefix) || card.attached.some(sameRule(rule));
  for (const stale of present.value.filter((rule) => ours(rule) && !kept.some(sameRule(rule)))) {
    const detached = await confirmed(
      connection,
      paymentCardId,
      stale,
      false,
      await detach(connection, paymentCardId, stale),
    );
    if (!detached.ok) return detached;
  }
  return { ok: true, value: kept, requestId: null };
}
