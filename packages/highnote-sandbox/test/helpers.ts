import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import type { RunningSandbox } from '../src/index.js';

/*
 * Shared by the feature suites: a GraphQL client over real HTTP, polling with a deadline, a webhook
 * receiver, and a shortcut from nothing to an active, funded card.
 */

const API_KEY = 'sk_test_sandbox_features';
const AUTHORIZATION = `Basic ${Buffer.from(`${API_KEY}:`).toString('base64')}`;
const POLL_INTERVAL_MS = 10;
const POLL_DEADLINE_MS = 5_000;

// biome-ignore lint/suspicious/noExplicitAny: each test asserts the shape it selected; typing every query would restate the SDL.
export type Json = any;

/** Runs a query and returns `data`, failing the test on any HTTP or GraphQL error. */
export async function gql(sandbox: RunningSandbox, query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(sandbox.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: AUTHORIZATION },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: Json; errors?: unknown[] };
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  expect(response.status).toBe(200);
  return body.data as Json;
}

/** Runs a mutation `{ field(input: $input) { … } }` and returns the payload. */
export async function mutate(
  sandbox: RunningSandbox,
  field: string,
  inputType: string,
  input: unknown,
  selection: string,
) {
  const data = await gql(
    sandbox,
    `mutation ($input: ${inputType}!) { ${field}(input: $input) { __typename ${selection} ... on UserError { errors { code description errorPath } } } }`,
    { input },
  );
  return data[field] as Json;
}

export async function control(sandbox: RunningSandbox, path: string, body: unknown = {}) {
  const response = await fetch(`${sandbox.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
  expect(response.status).toBe(200);
  return (await response.json()) as Json;
}

/** Reads until `done` holds or the deadline passes; the caller asserts on what it got. */
export async function pollUntil<T>(read: () => Promise<T> | T, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + POLL_DEADLINE_MS;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

export function usd(value: number) {
  return { value, currencyCode: 'USD' };
}

export async function availableCash(sandbox: RunningSandbox, financialAccountId: string) {
  const data = await gql(
    sandbox,
    `query ($id: ID!) { node(id: $id) { ... on FinancialAccount {
      ledgers(ledgerNames: [AVAILABLE_CASH, CASH]) { name creditBalance { value } debitBalance { value } }
    } } }`,
    { id: financialAccountId },
  );
  const ledgers = data.node.ledgers as {
    name: string;
    creditBalance: { value: number };
    debitBalance: { value: number };
  }[];
  const balance = (name: string) => {
    const ledger = ledgers.find((candidate) => candidate.name === name);
    return ledger ? ledger.creditBalance.value - ledger.debitBalance.value : Number.NaN;
  };
  return { available: balance('AVAILABLE_CASH'), posted: balance('CASH') };
}

export interface FundedCard {
  cardId: string;
  cardAccountId: string;
  fundingAccountId: string;
  cardProductId: string;
}

/** A person, an approved application, an account, a card, and `loadCents` moved onto it. */
export async function fundedCard(
  sandbox: RunningSandbox,
  options: { loadCents?: number; activateOnCreate?: boolean } = {},
): Promise<FundedCard> {
  const seeded = await control(sandbox, '/_sandbox/card-products', {});
  const { cardProductId, fundingFinancialAccountId: fundingAccountId } = seeded;
  const deposit = await mutate(
    sandbox,
    'simulateDeposit',
    'SimulateDepositInput',
    { toFinancialAccountId: fundingAccountId, amount: usd(1_000_000), source: 'WIRE' },
    '... on Transfer { status }',
  );
  expect(deposit).toMatchObject({ __typename: 'Transfer', status: 'COMPLETED' });
  const person = await mutate(
    sandbox,
    'createUSPersonAccountHolder',
    'CreateUSPersonAccountHolderInput',
    {
      personAccountHolder: {
        name: { givenName: 'Grace', familyName: 'Hopper' },
        dateOfBirth: '1985-12-09',
        billingAddress: {
          streetAddress: '1 Navy Way',
          postalCode: '20001',
          region: 'DC',
          locality: 'Washington',
          countryCodeAlpha3: 'USA',
        },
      },
    },
    '... on USPersonAccountHolder { id }',
  );
  const application = await mutate(
    sandbox,
    'createAccountHolderCardProductApplication',
    'CreateAccountHolderCardProductApplicationInput',
    {
      accountHolderId: person.id,
      cardProductId,
      cardHolderAgreementConsent: { primaryAuthorizedPersonId: person.id, consentTimestamp: new Date().toISOString() },
    },
    '... on AccountHolderCardProductApplication { id }',
  );
  const status = await pollUntil(
    async () =>
      (
        await gql(
          sandbox,
          'query ($id: ID!) { node(id: $id) { ... on AccountHolderCardProductApplication { applicationState { status } } } }',
          { id: application.id },
        )
      ).node.applicationState.status,
    (value) => value === 'APPROVED',
  );
  expect(status).toBe('APPROVED');
  const account = await mutate(
    sandbox,
    'issueFinancialAccountForApplication',
    'IssueFinancialAccountForApplicationInput',
    { applicationId: application.id, name: 'Grace', idempotencyKey: randomUUID() },
    '... on FinancialAccount { id }',
  );
  const card = await mutate(
    sandbox,
    'issuePaymentCardForFinancialAccount',
    'IssuePaymentCardForFinancialAccountInput',
    {
      financialAccountId: account.id,
      options: { expirationDate: '2031-06-30T23:59:59Z', activateOnCreate: options.activateOnCreate ?? true },
      idempotencyKey: randomUUID(),
    },
    '... on PaymentCard { id }',
  );
  const loadCents = options.loadCents ?? 0;
  if (loadCents > 0) {
    const transfer = await mutate(
      sandbox,
      'initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount',
      'InitiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccountInput',
      {
        fromFinancialAccountId: fundingAccountId,
        toFinancialAccountId: account.id,
        amount: usd(loadCents),
        idempotencyKey: randomUUID(),
      },
      '... on InterFinancialAccountTransfer { id }',
    );
    const settled = await pollUntil(
      async () =>
        (
          await gql(sandbox, 'query ($id: ID!) { node(id: $id) { ... on InterFinancialAccountTransfer { status } } }', {
            id: transfer.id,
          })
        ).node.status,
      (value) => value !== 'PENDING',
    );
    expect(settled).toBe('COMPLETED');
  }
  return { cardId: card.id, cardAccountId: account.id, fundingAccountId, cardProductId };
}

export interface ReceivedRequest {
  headers: IncomingHttpHeaders;
  body: string;
  json: Json;
}

export interface Receiver {
  url: string;
  requests: ReceivedRequest[];
  /** The status answered to each request from now on (200 by default). */
  answer: (status: number) => void;
  /** Answers `status` to the next `count` requests, then goes back to the standing answer. */
  failNext: (count: number, status: number) => void;
  close: () => Promise<void>;
}

/** A local webhook endpoint that keeps every request it gets, raw body included. */
export async function startReceiver(): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  let standing = 200;
  let failures: { count: number; status: number } = { count: 0, status: 500 };
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ headers: request.headers, body, json: JSON.parse(body) });
      let status = standing;
      if (failures.count > 0) {
        failures = { ...failures, count: failures.count - 1 };
        status = failures.status;
      }
      response.writeHead(status).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/highnote`,
    requests,
    answer: (status) => {
      standing = status;
    },
    failNext: (count, status) => {
      failures = { count, status };
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** The notification events a receiver got, by name, in arrival order. */
export function eventsNamed(receiver: Receiver, name: string): ReceivedRequest[] {
  return receiver.requests.filter((request) => request.json.data.node.name === name);
}
