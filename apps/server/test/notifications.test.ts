import { createHmac } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from '../../../packages/highnote-sandbox/src/index.js';
import { signatureToleranceMs } from '../src/notifications/signature.js';
import { retireSigningKey, targetOf } from '../src/notifications/targets.js';
import { fundedMilestones, participantWithCard, threePurchases } from './card-flow.js';
import { type Client, countRows, newOrganization, pollUntil, startTestServer, type TestServer } from './harness.js';

// Highnote's notifications in, over real HTTP: the sandbox registers the test server's own URL as
// each organization's notification target and POSTs signed notifications to it.

const pollDeadlineMs = 20_000;

let sandbox: RunningSandbox;
let server: TestServer;

beforeAll(async () => {
  sandbox = await startSandbox({
    port: 0,
    applicationApprovalDelayMs: 20,
    transferSettlementDelayMs: 20,
    notificationRetryDelaysMs: [50, 100, 200, 400],
  });
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
}

/** A notification target as the sandbox holds it, through its GraphQL API. */
async function sandboxTarget(targetId: string) {
  const response = await fetch(sandbox.graphqlUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Basic ${Buffer.from('sk_test_x:').toString('base64')}`,
    },
    body: JSON.stringify({
      query: `query ($id: ID!) { node(id: $id) { ... on WebhookNotificationTarget { status signingKeys { id secret } } } }`,
      variables: { id: targetId },
    }),
  });
  const body = (await response.json()) as {
    data: { node: { status: string; signingKeys: { id: string; secret: string }[] } };
  };
  return body.data.node;
}

/** An organization configured on the sandbox whose notification target is ACTIVE. */
async function organizationWithTarget(name: string) {
  const org = await newOrganization(server, name);
  expect((await org.call('GET', '/v1/configurations')).status).toBe(200);
  const target = await until(
    () => targetOf(server.database.db, org.id),
    (row) => row?.status === 'registered',
    'the notification target to be registered',
  );
  const targetId = target?.target_id as string;
  expect(target?.uri).toBe(`${server.baseUrl}/v1/webhooks?organizationId=${org.id}`);
  await until(
    () => sandboxTarget(targetId),
    (node) => node.status === 'ACTIVE',
    'the target to be ACTIVE',
  );
  return { ...org, targetId };
}

/**
 * Person → application → card (suspended and activated again) → two milestones completed and
 * settled → three purchases. With notifications dropped, a reconciliation run recovers the spend.
 */
async function fullFlow(call: Client, options: { reconcile?: boolean } = {}) {
  const participant = await participantWithCard(call);
  expect((await call('POST', `/v1/cards/${participant.cardId}/suspend`)).status).toBe(200);
  expect((await call('POST', `/v1/cards/${participant.cardId}/activate`)).status).toBe(200);
  const program = await call('POST', '/v1/programs', { name: 'P', totalAwardPool: 1_000, maxParticipants: 10 });
  // Each funded before the next completes: the disbursements settle in this order, which the
  // spend's first-in-first-out attribution follows.
  const userTasks = await fundedMilestones(call, program.body.id, participant.userId, [125, 40.5]);
  const purchases = await threePurchases(sandbox, participant.paymentCardId);
  if (options.reconcile === true) {
    const run = await call('POST', '/v1/reconciliation/runs');
    expect(run.status).toBe(201);
    await until(
      () => call('GET', `/v1/reconciliation/runs/${run.body.id}`),
      (answer) => answer.body.status === 'completed',
      'the reconciliation run',
    );
  }
  await until(
    () => call('GET', `/v1/users/${participant.userId}/spend`),
    (answer) =>
      answer.body.data?.length === 3 &&
      answer.body.data.every((spend: { status: string }) => spend.status !== 'authorized') &&
      answer.body.data.some((spend: { status: string }) => spend.status === 'refunded'),
    'the spend',
  );
  // Let late and doubled notifications land before the states are read.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const spend = await call('GET', `/v1/users/${participant.userId}/spend`);
  const transactionNames = new Map([
    [purchases.groceries, 'groceries'],
    [purchases.hotel, 'hotel'],
    [purchases.boots, 'boots'],
  ]);
  const finalCard = await call('GET', `/v1/cards/${participant.cardId}`);
  const finalApplication = await call('GET', `/v1/applications/${participant.applicationId}`);
  const disbursements = await call('GET', '/v1/disbursements');
  const finalProgram = await call('GET', `/v1/programs/${program.body.id}`);
  const ledger = await call('GET', `/v1/programs/${program.body.id}/ledger`);
  const events = await call('GET', '/v1/events?limit=100');
  const eventCounts: Record<string, number> = {};
  for (const event of events.body.data) {
    // A reconciliation run is how lost notifications are recovered, not a state of the flow.
    if (event.type !== 'reconciliation.completed') eventCounts[event.type] = (eventCounts[event.type] ?? 0) + 1;
  }
  return {
    application: finalApplication.body.status,
    card: finalCard.body.status,
    disbursements: disbursements.body.data.map(
      (d: { status: string; amount: number; spent: number; remaining: number }) => [
        d.status,
        d.amount,
        d.spent,
        d.remaining,
      ],
    ),
    spend: spend.body.data
      .map(
        (s: {
          highnoteTransactionId: string;
          status: string;
          amount: number;
          attributions: { userTaskId: string; amount: number }[];
        }) => ({
          purchase: transactionNames.get(s.highnoteTransactionId),
          status: s.status,
          amount: s.amount,
          attributions: s.attributions.map((a) => [userTasks.indexOf(a.userTaskId), a.amount]),
        }),
      )
      .sort((a: { purchase: string }, b: { purchase: string }) => a.purchase.localeCompare(b.purchase)),
    balances: finalProgram.body.balances,
    ledgerEntries: ledger.body.data?.length ?? null,
    eventCounts,
  };
}

async function storedNotifications(organizationId: string): Promise<string[]> {
  const rows = await sql<{ name: string }>`
    SELECT name FROM highnote_notifications WHERE organization_id = ${organizationId} ORDER BY received_at`.execute(
    server.database.db,
  );
  return rows.rows.map((row) => row.name);
}

describe('notifications from Highnote', () => {
  let clean: Awaited<ReturnType<typeof fullFlow>>;

  it('registers a target per organization and applies a full flow delivered normally', async () => {
    const org = await organizationWithTarget('Normal delivery');
    clean = await fullFlow(org.call);
    expect(clean.application).toBe('approved');
    expect(clean.card).toBe('active');
    expect(clean.disbursements).toEqual([
      ['settled', 40.5, 15, 25.5],
      ['settled', 125, 125, 0],
    ]);
    expect(clean.spend).toEqual([
      {
        purchase: 'boots',
        status: 'refunded',
        amount: 40,
        attributions: [
          [0, 25],
          [1, 15],
        ],
      },
      { purchase: 'groceries', status: 'cleared', amount: 100, attributions: [[0, 100]] },
      { purchase: 'hotel', status: 'reversed', amount: 0, attributions: [] },
    ]);
    const names = await storedNotifications(org.id);
    expect(names).toContain('NOTIFICATION_ACTIVATION');
    expect(names).toContain('CARD_PRODUCT_APPLICATION_APPROVED');
    expect(names).toContain(
      'INTERNAL_TRANSFER_FROM_FUNDING_FINANCIAL_ACCOUNT_TO_PAYMENT_CARD_FINANCIAL_ACCOUNT_COMPLETED',
    );
    expect(names).toContain('PAYMENT_CARD_SUSPENDED');
    // Every apply job ran to its end.
    const dead = await sql<{ count: string | number }>`
      SELECT count(*) AS count FROM jobs WHERE organization_id = ${org.id} AND status = 'dead'`.execute(
      server.database.db,
    );
    expect(Number(dead.rows[0]?.count)).toBe(0);
  });

  for (const mode of ['duplicate', 'reverse', 'drop'] as const) {
    it(`ends in the same states and ledger when the sandbox delivers in ${mode} mode`, async () => {
      const org = await organizationWithTarget(`Mode ${mode}`);
      await control('/_sandbox/notifications', mode === 'reverse' ? { mode, holdMs: 150 } : { mode });
      try {
        const outcome = await fullFlow(org.call, { reconcile: mode === 'drop' });
        expect(outcome).toEqual(clean);
        const names = await storedNotifications(org.id);
        // Stored once per notification event id, however often it arrived.
        const unique = await sql<{ count: string | number }>`
          SELECT count(DISTINCT id) AS count FROM highnote_notifications WHERE organization_id = ${org.id}`.execute(
          server.database.db,
        );
        expect(Number(unique.rows[0]?.count)).toBe(names.length);
        if (mode === 'drop') expect(names).toEqual(['NOTIFICATION_ACTIVATION']);
        else expect(names.length).toBeGreaterThan(5);
      } finally {
        await control('/_sandbox/notifications', { mode: 'normal' });
      }
    });
  }
});

describe('POST /v1/webhooks refuses what it cannot verify', () => {
  let org: Awaited<ReturnType<typeof organizationWithTarget>>;
  let secret: string;

  beforeAll(async () => {
    org = await organizationWithTarget('Verification');
    const keys = (await sandboxTarget(org.targetId)).signingKeys;
    expect(keys).toHaveLength(1);
    secret = keys[0]?.secret as string;
  });

  const envelope = (id: string, name: string, timestamp = Date.now()) =>
    JSON.stringify({
      data: { node: { __typename: 'NotificationEvent', id, name, createdAt: new Date().toISOString(), node: {} } },
      extensions: { signatureTimestamp: timestamp },
    });
  const sign = (body: string, ...secrets: string[]) =>
    secrets.map((key) => createHmac('sha256', key).update(body).digest('hex')).join(',');

  async function post(body: string, signature: string, organizationId = org.id, headers: Record<string, string> = {}) {
    const response = await fetch(`${server.baseUrl}/v1/webhooks?organizationId=${organizationId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'highnote-signature': signature, ...headers },
      body,
    });
    return { status: response.status, body: (await response.json()) as { error?: { code: string } } };
  }

  const stored = () => countRows(server, 'highnote_notifications', org.id);

  it('answers a forged signature, a stale timestamp and an unknown organization with 401, storing nothing', async () => {
    const before = await stored();
    const body = envelope('ne_forged', 'PAYMENT_CARD_CLOSED');
    for (const attempt of [
      await post(body, sign(body, 'not-the-secret')),
      await post(body, ''),
      await post(body, sign(`${body} `, secret)),
      await post(
        envelope('ne_stale', 'PAYMENT_CARD_CLOSED', Date.now() - signatureToleranceMs - 60_000),
        sign(envelope('ne_stale', 'PAYMENT_CARD_CLOSED', Date.now() - signatureToleranceMs - 60_000), secret),
      ),
      await post(body, sign(body, secret), 'org_01unknown'),
    ]) {
      expect(attempt.status).toBe(401);
      expect(attempt.body.error?.code).toBe('unauthorized');
    }
    expect(await stored()).toBe(before);
  });

  it('rejects a stale timestamp even with a valid signature', async () => {
    const body = envelope('ne_stale_2', 'PAYMENT_CARD_CLOSED', Date.now() + signatureToleranceMs + 60_000);
    const answer = await post(body, sign(body, secret));
    expect(answer.status).toBe(401);
    expect(await countRows(server, 'highnote_notifications', org.id)).toBe(await stored());
  });

  it('answers a malformed body with a valid signature with 400, storing nothing', async () => {
    const before = await stored();
    const body = '{"data": {"node": ';
    const answer = await post(body, sign(body, secret));
    expect(answer.status).toBe(400);
    expect(answer.body.error?.code).toBe('validation_error');
    const noId = JSON.stringify({ data: {}, extensions: { signatureTimestamp: Date.now() } });
    expect((await post(noId, sign(noId, secret))).status).toBe(400);
    expect(await stored()).toBe(before);
  });

  it('stores an unknown event once and acknowledges its replay without applying it again', async () => {
    const before = await stored();
    const body = envelope('ne_replayed_1', 'SOME_FUTURE_EVENT');
    const first = await post(body, sign(body, secret));
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ received: true, duplicate: false });
    const replayed = await post(body, sign(body, secret), org.id, { 'highnote-replay': 'true' });
    expect(replayed.status).toBe(200);
    expect(replayed.body).toEqual({ received: true, duplicate: true });
    expect(await stored()).toBe(before + 1);
    const jobs = await sql<{ count: string | number }>`
      SELECT count(*) AS count FROM jobs
      WHERE organization_id = ${org.id} AND name = 'notifications.apply' AND payload->>'notificationId' = 'ne_replayed_1'`.execute(
      server.database.db,
    );
    expect(Number(jobs.rows[0]?.count)).toBe(1);
  });

  it('verifies against every active key during a rotation, and refuses a key once it is dropped', async () => {
    const shown = await org.call('GET', '/v1/configurations/notification-target');
    expect(shown.body).toMatchObject({ status: 'registered', highnoteTargetId: org.targetId });
    expect(shown.body.signingKeys).toHaveLength(1);
    const rotated = await org.call('POST', '/v1/configurations/notification-target/rotate-key');
    expect(rotated.status).toBe(200);
    expect(rotated.body.signingKeys).toHaveLength(2);
    expect(JSON.stringify(rotated.body)).not.toContain(secret);
    const keys = (await sandboxTarget(org.targetId)).signingKeys;
    expect(keys).toHaveLength(2);
    const [oldKey, newKey] = keys as [{ id: string; secret: string }, { id: string; secret: string }];
    expect(oldKey.secret).toBe(secret);
    const both = envelope('ne_rotation_both', 'SOME_FUTURE_EVENT');
    expect((await post(both, sign(both, newKey.secret, oldKey.secret))).status).toBe(200);
    const newOnly = envelope('ne_rotation_new', 'SOME_FUTURE_EVENT');
    expect((await post(newOnly, sign(newOnly, newKey.secret))).status).toBe(200);

    expect(await retireSigningKey(server.database.db, org.id, oldKey.id)).toBe(true);
    const before = await stored();
    const oldOnly = envelope('ne_rotation_old', 'SOME_FUTURE_EVENT');
    const refused = await post(oldOnly, sign(oldOnly, oldKey.secret));
    expect(refused.status).toBe(401);
    expect(await stored()).toBe(before);
    const stillBoth = envelope('ne_rotation_after', 'SOME_FUTURE_EVENT');
    expect((await post(stillBoth, sign(stillBoth, newKey.secret, oldKey.secret))).status).toBe(200);
  });
});
