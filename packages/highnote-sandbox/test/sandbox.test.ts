import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from '../src/index.js';

/*
 * Everything goes over real HTTP with fetch, as the Tranche adapter will. Delays are short and every
 * wait is a poll with a deadline, so a slow machine makes the suite slower, not flaky.
 */

const API_KEY = 'sk_test_sandbox_suite';
const AUTHORIZATION = `Basic ${Buffer.from(`${API_KEY}:`).toString('base64')}`;
const SEED_CARD_PRODUCT_ID = 'cp_9xWsandboxSeed';
const POLL_INTERVAL_MS = 10;
const POLL_DEADLINE_MS = 5_000;
const CLIENT_TIMEOUT_MS = 300;
const TRANSFER_AMOUNT_CENTS = 12_500;
const DEPOSIT_AMOUNT_CENTS = 100_000;

let sandbox: RunningSandbox;

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0, applicationApprovalDelayMs: 20, transferSettlementDelayMs: 20 });
});

afterAll(async () => {
  await sandbox.close();
});

beforeEach(async () => {
  await control('/_sandbox/reset', {});
});

// biome-ignore lint/suspicious/noExplicitAny: each test asserts the shape it selected; typing every query would restate the SDL.
type Json = any;

interface GraphqlAnswer {
  status: number;
  body: { data: Json; errors?: unknown[] };
}

async function graphql(query: string, variables: Record<string, unknown> = {}, init: RequestInit = {}) {
  const response = await fetch(sandbox.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: AUTHORIZATION },
    body: JSON.stringify({ query, variables }),
    ...init,
  });
  return { status: response.status, body: await response.json() } as GraphqlAnswer;
}

async function control(path: string, body: unknown) {
  const response = await fetch(`${sandbox.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

async function pollUntil<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + POLL_DEADLINE_MS;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

const CREATE_PERSON = /* GraphQL */ `
  mutation ($input: CreateUSPersonAccountHolderInput!) {
    createUSPersonAccountHolder(input: $input) {
      __typename
      ... on USPersonAccountHolder { id name { givenName familyName } }
      ... on UserError { errors { code description errorPath } }
    }
  }
`;

const CREATE_APPLICATION = /* GraphQL */ `
  mutation ($input: CreateAccountHolderCardProductApplicationInput!) {
    createAccountHolderCardProductApplication(input: $input) {
      __typename
      ... on AccountHolderCardProductApplication { id applicationState { status } }
      ... on UserError { errors { code description } }
    }
  }
`;

const APPLICATION_STATUS = /* GraphQL */ `
  query ($id: ID!) { node(id: $id) { ... on AccountHolderCardProductApplication { applicationState { status } } } }
`;

const ISSUE_ACCOUNT = /* GraphQL */ `
  mutation ($input: IssueFinancialAccountForApplicationInput!) {
    issueFinancialAccountForApplication(input: $input) {
      __typename
      ... on FinancialAccount { id accountStatus features { featureType } }
      ... on UserError { errors { code description } }
    }
  }
`;

const ISSUE_CARD = /* GraphQL */ `
  mutation ($input: IssuePaymentCardForFinancialAccountInput!) {
    issuePaymentCardForFinancialAccount(input: $input) {
      __typename
      ... on PaymentCard { id last4 status formFactor network }
    }
  }
`;

const FUNDING_ACCOUNT = /* GraphQL */ `
  query ($id: ID!) {
    node(id: $id) {
      ... on CardProduct {
        accounts(filterBy: { features: { includes: [PRODUCT_FUNDING] } }) { edges { node { id } } }
      }
    }
  }
`;

const DEPOSIT = /* GraphQL */ `
  mutation ($input: SimulateDepositInput!) {
    simulateDeposit(input: $input) { __typename ... on Transfer { id status amount { value currencyCode } } }
  }
`;

const TRANSFER = /* GraphQL */ `
  mutation ($input: InitiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccountInput!) {
    initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount(input: $input) {
      __typename
      ... on InterFinancialAccountTransfer { id status statusReason amount { value currencyCode } }
      ... on UserError { errors { code description } }
    }
  }
`;

const TRANSFER_STATUS = /* GraphQL */ `
  query ($id: ID!) { node(id: $id) { ... on InterFinancialAccountTransfer { status statusReason } } }
`;

const AVAILABLE_CASH = /* GraphQL */ `
  query ($id: ID!) {
    node(id: $id) {
      ... on FinancialAccount {
        ledgers(ledgerNames: [AVAILABLE_CASH]) { name creditBalance { value currencyCode } debitBalance { value } }
      }
    }
  }
`;

function person(overrides: { givenName?: string; streetAddress?: string } = {}) {
  return {
    personAccountHolder: {
      name: { givenName: overrides.givenName ?? 'Ada', familyName: 'Lovelace' },
      email: 'ada@example.com',
      phoneNumber: { countryCode: '1', number: '5551234567', label: 'MOBILE' },
      dateOfBirth: '1990-12-10',
      billingAddress: {
        streetAddress: overrides.streetAddress ?? '1 Market St',
        postalCode: '94105',
        region: 'CA',
        locality: 'San Francisco',
        countryCodeAlpha3: 'USA',
      },
      identificationDocument: {
        socialSecurityNumber: { number: '123-45-6789', countryCodeAlpha3: 'USA' },
      },
    },
  };
}

async function createPerson(overrides: { givenName?: string; streetAddress?: string } = {}): Promise<string> {
  const answer = await graphql(CREATE_PERSON, { input: person(overrides) });
  expect(answer.body.data.createUSPersonAccountHolder.__typename).toBe('USPersonAccountHolder');
  return answer.body.data.createUSPersonAccountHolder.id;
}

async function apply(accountHolderId: string) {
  const answer = await graphql(CREATE_APPLICATION, {
    input: {
      accountHolderId,
      cardProductId: SEED_CARD_PRODUCT_ID,
      cardHolderAgreementConsent: {
        primaryAuthorizedPersonId: accountHolderId,
        consentTimestamp: new Date().toISOString(),
      },
    },
  });
  return answer.body.data.createAccountHolderCardProductApplication;
}

async function applicationStatus(applicationId: string): Promise<string> {
  const answer = await graphql(APPLICATION_STATUS, { id: applicationId });
  return answer.body.data.node.applicationState.status;
}

async function fundingAccountId(): Promise<string> {
  const answer = await graphql(FUNDING_ACCOUNT, { id: SEED_CARD_PRODUCT_ID });
  const edges = answer.body.data.node.accounts.edges;
  expect(edges).toHaveLength(1);
  return edges[0].node.id;
}

async function availableCash(financialAccountId: string): Promise<{ credit: number; debit: number }> {
  const answer = await graphql(AVAILABLE_CASH, { id: financialAccountId });
  const [ledger] = answer.body.data.node.ledgers;
  expect(ledger).toMatchObject({ name: 'AVAILABLE_CASH', creditBalance: { currencyCode: 'USD' } });
  return { credit: ledger.creditBalance.value, debit: ledger.debitBalance.value };
}

/** Onboards a person up to an issued card and a funded product funding account. */
async function fundedCardholder() {
  const applicationId = (await apply(await createPerson())).id;
  const approved = await pollUntil(
    () => applicationStatus(applicationId),
    (status) => status === 'APPROVED',
  );
  expect(approved).toBe('APPROVED');
  const account = await graphql(ISSUE_ACCOUNT, {
    input: { applicationId, name: 'Ada card account', idempotencyKey: randomUUID() },
  });
  const cardAccountId = account.body.data.issueFinancialAccountForApplication.id;
  const funding = await fundingAccountId();
  const deposit = await graphql(DEPOSIT, {
    input: {
      toFinancialAccountId: funding,
      source: 'WIRE',
      amount: { value: DEPOSIT_AMOUNT_CENTS, currencyCode: 'USD' },
    },
  });
  expect(deposit.body.data.simulateDeposit).toMatchObject({ __typename: 'Transfer', status: 'COMPLETED' });
  return { applicationId, cardAccountId, funding };
}

function transferInput(funding: string, cardAccountId: string, idempotencyKey: string, amountCents: number) {
  return {
    input: {
      fromFinancialAccountId: funding,
      toFinancialAccountId: cardAccountId,
      amount: { value: amountCents, currencyCode: 'USD' },
      idempotencyKey,
    },
  };
}

async function transferStatus(transferId: string): Promise<string> {
  const answer = await graphql(TRANSFER_STATUS, { id: transferId });
  return answer.body.data.node.status;
}

async function settled(transferId: string): Promise<string> {
  return pollUntil(
    () => transferStatus(transferId),
    (status) => status !== 'PENDING',
  );
}

describe('auth', () => {
  it('answers 401 with a JSON body when Authorization is missing, malformed or has a password', async () => {
    const headers: Record<string, string>[] = [
      {},
      { authorization: 'Bearer sk_test_x' },
      { authorization: 'Basic !!!' },
      { authorization: `Basic ${Buffer.from('sk_test_x:secret').toString('base64')}` },
    ];
    for (const header of headers) {
      const response = await fetch(sandbox.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...header },
        body: JSON.stringify({ query: '{ ping }' }),
      });
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ errors: [{ message: expect.any(String) }] });
    }
  });

  it('accepts the key alone or followed by a colon', async () => {
    for (const credentials of [API_KEY, `${API_KEY}:`]) {
      const response = await fetch(sandbox.graphqlUrl, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` },
        body: JSON.stringify({ query: '{ ping }' }),
      });
      expect(await response.json()).toMatchObject({
        data: { ping: 'pong' },
        extensions: { requestId: expect.any(String) },
      });
    }
  });

  it('rejects another key when the sandbox is started with one', async () => {
    const locked = await startSandbox({ apiKey: 'sk_test_only_this_one' });
    try {
      const response = await fetch(locked.graphqlUrl, {
        method: 'POST',
        headers: { authorization: AUTHORIZATION },
        body: JSON.stringify({ query: '{ ping }' }),
      });
      expect(response.status).toBe(401);
    } finally {
      await locked.close();
    }
  });
});

describe('onboarding and funding', () => {
  it('takes a person from account holder to a funded card', async () => {
    const { applicationId, cardAccountId, funding } = await fundedCardholder();
    expect(await applicationStatus(applicationId)).toBe('APPROVED');
    const card = await graphql(ISSUE_CARD, {
      input: {
        financialAccountId: cardAccountId,
        options: { expirationDate: '2031-01-01T23:59:59Z', activateOnCreate: true },
        idempotencyKey: randomUUID(),
      },
    });
    expect(card.body.data.issuePaymentCardForFinancialAccount).toMatchObject({
      __typename: 'PaymentCard',
      last4: expect.stringMatching(/^\d{4}$/),
      status: 'ACTIVE',
      formFactor: 'VIRTUAL',
    });

    const initiated = await graphql(
      TRANSFER,
      transferInput(funding, cardAccountId, randomUUID(), TRANSFER_AMOUNT_CENTS),
    );
    const transfer = initiated.body.data.initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount;
    expect(transfer).toMatchObject({ __typename: 'InterFinancialAccountTransfer', status: 'PENDING' });
    expect(transfer.amount).toEqual({ value: TRANSFER_AMOUNT_CENTS, currencyCode: 'USD' });
    expect(await settled(transfer.id)).toBe('COMPLETED');

    const cardCash = await availableCash(cardAccountId);
    expect(cardCash.credit - cardCash.debit).toBe(TRANSFER_AMOUNT_CENTS);
    const fundingCash = await availableCash(funding);
    expect(fundingCash.credit - fundingCash.debit).toBe(DEPOSIT_AMOUNT_CENTS - TRANSFER_AMOUNT_CENTS);
  });

  it('never returns the SSN', async () => {
    const accountHolderId = await createPerson();
    const answer = await graphql(
      'query ($id: ID!) { node(id: $id) { ... on USPersonAccountHolder { id name { givenName } dateOfBirth } } }',
      { id: accountHolderId },
    );
    expect(answer.body.data.node.name.givenName).toBe('Ada');
    // The schema has no field for it, so the number can only leak through a resolver bug.
    expect(JSON.stringify(answer.body.data)).not.toContain('123-45-6789');
  });

  it('denies FORCE-DECLINE and puts the manual-review address in review', async () => {
    const denied = await apply(await createPerson({ givenName: 'FORCE-DECLINE' }));
    expect(denied.applicationState.status).toBe('DENIED');
    const reviewed = await apply(await createPerson({ streetAddress: '123 Manual Review St.' }));
    expect(reviewed.applicationState.status).toBe('IN_REVIEW');
    const refused = await graphql(ISSUE_ACCOUNT, { input: { applicationId: reviewed.id, name: 'x' } });
    expect(refused.body.data.issueFinancialAccountForApplication.__typename).toBe('UserError');

    const moved = await graphql(
      `mutation ($input: SimulateApplicationStatusChangeInput!) {
        simulateApplicationStatusChange(input: $input) {
          ... on AccountHolderCardProductApplication { applicationState { status } }
        }
      }`,
      { input: { applicationId: reviewed.id, newApplicationStatus: 'APPROVED' } },
    );
    expect(moved.body.data.simulateApplicationStatusChange.applicationState.status).toBe('APPROVED');
  });

  it('accepts a seed account holder id it has never seen', async () => {
    const application = await apply('ach_1842');
    expect(application.__typename).toBe('AccountHolderCardProductApplication');
  });

  it('fails a transfer the funding account cannot cover, with INSUFFICIENT_FUNDS', async () => {
    const { cardAccountId, funding } = await fundedCardholder();
    const initiated = await graphql(
      TRANSFER,
      transferInput(funding, cardAccountId, randomUUID(), DEPOSIT_AMOUNT_CENTS + 1),
    );
    const transfer = initiated.body.data.initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount;
    expect(await settled(transfer.id)).toBe('FAILED');
    const answer = await graphql(TRANSFER_STATUS, { id: transfer.id });
    expect(answer.body.data.node.statusReason).toBe('INSUFFICIENT_FUNDS');
    expect(await availableCash(cardAccountId)).toEqual({ credit: 0, debit: 0 });
  });

  it('moves money once for a transfer retried with the same idempotency key', async () => {
    const { cardAccountId, funding } = await fundedCardholder();
    const input = transferInput(funding, cardAccountId, randomUUID(), TRANSFER_AMOUNT_CENTS);
    const first = await graphql(TRANSFER, input);
    const firstTransfer = first.body.data.initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount;
    expect(await settled(firstTransfer.id)).toBe('COMPLETED');
    const retry = await graphql(TRANSFER, input);
    const retried = retry.body.data.initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount;
    expect(retried).toMatchObject({ id: firstTransfer.id, status: 'COMPLETED' });
    const cardCash = await availableCash(cardAccountId);
    expect(cardCash.credit - cardCash.debit).toBe(TRANSFER_AMOUNT_CENTS);
  });
});

describe('faults', () => {
  const TRANSFER_OPERATION = 'initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount';

  it('error answers HTTP 500 once, then the operation works again', async () => {
    await control('/_sandbox/faults', { operation: 'ping', mode: 'error', count: 1 });
    expect((await graphql('{ ping }')).status).toBe(500);
    expect((await graphql('{ ping }')).body.data).toEqual({ ping: 'pong' });
  });

  it('lost_response performs the transfer and destroys the socket; a retry returns the same transfer', async () => {
    const { cardAccountId, funding } = await fundedCardholder();
    await control('/_sandbox/faults', { operation: TRANSFER_OPERATION, mode: 'lost_response', count: 1 });
    const input = transferInput(funding, cardAccountId, randomUUID(), TRANSFER_AMOUNT_CENTS);
    await expect(graphql(TRANSFER, input)).rejects.toThrow();
    const retry = await graphql(TRANSFER, input);
    const transfer = retry.body.data[TRANSFER_OPERATION];
    expect(transfer.__typename).toBe('InterFinancialAccountTransfer');
    expect(await settled(transfer.id)).toBe('COMPLETED');
    const again = await graphql(TRANSFER, input);
    expect(again.body.data[TRANSFER_OPERATION].id).toBe(transfer.id);
    const cardCash = await availableCash(cardAccountId);
    expect(cardCash.credit - cardCash.debit).toBe(TRANSFER_AMOUNT_CENTS);
  });

  it('user_error answers a UserError and changes nothing', async () => {
    const { cardAccountId, funding } = await fundedCardholder();
    await control('/_sandbox/faults', { operation: TRANSFER_OPERATION, mode: 'user_error', count: 1 });
    const answer = await graphql(TRANSFER, transferInput(funding, cardAccountId, randomUUID(), TRANSFER_AMOUNT_CENTS));
    expect(answer.status).toBe(200);
    expect(answer.body.data[TRANSFER_OPERATION]).toEqual({
      __typename: 'UserError',
      errors: [{ code: 'SANDBOX_INJECTED_FAULT', description: expect.stringContaining(TRANSFER_OPERATION) }],
    });
    const fundingCash = await availableCash(funding);
    expect(fundingCash.credit - fundingCash.debit).toBe(DEPOSIT_AMOUNT_CENTS);
  });

  it('timeout never answers, so the client gives up', async () => {
    await control('/_sandbox/faults', { operation: 'ping', mode: 'timeout', count: 1 });
    const started = Date.now();
    await expect(graphql('{ ping }', {}, { signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS) })).rejects.toThrow();
    expect(Date.now() - started).toBeGreaterThanOrEqual(CLIENT_TIMEOUT_MS - POLL_INTERVAL_MS);
    expect((await graphql('{ ping }')).body.data).toEqual({ ping: 'pong' });
  });

  it('close() ends a sandbox that is holding a timed-out request', async () => {
    const other = await startSandbox();
    await fetch(`${other.url}/_sandbox/faults`, {
      method: 'POST',
      body: JSON.stringify({ operation: 'ping', mode: 'timeout', count: 1 }),
    });
    const ping = (signal?: AbortSignal) =>
      fetch(other.graphqlUrl, {
        method: 'POST',
        headers: { authorization: AUTHORIZATION },
        body: JSON.stringify({ query: '{ ping }' }),
        ...(signal === undefined ? {} : { signal }),
      });
    const held = ping();
    held.catch(() => {});
    // A later ping answers only once the held one has taken the fault: it is inside the sandbox.
    await pollUntil(
      () =>
        ping(AbortSignal.timeout(CLIENT_TIMEOUT_MS)).then(
          (response) => response.status,
          () => 0,
        ),
      (status) => status === 200,
    );
    await other.close();
    await expect(held).rejects.toThrow();
  });

  it('refuses an operation the sandbox does not serve', async () => {
    const response = await fetch(`${sandbox.url}/_sandbox/faults`, {
      method: 'POST',
      body: JSON.stringify({ operation: 'noSuchOperation', mode: 'error', count: 1 }),
    });
    expect(response.status).toBe(400);
  });
});

describe('reset', () => {
  it('clears records and armed faults', async () => {
    const accountHolderId = await createPerson();
    await control('/_sandbox/faults', { operation: 'ping', mode: 'error', count: 1 });
    await control('/_sandbox/reset', {});
    const answer = await graphql('query ($id: ID!) { node(id: $id) { id } }', { id: accountHolderId });
    expect(answer.body.data).toEqual({ node: null });
    expect((await graphql('{ ping }')).status).toBe(200);
  });

  it('seeds a card product and its funding account through the control surface', async () => {
    const seeded = await control('/_sandbox/card-products', { cardProductId: SEED_CARD_PRODUCT_ID });
    expect(seeded.cardProductId).toBe(SEED_CARD_PRODUCT_ID);
    expect(await fundingAccountId()).toBe(seeded.fundingFinancialAccountId);
  });
});
