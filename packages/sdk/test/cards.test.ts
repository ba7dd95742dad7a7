import { Tranche, TrancheError, type User } from '@tranche/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { highnoteAdapter } from '../../../apps/server/src/issuer/highnote.js';
import { newOrganization, startTestServer, type TestServer } from '../../../apps/server/test/harness.js';
import { waitFor } from '../../../examples/card-funding.js';
import { type RunningSandbox, startSandbox } from '../../highnote-sandbox/src/index.js';
import { type FaultyProxy, startFaultyProxy } from './proxy.js';

/**
 * The card resources (configurations, applications, cards, and a disbursement's retry and cancel)
 * against the real server, its worker and the local Highnote sandbox, through a forwarding proxy
 * that shows the method, path and Idempotency-Key each call went out with.
 */

const decisionTimeoutMs = 15_000;
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let sandbox: RunningSandbox;
let server: TestServer;
let proxy: FaultyProxy;

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0, applicationApprovalDelayMs: 20, transferSettlementDelayMs: 20 });
  server = await startTestServer({ sandbox });
  proxy = await startFaultyProxy(server.baseUrl);
});

afterAll(async () => {
  await proxy?.close();
  await server?.close();
  await sandbox?.close();
});

/** A client of a new organization, its calls through the proxy. */
async function newClient(): Promise<Tranche> {
  return new Tranche({ apiKey: (await newOrganization(server)).apiKey, baseUrl: proxy.baseUrl });
}

/** What the proxy saw from `start` on: method and path, and whether a key went with it. */
function seenSince(start: number) {
  return proxy.requests.slice(start).map((request) => ({
    call: `${request.method} ${request.path}`,
    idempotencyKey: request.idempotencyKey,
  }));
}

function expectKeysOnMutatingCallsOnly(seen: ReturnType<typeof seenSince>) {
  const mutating = seen.filter((request) => !request.call.startsWith('GET '));
  for (const request of mutating) expect(request.idempotencyKey, request.call).toMatch(uuid);
  expect(new Set(mutating.map((request) => request.idempotencyKey)).size).toBe(mutating.length);
  for (const request of seen.filter((request) => request.call.startsWith('GET '))) {
    expect(request.idempotencyKey, request.call).toBeUndefined();
  }
}

const person = {
  firstName: 'Ada',
  lastName: 'Lovelace',
  email: 'ada@example.com',
  phoneNumber: '+14155550100',
  dateOfBirth: '1990-12-10',
  address: { line1: '123 Main St', city: 'San Francisco', state: 'CA', postalCode: '94105', country: 'USA' },
  ssn: '123-45-6789',
};

async function approvedApplicant(tranche: Tranche): Promise<User> {
  const user = await tranche.users.create(person);
  const application = await tranche.applications.create({
    userId: user.id,
    consent: { acceptedAt: '2026-11-25T10:00:00.000Z' },
  });
  await waitFor(
    () => tranche.applications.retrieve(application.id),
    (read) => read.status === 'approved',
    { what: 'approval', timeoutMs: decisionTimeoutMs },
  );
  return user;
}

async function control(path: string, body: unknown): Promise<Record<string, string>> {
  const response = await fetch(`${sandbox.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, string>;
}

async function cardBalanceCents(graphqlUrl: string, financialAccountId: string): Promise<bigint> {
  const balance = await highnoteAdapter({ graphqlUrl, apiKey: 'sk_test_sdk_suite' }).availableCashCents(
    financialAccountId,
  );
  if (!balance.ok) throw new Error(balance.failure.message);
  return balance.value;
}

describe('configurations', () => {
  it('retrieve configures the organization on first use; update checks and stores a key it never returns', async () => {
    const tranche = await newClient();
    const start = proxy.requests.length;
    const configured = await tranche.configurations.retrieve();
    expect(configured).toMatchObject({
      object: 'configuration',
      highnote: {
        environment: 'sandbox',
        apiKeyLast4: null,
        fundingBalance: 1_000_000,
        commitments: { reserved: 0, inTransit: 0, total: 0 },
        warnings: [],
      },
    });

    const product = await control('/_sandbox/card-products', {});
    const updated = await tranche.configurations.update({
      highnote: {
        environment: 'sandbox',
        graphqlUrl: configured.highnote.graphqlUrl,
        apiKey: 'sk_test_sdk_configuration_key',
        cardProductId: product.cardProductId ?? '',
        fundingFinancialAccountId: product.fundingFinancialAccountId ?? '',
      },
    });
    expect(updated.highnote).toMatchObject({
      cardProductId: product.cardProductId,
      fundingFinancialAccountId: product.fundingFinancialAccountId,
      apiKeyLast4: '_key',
    });
    expect(JSON.stringify(updated)).not.toContain('sk_test_sdk_configuration_key');
    expect((await tranche.configurations.retrieve()).highnote.cardProductId).toBe(product.cardProductId);

    const error = await tranche.configurations
      // A caller without the types (plain JavaScript) can still leave the key out; the API refuses it.
      .update({
        highnote: { environment: 'test', cardProductId: 'cp_9xWq7', fundingFinancialAccountId: 'fa_01' },
      } as unknown as Parameters<typeof tranche.configurations.update>[0])
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TrancheError);
    expect(error).toMatchObject({ status: 400, code: 'validation_error', param: 'highnote.apiKey' });

    const seen = seenSince(start);
    expect(seen.map((request) => request.call)).toEqual([
      'GET /v1/configurations',
      'PUT /v1/configurations',
      'GET /v1/configurations',
      'PUT /v1/configurations',
    ]);
    expectKeysOnMutatingCallsOnly(seen);
  });
});

describe('applications and cards', () => {
  it('apply, follow the application, issue a card, suspend, activate, order the physical card, close', async () => {
    const tranche = await newClient();
    const user = await tranche.users.create(person);
    expect(user.highnoteAccountHolderId).toEqual(expect.any(String));
    expect(JSON.stringify(user)).not.toContain('6789');
    const start = proxy.requests.length;

    const application = await tranche.applications.create({
      userId: user.id,
      consent: { acceptedAt: '2026-11-25T10:00:00.000Z', ipAddress: '203.0.113.7' },
    });
    expect(application).toMatchObject({
      object: 'application',
      userId: user.id,
      consent: { acceptedAt: '2026-11-25T10:00:00.000Z', ipAddress: '203.0.113.7' },
    });
    const approved = await waitFor(
      () => tranche.applications.retrieve(application.id),
      (read) => read.status === 'approved',
      { what: 'approval', timeoutMs: decisionTimeoutMs },
    );
    expect(approved.highnoteFinancialAccountId).toEqual(expect.any(String));
    expect((await tranche.applications.list({ userId: user.id, status: 'approved' })).data).toEqual([approved]);
    const applications = [];
    for await (const listed of tranche.applications.listAll({ userId: user.id, limit: 1 })) applications.push(listed);
    expect(applications).toEqual([approved]);

    const card = await tranche.cards.create({ userId: user.id, formFactor: 'virtual' });
    expect(card).toMatchObject({
      object: 'card',
      userId: user.id,
      applicationId: application.id,
      status: 'active',
      formFactor: 'virtual',
      highnoteFinancialAccountId: approved.highnoteFinancialAccountId,
      physicalOrder: null,
    });
    expect(card.last4).toMatch(/^\d{4}$/);
    expect(await tranche.cards.retrieve(card.id)).toEqual(card);
    expect((await tranche.cards.list({ userId: user.id })).data).toEqual([card]);
    const cards = [];
    for await (const listed of tranche.cards.listAll({ userId: user.id })) cards.push(listed.id);
    expect(cards).toEqual([card.id]);

    expect((await tranche.cards.suspend(card.id)).status).toBe('suspended');
    expect((await tranche.cards.activate(card.id)).status).toBe('active');
    const physical = await tranche.cards.create({
      userId: user.id,
      formFactor: 'physical',
      shipping: { method: 'USPS_EXPRESS', signatureRequired: true },
    });
    expect(physical).toMatchObject({
      id: card.id,
      formFactor: 'physical',
      physicalOrder: { shippingMethod: 'USPS_EXPRESS' },
    });
    const closed = await tranche.cards.close(card.id);
    expect(closed).toMatchObject({ id: card.id, status: 'closed' });
    expect(closed.closedAt).toEqual(expect.any(String));

    const seen = seenSince(start);
    const calls = seen.map((request) => request.call).filter((call) => !call.startsWith('GET /v1/applications/'));
    expect(calls).toEqual([
      'POST /v1/applications',
      `GET /v1/applications?userId=${user.id}&status=approved`,
      `GET /v1/applications?userId=${user.id}&limit=1`,
      'POST /v1/cards',
      `GET /v1/cards/${card.id}`,
      `GET /v1/cards?userId=${user.id}`,
      `GET /v1/cards?userId=${user.id}`,
      `POST /v1/cards/${card.id}/suspend`,
      `POST /v1/cards/${card.id}/activate`,
      'POST /v1/cards',
      `POST /v1/cards/${card.id}/close`,
    ]);
    expectKeysOnMutatingCallsOnly(seen);
  });

  it('refuses an application without an account holder and a card without an approved application', async () => {
    const tranche = await newClient();
    const unlinked = await tranche.users.create({ firstName: 'Bo' });
    const noHolder = await tranche.applications
      .create({ userId: unlinked.id, consent: { acceptedAt: '2026-11-25T10:00:00.000Z' } })
      .catch((caught: unknown) => caught);
    expect(noHolder).toBeInstanceOf(TrancheError);
    expect(noHolder).toMatchObject({ status: 409, code: 'invalid_state', param: 'userId' });
    expect((await tranche.applications.list({ userId: unlinked.id })).data).toEqual([]);

    const applicant = await tranche.users.create(person);
    const noApplication = await tranche.cards
      .create({ userId: applicant.id, formFactor: 'virtual' })
      .catch((caught: unknown) => caught);
    expect(noApplication).toMatchObject({ status: 409, code: 'invalid_state', param: 'userId' });
    expect((await tranche.cards.list({ userId: applicant.id })).data).toEqual([]);

    await expect(tranche.cards.retrieve('')).rejects.toThrow(TypeError);
    await expect(tranche.applications.retrieve('../cards')).rejects.toMatchObject({ status: 404, code: 'not_found' });
  });
});

describe('disbursements: retry and cancel', () => {
  it('a funding the account cannot cover fails; retry pays it once after a deposit, cancel returns it to the pool', async () => {
    const tranche = await newClient();
    // A card product whose funding account holds nothing, so every transfer fails.
    const product = await control('/_sandbox/card-products', {});
    const { highnote } = await tranche.configurations.update({
      highnote: {
        environment: 'sandbox',
        graphqlUrl: sandbox.graphqlUrl,
        apiKey: 'sk_test_sdk_unfunded_key',
        cardProductId: product.cardProductId ?? '',
        fundingFinancialAccountId: product.fundingFinancialAccountId ?? '',
      },
    });
    const user = await approvedApplicant(tranche);
    const card = await tranche.cards.create({ userId: user.id, formFactor: 'virtual' });
    const program = await tranche.programs.create({ name: 'Retries', totalAwardPool: 1000, maxParticipants: 10 });
    const failed = [];
    for (const monetaryValue of [40, 60]) {
      const assigned = await tranche.tasks.assign({ programId: program.id, userId: user.id, monetaryValue });
      await tranche.userTasks.complete(assigned.id);
      const userTask = await waitFor(
        () => tranche.userTasks.retrieve(assigned.id),
        (read) => read.status === 'funding_failed',
        { what: 'the funding to fail', timeoutMs: decisionTimeoutMs },
      );
      const disbursement = await tranche.disbursements.retrieve(userTask.disbursementId ?? '');
      expect(disbursement).toMatchObject({ status: 'failed', failureCode: 'INSUFFICIENT_FUNDS', attempt: 1 });
      failed.push(disbursement);
    }
    const [first, second] = failed;
    if (first === undefined || second === undefined) throw new Error('expected two failed fundings');

    const deposit = await highnoteAdapter({
      graphqlUrl: highnote.graphqlUrl,
      apiKey: 'sk_test_sdk_suite',
    }).simulateDeposit({ toFinancialAccountId: highnote.fundingFinancialAccountId, amountCents: 4_000n });
    expect(deposit.ok).toBe(true);

    // The same key twice: one new attempt, the second call answered from the first.
    const start = proxy.requests.length;
    const idempotencyKey = `retry-${first.id}`;
    const retried = await tranche.disbursements.retry(first.id, { idempotencyKey });
    expect(retried).toMatchObject({ id: first.id, status: 'pending', attempt: 2 });
    expect(await tranche.disbursements.retry(first.id, { idempotencyKey })).toEqual(retried);
    expect(proxy.requests.at(-1)).toMatchObject({ idempotencyKey, replayed: true });
    const funded = await waitFor(
      () => tranche.userTasks.retrieve(first.userTaskId),
      (read) => read.status === 'funded',
      { what: 'the retry to settle', timeoutMs: decisionTimeoutMs },
    );
    expect(funded.disbursementId).toBe(first.id);
    expect(await tranche.disbursements.retrieve(first.id)).toMatchObject({ status: 'settled', attempt: 2 });

    const cancelled = await tranche.disbursements.cancel(second.id);
    expect(cancelled).toMatchObject({ id: second.id, status: 'cancelled' });
    expect((await tranche.userTasks.retrieve(second.userTaskId)).status).toBe('cancelled');
    const again = await tranche.disbursements.retry(second.id).catch((caught: unknown) => caught);
    expect(again).toBeInstanceOf(TrancheError);
    expect(again).toMatchObject({ status: 409, code: 'invalid_state' });

    const calls = seenSince(start).filter((request) => request.call.startsWith('POST '));
    expect(calls.map((request) => request.call)).toEqual([
      `POST /v1/disbursements/${first.id}/retry`,
      `POST /v1/disbursements/${first.id}/retry`,
      `POST /v1/disbursements/${second.id}/cancel`,
      `POST /v1/disbursements/${second.id}/retry`,
    ]);
    expect(calls[2]?.idempotencyKey).toMatch(uuid);
    expect(calls[3]?.idempotencyKey).toMatch(uuid);

    expect(await cardBalanceCents(highnote.graphqlUrl, card.highnoteFinancialAccountId)).toBe(4_000n);
    expect((await tranche.programs.retrieve(program.id)).balances).toEqual({
      available: 960,
      reserved: 0,
      disbursing: 0,
      disbursed: 40,
      returned: 0,
    });
  });
});
