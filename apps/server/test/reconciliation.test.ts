import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from '../../../packages/highnote-sandbox/src/index.js';
import { performRun } from '../src/reconciliation/run.js';
import { fundedMilestones, participantWithCard, sandboxGraphql, threePurchases } from './card-flow.js';
import { newOrganization, pollUntil, startTestServer, type TestServer } from './harness.js';

// Reconciliation against the sandbox over HTTP: what a run reports, what it repairs, and that it
// never repairs by guessing.

const running: { close(): Promise<void> }[] = [];

afterEach(async () => {
  for (const item of running.splice(0).reverse()) await item.close();
});

/** One sandbox and server for the tests that need nothing special of them (each has its organizations). */
let shared: { sandbox: RunningSandbox; server: TestServer } | undefined;
async function sharedServer() {
  if (shared === undefined) {
    const sandbox = await startSandbox({ port: 0, applicationApprovalDelayMs: 20, transferSettlementDelayMs: 20 });
    const server = await startTestServer({ sandbox });
    shared = { sandbox, server };
  }
  return shared;
}

afterAll(async () => {
  await shared?.server.close();
  await shared?.sandbox.close();
});

async function start(options: { transferSettlementDelayMs?: number; reconciliationIntervalMs?: number } = {}) {
  const sandbox: RunningSandbox = await startSandbox({
    port: 0,
    applicationApprovalDelayMs: 20,
    transferSettlementDelayMs: options.transferSettlementDelayMs ?? 20,
  });
  running.push(sandbox);
  const server: TestServer = await startTestServer({
    sandbox,
    ...(options.reconciliationIntervalMs === undefined
      ? {}
      : { reconciliationIntervalMs: options.reconciliationIntervalMs }),
  });
  running.push(server);
  return { sandbox, server };
}

async function control(sandbox: RunningSandbox, body: unknown) {
  const response = await fetch(`${sandbox.url}/_sandbox/notifications`, { method: 'POST', body: JSON.stringify(body) });
  expect(response.status).toBe(200);
}

type Mismatch = { kind: string; subject: Record<string, string>; repaired: boolean; expected: string; actual: string };

/** A run through the API, waited for while the server's worker performs it. */
async function reconcile(call: Awaited<ReturnType<typeof newOrganization>>['call']) {
  const created = await call('POST', '/v1/reconciliation/runs');
  expect(created.status).toBe(201);
  expect(created.body).toMatchObject({ object: 'reconciliation_run', trigger: 'manual', status: 'queued' });
  const done = await pollUntil(
    () => call('GET', `/v1/reconciliation/runs/${created.body.id}`),
    (answer) => answer.body.status === 'completed' || answer.body.status === 'failed',
    { what: 'the run to complete', deadlineMs: 20_000 },
  );
  expect(done.body.status).toBe('completed');
  return done.body as { id: string; summary: Record<string, number>; mismatches: Mismatch[] };
}

describe('reconciliation runs', () => {
  it('finds nothing to report after clean delivery, spend included', async () => {
    const { sandbox, server } = await sharedServer();
    const org = await newOrganization(server, 'Clean');
    await org.call('GET', '/v1/configurations');
    const participant = await participantWithCard(org.call);
    const program = await org.call('POST', '/v1/programs', { name: 'P', totalAwardPool: 1_000, maxParticipants: 5 });
    await fundedMilestones(org.call, program.body.id, participant.userId, [125, 40.5]);
    await threePurchases(sandbox, participant.paymentCardId);
    await pollUntil(
      () => org.call('GET', `/v1/users/${participant.userId}/spend`),
      (answer) => answer.body.data?.some((spend: { status: string }) => spend.status === 'refunded'),
      { what: 'the refund', deadlineMs: 20_000 },
    );
    const run = await reconcile(org.call);
    expect(run.mismatches).toEqual([]);
    expect(run.summary).toMatchObject({
      disbursementsChecked: 2,
      transfersChecked: 2,
      accountsChecked: 1,
      transactionEventsChecked: 7,
      mismatches: 0,
      repaired: 0,
    });
    const listed = await org.call('GET', '/v1/reconciliation/runs');
    expect(listed.body.data.map((r: { id: string }) => r.id)).toEqual([run.id]);
    const events = await org.call('GET', '/v1/events?limit=5');
    expect(events.body.data[0]).toMatchObject({ type: 'reconciliation.completed' });
  });

  it('records spend whose notifications were all lost, and reports a transfer Tranche did not make', async () => {
    const { sandbox, server } = await sharedServer();
    const org = await newOrganization(server, 'Lost spend');
    const configuration = await org.call('GET', '/v1/configurations');
    const participant = await participantWithCard(org.call);
    const program = await org.call('POST', '/v1/programs', { name: 'P', totalAwardPool: 1_000, maxParticipants: 5 });
    const [first, second] = (await fundedMilestones(org.call, program.body.id, participant.userId, [125, 40.5])) as [
      string,
      string,
    ];
    await control(sandbox, { mode: 'drop' });
    const purchases = await threePurchases(sandbox, participant.paymentCardId);
    // Someone moves $7 to the card outside Tranche.
    const card = await org.call('GET', `/v1/cards/${participant.cardId}`);
    const stray = await sandboxGraphql(
      sandbox,
      `mutation ($input: InitiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccountInput!) {
        initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount(input: $input) {
          __typename ... on InterFinancialAccountTransfer { id }
        }
      }`,
      {
        input: {
          fromFinancialAccountId: configuration.body.highnote.fundingFinancialAccountId,
          toFinancialAccountId: card.body.highnoteFinancialAccountId,
          amount: { value: 700, currencyCode: 'USD' },
          idempotencyKey: randomUUID(),
        },
      },
    );
    const strayId = stray.initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount.id as string;
    expect((await org.call('GET', `/v1/users/${participant.userId}/spend`)).body.data).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the stray transfer settles

    const run = await reconcile(org.call);
    const recovered = run.mismatches.filter((m) => m.kind === 'missing');
    expect(recovered).toHaveLength(7);
    expect(recovered.every((m) => m.repaired)).toBe(true);
    const unknown = run.mismatches.filter((m) => m.kind === 'unknown');
    expect(unknown).toEqual([
      expect.objectContaining({ subject: expect.objectContaining({ highnoteTransferId: strayId }) }),
    ]);
    expect(unknown[0]?.repaired).toBe(false);
    // The card holds $7 more than Tranche put there and the participant spent.
    const balance = run.mismatches.filter((m) => m.kind === 'balance');
    expect(balance, JSON.stringify(run.mismatches, null, 1)).toHaveLength(1);
    expect(balance[0]?.expected).toContain('$25.50');
    expect(balance[0]?.actual).toContain('$32.50');

    const spends = await org.call('GET', `/v1/users/${participant.userId}/spend`);
    const byTransaction = new Map(
      spends.body.data.map((s: { highnoteTransactionId: string }) => [s.highnoteTransactionId, s]),
    );
    expect(byTransaction.get(purchases.groceries)).toMatchObject({ status: 'cleared', amount: 100 });
    expect(byTransaction.get(purchases.boots)).toMatchObject({
      status: 'refunded',
      amount: 40,
      attributions: [
        expect.objectContaining({ userTaskId: first, amount: 25 }),
        expect.objectContaining({ userTaskId: second, amount: 15 }),
      ],
      unattributedAmount: 0,
    });

    // A second run finds the spend recorded; only what a person must look at is reported again.
    const again = await reconcile(org.call);
    expect(again.mismatches.map((m) => m.kind).sort()).toEqual(['balance', 'unknown']);
    expect(again.summary.repaired).toBe(0);
    await control(sandbox, { mode: 'normal' });
  });

  it('settles a disbursement whose transfer completed while its notification was lost', async () => {
    const { sandbox, server } = await start({ transferSettlementDelayMs: 1_500 });
    const org = await newOrganization(server, 'Lost transfer');
    await org.call('GET', '/v1/configurations');
    const participant = await participantWithCard(org.call);
    await control(sandbox, { mode: 'drop' });
    const program = await org.call('POST', '/v1/programs', { name: 'P', totalAwardPool: 1_000, maxParticipants: 5 });
    const assigned = await org.call('POST', '/v1/usertasks', {
      programId: program.body.id,
      userId: participant.userId,
      monetaryValue: 60.25,
    });
    const completed = await org.call('PUT', `/v1/usertasks/${assigned.body.id}/complete`);
    const disbursementId = completed.body.disbursementId as string;
    const processing = await pollUntil(
      () => org.call('GET', `/v1/disbursements/${disbursementId}`),
      (answer) => answer.body.status === 'processing' && answer.body.highnoteTransferId !== null,
      { what: 'the transfer to be initiated', deadlineMs: 20_000 },
    );
    // The worker following the transfer goes away; the notification that would settle it is lost.
    await server.stopWorker();
    const transferId = processing.body.highnoteTransferId as string;
    const issuer = await server.issuers.forOrganization(org.id);
    if (!issuer.ok) throw new Error(issuer.failure.message);
    await pollUntil(
      () => issuer.value.highnote.transfer(transferId),
      (read) => read.ok && read.value.status === 'COMPLETED',
      { what: 'Highnote to complete the transfer', deadlineMs: 20_000 },
    );
    expect((await org.call('GET', `/v1/disbursements/${disbursementId}`)).body.status).toBe('processing');

    // With no worker left, the run is performed here, through the same function the job calls.
    const created = await org.call('POST', '/v1/reconciliation/runs');
    await performRun(server.database.db, server.issuers, org.id, created.body.id);
    const run = await org.call('GET', `/v1/reconciliation/runs/${created.body.id}`);
    expect(run.body.status).toBe('completed');
    expect(run.body.mismatches).toEqual([
      expect.objectContaining({
        kind: 'status',
        subject: { disbursementId, highnoteTransferId: transferId },
        expected: 'settled',
        repaired: true,
      }),
    ]);
    expect((await org.call('GET', `/v1/disbursements/${disbursementId}`)).body).toMatchObject({
      status: 'settled',
      spent: 0,
      remaining: 60.25,
    });
    expect((await org.call('GET', `/v1/usertasks/${assigned.body.id}`)).body.status).toBe('funded');
    const balances = (await org.call('GET', `/v1/programs/${program.body.id}`)).body.balances;
    expect(balances).toMatchObject({ disbursing: 0, disbursed: 60.25 });

    // Performing the same run again changes nothing.
    await performRun(server.database.db, server.issuers, org.id, created.body.id);
    expect((await org.call('GET', `/v1/reconciliation/runs/${created.body.id}`)).body.mismatches).toHaveLength(1);
  });

  it('queues a run for every configured organization on its schedule', async () => {
    const { server } = await start({ reconciliationIntervalMs: 300 });
    const org = await newOrganization(server, 'Scheduled');
    await org.call('GET', '/v1/configurations');
    const unconfigured = await newOrganization(server, 'Not configured');
    const listed = await pollUntil(
      () => org.call('GET', '/v1/reconciliation/runs'),
      (answer) => answer.body.data?.some((run: { status: string }) => run.status === 'completed'),
      { what: 'a scheduled run', deadlineMs: 20_000 },
    );
    expect(listed.body.data[0]).toMatchObject({ trigger: 'scheduled' });
    expect((await unconfigured.call('GET', '/v1/reconciliation/runs')).body.data).toEqual([]);
  });

  it('answers 404 for another organization’s run', async () => {
    const { server } = await sharedServer();
    const one = await newOrganization(server, 'One');
    const other = await newOrganization(server, 'Other');
    await one.call('GET', '/v1/configurations');
    const run = await reconcile(one.call);
    expect((await other.call('GET', `/v1/reconciliation/runs/${run.id}`)).status).toBe(404);
  });
});
