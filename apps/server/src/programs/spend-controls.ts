import { createHash } from 'node:crypto';
import { type Static, type TSchema, Type } from 'typebox';
import { assert, fail, ok, type Result } from '../platform/errors.js';
import { centsToDollars, dollarsToCents, maxAmountCents } from '../platform/money.js';
import { Dollars, OneOf } from '../platform/schemas.js';
import { isMerchantCategory } from './merchant-categories.js';

/**
 * A program's spend controls: what the cards of its participants may be used for, in five
 * dimensions — amounts (per transaction and per window), merchant categories and MCCs, specific
 * merchants, processing types (cash) and terminal types (ATM, fuel). Declared on the program as
 * the API shows them (dollars), held here with cents as `bigint`, stored as JSON in
 * `programs.spend_controls`, and translated to Highnote rules by `issuer/spend-rules.ts`.
 *
 * Every control restricts; none widens. A card serves one participant in possibly several
 * programs, so it carries `combineSpendControls` of them all: the most restrictive combination.
 *
 * Each list is its own condition, and an authorization must pass every one that is set: a merchant
 * must be in `allowedMerchantCategories` (when set) *and* have an MCC in `allowedMccs` (when set),
 * and be in neither blocked list. Categories and MCCs are two vocabularies, so neither is checked
 * against the other: declare a program's allow-list in one of them.
 */

export const spendWindows = ['daily', 'weekly', 'monthly'] as const;
export type SpendWindow = (typeof spendWindows)[number];

export const terminalTypes = ['atm', 'fuel'] as const;
export type TerminalType = (typeof terminalTypes)[number];

/**
 * Most entries in one list of a program's controls. Highnote takes up to 5,000 per rule; a body
 * of 64 KiB holds about 1,800 category names, so a program's list stops well before either.
 */
export const maxSpendControlListItems = 1_000;
/** Longest merchant id accepted, in characters: acquirers' card acceptor ids are 15. */
export const maxMerchantIdLength = 40;

export interface WindowLimit {
  window: SpendWindow;
  amountCents: bigint;
}

/**
 * The controls, normalized: lists sorted and without repeats, at most one limit per window, in
 * the order of `spendWindows`. An allow-list is `null` when it allows anything; an empty
 * allow-list allows nothing, which only a combination of programs produces (see
 * `combineSpendControls`); a program's own allow-list has at least one entry.
 */
export interface SpendControls {
  /** The largest single authorization, in cents. */
  perTransactionLimitCents: bigint | null;
  windowLimits: readonly WindowLimit[];
  allowedMerchantCategories: readonly string[] | null;
  blockedMerchantCategories: readonly string[];
  allowedMccs: readonly string[] | null;
  blockedMccs: readonly string[];
  allowedMerchantIds: readonly string[] | null;
  blockedMerchantIds: readonly string[];
  blockCash: boolean;
  blockedTerminalTypes: readonly TerminalType[];
}

export const noSpendControls: SpendControls = Object.freeze({
  perTransactionLimitCents: null,
  windowLimits: [],
  allowedMerchantCategories: null,
  blockedMerchantCategories: [],
  allowedMccs: null,
  blockedMccs: [],
  allowedMerchantIds: null,
  blockedMerchantIds: [],
  blockCash: false,
  blockedTerminalTypes: [],
});

/** The three pairs of lists, by the names the API, the storage form and the type share. */
const listPairs = [
  ['allowedMerchantCategories', 'blockedMerchantCategories'],
  ['allowedMccs', 'blockedMccs'],
  ['allowedMerchantIds', 'blockedMerchantIds'],
] as const;
type AllowedList = (typeof listPairs)[number][0];
type BlockedList = (typeof listPairs)[number][1];

// ---------------------------------------------------------------------------------------------
// The API's shape

const MerchantCategoryName = Type.String({
  minLength: 1,
  maxLength: 100,
  pattern: '^[A-Z][A-Z0-9_]*$',
  description: 'A value of Highnote’s `MerchantCategory` enum.',
  examples: ['GROCERY_STORES_SUPERMARKETS'],
});

const Mcc = Type.String({
  pattern: '^[0-9]{4}$',
  description: 'A four-digit merchant category code.',
  examples: ['5411'],
});

const MerchantId = Type.String({
  minLength: 1,
  maxLength: maxMerchantIdLength,
  // Printable ASCII, no space at either end: what acquirers send as a card acceptor id.
  pattern: '^[!-~](?:[ -~]*[!-~])?$',
  description: 'A merchant id (MID), as the merchant’s acquirer assigned it.',
  examples: ['MID00012345'],
});

function list<T extends TSchema>(item: T, description: string, example: string[], minItems: number) {
  return Type.Optional(
    Type.Array(item, {
      minItems,
      maxItems: maxSpendControlListItems,
      uniqueItems: true,
      description,
      examples: [example],
    }),
  );
}

/**
 * The schema of `spendControls`, as a request sends it and as a program presents it: every field
 * optional, `{}` for no controls. Amounts are decimal dollars with at most two decimals.
 */
export function spendControlsSchema(description: string) {
  return Type.Object(
    {
      perTransactionLimit: Type.Optional(Dollars('The largest single authorization.', 100)),
      windowLimits: Type.Optional(
        Type.Array(
          Type.Object(
            {
              amount: Dollars('The most spent in one window.', 500),
              window: OneOf(spendWindows, {
                description: 'The window, in UTC: a calendar day, week or month.',
                examples: ['weekly'],
              }),
            },
            { additionalProperties: false },
          ),
          {
            maxItems: spendWindows.length,
            description: 'Cumulative limits, at most one per window.',
          },
        ),
      ),
      allowedMerchantCategories: list(
        MerchantCategoryName,
        'Only merchants in these categories (Highnote `MerchantCategory` names); omit to allow any.',
        ['GROCERY_STORES_SUPERMARKETS', 'EATING_PLACES_RESTAURANTS'],
        1,
      ),
      blockedMerchantCategories: list(
        MerchantCategoryName,
        'Never merchants in these categories (Highnote `MerchantCategory` names).',
        ['BETTING_CASINO_GAMBLING'],
        0,
      ),
      allowedMccs: list(Mcc, 'Only merchants with these MCCs; omit to allow any.', ['5411', '5812'], 1),
      blockedMccs: list(Mcc, 'Never merchants with these MCCs.', ['7995'], 0),
      allowedMerchantIds: list(MerchantId, 'Only these merchants; omit to allow any.', ['MID00012345'], 1),
      blockedMerchantIds: list(MerchantId, 'Never these merchants.', ['MID00099999'], 0),
      blockCash: Type.Optional(
        Type.Boolean({
          description: 'Refuse cash: withdrawals, cash back with a purchase, quasi-cash (money orders, chips).',
          examples: [true],
        }),
      ),
      blockedTerminalTypes: Type.Optional(
        Type.Array(
          OneOf(terminalTypes, { description: 'A kind of terminal: `atm` or `fuel` (automated fuel dispenser).' }),
          {
            maxItems: terminalTypes.length,
            uniqueItems: true,
            description: 'Refuse authorizations from these kinds of terminal.',
            examples: [['atm']],
          },
        ),
      ),
    },
    { additionalProperties: false, description },
  );
}

const SpendControlsBody = spendControlsSchema('');
/** `spendControls` as a validated request carries it, and as the API presents it. */
export type SpendControlsBody = Static<typeof SpendControlsBody>;

// ---------------------------------------------------------------------------------------------
// Parsing and presenting

function sorted<T extends string>(values: Iterable<T>): T[] {
  return [...new Set(values)].sort();
}

const windowOrder = (limit: WindowLimit) => spendWindows.indexOf(limit.window);

/**
 * Cents from a dollar amount of a validated body; a third decimal, a non-positive amount or one
 * past the largest the API takes is a `validation_error` naming `param`.
 */
function centsAt(dollars: number, param: string): Result<bigint> {
  const parsed = dollarsToCents(dollars);
  if (!parsed.ok) return fail('validation_error', `${param} ${parsed.message}`, param);
  if (parsed.cents <= 0n) return fail('validation_error', `${param} must be greater than 0`, param);
  return ok(parsed.cents);
}

/**
 * The controls of a validated body, or the first problem the schema cannot see: an amount with a
 * third decimal, two limits for one window, a name that is not a Highnote `MerchantCategory`, or
 * an entry both allowed and blocked. `param` is the field's path, `at` prefixed
 * (`spendControls.windowLimits.0.amount`), dotted like every other `param`.
 */
export function parseSpendControls(body: SpendControlsBody, at: string): Result<SpendControls> {
  let perTransactionLimitCents: bigint | null = null;
  if (body.perTransactionLimit !== undefined) {
    const cents = centsAt(body.perTransactionLimit, `${at}.perTransactionLimit`);
    if (!cents.ok) return cents;
    perTransactionLimitCents = cents.value;
  }
  const windowLimits: WindowLimit[] = [];
  for (const [index, limit] of (body.windowLimits ?? []).entries()) {
    const cents = centsAt(limit.amount, `${at}.windowLimits.${index}.amount`);
    if (!cents.ok) return cents;
    if (windowLimits.some((other) => other.window === limit.window)) {
      const param = `${at}.windowLimits.${index}.window`;
      return fail('validation_error', `${param}: a second ${limit.window} limit; give one per window`, param);
    }
    windowLimits.push({ window: limit.window, amountCents: cents.value });
  }
  for (const name of ['allowedMerchantCategories', 'blockedMerchantCategories'] as const) {
    const unknown = (body[name] ?? []).findIndex((category) => !isMerchantCategory(category));
    if (unknown !== -1) {
      const param = `${at}.${name}.${unknown}`;
      return fail('validation_error', `${param} is not a Highnote MerchantCategory`, param);
    }
  }
  for (const [allowed, blocked] of listPairs) {
    const allowing = new Set(body[allowed] ?? []);
    const both = (body[blocked] ?? []).findIndex((entry) => allowing.has(entry));
    if (both !== -1) {
      const param = `${at}.${blocked}.${both}`;
      return fail('validation_error', `${param} (${body[blocked]?.[both]}) is also in ${at}.${allowed}`, param);
    }
  }
  return ok({
    perTransactionLimitCents,
    windowLimits: windowLimits.sort((a, b) => windowOrder(a) - windowOrder(b)),
    allowedMerchantCategories:
      body.allowedMerchantCategories === undefined ? null : sorted(body.allowedMerchantCategories),
    blockedMerchantCategories: sorted(body.blockedMerchantCategories ?? []),
    allowedMccs: body.allowedMccs === undefined ? null : sorted(body.allowedMccs),
    blockedMccs: sorted(body.blockedMccs ?? []),
    allowedMerchantIds: body.allowedMerchantIds === undefined ? null : sorted(body.allowedMerchantIds),
    blockedMerchantIds: sorted(body.blockedMerchantIds ?? []),
    blockCash: body.blockCash === true,
    blockedTerminalTypes: sorted(body.blockedTerminalTypes ?? []),
  });
}

/**
 * The controls as the API shows them: only the fields that restrict something, amounts in dollars.
 * What a program presents can be sent back as it is (PATCH), and `{}` means no controls.
 */
export function presentSpendControls(controls: SpendControls): SpendControlsBody {
  const presented: SpendControlsBody = {};
  if (controls.perTransactionLimitCents !== null) {
    presented.perTransactionLimit = centsToDollars(controls.perTransactionLimitCents);
  }
  if (controls.windowLimits.length > 0) {
    presented.windowLimits = controls.windowLimits.map((limit) => ({
      amount: centsToDollars(limit.amountCents),
      window: limit.window,
    }));
  }
  for (const [allowed, blocked] of listPairs) {
    const allowing = controls[allowed];
    if (allowing !== null) presented[allowed] = [...allowing];
    if (controls[blocked].length > 0) presented[blocked] = [...controls[blocked]];
  }
  if (controls.blockCash) presented.blockCash = true;
  if (controls.blockedTerminalTypes.length > 0) presented.blockedTerminalTypes = [...controls.blockedTerminalTypes];
  return presented;
}

// ---------------------------------------------------------------------------------------------
// Storage: JSON in `programs.spend_controls`, cents as decimal strings (a bigint has no JSON form)

interface StoredSpendControls {
  perTransactionLimitCents?: string;
  windowLimits?: { window: SpendWindow; amountCents: string }[];
  allowedMerchantCategories?: string[];
  blockedMerchantCategories?: string[];
  allowedMccs?: string[];
  blockedMccs?: string[];
  allowedMerchantIds?: string[];
  blockedMerchantIds?: string[];
  blockCash?: true;
  blockedTerminalTypes?: TerminalType[];
}

/**
 * The storage form: only what restricts, keys always in this order, so the same controls are the
 * same text (the digest hashes it). An empty allow-list (allows nothing) is kept as `[]`.
 */
function storedOf(controls: SpendControls): StoredSpendControls {
  const stored: StoredSpendControls = {};
  if (controls.perTransactionLimitCents !== null) {
    stored.perTransactionLimitCents = controls.perTransactionLimitCents.toString();
  }
  if (controls.windowLimits.length > 0) {
    stored.windowLimits = controls.windowLimits.map((limit) => ({
      window: limit.window,
      amountCents: limit.amountCents.toString(),
    }));
  }
  for (const [allowed, blocked] of listPairs) {
    const allowing = controls[allowed];
    if (allowing !== null) stored[allowed] = [...allowing];
    if (controls[blocked].length > 0) stored[blocked] = [...controls[blocked]];
  }
  if (controls.blockCash) stored.blockCash = true;
  if (controls.blockedTerminalTypes.length > 0) stored.blockedTerminalTypes = [...controls.blockedTerminalTypes];
  return stored;
}

/** The JSON text the `spend_controls` column is written with. */
export function spendControlsToStorage(controls: SpendControls): string {
  return JSON.stringify(storedOf(controls));
}

const storedKeys: ReadonlySet<string> = new Set([
  'perTransactionLimitCents',
  'windowLimits',
  ...listPairs.flat(),
  'blockCash',
  'blockedTerminalTypes',
] satisfies (keyof StoredSpendControls)[]);

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((entry) => typeof entry === 'string');
}

function storedCents(value: unknown, where: string): bigint {
  assert(typeof value === 'string' && /^[0-9]{1,15}$/.test(value), `${where} holds ${String(value)}, not cents`);
  const cents = BigInt(value);
  assert(cents >= 0n && cents <= maxAmountCents, `${where} holds ${value} cents, out of range`);
  return cents;
}

/**
 * The controls a `spend_controls` column holds (as the driver parsed it). Only this module writes
 * the column, so a shape it did not write is a bug, asserted.
 */
export function spendControlsFromStorage(value: unknown, where = 'spend_controls'): SpendControls {
  const parsed = typeof value === 'string' ? (JSON.parse(value) as unknown) : value;
  assert(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed), `${where} is not an object`);
  const stored = parsed as Record<string, unknown>;
  for (const key of Object.keys(stored)) assert(storedKeys.has(key), `${where} holds an unknown field ${key}`);
  const windowLimits: WindowLimit[] = [];
  if (stored.windowLimits !== undefined) {
    assert(Array.isArray(stored.windowLimits), `${where}.windowLimits is not a list`);
    for (const limit of stored.windowLimits as { window?: unknown; amountCents?: unknown }[]) {
      const window = spendWindows.find((name) => name === limit?.window);
      assert(window !== undefined, `${where}.windowLimits holds the window ${String(limit?.window)}`);
      windowLimits.push({ window, amountCents: storedCents(limit.amountCents, `${where}.windowLimits`) });
    }
  }
  const lists = {} as Record<AllowedList, string[] | null> & Record<BlockedList, string[]>;
  for (const [allowed, blocked] of listPairs) {
    const allowing = stored[allowed];
    const blocking = stored[blocked] ?? [];
    assert(allowing === undefined || isStringList(allowing), `${where}.${allowed} is not a list of strings`);
    assert(isStringList(blocking), `${where}.${blocked} is not a list of strings`);
    lists[allowed] = allowing === undefined ? null : sorted(allowing);
    lists[blocked] = sorted(blocking);
  }
  const terminals = stored.blockedTerminalTypes ?? [];
  assert(
    isStringList(terminals) && terminals.every((type) => (terminalTypes as readonly string[]).includes(type)),
    `${where}.blockedTerminalTypes holds an unknown terminal type`,
  );
  assert(stored.blockCash === undefined || stored.blockCash === true, `${where}.blockCash is not true`);
  return {
    perTransactionLimitCents:
      stored.perTransactionLimitCents === undefined
        ? null
        : storedCents(stored.perTransactionLimitCents, `${where}.perTransactionLimitCents`),
    windowLimits: windowLimits.sort((a, b) => windowOrder(a) - windowOrder(b)),
    ...lists,
    blockCash: stored.blockCash === true,
    blockedTerminalTypes: sorted(terminals as TerminalType[]),
  };
}

// ---------------------------------------------------------------------------------------------
// Combining and comparing

function smallest(values: readonly (bigint | null)[]): bigint | null {
  let least: bigint | null = null;
  for (const value of values) if (value !== null && (least === null || value < least)) least = value;
  return least;
}

/** The entries in every one of the allow-lists that are set; `null` when none is. */
function intersection(lists: readonly (readonly string[] | null)[]): string[] | null {
  let common: Set<string> | null = null;
  for (const entries of lists) {
    if (entries === null) continue;
    common = common === null ? new Set(entries) : new Set(entries.filter((entry) => common?.has(entry)));
  }
  return common === null ? null : sorted(common);
}

/**
 * The controls a card carries for a participant in all of `programs` on that card: the most
 * restrictive combination, so that no program's controls are loosened by another's.
 *
 * - per transaction: the smallest limit; per window: the smallest limit of each window;
 * - allow-lists: the entries every program that has one allows (programs without one allow
 *   anything and do not narrow it); when two programs allow disjoint lists, the card allows
 *   nothing in that dimension — an empty list — and every authorization is declined;
 * - block-lists, processing and terminal types: everything any program blocks; an entry one
 *   program allows and another blocks is blocked (and leaves the allow-list);
 * - no programs: no controls.
 */
export function combineSpendControls(programs: readonly SpendControls[]): SpendControls {
  const windowLimits: WindowLimit[] = [];
  for (const window of spendWindows) {
    const limit = smallest(
      programs.map((controls) => controls.windowLimits.find((entry) => entry.window === window)?.amountCents ?? null),
    );
    if (limit !== null) windowLimits.push({ window, amountCents: limit });
  }
  const lists = {} as Record<AllowedList, string[] | null> & Record<BlockedList, string[]>;
  for (const [allowed, blocked] of listPairs) {
    const blocking = sorted(programs.flatMap((controls) => controls[blocked]));
    const allowing = intersection(programs.map((controls) => controls[allowed]));
    lists[blocked] = blocking;
    lists[allowed] = allowing === null ? null : allowing.filter((entry) => !blocking.includes(entry));
  }
  return {
    perTransactionLimitCents: smallest(programs.map((controls) => controls.perTransactionLimitCents)),
    windowLimits,
    ...lists,
    blockCash: programs.some((controls) => controls.blockCash),
    blockedTerminalTypes: sorted(programs.flatMap((controls) => controls.blockedTerminalTypes)),
  };
}

/** Whether some allow-list is empty: the card may then be used nowhere (see `combineSpendControls`). */
export function allowsNothing(controls: SpendControls): boolean {
  return listPairs.some(([allowed]) => controls[allowed]?.length === 0);
}

/** Bumped when the storage form changes meaning, so that every card is synced again. */
const digestVersion = 'spend-controls/v1';

/**
 * A stable hash of the controls: equal controls have equal digests, whatever order their lists were
 * given in. A card stores the digest of the controls its rules translate, so a card whose digest
 * matches the combination of its programs needs no call to Highnote.
 */
export function spendControlsDigest(controls: SpendControls): string {
  return createHash('sha256')
    .update(`${digestVersion}\n${spendControlsToStorage(controls)}`)
    .digest('hex');
}
