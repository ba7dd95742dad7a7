import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from '../../../packages/highnote-sandbox/src/index.js';
import type { IssuerConnection } from '../src/issuer/graphql.js';
import { centsOf, type HighnoteAdapter, highnoteAdapter } from '../src/issuer/highnote.js';
import { pollUntil } from './harness.js';
import { sandboxCardholder } from './sandbox-cardholder.js';

// The Highnote adapter over real HTTP against the local sandbox: no fetch stubs. Faults are the
// sandbox's own (`/_sandbox/faults`): a 500, a lost answer, a user error, a hang.

const apiKey = 'sk_test_issuer_suite';
const cardProductId = 'cp_9xWissuerSuite';
/** Short limits, so that the retry and timeout cases take milliseconds. */
const testLimits = { requestTimeoutMs: 300, maxAttempts: 3, retryBaseDelayMs: 5, retryMaxDelayMs: 20 };
const pollIntervalMs = 10;
const pollDeadlineMs = 5_000;
const depositCents = 100_000;

let sandbox: RunningSandbox;
let connection: IssuerConnection;
let adapter: HighnoteAdapter;

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0, applicationApprovalDelayMs: 10, transferSettlementDelayMs: 10 });
  connection = { graphqlUrl: sandbox.graphqlUrl, apiKey, ...testLimits };
  adapter = highnoteAdapter(connection);
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

const until = <T>(read: () => Promise<T>, done: (value: T) => boolean) =>
  pollUntil(read, done, { deadlineMs: pollDeadlineMs, intervalMs: pollIntervalMs });

/** A product funding account with `depositCents` in it, and an approved cardholder's financial account. */
async function fundedAccounts(): Promise<{ funding: string; card: string }> {
  return sandboxCardholder(sandbox.url, adapter, { cardProductId, depositCents: BigInt(depositCents) });
}

async function settledTransfer(id: string) {
  return until(
    async () => {
      const read = await adapter.transfer(id);
      if (!read.ok) throw new Error(read.failure.message);
      return read.value;
    },
    (transfer) => transfer.status !== 'PENDING',
  );
}

describe('the Highnote adapter against the sandbox', () => {
  it('pings, and a refused key is `unauthorized`, not retried', async () => {
    expect(await adapter.ping()).toMatchObject({ ok: true, value: 'pong' });
    const refused = await highnoteAdapter({ ...connection, apiKey: '' }).ping();
    expect(refused).toMatchObject({ ok: false, failure: { kind: 'unauthorized', attempts: 1 } });
  });

  it('funds a card: the transfer goes PENDING → COMPLETED and the card account holds exactly the amount', async () => {
    const { funding, card } = await fundedAccounts();
    const started = await adapter.fundCard({
      fromFinancialAccountId: funding,
      toFinancialAccountId: card,
      amountCents: 12_345n,
      idempotencyKey: randomUUID(),
    });
    expect(started).toMatchObject({ ok: true, value: { status: 'PENDING', amountCents: 12_345n } });
    if (!started.ok) return;
    expect(await settledTransfer(started.value.id)).toMatchObject({ status: 'COMPLETED', statusReasonCode: null });
    expect(await adapter.availableCashCents(card)).toMatchObject({ ok: true, value: 12_345n });
    expect(await adapter.availableCashCents(funding)).toMatchObject({
      ok: true,
      value: BigInt(depositCents) - 12_345n,
    });
  });

  it('a transfer the funding account cannot cover fails with Highnote’s reason code', async () => {
    const { funding, card } = await fundedAccounts();
    const started = await adapter.fundCard({
      fromFinancialAccountId: funding,
      toFinancialAccountId: card,
      amountCents: BigInt(depositCents) + 1n,
      idempotencyKey: randomUUID(),
    });
    if (!started.ok) throw new Error(started.failure.message);
    expect(await settledTransfer(started.value.id)).toMatchObject({
      status: 'FAILED',
      statusReasonCode: 'INSUFFICIENT_FUNDS',
    });
    expect(await adapter.availableCashCents(card)).toMatchObject({ ok: true, value: 0n });
  });

  it('retries a 500 with the same idempotency key and moves the money once', async () => {
    const { funding, card } = await fundedAccounts();
    await control('/_sandbox/faults', {
      operation: 'initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount',
      mode: 'error',
      count: 2,
    });
    const started = await adapter.fundCard({
      fromFinancialAccountId: funding,
      toFinancialAccountId: card,
      amountCents: 500n,
      idempotencyKey: randomUUID(),
    });
    expect(started).toMatchObject({ ok: true, value: { status: 'PENDING' } });
    if (!started.ok) return;
    await settledTransfer(started.value.id);
    expect(await adapter.availableCashCents(card)).toMatchObject({ ok: true, value: 500n });
  });

  it('a lost answer is retried with the same key: Highnote returns the same transfer, paid once', async () => {
    const { funding, card } = await fundedAccounts();
    await control('/_sandbox/faults', {
      operation: 'initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount',
      mode: 'lost_response',
      count: 1,
    });
    const idempotencyKey = randomUUID();
    const started = await adapter.fundCard({
      fromFinancialAccountId: funding,
      toFinancialAccountId: card,
      amountCents: 700n,
      idempotencyKey,
    });
    if (!started.ok) throw new Error(started.failure.message);
    await settledTransfer(started.value.id);
    // Asked again later with the same key (a worker that crashed before storing the answer).
    const again = await adapter.fundCard({
      fromFinancialAccountId: funding,
      toFinancialAccountId: card,
      amountCents: 700n,
      idempotencyKey,
    });
    expect(again).toMatchObject({ ok: true, value: { id: started.value.id } });
    expect(await adapter.availableCashCents(card)).toMatchObject({ ok: true, value: 700n });
  });

  it('a user error is `rejected` with its field errors and is not retried', async () => {
    const { funding, card } = await fundedAccounts();
    await control('/_sandbox/faults', {
      operation: 'initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount',
      mode: 'user_error',
      count: 1,
    });
    const refused = await adapter.fundCard({
      fromFinancialAccountId: funding,
      toFinancialAccountId: card,
      amountCents: 100n,
      idempotencyKey: randomUUID(),
    });
    expect(refused).toMatchObject({ ok: false, failure: { kind: 'rejected', attempts: 1 } });
    if (refused.ok || refused.failure.kind !== 'rejected') return;
    expect(refused.failure.errors.length).toBeGreaterThan(0);
    expect(await adapter.availableCashCents(card)).toMatchObject({ ok: true, value: 0n });
  });

  it('an issuer that does not answer is a `timeout` after the attempts allowed', async () => {
    await control('/_sandbox/faults', { operation: 'ping', mode: 'timeout', count: testLimits.maxAttempts });
    const started = Date.now();
    const answer = await adapter.ping();
    expect(answer).toMatchObject({ ok: false, failure: { kind: 'timeout', attempts: testLimits.maxAttempts } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(testLimits.requestTimeoutMs * testLimits.maxAttempts);
  });

  it('turns Highnote money into cents exactly, and refuses what is not whole cents or not USD', () => {
    expect(centsOf({ value: 1099, currencyCode: 'USD' })).toBe(1099n);
    expect(centsOf({ value: '123400', currencyCode: 'USD', decimalPlaces: 4 })).toBe(1234n);
    expect(() => centsOf({ value: 123_456, currencyCode: 'USD', decimalPlaces: 4 })).toThrow(/whole cents/);
    expect(() => centsOf({ value: 100, currencyCode: 'EUR' })).toThrow(/EUR/);
  });
});
