import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from '../src/index.js';
import { restoreState, serializeState } from '../src/persistence.js';
import { createState } from '../src/store.js';
import { availableCash, fundedCard, gql, mutate, pollUntil, usd } from './helpers.js';

const LONG_DELAY_MS = 60_000;

let directory: string;
let stateFile: string;
const running: RunningSandbox[] = [];

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'highnote-sandbox-state-'));
  stateFile = join(directory, 'nested', 'state.json');
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((sandbox) => sandbox.close()));
  rmSync(directory, { recursive: true, force: true });
});

async function start(delays: { approvalMs?: number; settlementMs?: number } = {}) {
  const sandbox = await startSandbox({
    stateFile,
    stateWriteDelayMs: 10,
    applicationApprovalDelayMs: delays.approvalMs ?? 5,
    transferSettlementDelayMs: delays.settlementMs ?? 5,
  });
  running.push(sandbox);
  return sandbox;
}

async function stop(sandbox: RunningSandbox) {
  running.splice(running.indexOf(sandbox), 1);
  await sandbox.close();
}

async function nodeStatus(sandbox: RunningSandbox, id: string, fragment: string) {
  const data = await gql(sandbox, `query ($id: ID!) { node(id: $id) { ${fragment} } }`, { id });
  return data.node;
}

describe('state file', () => {
  it('round-trips bigint amounts exactly', () => {
    const state = createState();
    state.financialAccounts.set('fa', {
      id: 'fa',
      externalId: 'X',
      name: 'n',
      accountStatus: 'ACTIVE',
      features: ['PREPAID_PAYMENT_CARD'],
      cardProductId: 'cp',
      applicationId: null,
      availableCash: { creditCents: 9_007_199_254_740_993n, debitCents: 1n, heldCents: 0n },
      createdAt: 'c',
      updatedAt: 'u',
    });
    const copy = createState();
    restoreState(copy, serializeState(state), 'memory');
    expect(copy.financialAccounts.get('fa')?.availableCash).toEqual({
      creditCents: 9_007_199_254_740_993n,
      debitCents: 1n,
      heldCents: 0n,
    });
  });

  it('keeps cards, rules, holds and balances across restarts, and finishes what was pending', async () => {
    const first = await start();
    const { cardId, cardAccountId, fundingAccountId, cardProductId } = await fundedCard(first, { loadCents: 10_000 });
    const limit = await mutate(
      first,
      'createAmountLimitSpendRule',
      'CreateAmountLimitSpendRuleInput',
      { name: 'Max $60', maximumAmount: usd(6_000) },
      '... on AmountLimitSpendRule { id }',
    );
    await mutate(
      first,
      'attachSpendRuleToPaymentCard',
      'AttachSpendRuleToPaymentCardInput',
      { paymentCardId: cardId, spendRule: { id: limit.id, version: 'LATEST' } },
      '',
    );
    const hold = await mutate(
      first,
      'simulateAuthorization',
      'SimulateAuthorizationInput',
      { cardId, amount: usd(2_500) },
      '... on AuthorizationEvent { transactionId responseCode }',
    );
    expect(hold.responseCode).toBe('APPROVED');
    // Written after the change, without waiting for close.
    const written = await pollUntil(
      () => (existsSync(stateFile) ? readFileSync(stateFile, 'utf8') : ''),
      (text) => text.includes(hold.transactionId),
    );
    expect(written).toContain('"heldCents":{"$bigint":"2500"}');
    await stop(first);

    // Second life: everything is there; a transfer and an application are left pending at close.
    const second = await start({ approvalMs: LONG_DELAY_MS, settlementMs: LONG_DELAY_MS });
    expect(await availableCash(second, cardAccountId)).toEqual({ available: 7_500, posted: 10_000 });
    expect(
      await nodeStatus(second, cardId, '... on PaymentCard { status attachedSpendRules { edges { node { id } } } }'),
    ).toEqual({
      status: 'ACTIVE',
      attachedSpendRules: { edges: [{ node: { id: limit.id } }] },
    });
    const declined = await mutate(
      second,
      'simulateAuthorization',
      'SimulateAuthorizationInput',
      { cardId, amount: usd(6_001) },
      '... on AuthorizationEvent { responseCode }',
    );
    expect(declined.responseCode).toBe('DO_NOT_HONOR');
    const transfer = await mutate(
      second,
      'initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount',
      'InitiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccountInput',
      {
        fromFinancialAccountId: fundingAccountId,
        toFinancialAccountId: cardAccountId,
        amount: usd(1_000),
        idempotencyKey: randomUUID(),
      },
      '... on InterFinancialAccountTransfer { id status }',
    );
    expect(transfer.status).toBe('PENDING');
    const application = await mutate(
      second,
      'createAccountHolderCardProductApplication',
      'CreateAccountHolderCardProductApplicationInput',
      {
        accountHolderId: 'ach_seeded_holder',
        cardProductId,
        cardHolderAgreementConsent: {
          primaryAuthorizedPersonId: 'ach_seeded_holder',
          consentTimestamp: new Date().toISOString(),
        },
      },
      '... on AccountHolderCardProductApplication { id applicationState { status } }',
    );
    expect(application.applicationState.status).toBe('PENDING');
    await stop(second);

    // Third life: the pending work resumes on its own.
    const third = await start();
    const transferStatus = await pollUntil(
      async () => (await nodeStatus(third, transfer.id, '... on InterFinancialAccountTransfer { status }')).status,
      (status) => status !== 'PENDING',
    );
    expect(transferStatus).toBe('COMPLETED');
    const applicationStatus = await pollUntil(
      async () =>
        (
          await nodeStatus(
            third,
            application.id,
            '... on AccountHolderCardProductApplication { applicationState { status } }',
          )
        ).applicationState.status,
      (status) => status !== 'PENDING',
    );
    expect(applicationStatus).toBe('APPROVED');
    expect(await availableCash(third, cardAccountId)).toEqual({ available: 8_500, posted: 11_000 });
    const cleared = await mutate(
      third,
      'simulateClearing',
      'SimulateClearingInput',
      { transactionId: hold.transactionId },
      '... on ClearingEvent { responseCode }',
    );
    expect(cleared.responseCode).toBe('APPROVED');
    expect(await availableCash(third, cardAccountId)).toEqual({ available: 8_500, posted: 8_500 });
    await stop(third);
    expect(readdirSync(join(directory, 'nested'))).toEqual(['state.json']);
  });

  it('refuses to start from a file that is not sandbox state', async () => {
    const path = join(directory, 'other.json');
    writeFileSync(path, '{"hello": "world"}');
    await expect(startSandbox({ stateFile: path })).rejects.toThrow(/not a highnote-sandbox-state file/);
  });
});
