import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { highnoteRulesFor } from '../src/issuer/spend-rules.js';
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
import { countRows, newOrganization, startTestServer, type TestServer } from './harness.js';

// A program's spend controls: parsing and its refusals, the most restrictive combination over a
// card's programs, the translation to Highnote rules, and the program routes that carry them.

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
