import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from '../src/index.js';
import { windowStart } from '../src/velocity.js';
import { availableCash, control, fundedCard, gql, mutate, usd } from './helpers.js';

let sandbox: RunningSandbox;

beforeAll(async () => {
  sandbox = await startSandbox({ applicationApprovalDelayMs: 5, transferSettlementDelayMs: 5 });
});

afterAll(async () => {
  await sandbox.close();
});

beforeEach(async () => {
  await control(sandbox, '/_sandbox/reset');
});

const AUTHORIZATION_FIELDS = `... on AuthorizationEvent {
  id transactionId transaction { __typename ... on DebitTransaction { id } }
  responseCode approvedAmount { value } requestedAmount { value }
  currentFinancialAccountAvailableToSpendAmount { value }
  merchantDetails { category categoryCode merchantId name }
  spendRuleResults { edges { node { __typename recommendation message
    ... on AmountLimitSpendRuleResult { spendRule { id } }
    ... on MerchantCategorySpendRuleResult { valuesTested spendRule { id } }
    ... on VelocityRuleResult { velocityRule { id } } } } }
  createdAt
}`;

function authorize(cardId: string, amountCents: number, extra: Record<string, unknown> = {}) {
  return mutate(
    sandbox,
    'simulateAuthorization',
    'SimulateAuthorizationInput',
    { cardId, amount: usd(amountCents), ...extra },
    AUTHORIZATION_FIELDS,
  );
}

async function createRule(field: string, input: Record<string, unknown>): Promise<string> {
  const type = field.replace(/^create/, '');
  const rule = await mutate(sandbox, field, `Create${type}Input`, input, `... on ${type} { id name version }`);
  expect(rule).toMatchObject({ __typename: type, version: '1' });
  return rule.id;
}

async function attach(paymentCardId: string, ruleId: string) {
  const card = await mutate(
    sandbox,
    'attachSpendRuleToPaymentCard',
    'AttachSpendRuleToPaymentCardInput',
    { paymentCardId, spendRule: { id: ruleId, version: 'LATEST' } },
    '... on PaymentCard { attachedSpendRules { edges { node { __typename id } } } }',
  );
  expect(card.__typename).toBe('PaymentCard');
  return card;
}

describe('card status', () => {
  it('declines an unactivated, a suspended and a closed card with their own codes', async () => {
    const { cardId } = await fundedCard(sandbox, { loadCents: 10_000, activateOnCreate: false });
    expect((await authorize(cardId, 100)).responseCode).toBe('UNACTIVATED_CARD');
    await mutate(sandbox, 'activatePaymentCard', 'ActivatePaymentCardInput', { paymentCardId: cardId }, '');
    expect((await authorize(cardId, 100)).responseCode).toBe('APPROVED');
    await mutate(sandbox, 'suspendPaymentCard', 'SuspendPaymentCardInput', { paymentCardId: cardId }, '');
    expect((await authorize(cardId, 100)).responseCode).toBe('SUSPENDED_CARD');
    await mutate(sandbox, 'closePaymentCard', 'ClosePaymentCardInput', { paymentCardId: cardId }, '');
    const closed = await authorize(cardId, 100);
    expect(closed).toMatchObject({ responseCode: 'TERMINATED_CARD', approvedAmount: { value: 0 } });
  });

  it('declines above the balance with INSUFFICIENT_FUNDS', async () => {
    const { cardId } = await fundedCard(sandbox, { loadCents: 5_000 });
    const declined = await authorize(cardId, 5_001);
    expect(declined).toMatchObject({
      responseCode: 'INSUFFICIENT_FUNDS',
      currentFinancialAccountAvailableToSpendAmount: { value: 5_000 },
    });
  });
});

describe('spend rules', () => {
  it('an amount limit declines above its maximum and approves at or below it', async () => {
    const { cardId } = await fundedCard(sandbox, { loadCents: 100_000 });
    const ruleId = await createRule('createAmountLimitSpendRule', { name: 'Max $50', maximumAmount: usd(5_000) });
    const card = await attach(cardId, ruleId);
    expect(card.attachedSpendRules.edges).toEqual([{ node: { __typename: 'AmountLimitSpendRule', id: ruleId } }]);

    const above = await authorize(cardId, 5_001);
    expect(above.responseCode).toBe('DO_NOT_HONOR');
    expect(above.spendRuleResults.edges[0].node).toMatchObject({
      __typename: 'AmountLimitSpendRuleResult',
      recommendation: 'BLOCK',
      spendRule: { id: ruleId },
    });
    const within = await authorize(cardId, 5_000);
    expect(within).toMatchObject({ responseCode: 'APPROVED', approvedAmount: { value: 5_000 } });
    expect(within.transaction).toEqual({ __typename: 'DebitTransaction', id: within.transactionId });

    await mutate(
      sandbox,
      'detachSpendRuleFromPaymentCard',
      'DetachSpendRuleFromPaymentCardInput',
      { paymentCardId: cardId, spendRule: { id: ruleId } },
      '',
    );
    expect((await authorize(cardId, 6_000)).responseCode).toBe('APPROVED');
  });

  it('a blocked merchant category, or an MCC outside an allow list, declines', async () => {
    const { cardId } = await fundedCard(sandbox, { loadCents: 100_000 });
    const ruleId = await createRule('createMerchantCategorySpendRule', {
      name: 'No gambling or guns',
      blocked: ['BETTING_CASINO_GAMBLING', 'GUNS_AMMO'],
    });
    await attach(cardId, ruleId);
    const casino = await authorize(cardId, 1_000, {
      merchantDetails: { category: 'BETTING_CASINO_GAMBLING', name: 'Lucky' },
    });
    expect(casino).toMatchObject({
      responseCode: 'DO_NOT_HONOR',
      merchantDetails: { category: 'BETTING_CASINO_GAMBLING', categoryCode: '7995', name: 'Lucky' },
    });
    expect(casino.spendRuleResults.edges[0].node).toMatchObject({
      recommendation: 'BLOCK',
      valuesTested: ['BETTING_CASINO_GAMBLING'],
    });
    const grocery = await authorize(cardId, 1_000, { merchantDetails: { category: 'GROCERY_STORES_SUPERMARKETS' } });
    expect(grocery.responseCode).toBe('APPROVED');

    const other = await fundedCard(sandbox, { loadCents: 100_000 });
    const foodOnly = await createRule('createMerchantCategorySpendRule', {
      name: 'Food only',
      allowedMcc: ['5411', '5812', '5814'],
    });
    await attach(other.cardId, foodOnly);
    expect(
      (await authorize(other.cardId, 500, { merchantDetails: { category: 'FAST_FOOD_RESTAURANTS' } })).responseCode,
    ).toBe('APPROVED');
    expect(
      (await authorize(other.cardId, 500, { merchantDetails: { category: 'SERVICE_STATIONS' } })).responseCode,
    ).toBe('DO_NOT_HONOR');
    expect((await authorize(other.cardId, 500)).responseCode).toBe('DO_NOT_HONOR');
  });

  it('blocking CASH declines cash, cash disbursement and cash back; the ATM and merchant rules decline theirs', async () => {
    const { cardId } = await fundedCard(sandbox, { loadCents: 100_000 });
    await attach(
      cardId,
      await createRule('createCardTransactionProcessingTypeConditionSpendRule', { blocked: ['CASH'] }),
    );
    expect((await authorize(cardId, 2_000, { transactionProcessingType: 'CASH' })).responseCode).toBe('DO_NOT_HONOR');
    const withCash = { transactionProcessingType: 'GOODS_AND_SERVICES_WITH_CASH_DISBURSEMENT' };
    expect((await authorize(cardId, 2_000, withCash)).responseCode).toBe('DO_NOT_HONOR');
    expect((await authorize(cardId, 2_000, { cashbackAmount: usd(500) })).responseCode).toBe('DO_NOT_HONOR');
    expect((await authorize(cardId, 2_000)).responseCode).toBe('APPROVED');

    const other = await fundedCard(sandbox, { loadCents: 100_000 });
    await attach(
      other.cardId,
      await createRule('createPointOfServiceCategorySpendRule', {
        name: 'No ATM',
        blocked: ['AUTOMATED_TELLER_MACHINE'],
      }),
    );
    await attach(
      other.cardId,
      await createRule('createMerchantIdentifierSpendRule', { name: 'Not this shop', blocked: ['MID-666'] }),
    );
    const atm = { pointOfServiceDetails: { category: 'AUTOMATED_TELLER_MACHINE' } };
    expect((await authorize(other.cardId, 2_000, atm)).responseCode).toBe('DO_NOT_HONOR');
    expect((await authorize(other.cardId, 2_000, { merchantDetails: { merchantId: 'MID-666' } })).responseCode).toBe(
      'DO_NOT_HONOR',
    );
    const fine = { merchantDetails: { merchantId: 'MID-1' }, pointOfServiceDetails: { category: 'POS_TERMINAL' } };
    expect((await authorize(other.cardId, 2_000, fine)).responseCode).toBe('APPROVED');
  });

  it('deletes a rule only once nothing uses it', async () => {
    const { cardId } = await fundedCard(sandbox);
    const ruleId = await createRule('createAmountLimitSpendRule', { name: 'Max $10', maximumAmount: usd(1_000) });
    await attach(cardId, ruleId);
    const del = (spendRuleId: string) =>
      mutate(
        sandbox,
        'deleteSpendRule',
        'DeleteSpendRuleInput',
        { spendRuleId },
        '... on SpendRuleContainer { spendRule { __typename id } }',
      );
    expect(await del(ruleId)).toMatchObject({ errors: [{ code: 'SPEND_RULE_IN_USE' }] });
    await mutate(
      sandbox,
      'detachSpendRuleFromPaymentCard',
      'DetachSpendRuleFromPaymentCardInput',
      { paymentCardId: cardId, spendRule: { id: ruleId } },
      '',
    );
    expect(await del(ruleId)).toEqual({
      __typename: 'SpendRuleContainer',
      spendRule: { __typename: 'AmountLimitSpendRule', id: ruleId },
    });
  });
});

describe('velocity rules', () => {
  it('a WEEKLY cumulative limit declines the authorization that would cross it, and counts reversals back', async () => {
    const { cardId } = await fundedCard(sandbox, { loadCents: 100_000 });
    const limitId = await createRule('createAmountLimitSpendRule', { name: '$100 a week', maximumAmount: usd(10_000) });
    const velocity = await mutate(
      sandbox,
      'createVelocityRule',
      'CreateVelocityRuleInput',
      { name: 'Weekly $100', cumulativeRule: { id: limitId, version: 'LATEST' }, velocityRuleWindow: 'WEEKLY' },
      '... on VelocityRule { id velocityRuleWindow cumulativeRule { __typename ... on AmountLimitSpendRule { maximumAmount { value } } } }',
    );
    expect(velocity).toMatchObject({
      velocityRuleWindow: 'WEEKLY',
      cumulativeRule: { __typename: 'AmountLimitSpendRule', maximumAmount: { value: 10_000 } },
    });
    const association = await mutate(
      sandbox,
      'attachPaymentCardVelocityRule',
      'AttachPaymentCardVelocityRuleInput',
      { paymentCardId: cardId, velocityRule: { velocityRuleId: velocity.id } },
      '... on VelocityRuleAssociation { name velocityRule { id } associatedTo { __typename ... on PaymentCard { id } } }',
    );
    expect(association).toMatchObject({ name: 'Weekly $100', associatedTo: { __typename: 'PaymentCard', id: cardId } });

    expect((await authorize(cardId, 6_000)).responseCode).toBe('APPROVED');
    const first = await authorize(cardId, 3_000);
    expect(first.responseCode).toBe('APPROVED');
    const crossing = await authorize(cardId, 1_001);
    expect(crossing.responseCode).toBe('EXCEEDS_APPROVAL_AMOUNT_LIMIT');
    expect(crossing.spendRuleResults.edges[0].node).toMatchObject({
      __typename: 'VelocityRuleResult',
      recommendation: 'BLOCK',
      velocityRule: { id: velocity.id },
    });
    expect((await authorize(cardId, 1_000)).responseCode).toBe('APPROVED');

    await mutate(sandbox, 'simulateReversal', 'SimulateReversalInput', { transactionId: first.transactionId }, '');
    expect((await authorize(cardId, 3_000)).responseCode).toBe('APPROVED');
  });

  it('windows start where the calendar (UTC) says', () => {
    const now = new Date('2026-03-05T15:30:00Z'); // a Thursday
    expect(windowStart('DAILY', now)?.toISOString()).toBe('2026-03-05T00:00:00.000Z');
    expect(windowStart('WEEKLY', now)?.toISOString()).toBe('2026-03-02T00:00:00.000Z');
    expect(windowStart('WEEKLY', new Date('2026-03-08T23:59:59Z'))?.toISOString()).toBe('2026-03-02T00:00:00.000Z');
    expect(windowStart('MONTHLY', now)?.toISOString()).toBe('2026-03-01T00:00:00.000Z');
    expect(windowStart('QUARTERLY', now)?.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(windowStart('YEARLY', now)?.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(windowStart('PER_TRANSACTION', now)).toBeNull();
  });
});

describe('clearing, reversal and refund', () => {
  it('moves AVAILABLE_CASH and the posted CASH balance as a card account would', async () => {
    const { cardId, cardAccountId } = await fundedCard(sandbox, { loadCents: 10_000 });
    expect(await availableCash(sandbox, cardAccountId)).toEqual({ available: 10_000, posted: 10_000 });

    const hold = await authorize(cardId, 4_000);
    expect(hold.currentFinancialAccountAvailableToSpendAmount.value).toBe(6_000);
    expect(await availableCash(sandbox, cardAccountId)).toEqual({ available: 6_000, posted: 10_000 });

    const EVENT = '... on TransactionEvent { responseCode approvedAmount { value } accountingDirection }';
    const cleared = await mutate(
      sandbox,
      'simulateClearing',
      'SimulateClearingInput',
      { transactionId: hold.transactionId, amount: usd(3_500) },
      EVENT,
    );
    expect(cleared).toMatchObject({
      __typename: 'ClearingEvent',
      responseCode: 'APPROVED',
      approvedAmount: { value: 3_500 },
      accountingDirection: 'DEBIT',
    });
    // The clearing settles the authorization: 3,500 posted, the other 500 of the hold released.
    expect(await availableCash(sandbox, cardAccountId)).toEqual({ available: 6_500, posted: 6_500 });

    const twice = await mutate(
      sandbox,
      'simulateClearing',
      'SimulateClearingInput',
      { transactionId: hold.transactionId },
      EVENT,
    );
    expect(twice).toMatchObject({ __typename: 'UserError' });

    const refund = await mutate(
      sandbox,
      'simulateRefund',
      'SimulateRefundInput',
      { transactionId: hold.transactionId, amount: usd(1_000) },
      EVENT,
    );
    expect(refund).toMatchObject({
      __typename: 'ClearingEvent',
      accountingDirection: 'CREDIT',
      approvedAmount: { value: 1_000 },
    });
    expect(await availableCash(sandbox, cardAccountId)).toEqual({ available: 7_500, posted: 7_500 });
    const overRefund = await mutate(
      sandbox,
      'simulateRefund',
      'SimulateRefundInput',
      { transactionId: hold.transactionId, amount: usd(2_501) },
      EVENT,
    );
    expect(overRefund).toMatchObject({ errors: [{ code: 'INVALID_AMOUNT' }] });

    const second = await authorize(cardId, 2_000);
    await mutate(
      sandbox,
      'simulateReversal',
      'SimulateReversalInput',
      { transactionId: second.transactionId, amount: usd(500) },
      EVENT,
    );
    expect(await availableCash(sandbox, cardAccountId)).toEqual({ available: 6_000, posted: 7_500 });
    const rest = await mutate(
      sandbox,
      'simulateReversal',
      'SimulateReversalInput',
      { transactionId: second.transactionId },
      EVENT,
    );
    expect(rest).toMatchObject({ __typename: 'ReversalEvent', approvedAmount: { value: 1_500 } });
    expect(await availableCash(sandbox, cardAccountId)).toEqual({ available: 7_500, posted: 7_500 });

    const transaction = await gql(
      sandbox,
      `query ($id: ID!) { node(id: $id) { ... on DebitTransaction { transactionEvents { __typename } } } }`,
      { id: second.transactionId },
    );
    expect(transaction.node.transactionEvents.map((event: { __typename: string }) => event.__typename)).toEqual([
      'AuthorizationEvent',
      'ReversalEvent',
      'ReversalEvent',
    ]);
  });
});
