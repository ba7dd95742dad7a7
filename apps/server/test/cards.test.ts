import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from '../../../packages/highnote-sandbox/src/index.js';
import { secretLogPaths } from '../src/app.js';
import { highnoteAdapter } from '../src/issuer/highnote.js';
import { type Client, newOrganization, pollUntil, startTestServer, type TestServer } from './harness.js';

// The whole card flow through the real HTTP server, its worker and the local Highnote sandbox over
// HTTP: account holder from person details, application, card, and funding on completion.

const pollDeadlineMs = 15_000;
const ssn = '123-45-6789';

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

const until = <T>(read: () => Promise<T>, done: (value: T) => boolean, what: string) =>
  pollUntil(read, done, { what, deadlineMs: pollDeadlineMs });

async function control(path: string, body: unknown) {
  const response = await fetch(`${sandbox.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, string>;
}

const person = (overrides: Record<string, unknown> = {}) => ({
  firstName: 'Ada',
  lastName: 'Lovelace',
  email: 'ada@example.com',
  phoneNumber: '+14155550100',
  dateOfBirth: '1990-12-10',
  address: { line1: '123 Main St', city: 'San Francisco', state: 'CA', postalCode: '94105', country: 'USA' },
  ssn,
  ...overrides,
});

/** A participant with an approved application and a virtual card. */
async function cardholder(call: Client, overrides: Record<string, unknown> = {}) {
  const user = await call('POST', '/v1/users', person(overrides), { 'Idempotency-Key': `user-${Math.random()}` });
  expect(user.status).toBe(201);
  const application = await call('POST', '/v1/applications', {
    userId: user.body.id,
    consent: { acceptedAt: '2026-11-25T10:00:00.000Z', ipAddress: '203.0.113.7' },
  });
  expect(application.status).toBe(201);
  const approved = await until(
    () => call('GET', `/v1/applications/${application.body.id}`),
    (answer) => answer.body.status === 'approved',
    'the application to be approved',
  );
  expect(approved.body.highnoteFinancialAccountId).toEqual(expect.any(String));
  const card = await call('POST', '/v1/cards', { userId: user.body.id, formFactor: 'virtual' });
  expect(card.status).toBe(201);
  return { user: user.body, application: approved.body, card: card.body };
}

async function completedTask(call: Client, userId: string, value: number) {
  const program = await call('POST', '/v1/programs', {
    name: 'OSHA completion funding',
    totalAwardPool: 50_000,
    maxParticipants: 100,
  });
  expect(program.status).toBe(201);
  const assigned = await call('POST', '/v1/usertasks', { programId: program.body.id, userId, monetaryValue: value });
  expect(assigned.status).toBe(201);
  const completed = await call('PUT', `/v1/usertasks/${assigned.body.id}/complete`);
  expect(completed.status).toBe(200);
  return { program: program.body, userTask: completed.body };
}

async function cardBalanceCents(call: Client, financialAccountId: string): Promise<bigint> {
  const configuration = await call('GET', '/v1/configurations');
  const adapter = highnoteAdapter({ graphqlUrl: configuration.body.highnote.graphqlUrl, apiKey: 'sk_test_suite' });
  const balance = await adapter.availableCashCents(financialAccountId);
  if (!balance.ok) throw new Error(balance.failure.message);
  return balance.value;
}

describe('cards and funding through the sandbox', () => {
  it('configures an organization on first use, with the funding balance beside the commitments', async () => {
    const { call } = await newOrganization(server);
    const configuration = await call('GET', '/v1/configurations');
    expect(configuration.status).toBe(200);
    expect(configuration.body.highnote).toMatchObject({
      environment: 'sandbox',
      fundingBalance: 1_000_000,
      commitments: { reserved: 0, inTransit: 0, total: 0 },
      warnings: [],
    });
    expect(configuration.body.highnote.cardProductId).toEqual(expect.any(String));
  });

  it('runs participant → application → card → completion → funded, with the card holding exactly the value', async () => {
    const { call } = await newOrganization(server);
    const { user, card } = await cardholder(call);
    expect(user.highnoteAccountHolderId).toEqual(expect.any(String));
    expect(JSON.stringify(user)).not.toContain('6789');
    expect(card).toMatchObject({ status: 'active', formFactor: 'virtual', last4: expect.stringMatching(/^\d{4}$/) });
    expect(JSON.stringify(card)).not.toMatch(/\d{13,19}/);

    const { program, userTask } = await completedTask(call, user.id, 500);
    const funded = await until(
      () => call('GET', `/v1/usertasks/${userTask.id}`),
      (answer) => answer.body.status === 'funded',
      'the user task to be funded',
    );
    const disbursement = await call('GET', `/v1/disbursements/${funded.body.disbursementId}`);
    expect(disbursement.body).toMatchObject({ status: 'settled', amount: 500, cardId: card.id, attempt: 1 });
    expect(disbursement.body.highnoteTransferId).toEqual(expect.any(String));
    expect(await cardBalanceCents(call, card.highnoteFinancialAccountId)).toBe(50_000n);
    const balances = (await call('GET', `/v1/programs/${program.id}`)).body.balances;
    expect(balances).toMatchObject({ available: 49_500, reserved: 0, disbursing: 0, disbursed: 500 });

    const types = (await call('GET', '/v1/events?limit=100')).body.data.map((event: { type: string }) => event.type);
    for (const type of [
      'application.created',
      'application.approved',
      'card.created',
      'disbursement.processing',
      'disbursement.settled',
      'usertask.funded',
    ]) {
      expect(types).toContain(type);
    }
    // The SSN is nowhere in the database: not in the user, not in an event, not in a job.
    for (const table of ['users', 'events', 'jobs', 'idempotency_keys', 'issuer_requests']) {
      const rows = await server.database.db
        .selectFrom(table as 'users')
        .selectAll()
        .execute();
      expect(JSON.stringify(rows, (_key, value) => (typeof value === 'bigint' ? String(value) : value))).not.toContain(
        '6789',
      );
    }
  });

  it('keeps a completion waiting for a card, and funds it once the card is issued', async () => {
    const { call } = await newOrganization(server);
    const user = await call('POST', '/v1/users', person());
    const { userTask } = await completedTask(call, user.body.id, 125.5);
    const waiting = await until(
      () => call('GET', `/v1/disbursements?userTaskId=${userTask.id}`),
      (answer) => answer.body.data[0]?.status === 'awaiting_card',
      'the disbursement to wait for a card',
    );
    expect(waiting.body.data[0].amount).toBe(125.5);
    const application = await call('POST', '/v1/applications', {
      userId: user.body.id,
      consent: { acceptedAt: '2026-11-25T10:00:00.000Z' },
    });
    await until(
      () => call('GET', `/v1/applications/${application.body.id}`),
      (answer) => answer.body.status === 'approved',
      'approval',
    );
    const card = await call('POST', '/v1/cards', { userId: user.body.id, formFactor: 'virtual' });
    expect(card.status).toBe(201);
    await until(
      () => call('GET', `/v1/usertasks/${userTask.id}`),
      (answer) => answer.body.status === 'funded',
      'funding after the card',
    );
    expect(await cardBalanceCents(call, card.body.highnoteFinancialAccountId)).toBe(12_550n);
  });

  it('pays each completion exactly once when Highnote fails or loses the answers of the next transfers', async () => {
    const { call } = await newOrganization(server);
    const { user, card } = await cardholder(call);
    const operation = 'initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount';
    await control('/_sandbox/faults', { operation, mode: 'lost_response', count: 2 });
    await control('/_sandbox/faults', { operation, mode: 'error', count: 3 });
    const values = [10, 20.25, 30];
    const tasks = [];
    for (const value of values) tasks.push((await completedTask(call, user.id, value)).userTask);
    for (const task of tasks) {
      await until(
        () => call('GET', `/v1/usertasks/${task.id}`),
        (answer) => answer.body.status === 'funded',
        'funding',
      );
    }
    expect(await cardBalanceCents(call, card.highnoteFinancialAccountId)).toBe(6_025n);
  });

  it('denies a FORCE-DECLINE applicant, and refuses a card without an approved application', async () => {
    const { call } = await newOrganization(server);
    const user = await call('POST', '/v1/users', person({ firstName: 'FORCE-DECLINE' }));
    const application = await call('POST', '/v1/applications', {
      userId: user.body.id,
      consent: { acceptedAt: '2026-11-25T10:00:00.000Z' },
    });
    expect(application.status).toBe(201);
    const denied = await until(
      () => call('GET', `/v1/applications/${application.body.id}`),
      (answer) => answer.body.status === 'denied',
      'denial',
    );
    expect(denied.body.highnoteFinancialAccountId).toBeNull();
    const card = await call('POST', '/v1/cards', { userId: user.body.id, formFactor: 'virtual' });
    expect(card.status).toBe(409);
    expect(card.body.error.code).toBe('invalid_state');
  });

  it('fails a transfer the funding account cannot cover, then retries it after a deposit, or cancels it back to the pool', async () => {
    const { call } = await newOrganization(server);
    const product = await control('/_sandbox/card-products', {});
    const configuration = await call('PUT', '/v1/configurations', {
      highnote: {
        environment: 'sandbox',
        graphqlUrl: sandbox.graphqlUrl,
        apiKey: 'sk_test_unfunded_product_key',
        cardProductId: product.cardProductId,
        fundingFinancialAccountId: product.fundingFinancialAccountId,
      },
    });
    expect(configuration.status).toBe(200);
    expect(JSON.stringify(configuration.body)).not.toContain('sk_test_unfunded_product_key');
    expect(configuration.body.highnote.apiKeyLast4).toBe('_key');
    const stored = await server.database.db.selectFrom('issuer_configurations').selectAll().execute();
    expect(JSON.stringify(stored)).not.toContain('unfunded_product');

    const { user, card } = await cardholder(call);
    const first = (await completedTask(call, user.id, 40)).userTask;
    const second = (await completedTask(call, user.id, 60)).userTask;
    for (const task of [first, second]) {
      const failed = await until(
        () => call('GET', `/v1/usertasks/${task.id}`),
        (answer) => answer.body.status === 'funding_failed',
        'the funding to fail',
      );
      const disbursement = await call('GET', `/v1/disbursements/${failed.body.disbursementId}`);
      expect(disbursement.body).toMatchObject({ status: 'failed', failureCode: 'INSUFFICIENT_FUNDS' });
    }
    const warned = await call('GET', '/v1/configurations');
    expect(warned.body.highnote.commitments.inTransit).toBe(100);
    expect(warned.body.highnote.warnings).toHaveLength(1);

    const adapter = highnoteAdapter({ graphqlUrl: sandbox.graphqlUrl, apiKey: 'sk_test_suite' });
    const deposit = await adapter.simulateDeposit({
      toFinancialAccountId: product.fundingFinancialAccountId as string,
      amountCents: 4_000n,
    });
    expect(deposit.ok).toBe(true);
    const firstDisbursement = (await call('GET', `/v1/usertasks/${first.id}`)).body.disbursementId;
    const retried = await call('POST', `/v1/disbursements/${firstDisbursement}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ status: 'pending', attempt: 2 });
    await until(
      () => call('GET', `/v1/usertasks/${first.id}`),
      (answer) => answer.body.status === 'funded',
      'the retry',
    );

    const secondTask = await call('GET', `/v1/usertasks/${second.id}`);
    const cancelled = await call('POST', `/v1/disbursements/${secondTask.body.disbursementId}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    expect((await call('GET', `/v1/usertasks/${second.id}`)).body.status).toBe('cancelled');
    const again = await call('POST', `/v1/disbursements/${secondTask.body.disbursementId}/retry`);
    expect(again.status).toBe(409);

    expect(await cardBalanceCents(call, card.highnoteFinancialAccountId)).toBe(4_000n);
    const program = (await call('GET', `/v1/programs/${secondTask.body.programId}`)).body;
    expect(program.balances).toMatchObject({ available: 50_000, reserved: 0, disbursing: 0, disbursed: 0 });
  });

  it('suspends, activates and closes a card, and orders a physical card shipped USPS Express', async () => {
    const { call } = await newOrganization(server);
    const { card, user } = await cardholder(call);
    expect((await call('POST', `/v1/cards/${card.id}/suspend`)).body.status).toBe('suspended');
    expect((await call('POST', `/v1/cards/${card.id}/activate`)).body.status).toBe('active');
    const physical = await call('POST', '/v1/cards', { userId: user.id, formFactor: 'physical' });
    expect(physical.status).toBe(201);
    expect(physical.body).toMatchObject({
      id: card.id,
      formFactor: 'physical',
      physicalOrder: { status: 'NEW', shippingMethod: 'USPS_EXPRESS' },
    });
    // Highnote closes the card but its answer is lost; the retry is refused (already closed), and
    // the card read back answers for it.
    await control('/_sandbox/faults', { operation: 'closePaymentCard', mode: 'lost_response', count: 1 });
    const closed = await call('POST', `/v1/cards/${card.id}/close`);
    expect(closed.status).toBe(200);
    expect(closed.body.status).toBe('closed');
    const closedAgain = await call('POST', `/v1/cards/${card.id}/close`);
    expect(closedAgain.status).toBe(409);
  });

  it('declines, through the card, what the program’s spend controls forbid, and follows a change of them', async () => {
    const { call } = await newOrganization(server);
    const { user, card } = await cardholder(call);
    const program = await call('POST', '/v1/programs', {
      name: 'Safety training',
      totalAwardPool: 5_000,
      maxParticipants: 10,
      spendControls: { perTransactionLimit: 100, blockedMerchantCategories: ['BETTING_CASINO_GAMBLING'] },
    });
    expect(program.status).toBe(201);
    const assigned = await call('POST', '/v1/usertasks', {
      programId: program.body.id,
      userId: user.id,
      monetaryValue: 500,
    });
    await call('PUT', `/v1/usertasks/${assigned.body.id}/complete`);
    await until(
      () => call('GET', `/v1/usertasks/${assigned.body.id}`),
      (answer) => answer.body.status === 'funded',
      'funding',
    );

    const authorize = async (dollars: number, category = 'GROCERY_STORES_SUPERMARKETS') => {
      const response = await fetch(sandbox.graphqlUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Basic ${Buffer.from('sk_test_suite:').toString('base64')}`,
        },
        body: JSON.stringify({
          query: `mutation Authorize($input: SimulateAuthorizationInput!) {
            simulateAuthorization(input: $input) { __typename ... on AuthorizationEvent { responseCode } }
          }`,
          variables: {
            input: {
              cardId: card.highnotePaymentCardId,
              amount: { value: Math.round(dollars * 100), currencyCode: 'USD' },
              merchantDetails: { category },
            },
          },
        }),
      });
      const body = (await response.json()) as { data: { simulateAuthorization: { responseCode: string } } };
      return body.data.simulateAuthorization.responseCode;
    };
    expect(await authorize(150)).not.toMatch(/^APPROVED/);
    expect(await authorize(50, 'BETTING_CASINO_GAMBLING')).not.toMatch(/^APPROVED/);
    expect(await authorize(50)).toBe('APPROVED');

    // A change of the program's controls reaches the card: $150 is allowed once the job has run.
    const patched = await call('PATCH', `/v1/programs/${program.body.id}`, {
      spendControls: { perTransactionLimit: 200 },
    });
    expect(patched.status).toBe(200);
    await until(
      () => authorize(150),
      (code) => code === 'APPROVED',
      'the card to follow the new controls',
    );
    expect(await authorize(250)).not.toMatch(/^APPROVED/);
  });

  it('keeps the SSN out of every log line, even at trace level and on a failure', async () => {
    const lines: string[] = [];
    const logged = await startTestServer({
      sandbox,
      worker: false,
      logger: {
        level: 'trace',
        redact: secretLogPaths,
        stream: { write: (line: string) => void lines.push(line) },
      },
    });
    try {
      const { call } = await newOrganization(logged);
      const created = await call('POST', '/v1/users', person(), { 'Idempotency-Key': 'ssn-log' });
      expect(created.status).toBe(201);
      const refused = await call('POST', '/v1/users', person({ address: { line1: 'x' } }));
      expect(refused.status).toBe(400);
      expect(lines.length).toBeGreaterThan(4);
      expect(lines.join('')).not.toContain('6789');
    } finally {
      await logged.close();
    }
  });

  it('refuses person details without what Highnote needs, and an SSN with nothing to create', async () => {
    const { call } = await newOrganization(server);
    const missing = await call('POST', '/v1/users', person({ dateOfBirth: undefined }));
    expect(missing.status).toBe(400);
    expect(missing.body.error.param).toBe('dateOfBirth');
    const linked = await call('POST', '/v1/users', { highnoteAccountHolderId: 'ach_1842', ssn });
    expect(linked.status).toBe(400);
    expect(linked.body.error.param).toBe('ssn');
    const noApplicationHolder = await call('POST', '/v1/users', { firstName: 'Bo' });
    const application = await call('POST', '/v1/applications', {
      userId: noApplicationHolder.body.id,
      consent: { acceptedAt: '2026-11-25T10:00:00.000Z' },
    });
    expect(application.status).toBe(409);
  });
});
