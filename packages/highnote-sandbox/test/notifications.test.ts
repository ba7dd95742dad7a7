import { createHmac, timingSafeEqual } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from '../src/index.js';
import {
  control,
  eventsNamed,
  fundedCard,
  gql,
  mutate,
  pollUntil,
  type ReceivedRequest,
  type Receiver,
  startReceiver,
  usd,
} from './helpers.js';

const TRANSFER_COMPLETED =
  'INTERNAL_TRANSFER_FROM_FUNDING_FINANCIAL_ACCOUNT_TO_PAYMENT_CARD_FINANCIAL_ACCOUNT_COMPLETED';
const SUBSCRIPTIONS = [
  TRANSFER_COMPLETED,
  'PAYMENT_CARD_ISSUED',
  'PAYMENT_CARD_SUSPENDED',
  'PAYMENT_CARD_AUTHORIZATION_APPROVED',
  'PAYMENT_CARD_AUTHORIZATION_DECLINED',
  'CARD_PRODUCT_APPLICATION_APPROVED',
];
const TARGET_FIELDS =
  '... on WebhookNotificationTarget { id name uri status subscriptions signingKeys { id secret createdAt expiresAt } }';

let sandbox: RunningSandbox;
let receiver: Receiver;

beforeAll(async () => {
  sandbox = await startSandbox({
    applicationApprovalDelayMs: 5,
    transferSettlementDelayMs: 5,
    notificationRetryDelaysMs: [20, 20],
  });
});

afterAll(async () => {
  await sandbox.close();
});

beforeEach(async () => {
  await control(sandbox, '/_sandbox/reset');
  receiver = await startReceiver();
});

afterEach(async () => {
  await receiver.close();
});

/** The receiver's check: one of the comma-separated signatures is the HMAC of the raw body. */
function signedWith(request: ReceivedRequest, secret: string): boolean {
  const expected = Buffer.from(createHmac('sha256', secret).update(request.body).digest('hex'));
  const header = String(request.headers['highnote-signature'] ?? '');
  return header
    .split(',')
    .map((part) => Buffer.from(part.trim()))
    .some((part) => part.length === expected.length && timingSafeEqual(part, expected));
}

async function addTarget(subscriptions: string[] = SUBSCRIPTIONS, uri = receiver.url) {
  const target = await mutate(
    sandbox,
    'addWebhookNotificationTarget',
    'AddWebhookNotificationTargetInput',
    { name: 'Tranche', uri, subscriptions },
    TARGET_FIELDS,
  );
  expect(target).toMatchObject({ __typename: 'WebhookNotificationTarget', status: 'PENDING_VERIFICATION' });
  return target;
}

async function targetStatus(id: string): Promise<string> {
  const data = await gql(
    sandbox,
    'query ($id: ID!) { node(id: $id) { ... on WebhookNotificationTarget { status } } }',
    { id },
  );
  return data.node.status;
}

async function activeTarget(subscriptions?: string[], uri?: string) {
  const target = await addTarget(subscriptions, uri);
  expect(
    await pollUntil(
      () => targetStatus(target.id),
      (status) => status === 'ACTIVE',
    ),
  ).toBe('ACTIVE');
  return target;
}

async function received(name: string, count: number): Promise<ReceivedRequest[]> {
  return pollUntil(
    () => eventsNamed(receiver, name),
    (events) => events.length >= count,
  );
}

describe('webhook targets', () => {
  it('activates a target with a signed NOTIFICATION_ACTIVATION, then delivers a signed transfer-completed event', async () => {
    const target = await addTarget();
    const [secret] = target.signingKeys.map((key: { secret: string }) => key.secret);
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    const [activation] = await received('NOTIFICATION_ACTIVATION', 1);
    expect(activation).toBeDefined();
    if (!activation) return;
    expect(activation.headers['content-type']).toBe('application/json');
    expect(activation.headers['user-agent']).toBe('HighnotePlatform/1.0.0');
    expect(activation.headers['highnote-replay']).toBeUndefined();
    expect(signedWith(activation, secret)).toBe(true);
    expect(signedWith(activation, 'not the secret')).toBe(false);
    expect(activation.json).toMatchObject({
      data: {
        node: {
          __typename: 'NotificationEvent',
          id: expect.any(String),
          name: 'NOTIFICATION_ACTIVATION',
          createdAt: expect.any(String),
          node: { __typename: 'NotificationTargetActivationEvent', ping: 'pong' },
        },
      },
      extensions: { signatureTimestamp: expect.any(Number) },
    });
    expect(Math.abs(activation.json.extensions.signatureTimestamp - Date.now())).toBeLessThan(60_000);
    expect(
      await pollUntil(
        () => targetStatus(target.id),
        (status) => status === 'ACTIVE',
      ),
    ).toBe('ACTIVE');

    await fundedCard(sandbox, { loadCents: 12_345 });
    const [completed] = await received(TRANSFER_COMPLETED, 1);
    expect(completed).toBeDefined();
    if (!completed) return;
    expect(signedWith(completed, secret)).toBe(true);
    expect(completed.json.data.node.node).toMatchObject({
      __typename: 'InternalTransferFromFundingFinancialAccountToPaymentCardFinancialAccountCompletedEvent',
      id: expect.any(String),
      amount: { value: 12_345, currencyCode: 'USD' },
      internalTransferStatus: 'COMPLETED',
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect(await received('PAYMENT_CARD_ISSUED', 1)).toHaveLength(1);
    expect(await received('CARD_PRODUCT_APPLICATION_APPROVED', 1)).toHaveLength(1);
    // Subscribed to COMPLETED only, so the PENDING event was not sent.
    expect(receiver.requests.some((request) => request.json.data.node.name.endsWith('_PENDING'))).toBe(false);
  });

  it('leaves a target PENDING_VERIFICATION while the receiver refuses, and activates it on request', async () => {
    receiver.answer(503);
    const target = await addTarget();
    await received('NOTIFICATION_ACTIVATION', 3);
    expect(await targetStatus(target.id)).toBe('PENDING_VERIFICATION');
    receiver.answer(200);
    await mutate(
      sandbox,
      'activateNotificationTarget',
      'ActivateNotificationTargetInput',
      { targetId: target.id },
      TARGET_FIELDS,
    );
    expect(
      await pollUntil(
        () => targetStatus(target.id),
        (status) => status === 'ACTIVE',
      ),
    ).toBe('ACTIVE');
  });

  it('retries a failed delivery, and sends nothing to a deactivated target', async () => {
    const { cardId } = await fundedCard(sandbox, { loadCents: 1_000 });
    const approved = 'PAYMENT_CARD_AUTHORIZATION_APPROVED';
    const target = await activeTarget(['PAYMENT_CARD_SUSPENDED', approved]);
    receiver.failNext(2, 500);
    await mutate(sandbox, 'suspendPaymentCard', 'SuspendPaymentCardInput', { paymentCardId: cardId }, '');
    const attempts = await received('PAYMENT_CARD_SUSPENDED', 3);
    expect(attempts).toHaveLength(3);
    expect(new Set(attempts.map((attempt) => attempt.json.data.node.id)).size).toBe(1);
    await mutate(sandbox, 'activatePaymentCard', 'ActivatePaymentCardInput', { paymentCardId: cardId }, '');

    await mutate(
      sandbox,
      'deactivateNotificationTarget',
      'DeactivateNotificationTargetInput',
      { targetId: target.id },
      '',
    );
    const before = receiver.requests.length;
    const other = await startReceiver();
    try {
      await activeTarget([approved], other.url);
      await mutate(sandbox, 'simulateAuthorization', 'SimulateAuthorizationInput', { cardId, amount: usd(100) }, '');
      // The active second target got the event, so the deactivated first one had its chance and got nothing.
      await pollUntil(
        () => other.requests.length,
        (count) => count >= 2,
      );
      expect(other.requests.at(-1)?.json.data.node.name).toBe(approved);
      expect(receiver.requests.length).toBe(before);
    } finally {
      await other.close();
    }
  });

  it('signs with both keys while a rotated key overlaps, and marks replays', async () => {
    const target = await activeTarget();
    const oldSecret = target.signingKeys[0].secret;
    const rotated = await mutate(
      sandbox,
      'rotateNotificationTargetSigningKey',
      'RotateNotificationTargetSigningKeyInput',
      { targetId: target.id },
      TARGET_FIELDS,
    );
    expect(rotated.signingKeys).toHaveLength(2);
    const [retired, fresh] = rotated.signingKeys;
    expect(retired.secret).toBe(oldSecret);
    expect(Date.parse(retired.expiresAt) - Date.now()).toBeGreaterThan(23 * 60 * 60 * 1000);
    expect(fresh.expiresAt).toBeNull();

    await fundedCard(sandbox, { loadCents: 500 });
    const [completed] = await received(TRANSFER_COMPLETED, 1);
    if (!completed) throw new Error('no transfer event arrived');
    expect(String(completed.headers['highnote-signature']).split(',')).toHaveLength(2);
    expect(signedWith(completed, oldSecret)).toBe(true);
    expect(signedWith(completed, fresh.secret)).toBe(true);

    const eventId = completed.json.data.node.id;
    const replayed = await mutate(
      sandbox,
      'replayNotificationEvent',
      'ReplayNotificationEventInput',
      { notificationEventId: eventId },
      '... on NotificationEvent { id name }',
    );
    expect(replayed).toEqual({ __typename: 'NotificationEvent', id: eventId, name: TRANSFER_COMPLETED });
    const both = await received(TRANSFER_COMPLETED, 2);
    expect(both[1]?.headers['highnote-replay']).toBe('true');
    expect(both[1]?.json.data.node.id).toBe(eventId);
  });

  it('lists notification events, filtered by name', async () => {
    await fundedCard(sandbox, { loadCents: 700 });
    const data = await gql(
      sandbox,
      `query ($names: [NotificationEventName!]) {
        notificationEvents(filterBy: { name: $names }) {
          edges { node { id name node { __typename ... on InternalTransferFromFundingFinancialAccountToPaymentCardFinancialAccountCompletedEvent { amount { value } internalTransferStatus } } } }
        }
      }`,
      { names: [TRANSFER_COMPLETED] },
    );
    expect(data.notificationEvents.edges).toEqual([
      {
        node: {
          id: expect.any(String),
          name: TRANSFER_COMPLETED,
          node: {
            __typename: 'InternalTransferFromFundingFinancialAccountToPaymentCardFinancialAccountCompletedEvent',
            amount: { value: 700 },
            internalTransferStatus: 'COMPLETED',
          },
        },
      },
    ]);
  });
});

describe('delivery modes', () => {
  async function suspendAndResume(cardId: string) {
    await mutate(sandbox, 'suspendPaymentCard', 'SuspendPaymentCardInput', { paymentCardId: cardId }, '');
    await mutate(sandbox, 'activatePaymentCard', 'ActivatePaymentCardInput', { paymentCardId: cardId }, '');
  }

  it('duplicate sends every event twice', async () => {
    await activeTarget(['PAYMENT_CARD_SUSPENDED']);
    const { cardId } = await fundedCard(sandbox);
    await control(sandbox, '/_sandbox/notifications', { mode: 'duplicate' });
    await suspendAndResume(cardId);
    const copies = await received('PAYMENT_CARD_SUSPENDED', 2);
    expect(copies).toHaveLength(2);
    expect(copies[0]?.json.data.node.id).toBe(copies[1]?.json.data.node.id);
  });

  it('drop sends nothing, yet keeps the event for a replay', async () => {
    await activeTarget(['PAYMENT_CARD_SUSPENDED', 'PAYMENT_CARD_UNSUSPENDED']);
    const { cardId } = await fundedCard(sandbox);
    await control(sandbox, '/_sandbox/notifications', { mode: 'drop' });
    await mutate(sandbox, 'suspendPaymentCard', 'SuspendPaymentCardInput', { paymentCardId: cardId }, '');
    await control(sandbox, '/_sandbox/notifications', { mode: 'normal' });
    await mutate(sandbox, 'activatePaymentCard', 'ActivatePaymentCardInput', { paymentCardId: cardId }, '');
    // The event after the dropped one arrives; the dropped one never does.
    await received('PAYMENT_CARD_UNSUSPENDED', 1);
    expect(eventsNamed(receiver, 'PAYMENT_CARD_SUSPENDED')).toHaveLength(0);

    const stored = await gql(
      sandbox,
      '{ notificationEvents(filterBy: { name: [PAYMENT_CARD_SUSPENDED] }) { edges { node { id } } } }',
    );
    const [edge] = stored.notificationEvents.edges;
    await mutate(
      sandbox,
      'replayNotificationEvent',
      'ReplayNotificationEventInput',
      { notificationEventId: edge.node.id },
      '',
    );
    const [replayed] = await received('PAYMENT_CARD_SUSPENDED', 1);
    expect(replayed?.headers['highnote-replay']).toBe('true');
  });

  it('reverse holds deliveries and sends them newest first on flush', async () => {
    await activeTarget(['PAYMENT_CARD_SUSPENDED', 'PAYMENT_CARD_UNSUSPENDED']);
    const { cardId } = await fundedCard(sandbox);
    await control(sandbox, '/_sandbox/notifications', { mode: 'reverse' });
    await suspendAndResume(cardId);
    const before = receiver.requests.length;
    expect(await control(sandbox, '/_sandbox/notifications/flush')).toEqual({ ok: true, flushed: 2 });
    const arrived = await pollUntil(
      () => receiver.requests.slice(before),
      (requests) => requests.length >= 2,
    );
    expect(arrived.map((request) => request.json.data.node.name)).toEqual([
      'PAYMENT_CARD_UNSUSPENDED',
      'PAYMENT_CARD_SUSPENDED',
    ]);
  });

  it('refuses an unknown mode', async () => {
    const response = await fetch(`${sandbox.url}/_sandbox/notifications`, {
      method: 'POST',
      body: JSON.stringify({ mode: 'chaos' }),
    });
    expect(response.status).toBe(400);
  });
});
