import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from '../../../packages/highnote-sandbox/src/index.js';
import type { IssuerConnection } from '../src/issuer/graphql.js';
import { highnoteAdapter } from '../src/issuer/highnote.js';
import {
  type AttachedRule,
  attachedRulesOf,
  highnoteRulesFor,
  spendRuleNamePrefix,
  syncCardSpendRules,
} from '../src/issuer/spend-rules.js';
import type { Result } from '../src/platform/errors.js';
import {
  allowsNothing,
  combineSpendControls,
  noSpendControls,
  parseSpendControls,
  presentSpendControls,
  type SpendControls,
  type SpendControlsBody,
  spendControlsDigest,
  spendControlsFromStorage,
  spendControlsToStorage,
} from '../src/programs/spend-controls.js';
import { countRows, newOrganization, pollUntil, startTestServer, type TestServer } from './harness.js';
import { sandboxCardholder } from './sandbox-cardholder.js';

// A program's spend controls: parsing and its refusals, the most restrictive combination over a
// card's programs, the translation to Highnote rules, the program routes that carry them, and the
// sync of a card's rules over real HTTP against the sandbox (no fetch stubs), judged by simulated
// authorizations.

function parsed(body: SpendControlsBody): SpendControls {
  const result = parseSpendControls(body, 'spendControls');
  if (!result.ok) throw new Error(result.failure.message);
  return result.value;
}

function refusal(result: Result<unknown>) {
  return result.ok ? undefined : result.failure;
}

describe('parsing a program’s spend controls', () => {
  it('turns dollars into cents and normalizes the lists: sorted, windows in order', () => {
    const controls = parsed({
      perTransactionLimit: 100.5,
      windowLimits: [
        { amount: 2000, window: 'monthly' },
        { amount: 500, window: 'weekly' },
      ],
      allowedMccs: ['5812', '5411'],
      blockedMerchantCategories: ['GUNS_AMMO', 'BETTING_CASINO_GAMBLING'],
      blockCash: true,
      blockedTerminalTypes: ['fuel', 'atm'],
    });
    expect(controls).toEqual({
      ...noSpendControls,
      perTransactionLimitCents: 10_050n,
      windowLimits: [
        { window: 'weekly', amountCents: 50_000n },
        { window: 'monthly', amountCents: 200_000n },
      ],
      allowedMccs: ['5411', '5812'],
      blockedMerchantCategories: ['BETTING_CASINO_GAMBLING', 'GUNS_AMMO'],
      blockCash: true,
      blockedTerminalTypes: ['atm', 'fuel'],
    });
    expect(parsed({})).toEqual(noSpendControls);
    expect(parsed({ blockCash: false })).toEqual(noSpendControls);
  });

  it('refuses what the schema cannot see, naming the field by its dotted path', () => {
    expect(refusal(parseSpendControls({ perTransactionLimit: 10.005 }, 'spendControls'))).toEqual({
      code: 'validation_error',
      message: 'spendControls.perTransactionLimit must have at most two decimal places',
      param: 'spendControls.perTransactionLimit',
    });
    expect(
      refusal(
        parseSpendControls(
          {
            windowLimits: [
              { amount: 10, window: 'daily' },
              { amount: 0.001, window: 'weekly' },
            ],
          },
          'spendControls',
        ),
      ),
    ).toMatchObject({ code: 'validation_error', param: 'spendControls.windowLimits.1.amount' });
    expect(
      refusal(
        parseSpendControls(
          {
            windowLimits: [
              { amount: 10, window: 'daily' },
              { amount: 20, window: 'daily' },
            ],
          },
          'spendControls',
        ),
      ),
    ).toMatchObject({ code: 'validation_error', param: 'spendControls.windowLimits.1.window' });
    expect(
      refusal(
        parseSpendControls({ blockedMerchantCategories: ['GROCERY_STORES_SUPERMARKETS', 'CANDY'] }, 'spendControls'),
      ),
    ).toEqual({
      code: 'validation_error',
      message: 'spendControls.blockedMerchantCategories.1 is not a Highnote MerchantCategory',
      param: 'spendControls.blockedMerchantCategories.1',
    });
  });

  it('refuses an entry both allowed and blocked, in each of the three pairs of lists', () => {
    for (const [allowed, blocked, other, entry] of [
      ['allowedMerchantCategories', 'blockedMerchantCategories', 'BOOK_STORES', 'GUNS_AMMO'],
      ['allowedMccs', 'blockedMccs', '7995', '5411'],
      ['allowedMerchantIds', 'blockedMerchantIds', 'MID41', 'MID42'],
    ] as const) {
      const failure = refusal(parseSpendControls({ [allowed]: [entry], [blocked]: [other, entry] }, 'spendControls'));
      expect(failure).toMatchObject({ code: 'validation_error', param: `spendControls.${blocked}.1` });
      expect(failure?.message).toContain(`is also in spendControls.${allowed}`);
    }
  });

  it('stores cents as strings, reads back the same controls, and presents what it was given', () => {
    const body: SpendControlsBody = {
      perTransactionLimit: 100,
      windowLimits: [{ amount: 500, window: 'weekly' }],
      allowedMerchantCategories: ['GROCERY_STORES_SUPERMARKETS'],
      blockedMerchantIds: ['MID00099999'],
      blockCash: true,
      blockedTerminalTypes: ['atm'],
    };
    const controls = parsed(body);
    const stored = spendControlsToStorage(controls);
    expect(JSON.parse(stored)).toEqual({
      perTransactionLimitCents: '10000',
      windowLimits: [{ window: 'weekly', amountCents: '50000' }],
      allowedMerchantCategories: ['GROCERY_STORES_SUPERMARKETS'],
      blockedMerchantIds: ['MID00099999'],
      blockCash: true,
      blockedTerminalTypes: ['atm'],
    });
    expect(spendControlsFromStorage(JSON.parse(stored))).toEqual(controls);
    expect(spendControlsFromStorage({})).toEqual(noSpendControls);
    expect(presentSpendControls(controls)).toEqual(body);
    expect(presentSpendControls(noSpendControls)).toEqual({});
  });

  it('asserts the storage form it reads: a shape it did not write is a bug', () => {
    expect(() => spendControlsFromStorage({ perTransactionLimitCents: 100 })).toThrow(/not cents/);
    expect(() => spendControlsFromStorage({ blockedTerminalTypes: ['tram'] })).toThrow(/terminal type/);
    expect(() => spendControlsFromStorage({ perTransactionLimit: '1' })).toThrow(/unknown field/);
  });

  it('digests equal controls equally, whatever the order they were given in', () => {
    const a = parsed({ blockedMccs: ['7995', '5933'], windowLimits: [{ amount: 1, window: 'daily' }] });
    const b = parsed({ windowLimits: [{ amount: 1, window: 'daily' }], blockedMccs: ['5933', '7995'] });
    expect(spendControlsDigest(a)).toBe(spendControlsDigest(b));
    expect(spendControlsDigest(a)).toMatch(/^[0-9a-f]{64}$/);
    expect(spendControlsDigest(a)).not.toBe(spendControlsDigest(parsed({ blockedMccs: ['7995'] })));
    // Allowing nothing is not the same as allowing anything.
    expect(spendControlsDigest({ ...noSpendControls, allowedMccs: [] })).not.toBe(spendControlsDigest(noSpendControls));
  });
});

describe('combining the controls of a card’s programs: the most restrictive', () => {
  const training = parsed({
    perTransactionLimit: 250,
    windowLimits: [
      { amount: 500, window: 'weekly' },
      { amount: 1500, window: 'monthly' },
    ],
    allowedMerchantCategories: ['BOOK_STORES', 'GROCERY_STORES_SUPERMARKETS', 'EATING_PLACES_RESTAURANTS'],
    blockedMccs: ['7995'],
    blockedTerminalTypes: ['atm'],
  });
  const meals = parsed({
    perTransactionLimit: 100,
    windowLimits: [
      { amount: 800, window: 'weekly' },
      { amount: 60, window: 'daily' },
    ],
    allowedMerchantCategories: ['EATING_PLACES_RESTAURANTS', 'GROCERY_STORES_SUPERMARKETS', 'FAST_FOOD_RESTAURANTS'],
    blockedMerchantIds: ['MID00099999'],
    blockCash: true,
  });
  const open = parsed({
    blockedTerminalTypes: ['fuel'],
    allowedMerchantIds: ['MID00012345'],
    blockedMerchantCategories: ['GROCERY_STORES_SUPERMARKETS'],
  });

  it('takes the smallest limits, intersects the allow-lists, and blocks everything any program blocks', () => {
    expect(combineSpendControls([training, meals, open])).toEqual({
      perTransactionLimitCents: 10_000n,
      windowLimits: [
        { window: 'daily', amountCents: 6_000n },
        { window: 'weekly', amountCents: 50_000n },
        { window: 'monthly', amountCents: 150_000n },
      ],
      // Two programs allow groceries, but the third blocks them: blocked wins.
      allowedMerchantCategories: ['EATING_PLACES_RESTAURANTS'],
      blockedMerchantCategories: ['GROCERY_STORES_SUPERMARKETS'],
      allowedMccs: null,
      blockedMccs: ['7995'],
      allowedMerchantIds: ['MID00012345'],
      blockedMerchantIds: ['MID00099999'],
      blockCash: true,
      blockedTerminalTypes: ['atm', 'fuel'],
    });
  });

  it('is the program itself for one program, and no controls for none', () => {
    expect(combineSpendControls([training])).toEqual(training);
    expect(combineSpendControls([])).toEqual(noSpendControls);
    expect(combineSpendControls([noSpendControls, meals])).toEqual(meals);
    expect(combineSpendControls([training, training])).toEqual(training);
  });

  it('does not depend on the order of the programs', () => {
    const forward = combineSpendControls([training, meals, open]);
    expect(spendControlsDigest(combineSpendControls([open, meals, training]))).toBe(spendControlsDigest(forward));
  });

  it('allows nothing when two programs allow disjoint lists: an empty allow-list, not none', () => {
    const books = parsed({ allowedMerchantCategories: ['BOOK_STORES'] });
    const food = parsed({ allowedMerchantCategories: ['FAST_FOOD_RESTAURANTS'] });
    const both = combineSpendControls([books, food]);
    expect(both.allowedMerchantCategories).toEqual([]);
    expect(allowsNothing(both)).toBe(true);
    expect(allowsNothing(books)).toBe(false);
    expect(presentSpendControls(both)).toEqual({ allowedMerchantCategories: [] });
    // On Highnote: a limit of zero, since an allow-list must have an entry.
    expect(highnoteRulesFor(both)).toEqual([
      expect.objectContaining({
        kind: 'spend',
        mutation: 'createAmountLimitSpendRule',
        input: expect.objectContaining({ maximumAmount: { value: 0, currencyCode: 'USD' } }),
      }),
    ]);
  });
});

describe('the translation to Highnote rules', () => {
  it('gives each dimension its rule, named by what it says', () => {
    const rules = highnoteRulesFor(
      parsed({
        perTransactionLimit: 100,
        windowLimits: [{ amount: 500, window: 'weekly' }],
        allowedMerchantCategories: ['GROCERY_STORES_SUPERMARKETS'],
        blockedMerchantCategories: ['BETTING_CASINO_GAMBLING'],
        blockedMccs: ['7995'],
        allowedMerchantIds: ['MID00012345'],
        blockCash: true,
        blockedTerminalTypes: ['atm', 'fuel'],
      }),
    );
    const withoutNames = rules.map((rule) => {
      const { name, ...rest } = rule;
      expect(name).toMatch(/^tranche [a-z-]+ [0-9a-f]{16}$/);
      if (rest.kind === 'spend') expect(rest.input.name).toBe(name);
      return rest.kind === 'spend' ? { ...rest, input: { ...rest.input, name: undefined } } : rest;
    });
    expect(withoutNames).toEqual([
      {
        kind: 'spend',
        mutation: 'createAmountLimitSpendRule',
        input: { name: undefined, maximumAmount: { value: 10_000, currencyCode: 'USD' } },
      },
      { kind: 'velocity', window: 'WEEKLY', maximumAmountCents: 50_000n },
      {
        kind: 'spend',
        mutation: 'createMerchantCategorySpendRule',
        input: { name: undefined, allowed: ['GROCERY_STORES_SUPERMARKETS'], blocked: ['BETTING_CASINO_GAMBLING'] },
      },
      { kind: 'spend', mutation: 'createMerchantCategorySpendRule', input: { name: undefined, blockedMcc: ['7995'] } },
      {
        kind: 'spend',
        mutation: 'createMerchantIdentifierSpendRule',
        input: { name: undefined, allowed: ['MID00012345'] },
      },
      {
        kind: 'spend',
        mutation: 'createCardTransactionProcessingTypeConditionSpendRule',
        input: {
          name: undefined,
          blocked: ['CASH', 'GOODS_AND_SERVICES_WITH_CASH_DISBURSEMENT', 'QUASI_CASH_AND_SCRIP'],
        },
      },
      {
        kind: 'spend',
        mutation: 'createPointOfServiceCategorySpendRule',
        input: { name: undefined, blocked: ['AUTOMATED_TELLER_MACHINE', 'AUTOMATED_FUEL_DISPENSER'] },
      },
    ]);
    expect(highnoteRulesFor(noSpendControls)).toEqual([]);
  });

  it('names a rule by its content: the same controls, the same names; a changed limit, a new name', () => {
    const names = (body: SpendControlsBody) => highnoteRulesFor(parsed(body)).map((rule) => rule.name);
    expect(names({ perTransactionLimit: 100, blockCash: true })).toEqual(
      names({ blockCash: true, perTransactionLimit: 100 }),
    );
    const [hundred] = names({ perTransactionLimit: 100 });
    const [fifty] = names({ perTransactionLimit: 50 });
    expect(hundred).not.toBe(fifty);
  });

  it('splits a block-list longer than Highnote takes over several rules', () => {
    const merchants = Array.from({ length: 5_001 }, (_, index) => `MID${String(index).padStart(6, '0')}`);
    const rules = highnoteRulesFor({ ...noSpendControls, blockedMerchantIds: merchants });
    expect(rules.map((rule) => (rule.kind === 'spend' ? (rule.input.blocked as string[]).length : 0))).toEqual([
      5_000, 1,
    ]);
  });
});

let server: TestServer;
let org: Awaited<ReturnType<typeof newOrganization>>;

beforeAll(async () => {
  server = await startTestServer();
  org = await newOrganization(server);
});

afterAll(async () => {
  await server.close();
});

const programBody = { name: 'OSHA completion funding', totalAwardPool: 1000, maxParticipants: 10 };

async function storedControls(programId: string): Promise<unknown> {
  const result = await sql<{ spend_controls: unknown }>`
    SELECT spend_controls FROM programs WHERE organization_id = ${org.id} AND id = ${programId}`.execute(
    server.database.db,
  );
  return result.rows[0]?.spend_controls;
}

describe('spend controls on the program routes', () => {
  const controls = {
    perTransactionLimit: 100,
    windowLimits: [{ amount: 500, window: 'weekly' }],
    blockedMerchantCategories: ['BETTING_CASINO_GAMBLING'],
    blockCash: true,
    blockedTerminalTypes: ['atm'],
  };

  it('a program is created with spend controls, presents them, and stores cents', async () => {
    const created = await org.call('POST', '/v1/programs', { ...programBody, spendControls: controls });
    expect(created.status).toBe(201);
    expect(created.body.spendControls).toEqual(controls);
    const read = await org.call('GET', `/v1/programs/${created.body.id}`);
    expect(read.body.spendControls).toEqual(controls);
    expect(await storedControls(created.body.id)).toEqual({
      perTransactionLimitCents: '10000',
      windowLimits: [{ window: 'weekly', amountCents: '50000' }],
      blockedMerchantCategories: ['BETTING_CASINO_GAMBLING'],
      blockCash: true,
      blockedTerminalTypes: ['atm'],
    });
  });

  it('a program created without them has none: `{}`', async () => {
    const created = await org.call('POST', '/v1/programs', programBody);
    expect(created.body.spendControls).toEqual({});
    expect(await storedControls(created.body.id)).toEqual({});
  });

  it('PATCH replaces the controls as a whole, the answer and the event show them, `{}` removes them', async () => {
    const created = await org.call('POST', '/v1/programs', { ...programBody, spendControls: controls });
    const id = created.body.id;
    const next = { perTransactionLimit: 50.25, allowedMccs: ['5411'] };
    const patched = await org.call('PATCH', `/v1/programs/${id}`, { spendControls: next });
    expect(patched.status).toBe(200);
    expect(patched.body.spendControls).toEqual(next);
    expect((await org.call('GET', `/v1/programs/${id}`)).body.spendControls).toEqual(next);
    expect(await storedControls(id)).toEqual({ perTransactionLimitCents: '5025', allowedMccs: ['5411'] });
    const events = await org.call('GET', '/v1/events?type=program.updated&limit=1');
    expect(events.body.data[0].data.object).toMatchObject({ id, spendControls: next });

    // Another field alone leaves the controls as they are.
    const renamed = await org.call('PATCH', `/v1/programs/${id}`, { name: 'Renamed' });
    expect(renamed.body.spendControls).toEqual(next);

    const cleared = await org.call('PATCH', `/v1/programs/${id}`, { spendControls: {} });
    expect(cleared.body.spendControls).toEqual({});
    expect(await storedControls(id)).toEqual({});
  });

  it('refuses bad controls with 400 naming the field, and writes nothing', async () => {
    const programsBefore = await countRows(server, 'programs', org.id);
    const cases: [unknown, string][] = [
      [{ perTransactionLimit: 10.001 }, 'spendControls.perTransactionLimit'],
      [{ perTransactionLimit: 0 }, 'spendControls.perTransactionLimit'],
      [{ windowLimits: [{ amount: 5, window: 'yearly' }] }, 'spendControls.windowLimits.0.window'],
      [{ windowLimits: [{ amount: 5.555, window: 'daily' }] }, 'spendControls.windowLimits.0.amount'],
      [
        {
          windowLimits: [
            { amount: 5, window: 'daily' },
            { amount: 6, window: 'daily' },
          ],
        },
        'spendControls.windowLimits.1.window',
      ],
      [{ blockedMerchantCategories: ['NOT_A_CATEGORY'] }, 'spendControls.blockedMerchantCategories.0'],
      [{ blockedMerchantCategories: ['grocery'] }, 'spendControls.blockedMerchantCategories.0'],
      [
        { allowedMerchantCategories: ['GUNS_AMMO'], blockedMerchantCategories: ['GUNS_AMMO'] },
        'spendControls.blockedMerchantCategories.0',
      ],
      [{ allowedMccs: ['54111'] }, 'spendControls.allowedMccs.0'],
      [{ allowedMccs: [] }, 'spendControls.allowedMccs'],
      [{ blockedTerminalTypes: ['kiosk'] }, 'spendControls.blockedTerminalTypes.0'],
      [{ blockCash: 'yes' }, 'spendControls.blockCash'],
      [{ perTransactionLimitCents: 100 }, 'spendControls.perTransactionLimitCents'],
    ];
    for (const [spendControls, param] of cases) {
      const created = await org.call('POST', '/v1/programs', { ...programBody, spendControls });
      expect(created.status, JSON.stringify(spendControls)).toBe(400);
      expect(created.body.error, JSON.stringify(spendControls)).toMatchObject({ code: 'validation_error', param });
    }
    expect(await countRows(server, 'programs', org.id)).toBe(programsBefore);

    const program = await org.call('POST', '/v1/programs', { ...programBody, spendControls: controls });
    const eventsBefore = await countRows(server, 'events', org.id);
    for (const [spendControls, param] of cases) {
      const patched = await org.call('PATCH', `/v1/programs/${program.body.id}`, { name: 'Changed', spendControls });
      expect(patched.status).toBe(400);
      expect(patched.body.error).toMatchObject({ code: 'validation_error', param });
    }
    const after = await org.call('GET', `/v1/programs/${program.body.id}`);
    expect(after.body).toMatchObject({ name: programBody.name, spendControls: controls });
    expect(await countRows(server, 'events', org.id)).toBe(eventsBefore);
  });
});

// ---------------------------------------------------------------------------------------------
// The sync against the sandbox

const apiKey = 'sk_test_spend_rules_suite';
const cardProductId = 'cp_9xWspendRulesSuite';
/** Short limits, so that the retry cases take milliseconds. */
const testLimits = { requestTimeoutMs: 1_000, maxAttempts: 3, retryBaseDelayMs: 5, retryMaxDelayMs: 20 };
const pollIntervalMs = 10;
const pollDeadlineMs = 5_000;
const depositCents = 100_000;
const cardBalanceCents = 50_000;

let sandbox: RunningSandbox;
let connection: IssuerConnection;

// The sandbox starts after the test server (declared above) and is reset before each test below.
beforeAll(async () => {
  sandbox = await startSandbox({ port: 0, applicationApprovalDelayMs: 10, transferSettlementDelayMs: 10 });
  connection = { graphqlUrl: sandbox.graphqlUrl, apiKey, ...testLimits };
});

afterAll(async () => {
  await sandbox.close();
});

async function control(path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${sandbox.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

/** A raw GraphQL call, for the setup and the authorizations the adapter does not make. */
// biome-ignore lint/suspicious/noExplicitAny: setup reads the fields it selected
async function graphql(query: string, variables: Record<string, unknown>): Promise<any> {
  const response = await fetch(sandbox.graphqlUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Basic ${Buffer.from(`${apiKey}:`).toString('base64')}`,
    },
    body: JSON.stringify({ query, variables }),
  });
  expect(response.status).toBe(200);
  // biome-ignore lint/suspicious/noExplicitAny: setup reads the fields it selected
  const body = (await response.json()) as { data: any; errors?: unknown };
  expect(body.errors).toBeUndefined();
  return body.data;
}

const until = <T>(read: () => Promise<T>, done: (value: T) => boolean) =>
  pollUntil(read, done, { deadlineMs: pollDeadlineMs, intervalMs: pollIntervalMs });

/** An approved cardholder's active virtual card, with `cardBalanceCents` on its account. */
async function fundedCard(): Promise<string> {
  const adapter = highnoteAdapter(connection);
  const { funding, card, paymentCardId } = await sandboxCardholder(sandbox.url, adapter, {
    cardProductId,
    depositCents: BigInt(depositCents),
    withCard: true,
  });
  const started = await adapter.fundCard({
    fromFinancialAccountId: funding,
    toFinancialAccountId: card,
    amountCents: BigInt(cardBalanceCents),
    idempotencyKey: randomUUID(),
  });
  if (!started.ok || paymentCardId === null) throw new Error('the card could not be funded');
  await until(
    async () => {
      const read = await adapter.transfer(started.value.id);
      return read.ok ? read.value.status : 'UNREAD';
    },
    (status) => status === 'COMPLETED',
  );
  return paymentCardId;
}

interface Purchase {
  dollars: number;
  category?: string;
  merchantId?: string;
  processingType?: string;
  terminal?: string;
}

/** Simulates an authorization on the card and answers Highnote's response code. */
async function authorize(cardId: string, purchase: Purchase): Promise<string> {
  const answer = await graphql(
    `mutation ($input: SimulateAuthorizationInput!) {
      simulateAuthorization(input: $input) {
        __typename
        ... on AuthorizationEvent { responseCode }
        ... on UserError { errors { code description } }
      }
    }`,
    {
      input: {
        cardId,
        amount: { value: Math.round(purchase.dollars * 100), currencyCode: 'USD' },
        merchantDetails: {
          category: purchase.category ?? 'GROCERY_STORES_SUPERMARKETS',
          ...(purchase.merchantId === undefined ? {} : { merchantId: purchase.merchantId }),
        },
        ...(purchase.processingType === undefined ? {} : { transactionProcessingType: purchase.processingType }),
        ...(purchase.terminal === undefined ? {} : { pointOfServiceDetails: { category: purchase.terminal } }),
      },
    },
  );
  expect(answer.simulateAuthorization.__typename).toBe('AuthorizationEvent');
  return answer.simulateAuthorization.responseCode;
}

async function sync(paymentCardId: string, body: SpendControlsBody, attached: readonly AttachedRule[] = []) {
  const result = await syncCardSpendRules(connection, { paymentCardId, attached }, parsed(body));
  if (!result.ok) throw new Error(`sync failed: ${result.failure.kind} ${result.failure.message}`);
  return result.value;
}

async function attachedNow(paymentCardId: string): Promise<AttachedRule[]> {
  const read = await attachedRulesOf(connection, paymentCardId);
  if (!read.ok) throw new Error(read.failure.message);
  return read.value;
}

const byId = (a: AttachedRule, b: AttachedRule) => a.id.localeCompare(b.id);

describe('syncing a card’s spend rules with Highnote (the sandbox)', () => {
  beforeEach(async () => {
    await control('/_sandbox/reset', {});
  });

  it('a $100 per-transaction limit and a blocked category decline what they should, and nothing else', async () => {
    const cardId = await fundedCard();
    expect(await authorize(cardId, { dollars: 150 })).toBe('APPROVED');
    const attached = await sync(cardId, {
      perTransactionLimit: 100,
      blockedMerchantCategories: ['BETTING_CASINO_GAMBLING'],
    });
    expect(attached).toHaveLength(2);
    expect([...(await attachedNow(cardId))].sort(byId)).toEqual([...attached].sort(byId));
    expect(await authorize(cardId, { dollars: 150 })).not.toBe('APPROVED');
    expect(await authorize(cardId, { dollars: 50, category: 'BETTING_CASINO_GAMBLING' })).not.toBe('APPROVED');
    expect(await authorize(cardId, { dollars: 50, category: 'GROCERY_STORES_SUPERMARKETS' })).toBe('APPROVED');
  });

  it('a re-sync with changed controls detaches the old rules: what they declined is approved', async () => {
    const cardId = await fundedCard();
    const first = await sync(cardId, { perTransactionLimit: 100, blockCash: true });
    expect(await authorize(cardId, { dollars: 150 })).not.toBe('APPROVED');
    const second = await sync(cardId, { perTransactionLimit: 200, blockCash: true }, first);
    expect(await authorize(cardId, { dollars: 150 })).toBe('APPROVED');
    expect(await authorize(cardId, { dollars: 250 })).not.toBe('APPROVED');
    expect(await authorize(cardId, { dollars: 20, processingType: 'CASH' })).not.toBe('APPROVED');
    // The cash rule did not change, so it was kept as it was; the limit is a new rule.
    const cash = first.find((rule) => rule.name.startsWith(`${spendRuleNamePrefix}cash `));
    expect(second).toContainEqual(cash);
    expect(second.map((rule) => rule.id)).not.toContain(first.find((rule) => rule !== cash)?.id);
    expect([...(await attachedNow(cardId))].sort(byId)).toEqual([...second].sort(byId));

    // Removing every control detaches every rule of ours.
    expect(await sync(cardId, {}, second)).toEqual([]);
    expect(await attachedNow(cardId)).toEqual([]);
    expect(await authorize(cardId, { dollars: 20, processingType: 'CASH' })).toBe('APPROVED');
  });

  it('a weekly limit declines the authorization that crosses it', async () => {
    const cardId = await fundedCard();
    const attached = await sync(cardId, { windowLimits: [{ amount: 100, window: 'weekly' }] });
    expect(attached).toEqual([expect.objectContaining({ kind: 'velocity' })]);
    expect(await authorize(cardId, { dollars: 60 })).toBe('APPROVED');
    expect(await authorize(cardId, { dollars: 50 })).not.toBe('APPROVED');
    expect(await authorize(cardId, { dollars: 40 })).toBe('APPROVED');
    expect(await authorize(cardId, { dollars: 0.01 })).not.toBe('APPROVED');
  });

  it('MCCs, merchants, cash and terminal types each decline their own', async () => {
    const cardId = await fundedCard();
    await sync(cardId, {
      blockedMccs: ['7995'],
      blockedMerchantIds: ['MID00099999'],
      blockCash: true,
      blockedTerminalTypes: ['atm', 'fuel'],
    });
    // 7995 is the MCC of BETTING_CASINO_GAMBLING.
    expect(await authorize(cardId, { dollars: 10, category: 'BETTING_CASINO_GAMBLING' })).not.toBe('APPROVED');
    expect(await authorize(cardId, { dollars: 10, merchantId: 'MID00099999' })).not.toBe('APPROVED');
    expect(await authorize(cardId, { dollars: 10, processingType: 'CASH' })).not.toBe('APPROVED');
    expect(await authorize(cardId, { dollars: 10, processingType: 'QUASI_CASH_AND_SCRIP' })).not.toBe('APPROVED');
    expect(await authorize(cardId, { dollars: 10, terminal: 'AUTOMATED_TELLER_MACHINE' })).not.toBe('APPROVED');
    expect(await authorize(cardId, { dollars: 10, terminal: 'AUTOMATED_FUEL_DISPENSER' })).not.toBe('APPROVED');
    expect(await authorize(cardId, { dollars: 10, merchantId: 'MID00012345', terminal: 'POS_TERMINAL' })).toBe(
      'APPROVED',
    );
  });

  it('the combination of two programs on one card: the most restrictive of each', async () => {
    const cardId = await fundedCard();
    const meals = parsed({
      perTransactionLimit: 80,
      allowedMerchantCategories: ['EATING_PLACES_RESTAURANTS', 'GROCERY_STORES_SUPERMARKETS'],
    });
    const tools = parsed({ perTransactionLimit: 300, blockedMerchantCategories: ['EATING_PLACES_RESTAURANTS'] });
    const result = await syncCardSpendRules(
      connection,
      { paymentCardId: cardId, attached: [] },
      combineSpendControls([meals, tools]),
    );
    expect(result.ok).toBe(true);
    expect(await authorize(cardId, { dollars: 50 })).toBe('APPROVED');
    expect(await authorize(cardId, { dollars: 90 })).not.toBe('APPROVED');
    expect(await authorize(cardId, { dollars: 20, category: 'EATING_PLACES_RESTAURANTS' })).not.toBe('APPROVED');
    expect(await authorize(cardId, { dollars: 20, category: 'BOOK_STORES' })).not.toBe('APPROVED');

    // Programs that allow disjoint lists: the card allows nothing.
    const books = parsed({ allowedMerchantCategories: ['BOOK_STORES'] });
    const nothing = combineSpendControls([meals, books]);
    const attached = result.ok ? result.value : [];
    const again = await syncCardSpendRules(connection, { paymentCardId: cardId, attached }, nothing);
    expect(again.ok).toBe(true);
    for (const category of ['BOOK_STORES', 'GROCERY_STORES_SUPERMARKETS', 'EATING_PLACES_RESTAURANTS']) {
      expect(await authorize(cardId, { dollars: 1, category })).not.toBe('APPROVED');
    }
  });

  it('the same controls again make no call that changes anything: the card already carries them', async () => {
    const cardId = await fundedCard();
    const body: SpendControlsBody = { perTransactionLimit: 100, windowLimits: [{ amount: 300, window: 'daily' }] };
    const first = await sync(cardId, body);
    // Any create or attach would now fail the sync.
    for (const operation of ['createAmountLimitSpendRule', 'createVelocityRule', 'attachSpendRuleToPaymentCard']) {
      await control('/_sandbox/faults', { operation, mode: 'user_error', count: 10 });
    }
    expect(await sync(cardId, body, first)).toEqual(first);
    // Without the record too: the card is read, and rules are known by their names.
    expect(await sync(cardId, body, [])).toEqual(first);
  });

  it('re-run after a failure midway, it keeps what the failed run attached and ends with one rule of each', async () => {
    const cardId = await fundedCard();
    const first = await sync(cardId, { perTransactionLimit: 100 });
    // The next sync attaches its new rules, then cannot detach the old one: it fails midway.
    await control('/_sandbox/faults', {
      operation: 'detachSpendRuleFromPaymentCard',
      mode: 'error',
      count: testLimits.maxAttempts,
    });
    const next: SpendControlsBody = {
      perTransactionLimit: 200,
      blockedMerchantCategories: ['BETTING_CASINO_GAMBLING'],
    };
    const failed = await syncCardSpendRules(connection, { paymentCardId: cardId, attached: first }, parsed(next));
    expect(failed).toMatchObject({ ok: false, failure: { kind: 'unavailable' } });
    expect(await attachedNow(cardId)).toHaveLength(3);
    // Run again with what the card row still holds (the first run's rules): nothing is doubled.
    const rerun = await sync(cardId, next, first);
    expect(rerun).toHaveLength(2);
    expect([...(await attachedNow(cardId))].sort(byId)).toEqual([...rerun].sort(byId));
    expect(await authorize(cardId, { dollars: 150 })).toBe('APPROVED');
  });

  it('a create or an attach whose answer was lost is retried, and the rule is attached once', async () => {
    const cardId = await fundedCard();
    await control('/_sandbox/faults', { operation: 'createAmountLimitSpendRule', mode: 'lost_response', count: 1 });
    await control('/_sandbox/faults', { operation: 'attachSpendRuleToPaymentCard', mode: 'lost_response', count: 1 });
    const attached = await sync(cardId, { perTransactionLimit: 100 });
    expect(attached).toHaveLength(1);
    expect(await attachedNow(cardId)).toEqual(attached);
    expect(await authorize(cardId, { dollars: 150 })).not.toBe('APPROVED');
  });

  it('an attach Highnote refuses, and the card confirms did not happen, fails the sync as `rejected`', async () => {
    const cardId = await fundedCard();
    await control('/_sandbox/faults', { operation: 'attachSpendRuleToPaymentCard', mode: 'user_error', count: 1 });
    const refused = await syncCardSpendRules(
      connection,
      { paymentCardId: cardId, attached: [] },
      parsed({ perTransactionLimit: 100 }),
    );
    expect(refused).toMatchObject({ ok: false, failure: { kind: 'rejected' } });
    expect(await attachedNow(cardId)).toEqual([]);
    // Run again, it completes.
    expect(await sync(cardId, { perTransactionLimit: 100 })).toHaveLength(1);
  });

  it('leaves alone a rule it did not put on the card', async () => {
    const cardId = await fundedCard();
    const created = await graphql(
      `mutation ($input: CreateAmountLimitSpendRuleInput!) {
        createAmountLimitSpendRule(input: $input) { __typename ... on AmountLimitSpendRule { id } }
      }`,
      { input: { name: 'partner limit', maximumAmount: { value: 30_000, currencyCode: 'USD' } } },
    );
    const partnerRuleId = created.createAmountLimitSpendRule.id;
    await graphql(
      `mutation ($input: AttachSpendRuleToPaymentCardInput!) {
        attachSpendRuleToPaymentCard(input: $input) { __typename }
      }`,
      { input: { paymentCardId: cardId, spendRule: { id: partnerRuleId, version: 'LATEST' } } },
    );
    const ours = await sync(cardId, { perTransactionLimit: 100 });
    expect(await sync(cardId, {}, ours)).toEqual([]);
    expect(await attachedNow(cardId)).toEqual([{ kind: 'spend', id: partnerRuleId, name: 'partner limit' }]);
  });

  it('answers Highnote’s refusal as `rejected`, and a card that does not exist as a failure', async () => {
    const cardId = await fundedCard();
    await control('/_sandbox/faults', { operation: 'createMerchantCategorySpendRule', mode: 'user_error', count: 1 });
    const refused = await syncCardSpendRules(
      connection,
      { paymentCardId: cardId, attached: [] },
      parsed({ blockedMerchantCategories: ['GUNS_AMMO'] }),
    );
    expect(refused).toMatchObject({ ok: false, failure: { kind: 'rejected', attempts: 1 } });
    const missing = await syncCardSpendRules(
      connection,
      { paymentCardId: 'pc_does_not_exist', attached: [] },
      parsed({ perTransactionLimit: 1 }),
    );
    expect(missing.ok).toBe(false);
  });
});
