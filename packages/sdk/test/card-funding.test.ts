import { Tranche } from '@tranche/sdk';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { highnoteAdapter } from '../../../apps/server/src/issuer/highnote.js';
import { newOrganization, startTestServer, type TestServer } from '../../../apps/server/test/harness.js';
import { cardFunding } from '../../../examples/card-funding.js';
import { type RunningSandbox, startSandbox } from '../../highnote-sandbox/src/index.js';

// examples/card-funding.ts as it is, against the real server, its worker and the local Highnote
// sandbox over HTTP, as `npm start` runs them in the default sandbox mode.

let sandbox: RunningSandbox;
let server: TestServer;
let tranche: Tranche;

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0, applicationApprovalDelayMs: 20, transferSettlementDelayMs: 20 });
  server = await startTestServer({ sandbox });
  tranche = new Tranche({ apiKey: (await newOrganization(server)).apiKey, baseUrl: server.baseUrl });
});

afterAll(async () => {
  await server?.close();
  await sandbox?.close();
});

it('runs the card example: person → approved application → virtual card → $500 milestone → funded card', async () => {
  const { user, application, card, program, userTask, disbursement } = await cardFunding(tranche);

  expect(user.highnoteAccountHolderId).toEqual(expect.any(String));
  expect(JSON.stringify(user)).not.toContain('6789');
  expect(application).toMatchObject({ userId: user.id, status: 'approved' });
  expect(card).toMatchObject({
    userId: user.id,
    applicationId: application.id,
    status: 'active',
    formFactor: 'virtual',
    highnoteFinancialAccountId: application.highnoteFinancialAccountId,
  });
  expect(card.last4).toMatch(/^\d{4}$/);
  // The last four digits only: nothing the size of a card number anywhere in the card.
  expect(JSON.stringify(card)).not.toMatch(/\d{13,19}/);

  expect(userTask).toMatchObject({ programId: program.id, userId: user.id, status: 'funded', completedAmount: 500 });
  expect(disbursement).toMatchObject({
    id: userTask.disbursementId,
    userTaskId: userTask.id,
    status: 'settled',
    amount: 500,
    cardId: card.id,
  });
  expect((await tranche.programs.retrieve(program.id)).balances).toEqual({
    available: 49500,
    reserved: 0,
    disbursing: 0,
    disbursed: 500,
    returned: 0,
  });

  // The card's financial account at Highnote holds exactly the milestone's value, in cents.
  const { highnote } = await tranche.configurations.retrieve();
  const adapter = highnoteAdapter({ graphqlUrl: highnote.graphqlUrl, apiKey: 'sk_test_sdk_suite' });
  const balance = await adapter.availableCashCents(card.highnoteFinancialAccountId);
  if (!balance.ok) throw new Error(balance.failure.message);
  expect(balance.value).toBe(50_000n);
});
