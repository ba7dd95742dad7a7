import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from '../src/index.js';
import { control, type FundedCard, fundedCard, gql, mutate, pollUntil, usd } from './helpers.js';

// What reconciliation reads per financial account: its inter-account transfers and its card
// transaction events, as Highnote's connections with `first`/`after` and `filterBy`.

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

const TRANSFERS_QUERY = `query ($id: ID!, $first: Int, $after: String, $filterBy: InterFinancialAccountTransferFilterInput) {
  node(id: $id) { ... on FinancialAccount {
    interFinancialAccountTransfers(first: $first, after: $after, filterBy: $filterBy) {
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node {
        id status statusReason transferActivityType amount { value currencyCode }
        fromFinancialAccount { id } toFinancialAccount { id } createdAt updatedAt
      } }
    }
  } }
}`;

const EVENTS_QUERY = `query ($id: ID!, $first: Int, $after: String, $filterBy: TransactionEventsFilterInput) {
  node(id: $id) { ... on FinancialAccount {
    transactionEvents(first: $first, after: $after, filterBy: $filterBy) {
      pageInfo { hasNextPage endCursor }
      edges { cursor node {
        __typename id responseCode accountingDirection approvedAmount { value } createdAt
        paymentCard { id }
        transaction { ... on DebitTransaction { id } }
        ... on AuthorizationEvent { merchantDetails { name category categoryCode } }
        ... on ClearingEvent { merchantDetails { name } }
        ... on ReversalEvent { merchantDetails { name } }
      } }
    }
  } }
}`;

async function transfersOf(financialAccountId: string, args: Record<string, unknown> = {}) {
  const data = await gql(sandbox, TRANSFERS_QUERY, { id: financialAccountId, ...args });
  return data.node.interFinancialAccountTransfers;
}

async function eventsOf(financialAccountId: string, args: Record<string, unknown> = {}) {
  const data = await gql(sandbox, EVENTS_QUERY, { id: financialAccountId, ...args });
  return data.node.transactionEvents;
}

/** Starts a load and waits until it settles; answers its id. */
async function load(card: FundedCard, amountCents: number): Promise<string> {
  const transfer = await mutate(
    sandbox,
    'initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount',
    'InitiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccountInput',
    {
      fromFinancialAccountId: card.fundingAccountId,
      toFinancialAccountId: card.cardAccountId,
      amount: usd(amountCents),
      idempotencyKey: randomUUID(),
    },
    '... on InterFinancialAccountTransfer { id }',
  );
  await pollUntil(
    async () =>
      (
        await gql(sandbox, 'query ($id: ID!) { node(id: $id) { ... on InterFinancialAccountTransfer { status } } }', {
          id: transfer.id,
        })
      ).node.status,
    (status) => status !== 'PENDING',
  );
  return transfer.id;
}

async function simulate(field: string, input: Record<string, unknown>, type: string) {
  const event = await mutate(
    sandbox,
    field,
    `${field.replace(/^s/, 'S')}Input`,
    input,
    `... on ${type} { id transactionId }`,
  );
  expect(event.__typename).toBe(type);
  return event as { id: string; transactionId: string };
}

describe('FinancialAccount.interFinancialAccountTransfers', () => {
  it('lists the transfers from or to the account, oldest first, with their status and both accounts', async () => {
    const card = await fundedCard(sandbox, { loadCents: 2_500 });
    const completed = await load(card, 1_000);
    const failed = await load(card, 5_000_000);

    const funding = await transfersOf(card.fundingAccountId);
    expect(funding.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: false });
    expect(funding.edges.map((edge: { node: { id: string } }) => edge.node.id).slice(1)).toEqual([completed, failed]);
    expect(funding.edges).toHaveLength(3);
    expect(funding.edges[1].node).toMatchObject({
      status: 'COMPLETED',
      statusReason: null,
      transferActivityType: 'LOAD_PAYMENT_CARD_ACCOUNT',
      amount: { value: 1_000, currencyCode: 'USD' },
      fromFinancialAccount: { id: card.fundingAccountId },
      toFinancialAccount: { id: card.cardAccountId },
    });
    expect(funding.edges[2].node).toMatchObject({ status: 'FAILED', statusReason: 'INSUFFICIENT_FUNDS' });
    expect(funding.edges[2].cursor).toBe(failed);

    // The card account sees the same transfers (it is their destination); another card account sees none of them.
    expect((await transfersOf(card.cardAccountId)).edges).toHaveLength(3);
    const other = await fundedCard(sandbox);
    expect((await transfersOf(other.cardAccountId)).edges).toEqual([]);
  });

  it('pages with first and after until hasNextPage is false', async () => {
    const card = await fundedCard(sandbox, { loadCents: 100 });
    await load(card, 200);
    await load(card, 300);
    const seen: number[] = [];
    let after: string | null = null;
    for (let page = 0; page < 5; page += 1) {
      const connection = await transfersOf(card.fundingAccountId, { first: 2, after });
      seen.push(...connection.edges.map((edge: { node: { amount: { value: number } } }) => edge.node.amount.value));
      if (!connection.pageInfo.hasNextPage) break;
      after = connection.pageInfo.endCursor;
    }
    expect(seen).toEqual([100, 200, 300]);
    const second = await transfersOf(card.fundingAccountId, { first: 2, after: null });
    expect(second.pageInfo).toMatchObject({ hasNextPage: true, endCursor: second.edges[1].cursor });
  });

  it('filters by status, activity type and creation time', async () => {
    const card = await fundedCard(sandbox, { loadCents: 100 });
    const failed = await load(card, 5_000_000);
    const failedOnly = await transfersOf(card.fundingAccountId, { filterBy: { status: { includes: ['FAILED'] } } });
    expect(failedOnly.edges.map((edge: { node: { id: string } }) => edge.node.id)).toEqual([failed]);
    const notFailed = await transfersOf(card.fundingAccountId, { filterBy: { status: { notEquals: 'FAILED' } } });
    expect(notFailed.edges).toHaveLength(1);
    const general = await transfersOf(card.fundingAccountId, {
      filterBy: { transferActivityType: { equals: 'GENERAL' } },
    });
    expect(general.edges).toEqual([]);

    const all = await transfersOf(card.fundingAccountId);
    const failedAt = all.edges[1].node.createdAt as string;
    const since = await transfersOf(card.fundingAccountId, {
      filterBy: { createdAt: { greaterThanOrEquals: failedAt } },
    });
    expect(since.edges.map((edge: { node: { id: string } }) => edge.node.id)).toEqual([failed]);
    const before = await transfersOf(card.fundingAccountId, { filterBy: { createdAt: { lessThan: failedAt } } });
    expect(before.edges).toHaveLength(1);
  });

  it('refuses a filter value Highnote does not have', async () => {
    const response = await fetch(sandbox.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from('key:').toString('base64')}` },
      body: JSON.stringify({
        query: TRANSFERS_QUERY,
        variables: { id: 'x', filterBy: { status: { equals: 'SETTLED' } } },
      }),
    });
    expect(response.status).toBe(400);
  });
});

describe('FinancialAccount.transactionEvents', () => {
  it('lists authorizations, declines, clearings, refunds and reversals of the account, oldest first', async () => {
    const card = await fundedCard(sandbox, { loadCents: 10_000 });
    const merchantDetails = { name: 'Corner Shop', category: 'GROCERY_STORES_SUPERMARKETS' };
    const bought = await simulate(
      'simulateAuthorization',
      { cardId: card.cardId, amount: usd(4_000), merchantDetails },
      'AuthorizationEvent',
    );
    const declined = await simulate(
      'simulateAuthorization',
      { cardId: card.cardId, amount: usd(50_000), merchantDetails },
      'AuthorizationEvent',
    );
    const cleared = await simulate('simulateClearing', { transactionId: bought.transactionId }, 'ClearingEvent');
    const refunded = await simulate(
      'simulateRefund',
      { transactionId: bought.transactionId, amount: usd(1_500) },
      'ClearingEvent',
    );
    const held = await simulate(
      'simulateAuthorization',
      { cardId: card.cardId, amount: usd(700) },
      'AuthorizationEvent',
    );
    const reversed = await simulate('simulateReversal', { transactionId: held.transactionId }, 'ReversalEvent');

    const events = await eventsOf(card.cardAccountId);
    expect(events.pageInfo.hasNextPage).toBe(false);
    const nodes = events.edges.map((edge: { node: unknown }) => edge.node);
    expect(nodes.map((node: { id: string }) => node.id)).toEqual([
      bought.id,
      declined.id,
      cleared.id,
      refunded.id,
      held.id,
      reversed.id,
    ]);
    expect(nodes[0]).toMatchObject({
      __typename: 'AuthorizationEvent',
      responseCode: 'APPROVED',
      accountingDirection: 'DEBIT',
      approvedAmount: { value: 4_000 },
      paymentCard: { id: card.cardId },
      transaction: { id: bought.transactionId },
      merchantDetails: { name: 'Corner Shop', category: 'GROCERY_STORES_SUPERMARKETS', categoryCode: '5411' },
    });
    expect(nodes[1]).toMatchObject({ responseCode: 'INSUFFICIENT_FUNDS', approvedAmount: { value: 0 } });
    expect(nodes[2]).toMatchObject({ __typename: 'ClearingEvent', accountingDirection: 'DEBIT' });
    expect(nodes[3]).toMatchObject({
      __typename: 'ClearingEvent',
      accountingDirection: 'CREDIT',
      approvedAmount: { value: 1_500 },
      merchantDetails: { name: 'Corner Shop' },
    });
    expect(nodes[5]).toMatchObject({ __typename: 'ReversalEvent', approvedAmount: { value: 700 } });

    // The funding account has no card transactions, and another card's account does not see these.
    expect((await eventsOf(card.fundingAccountId)).edges).toEqual([]);
    const other = await fundedCard(sandbox);
    expect((await eventsOf(other.cardAccountId)).edges).toEqual([]);
  });

  it('pages, and filters by event type, response code, card, transaction and time', async () => {
    const card = await fundedCard(sandbox, { loadCents: 10_000 });
    const first = await simulate(
      'simulateAuthorization',
      { cardId: card.cardId, amount: usd(100) },
      'AuthorizationEvent',
    );
    await simulate('simulateClearing', { transactionId: first.transactionId }, 'ClearingEvent');
    const second = await simulate(
      'simulateAuthorization',
      { cardId: card.cardId, amount: usd(900_000) },
      'AuthorizationEvent',
    );

    const page = await eventsOf(card.cardAccountId, { first: 2 });
    expect(page.edges).toHaveLength(2);
    expect(page.pageInfo.hasNextPage).toBe(true);
    const rest = await eventsOf(card.cardAccountId, { first: 2, after: page.pageInfo.endCursor });
    expect(rest.edges.map((edge: { node: { id: string } }) => edge.node.id)).toEqual([second.id]);
    expect(rest.pageInfo.hasNextPage).toBe(false);

    const ids = async (filterBy: Record<string, unknown>) =>
      (await eventsOf(card.cardAccountId, { filterBy })).edges.map((edge: { node: { id: string } }) => edge.node.id);
    expect(await ids({ eventType: { equals: 'CLEARING_EVENT' } })).toHaveLength(1);
    expect(await ids({ eventType: { excludes: ['CLEARING_EVENT'] } })).toEqual([first.id, second.id]);
    expect(await ids({ responseCode: { notEquals: 'APPROVED' } })).toEqual([second.id]);
    expect(await ids({ transactionId: { equals: first.transactionId } })).toHaveLength(2);
    expect(await ids({ paymentCardId: { equals: card.cardId } })).toHaveLength(3);
    expect(await ids({ paymentCardId: { equals: 'sbx_pc_other' } })).toEqual([]);
    expect(await ids({ createdAt: { greaterThan: '2999-01-01T00:00:00Z' } })).toEqual([]);
  });
});
