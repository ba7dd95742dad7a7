import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from '../../../packages/highnote-sandbox/src/index.js';
import type { IssuerConnection } from '../src/issuer/graphql.js';
import { type HighnoteAdapter, highnoteAdapter } from '../src/issuer/highnote.js';
import { type HighnoteReconcileClient, highnoteReconcileClient } from '../src/issuer/highnote-reconcile.js';
import { pollUntil } from './harness.js';
import { sandboxCardholder } from './sandbox-cardholder.js';

// The reconciliation reads of the Highnote adapter over real HTTP against the local sandbox: no
// fetch stubs. Pages are two rows, so that a handful of rows crosses several pages.

const apiKey = 'sk_test_issuer_reconcile_suite';
const cardProductId = 'cp_9xWreconcileSuite';
const testLimits = { requestTimeoutMs: 300, maxAttempts: 3, retryBaseDelayMs: 5, retryMaxDelayMs: 20 };
const pageSize = 2;
const depositCents = 100_000n;

let sandbox: RunningSandbox;
let connection: IssuerConnection;
let adapter: HighnoteAdapter;
let reconcile: HighnoteReconcileClient;

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0, applicationApprovalDelayMs: 10, transferSettlementDelayMs: 10 });
  connection = { graphqlUrl: sandbox.graphqlUrl, apiKey, ...testLimits };
  adapter = highnoteAdapter(connection);
  reconcile = highnoteReconcileClient(connection, { pageSize });
});

afterAll(async () => {
  await sandbox.close();
});

beforeEach(async () => {
  await control('/_sandbox/reset', {});
});

async function control(path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${sandbox.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

function unwrap<T>(result: { ok: true; value: T } | { ok: false; failure: { message: string } }): T {
  if (!result.ok) throw new Error(result.failure.message);
  return result.value;
}

/** Loads the card account and waits until Highnote has settled the transfer; answers its id. */
async function load(funding: string, card: string, amountCents: bigint): Promise<string> {
  const started = unwrap(
    await adapter.fundCard({
      fromFinancialAccountId: funding,
      toFinancialAccountId: card,
      amountCents,
      idempotencyKey: randomUUID(),
    }),
  );
  await pollUntil(
    async () => unwrap(await adapter.transfer(started.id)),
    (transfer) => transfer.status !== 'PENDING',
    { deadlineMs: 5_000, intervalMs: 10 },
  );
  return started.id;
}

const eventTypeOf = {
  simulateAuthorization: 'AuthorizationEvent',
  simulateClearing: 'ClearingEvent',
  simulateReversal: 'ReversalEvent',
  simulateRefund: 'ClearingEvent',
} as const;

/** One of the sandbox's simulations (Highnote's Test API has the same), answering the event's ids. */
async function simulate(
  field: keyof typeof eventTypeOf,
  input: Record<string, unknown>,
): Promise<{ id: string; transactionId: string }> {
  const inputType = `${field[0]?.toUpperCase()}${field.slice(1)}Input`;
  const response = await fetch(sandbox.graphqlUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Basic ${Buffer.from(`${apiKey}:`).toString('base64')}`,
    },
    body: JSON.stringify({
      query: `mutation ($input: ${inputType}!) {
        ${field}(input: $input) { __typename ... on ${eventTypeOf[field]} { id transactionId } }
      }`,
      variables: { input },
    }),
  });
  const body = (await response.json()) as { data?: Record<string, { id?: string; transactionId?: string }> };
  const event = body.data?.[field];
  if (event?.id === undefined || event.transactionId === undefined)
    throw new Error(`${field}: ${JSON.stringify(body)}`);
  return { id: event.id, transactionId: event.transactionId };
}

const usd = (cents: number) => ({ value: cents, currencyCode: 'USD' });

describe('transfersOfAccount', () => {
  it('reads every transfer of the funding account across pages, with status, reason, amount and both accounts', async () => {
    const { funding, card } = await sandboxCardholder(sandbox.url, adapter, { cardProductId, depositCents });
    const loads = [await load(funding, card, 1_000n), await load(funding, card, 2_000n), await load(funding, card, 3n)];
    const refused = await load(funding, card, depositCents * 2n);

    const rows = unwrap(await reconcile.transfersOfAccount(funding));
    expect(rows.map((row) => row.id)).toEqual([...loads, refused]);
    expect(rows[0]).toEqual({
      id: loads[0],
      status: 'COMPLETED',
      statusReason: null,
      amountCents: 1_000n,
      fromFinancialAccountId: funding,
      toFinancialAccountId: card,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect(rows[3]).toMatchObject({
      status: 'FAILED',
      statusReason: 'INSUFFICIENT_FUNDS',
      amountCents: depositCents * 2n,
    });
    // The card account is the destination of the same transfers.
    expect(unwrap(await reconcile.transfersOfAccount(card)).map((row) => row.id)).toEqual([...loads, refused]);
  });

  it('narrows by status and by creation time, inclusive of the watermark', async () => {
    const { funding, card } = await sandboxCardholder(sandbox.url, adapter, { cardProductId, depositCents });
    await load(funding, card, 100n);
    const refused = await load(funding, card, depositCents * 2n);
    const later = await load(funding, card, 200n);

    const failed = unwrap(await reconcile.transfersOfAccount(funding, { statuses: ['FAILED'] }));
    expect(failed.map((row) => row.id)).toEqual([refused]);
    const all = unwrap(await reconcile.transfersOfAccount(funding));
    const watermark = new Date(all[1]?.createdAt ?? '');
    const since = unwrap(await reconcile.transfersOfAccount(funding, { createdSince: watermark }));
    expect(since.map((row) => row.id)).toEqual([refused, later]);
    expect(
      unwrap(await reconcile.transfersOfAccount(funding, { createdSince: new Date(Date.now() + 60_000) })),
    ).toEqual([]);
  });
});

describe('transactionEventsOfAccount', () => {
  it('reads authorizations, declines, clearings, refunds and reversals of a card account, in our words', async () => {
    const { funding, card, paymentCardId } = await sandboxCardholder(sandbox.url, adapter, {
      cardProductId,
      depositCents,
      withCard: true,
    });
    await load(funding, card, 10_000n);
    const merchantDetails = { name: 'Corner Shop', category: 'GROCERY_STORES_SUPERMARKETS', merchantId: 'mid-42' };
    const bought = await simulate('simulateAuthorization', {
      cardId: paymentCardId,
      amount: usd(4_000),
      merchantDetails,
    });
    const declined = await simulate('simulateAuthorization', { cardId: paymentCardId, amount: usd(90_000) });
    const cleared = await simulate('simulateClearing', { transactionId: bought.transactionId, amount: usd(3_800) });
    const refunded = await simulate('simulateRefund', { transactionId: bought.transactionId, amount: usd(500) });
    // A pause, so that the watermark below falls strictly after the refund's millisecond.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const held = await simulate('simulateAuthorization', { cardId: paymentCardId, amount: usd(700) });
    const reversed = await simulate('simulateReversal', { transactionId: held.transactionId });

    const events = unwrap(await reconcile.transactionEventsOfAccount(card));
    expect(events.map((event) => [event.id, event.kind, event.amountCents])).toEqual([
      [bought.id, 'authorization_approved', 4_000n],
      [declined.id, 'authorization_declined', 0n],
      [cleared.id, 'clearing', 3_800n],
      [refunded.id, 'refund', 500n],
      [held.id, 'authorization_approved', 700n],
      [reversed.id, 'reversal', 700n],
    ]);
    expect(events[0]).toEqual({
      id: bought.id,
      transactionId: bought.transactionId,
      kind: 'authorization_approved',
      eventType: 'AuthorizationEvent',
      amountCents: 4_000n,
      accountingDirection: 'DEBIT',
      cardId: paymentCardId,
      financialAccountId: card,
      merchant: {
        merchantId: 'mid-42',
        name: 'Corner Shop',
        description: null,
        category: 'GROCERY_STORES_SUPERMARKETS',
        categoryCode: '5411',
        countryCodeAlpha3: null,
      },
      responseCode: 'APPROVED',
      createdAt: expect.any(String),
    });
    expect(events[1]).toMatchObject({ responseCode: 'INSUFFICIENT_FUNDS', transactionId: declined.transactionId });
    expect(events[3]).toMatchObject({ eventType: 'ClearingEvent', accountingDirection: 'CREDIT' });
    expect(events[3]?.merchant?.name).toBe('Corner Shop');
    // Nothing is spent from the funding account itself.
    expect(unwrap(await reconcile.transactionEventsOfAccount(funding))).toEqual([]);
    const later = unwrap(
      await reconcile.transactionEventsOfAccount(card, { createdSince: new Date(events[4]?.createdAt ?? '') }),
    );
    expect(later.map((event) => event.id)).toEqual([held.id, reversed.id]);
  });
});

describe('failures while paging', () => {
  it('retries a page that failed with a 500 and still reads every row once', async () => {
    const { funding, card } = await sandboxCardholder(sandbox.url, adapter, { cardProductId, depositCents });
    const loads = [await load(funding, card, 1n), await load(funding, card, 2n), await load(funding, card, 3n)];
    await control('/_sandbox/faults', { operation: 'node', mode: 'error', count: 1 });
    const rows = unwrap(await reconcile.transfersOfAccount(funding));
    expect(rows.map((row) => row.id)).toEqual(loads);
  });

  it('an issuer that stays down is `unavailable`, not a partial list', async () => {
    const { funding, card } = await sandboxCardholder(sandbox.url, adapter, { cardProductId, depositCents });
    await load(funding, card, 1n);
    await control('/_sandbox/faults', { operation: 'node', mode: 'error', count: testLimits.maxAttempts });
    const answer = await reconcile.transfersOfAccount(funding);
    expect(answer).toMatchObject({ ok: false, failure: { kind: 'unavailable', attempts: testLimits.maxAttempts } });
  });

  it('more rows than the page limit allows is `unexpected`, never a truncated list', async () => {
    const { funding, card } = await sandboxCardholder(sandbox.url, adapter, { cardProductId, depositCents });
    for (const cents of [1n, 2n, 3n]) await load(funding, card, cents);
    const bounded = highnoteReconcileClient(connection, { pageSize: 1, maxPages: 2 });
    const answer = await bounded.transfersOfAccount(funding);
    expect(answer).toMatchObject({ ok: false, failure: { kind: 'unexpected' } });
    if (!answer.ok) expect(answer.failure.message).toMatch(/more than 2 rows/);
  });

  it('an id that is not a financial account is `unexpected`', async () => {
    const { paymentCardId } = await sandboxCardholder(sandbox.url, adapter, {
      cardProductId,
      depositCents,
      withCard: true,
    });
    const notAnAccount = await reconcile.transactionEventsOfAccount(paymentCardId ?? '');
    expect(notAnAccount).toMatchObject({ ok: false, failure: { kind: 'unexpected' } });
    const unknown = await reconcile.transfersOfAccount('sbx_fa_does_not_exist');
    expect(unknown).toMatchObject({ ok: false, failure: { kind: 'unexpected' } });
  });
});
