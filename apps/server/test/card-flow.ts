import { expect } from 'vitest';
import type { RunningSandbox } from '../../../packages/highnote-sandbox/src/index.js';
import { type Client, pollUntil } from './harness.js';

// The steps tests take to put money on a participant's card through the API and the sandbox, and
// to spend it there with the sandbox's simulations.

export const person = {
  firstName: 'Ada',
  lastName: 'Lovelace',
  dateOfBirth: '1990-12-10',
  address: { line1: '123 Main St', city: 'San Francisco', state: 'CA', postalCode: '94105', country: 'USA' },
};

const until = <T>(read: () => Promise<T>, done: (value: T) => boolean, what: string) =>
  pollUntil(read, done, { what, deadlineMs: 20_000 });

/** A participant with an approved application and an active virtual card. */
export async function participantWithCard(call: Client) {
  const user = await call('POST', '/v1/users', person);
  expect(user.status).toBe(201);
  const application = await call('POST', '/v1/applications', {
    userId: user.body.id,
    consent: { acceptedAt: '2026-11-25T10:00:00.000Z' },
  });
  expect(application.status).toBe(201);
  await until(
    () => call('GET', `/v1/applications/${application.body.id}`),
    (answer) => answer.body.status === 'approved',
    'the approval',
  );
  const card = await call('POST', '/v1/cards', { userId: user.body.id, formFactor: 'virtual' });
  expect(card.status).toBe(201);
  return {
    userId: user.body.id as string,
    applicationId: application.body.id as string,
    cardId: card.body.id as string,
    paymentCardId: card.body.highnotePaymentCardId as string,
  };
}

/**
 * Milestones of these values assigned and completed one after the other, each funded before the
 * next completes, so their disbursements settle in this order.
 */
export async function fundedMilestones(call: Client, programId: string, userId: string, values: readonly number[]) {
  const userTasks: string[] = [];
  for (const value of values) {
    const assigned = await call('POST', '/v1/usertasks', { programId, userId, monetaryValue: value });
    expect(assigned.status).toBe(201);
    expect((await call('PUT', `/v1/usertasks/${assigned.body.id}/complete`)).status).toBe(200);
    await until(
      () => call('GET', `/v1/usertasks/${assigned.body.id}`),
      (answer) => answer.body.status === 'funded',
      'funding',
    );
    userTasks.push(assigned.body.id);
  }
  return userTasks;
}

// biome-ignore lint/suspicious/noExplicitAny: tests read the fields they selected
export async function sandboxGraphql(sandbox: RunningSandbox, query: string, variables: object): Promise<any> {
  const response = await fetch(sandbox.graphqlUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Basic ${Buffer.from('sk_test_cards:').toString('base64')}`,
    },
    body: JSON.stringify({ query, variables }),
  });
  // biome-ignore lint/suspicious/noExplicitAny: as above
  const body = (await response.json()) as { data: any; errors?: unknown };
  expect(body.errors).toBeUndefined();
  expect(response.status).toBe(200);
  return body.data;
}

const cents = (dollars: number) => ({ value: Math.round(dollars * 100), currencyCode: 'USD' });

/** An authorization at a named merchant; answers the transaction id (approved or not). */
export async function authorize(sandbox: RunningSandbox, paymentCardId: string, dollars: number, merchant: string) {
  const data = await sandboxGraphql(
    sandbox,
    `mutation ($input: SimulateAuthorizationInput!) {
      simulateAuthorization(input: $input) {
        __typename
        ... on AuthorizationEvent { responseCode transaction { ... on Node { id } } }
        ... on UserError { errors { code description } }
      }
    }`,
    {
      input: {
        cardId: paymentCardId,
        amount: cents(dollars),
        merchantDetails: { name: merchant, category: 'GROCERY_STORES_SUPERMARKETS', countryCodeAlpha3: 'USA' },
      },
    },
  );
  expect(data.simulateAuthorization.__typename).toBe('AuthorizationEvent');
  return {
    transactionId: data.simulateAuthorization.transaction.id as string,
    responseCode: data.simulateAuthorization.responseCode as string,
  };
}

/** A clearing, reversal or refund of an earlier authorization. */
export async function followUp(
  sandbox: RunningSandbox,
  kind: 'Clearing' | 'Reversal' | 'Refund',
  transactionId: string,
  dollars: number,
) {
  const data = await sandboxGraphql(
    sandbox,
    `mutation ($input: Simulate${kind}Input!) {
      simulate${kind}(input: $input) { __typename ... on UserError { errors { code description } } }
    }`,
    { input: { transactionId, amount: cents(dollars) } },
  );
  expect(data[`simulate${kind}`].__typename).not.toBe('UserError');
}

/**
 * Three purchases on the card: $100 cleared; $50 authorized then reversed; $60 cleared of which
 * $20 refunded. $140 spent in all.
 */
export async function threePurchases(sandbox: RunningSandbox, paymentCardId: string) {
  const groceries = await authorize(sandbox, paymentCardId, 100, 'CORNER GROCERY');
  expect(groceries.responseCode).toBe('APPROVED');
  await followUp(sandbox, 'Clearing', groceries.transactionId, 100);
  const hotel = await authorize(sandbox, paymentCardId, 50, 'ROADSIDE HOTEL');
  await followUp(sandbox, 'Reversal', hotel.transactionId, 50);
  const boots = await authorize(sandbox, paymentCardId, 60, 'WORKWEAR SUPPLY');
  await followUp(sandbox, 'Clearing', boots.transactionId, 60);
  await followUp(sandbox, 'Refund', boots.transactionId, 20);
  return { groceries: groceries.transactionId, hotel: hotel.transactionId, boots: boots.transactionId };
}
