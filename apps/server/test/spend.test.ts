import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from '../../../packages/highnote-sandbox/src/index.js';
import { attribute, deriveSpend } from '../src/spend/spend.js';
import { authorize, fundedMilestones, participantWithCard, threePurchases } from './card-flow.js';
import { newOrganization, pollUntil, startTestServer, type TestServer } from './harness.js';

// Every card dollar ties to a milestone: spend Highnote reports is attributed first-in-first-out
// to the disbursements that funded the card.

let sandbox: RunningSandbox;
let server: TestServer;

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0, applicationApprovalDelayMs: 20, transferSettlementDelayMs: 20 });
  server = await startTestServer({ sandbox });
});

afterAll(async () => {
  await server?.close();
  await sandbox?.close();
});

type SpendBody = {
  id: string;
  status: string;
  amount: number;
  highnoteTransactionId: string;
  merchant: { name: string | null };
  attributions: { disbursementId: string; userTaskId: string; programId: string; amount: number }[];
  unattributedAmount: number;
};

describe('spend attribution', () => {
  it('shows which milestone each dollar spent on a card funded by two milestones came from', async () => {
    const org = await newOrganization(server, 'Spend');
    const { call } = org;
    await call('GET', '/v1/configurations');
    const participant = await participantWithCard(call);
    const program = await call('POST', '/v1/programs', { name: 'Forklift', totalAwardPool: 1_000, maxParticipants: 5 });
    const [first, second] = (await fundedMilestones(call, program.body.id, participant.userId, [125, 40.5])) as [
      string,
      string,
    ];
    const purchases = await threePurchases(sandbox, participant.paymentCardId);

    const listed = await pollUntil(
      () => call('GET', `/v1/users/${participant.userId}/spend`),
      (answer) =>
        answer.body.data?.length === 3 &&
        answer.body.data.every((spend: SpendBody) => ['cleared', 'reversed', 'refunded'].includes(spend.status)) &&
        answer.body.data.find((spend: SpendBody) => spend.highnoteTransactionId === purchases.boots)?.status ===
          'refunded',
      { what: 'three settled spends', deadlineMs: 20_000 },
    );
    expect(listed.status).toBe(200);
    const byTransaction = new Map<string, SpendBody>(
      listed.body.data.map((spend: SpendBody) => [spend.highnoteTransactionId, spend]),
    );
    const disbursements = await call('GET', `/v1/disbursements?userId=${participant.userId}`);
    const disbursementOf = (userTaskId: string) =>
      disbursements.body.data.find((d: { userTaskId: string }) => d.userTaskId === userTaskId);
    const [d1, d2] = [disbursementOf(first), disbursementOf(second)];

    const groceries = byTransaction.get(purchases.groceries) as SpendBody;
    expect(groceries).toMatchObject({ status: 'cleared', amount: 100, merchant: { name: 'CORNER GROCERY' } });
    expect(groceries.attributions).toEqual([
      { disbursementId: d1.id, userTaskId: first, programId: program.body.id, amount: 100 },
    ]);
    expect(byTransaction.get(purchases.hotel)).toMatchObject({ status: 'reversed', amount: 0, attributions: [] });
    // $60 cleared, $20 refunded: $40, of which the first milestone's last $25 and $15 of the second's.
    const boots = byTransaction.get(purchases.boots) as SpendBody;
    expect(boots).toMatchObject({ status: 'refunded', amount: 40, unattributedAmount: 0 });
    expect(boots.attributions).toEqual([
      { disbursementId: d1.id, userTaskId: first, programId: program.body.id, amount: 25 },
      { disbursementId: d2.id, userTaskId: second, programId: program.body.id, amount: 15 },
    ]);

    expect(d1).toMatchObject({ status: 'settled', amount: 125, spent: 125, remaining: 0 });
    expect(d2).toMatchObject({ status: 'settled', amount: 40.5, spent: 15, remaining: 25.5 });
    const single = await call('GET', `/v1/disbursements/${d2.id}`);
    expect(single.body).toMatchObject({ spent: 15, remaining: 25.5 });

    // The program's view lists the spends its milestones paid for: not the reversed one.
    const programSpend = await call('GET', `/v1/programs/${program.body.id}/spend`);
    expect(programSpend.status).toBe(200);
    expect(programSpend.body.data.map((spend: SpendBody) => spend.highnoteTransactionId).sort()).toEqual(
      [purchases.groceries, purchases.boots].sort(),
    );

    // Each transaction event was announced once, as the partner webhooks will carry it.
    const events = await call('GET', '/v1/events?limit=100');
    const counts: Record<string, number> = {};
    for (const event of events.body.data) {
      if (event.type.startsWith('spend.')) counts[event.type] = (counts[event.type] ?? 0) + 1;
    }
    expect(counts).toEqual({ 'spend.authorized': 3, 'spend.cleared': 2, 'spend.reversed': 1, 'spend.refunded': 1 });

    // The card account holds what was funded minus what was spent.
    const card = await call('GET', `/v1/cards/${participant.cardId}`);
    expect(card.status).toBe(200);

    // Pages of one.
    const firstPage = await call('GET', `/v1/users/${participant.userId}/spend?limit=1`);
    expect(firstPage.body.data).toHaveLength(1);
    expect(firstPage.body.hasMore).toBe(true);
    const secondPage = await call(
      'GET',
      `/v1/users/${participant.userId}/spend?limit=1&cursor=${encodeURIComponent(firstPage.body.nextCursor)}`,
    );
    expect(secondPage.body.data[0].id).not.toBe(firstPage.body.data[0].id);
  });

  it('records a declined authorization as a declined spend that draws on nothing', async () => {
    const org = await newOrganization(server, 'Declined');
    await org.call('GET', '/v1/configurations');
    const participant = await participantWithCard(org.call);
    const program = await org.call('POST', '/v1/programs', { name: 'P', totalAwardPool: 100, maxParticipants: 5 });
    await fundedMilestones(org.call, program.body.id, participant.userId, [10]);
    const declined = await authorize(sandbox, participant.paymentCardId, 500, 'BIG TV STORE');
    expect(declined.responseCode).toBe('INSUFFICIENT_FUNDS');
    const listed = await pollUntil(
      () => org.call('GET', `/v1/users/${participant.userId}/spend`),
      (answer) => answer.body.data?.length === 1,
      { what: 'the declined spend', deadlineMs: 20_000 },
    );
    expect(listed.body.data[0]).toMatchObject({ status: 'declined', amount: 0, attributions: [] });
  });

  it('answers 404 for another organization’s user or program', async () => {
    const one = await newOrganization(server, 'One');
    const other = await newOrganization(server, 'Other');
    const user = await one.call('POST', '/v1/users', { firstName: 'A', lastName: 'B' });
    const program = await one.call('POST', '/v1/programs', { name: 'P', totalAwardPool: 100, maxParticipants: 5 });
    expect((await other.call('GET', `/v1/users/${user.body.id}/spend`)).status).toBe(404);
    expect((await other.call('GET', `/v1/programs/${program.body.id}/spend`)).status).toBe(404);
    expect((await one.call('GET', `/v1/users/${user.body.id}/spend`)).body.data).toEqual([]);
  });
});

describe('the attribution rules', () => {
  const sums = (values: Partial<Parameters<typeof deriveSpend>[0]>) => ({
    authorization_approved: 0n,
    authorization_declined: 0n,
    reversal: 0n,
    clearing: 0n,
    refund: 0n,
    ...values,
  });

  it('derives status and amount from the events whatever their order', () => {
    expect(deriveSpend(sums({ authorization_approved: 5000n }))).toEqual({ status: 'authorized', amountCents: 5000n });
    expect(deriveSpend(sums({ authorization_approved: 5000n, reversal: 2000n }))).toEqual({
      status: 'authorized',
      amountCents: 3000n,
    });
    expect(deriveSpend(sums({ authorization_approved: 5000n, reversal: 5000n }))).toEqual({
      status: 'reversed',
      amountCents: 0n,
    });
    // A clearing without its authorization yet (reverse arrival) is already what it will be.
    expect(deriveSpend(sums({ clearing: 4500n }))).toEqual({ status: 'cleared', amountCents: 4500n });
    expect(deriveSpend(sums({ authorization_approved: 5000n, clearing: 4500n }))).toEqual({
      status: 'cleared',
      amountCents: 4500n,
    });
    expect(deriveSpend(sums({ authorization_approved: 5000n, clearing: 5000n, refund: 5000n }))).toEqual({
      status: 'refunded',
      amountCents: 0n,
    });
    expect(deriveSpend(sums({ authorization_declined: 900n }))).toEqual({ status: 'declined', amountCents: 0n });
  });

  it('draws first-in-first-out and reports what no disbursement covered', () => {
    const spend = (id: string, amountCents: bigint) => ({
      id,
      userId: 'usr_1',
      cardId: 'card_1',
      financialAccountId: 'fa_1',
      highnoteTransactionId: `txn_${id}`,
      status: 'cleared' as const,
      amountCents,
      authorizedCents: amountCents,
      reversedCents: 0n,
      clearedCents: amountCents,
      refundedCents: 0n,
      merchant: { name: null, category: null, categoryCode: null, merchantId: null, country: null },
      occurredAt: new Date(0),
      lastEventAt: new Date(0),
    });
    const funding = (id: string, amountCents: bigint) => ({
      id,
      userTaskId: `ut_${id}`,
      programId: 'prg_1',
      financialAccountId: 'fa_1',
      amountCents,
    });
    const result = attribute(
      [spend('a', 700n), spend('b', 0n), spend('c', 800n), spend('d', 600n)],
      [funding('d1', 1000n), funding('d2', 500n)],
    );
    expect(result.attributions.get('a')?.map((a) => [a.disbursementId, a.amountCents])).toEqual([['d1', 700n]]);
    expect(result.attributions.get('b')).toEqual([]);
    expect(result.attributions.get('c')?.map((a) => [a.disbursementId, a.amountCents])).toEqual([
      ['d1', 300n],
      ['d2', 500n],
    ]);
    expect(result.attributions.get('d')).toEqual([]);
    expect(result.unattributed.get('d')).toBe(600n);
    expect(result.spent).toEqual(
      new Map([
        ['d1', 1000n],
        ['d2', 500n],
      ]),
    );
  });
});
