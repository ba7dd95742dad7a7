import { type ColumnType, sql } from 'kysely';
import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { assert } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { dollars, isoRequired } from '../platform/present.js';
import { BalanceDollars, Id, Nullable, ObjectKind, OneOf, Timestamp } from '../platform/schemas.js';
import type { UnitOfWork } from '../work/unit.js';

/**
 * What participants spent on their cards, and which milestones paid for it (migration 0008).
 *
 * Highnote reports each card transaction as events: an authorization (approved or declined), then
 * reversals, a clearing and refunds. Each event is stored once under Highnote's event id, and a
 * spend's state and amount are derived from the set of its events, so duplicates and any order of
 * arrival give the same spend. Attribution is derived too: the spends on a cardholder financial
 * account, oldest first, draw on the disbursements settled into it, oldest first (FIFO). A reversal
 * or refund gives its money back to the queue, and later spends draw on it.
 */

export const spendEventKinds = [
  'authorization_approved',
  'authorization_declined',
  'reversal',
  'clearing',
  'refund',
] as const;
export type SpendEventKind = (typeof spendEventKinds)[number];

export const spendStatuses = ['authorized', 'declined', 'reversed', 'cleared', 'refunded'] as const;
export type SpendStatus = (typeof spendStatuses)[number];

/** The event a new transaction event emits. */
export const spendEventTypeOf = {
  authorization_approved: 'spend.authorized',
  authorization_declined: 'spend.declined',
  reversal: 'spend.reversed',
  clearing: 'spend.cleared',
  refund: 'spend.refunded',
} as const satisfies Record<SpendEventKind, string>;

export interface Merchant {
  name: string | null;
  category: string | null;
  categoryCode: string | null;
  merchantId: string | null;
  country: string | null;
}

/** One transaction event as Highnote reports it, from a notification or a reconciliation read. */
export interface SpendEventInput {
  /** Highnote's transaction event id. */
  id: string;
  transactionId: string;
  paymentCardId: string;
  kind: SpendEventKind;
  amountCents: bigint;
  responseCode: string | null;
  merchant: Merchant;
  occurredAt: Date;
}

interface SpendsTable {
  organization_id: string;
  id: string;
  highnote_transaction_id: string;
  user_id: string;
  card_id: string;
  highnote_financial_account_id: string;
  created_at: ColumnType<Date, Date, never>;
}

interface SpendEventsTable {
  organization_id: string;
  id: string;
  spend_id: string;
  kind: SpendEventKind;
  amount_cents: bigint;
  response_code: string | null;
  merchant: ColumnType<unknown, string, never>;
  occurred_at: ColumnType<Date, Date, never>;
  source: 'notification' | 'reconciliation';
  recorded_at: ColumnType<Date, Date, never>;
}

export function spendTablesOf(db: Db) {
  return db.withTables<{ spends: SpendsTable; spend_events: SpendEventsTable }>();
}

export interface Attribution {
  disbursementId: string;
  userTaskId: string;
  programId: string;
  amountCents: bigint;
}

export interface Spend {
  id: string;
  userId: string;
  cardId: string;
  financialAccountId: string;
  highnoteTransactionId: string;
  status: SpendStatus;
  /** What the transaction holds or took from the card now: held + cleared − refunded. */
  amountCents: bigint;
  authorizedCents: bigint;
  reversedCents: bigint;
  clearedCents: bigint;
  refundedCents: bigint;
  merchant: Merchant;
  /** When Highnote saw the transaction's first event: the spend's place in the FIFO order. */
  occurredAt: Date;
  lastEventAt: Date;
  attributions: Attribution[];
  /** Drawn on money no settled disbursement put on the account (none, unless funded from elsewhere). */
  unattributedCents: bigint;
}

interface SettledFunding {
  id: string;
  userTaskId: string;
  programId: string;
  financialAccountId: string;
  amountCents: bigint;
}

/** The status and amounts of a transaction, from its events' sums. */
export function deriveSpend(sums: Record<SpendEventKind, bigint>): {
  status: SpendStatus;
  amountCents: bigint;
} {
  const authorized = sums.authorization_approved;
  const cleared = sums.clearing;
  const refunded = sums.refund;
  // A clearing settles the authorization: the hold is released and the cleared amount taken.
  const held = cleared > 0n ? 0n : authorized > sums.reversal ? authorized - sums.reversal : 0n;
  const taken = cleared > refunded ? cleared - refunded : 0n;
  const amountCents = held + taken;
  let status: SpendStatus;
  if (refunded > 0n) status = 'refunded';
  else if (cleared > 0n) status = 'cleared';
  else if (authorized === 0n) status = 'declined';
  else if (held === 0n) status = 'reversed';
  else status = 'authorized';
  return { status, amountCents };
}

/**
 * FIFO: each spend, oldest first, draws on the account's settled disbursements, oldest first.
 * Pure, so that the same facts always give the same attribution.
 */
export function attribute(
  spends: readonly Omit<Spend, 'attributions' | 'unattributedCents'>[],
  fundings: readonly SettledFunding[],
): { attributions: Map<string, Attribution[]>; unattributed: Map<string, bigint>; spent: Map<string, bigint> } {
  const attributions = new Map<string, Attribution[]>();
  const unattributed = new Map<string, bigint>();
  const spent = new Map<string, bigint>();
  const queue = fundings.map((funding) => ({ funding, left: funding.amountCents }));
  let head = 0;
  for (const spend of spends) {
    let owed = spend.amountCents;
    const drawn: Attribution[] = [];
    while (owed > 0n && head < queue.length) {
      const slot = queue[head] as (typeof queue)[number];
      // biome-ignore lint/complexity/useMathMinMax: Math.min takes no bigint.
      const take = slot.left < owed ? slot.left : owed;
      if (take > 0n) {
        drawn.push({
          disbursementId: slot.funding.id,
          userTaskId: slot.funding.userTaskId,
          programId: slot.funding.programId,
          amountCents: take,
        });
        slot.left -= take;
        owed -= take;
        spent.set(slot.funding.id, (spent.get(slot.funding.id) ?? 0n) + take);
      }
      if (slot.left === 0n) head++;
    }
    attributions.set(spend.id, drawn);
    unattributed.set(spend.id, owed);
  }
  return { attributions, unattributed, spent };
}

/** Every spend and settled funding of these cardholder accounts, attributed. */
export async function spendsOfAccounts(
  db: Db,
  organizationId: string,
  financialAccountIds: readonly string[],
): Promise<{ spends: Spend[]; spentByDisbursement: Map<string, bigint> }> {
  if (financialAccountIds.length === 0) return { spends: [], spentByDisbursement: new Map() };
  const accounts = [...new Set(financialAccountIds)];
  const sumOf = (kind: SpendEventKind) =>
    sql<string>`coalesce(sum(e.amount_cents) FILTER (WHERE e.kind = ${kind}), 0)::text`;
  const rows = await spendTablesOf(db)
    .selectFrom('spends as s')
    .innerJoin('spend_events as e', (join) =>
      join.onRef('e.organization_id', '=', 's.organization_id').onRef('e.spend_id', '=', 's.id'),
    )
    .where('s.organization_id', '=', organizationId)
    .where('s.highnote_financial_account_id', 'in', accounts)
    .groupBy(['s.id', 's.user_id', 's.card_id', 's.highnote_financial_account_id', 's.highnote_transaction_id'])
    .select([
      's.id',
      's.user_id',
      's.card_id',
      's.highnote_financial_account_id',
      's.highnote_transaction_id',
      sumOf('authorization_approved').as('authorization_approved'),
      sumOf('authorization_declined').as('authorization_declined'),
      sumOf('reversal').as('reversal'),
      sumOf('clearing').as('clearing'),
      sumOf('refund').as('refund'),
      sql<Date>`min(e.occurred_at)`.as('occurred_at'),
      sql<Date>`max(e.occurred_at)`.as('last_event_at'),
      sql<unknown>`(array_agg(e.merchant ORDER BY e.occurred_at, e.id))[1]`.as('merchant'),
    ])
    .execute();
  const fundingRows = await db
    .selectFrom('disbursements as d')
    .innerJoin('cards as c', (join) =>
      join.onRef('c.organization_id', '=', 'd.organization_id').onRef('c.id', '=', 'd.card_id'),
    )
    .where('d.organization_id', '=', organizationId)
    .where('d.status', '=', 'settled')
    .where('c.highnote_financial_account_id', 'in', accounts)
    .select([
      'd.id',
      'd.user_task_id',
      'd.program_id',
      'd.amount_cents',
      'd.settled_at',
      'c.highnote_financial_account_id',
    ])
    .execute();

  const bare = rows.map((row) => {
    const sums = {
      authorization_approved: BigInt(row.authorization_approved),
      authorization_declined: BigInt(row.authorization_declined),
      reversal: BigInt(row.reversal),
      clearing: BigInt(row.clearing),
      refund: BigInt(row.refund),
    };
    const { status, amountCents } = deriveSpend(sums);
    return {
      id: row.id,
      userId: row.user_id,
      cardId: row.card_id,
      financialAccountId: row.highnote_financial_account_id,
      highnoteTransactionId: row.highnote_transaction_id,
      status,
      amountCents,
      authorizedCents: sums.authorization_approved,
      reversedCents: sums.reversal,
      clearedCents: sums.clearing,
      refundedCents: sums.refund,
      merchant: merchantOf(row.merchant),
      occurredAt: new Date(row.occurred_at),
      lastEventAt: new Date(row.last_event_at),
    };
  });
  const spends: Spend[] = [];
  const spentByDisbursement = new Map<string, bigint>();
  for (const account of accounts) {
    const accountSpends = bare
      .filter((spend) => spend.financialAccountId === account)
      .sort(
        (a, b) =>
          a.occurredAt.getTime() - b.occurredAt.getTime() ||
          compareText(a.highnoteTransactionId, b.highnoteTransactionId),
      );
    const fundings = fundingRows
      .filter((row) => row.highnote_financial_account_id === account)
      .sort(
        (a, b) =>
          new Date(a.settled_at as Date | string).getTime() - new Date(b.settled_at as Date | string).getTime() ||
          compareText(a.id, b.id),
      )
      .map((row) => ({
        id: row.id,
        userTaskId: row.user_task_id,
        programId: row.program_id,
        financialAccountId: account,
        amountCents: row.amount_cents,
      }));
    const { attributions, unattributed, spent } = attribute(accountSpends, fundings);
    for (const spend of accountSpends) {
      spends.push({
        ...spend,
        attributions: attributions.get(spend.id) ?? [],
        unattributedCents: unattributed.get(spend.id) ?? 0n,
      });
    }
    for (const [id, cents] of spent) spentByDisbursement.set(id, cents);
  }
  return { spends, spentByDisbursement };
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function textOrNull(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/** Highnote's `merchantDetails`, kept to the fields a partner reads. */
export function merchantOf(details: unknown): Merchant {
  const value = (typeof details === 'object' && details !== null ? details : {}) as Record<string, unknown>;
  return {
    name: textOrNull(value.name),
    category: textOrNull(value.category),
    categoryCode: textOrNull(value.categoryCode),
    merchantId: textOrNull(value.merchantId),
    country: textOrNull(value.countryCodeAlpha3) ?? textOrNull(value.country),
  };
}

/** The cardholder financial accounts of a user's cards, or of the cards a program's money went to. */
export async function accountsOfUser(db: Db, organizationId: string, userId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('cards')
    .select('highnote_financial_account_id')
    .distinct()
    .where('organization_id', '=', organizationId)
    .where('user_id', '=', userId)
    .execute();
  return rows.map((row) => row.highnote_financial_account_id);
}

export async function accountsOfProgram(db: Db, organizationId: string, programId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('disbursements as d')
    .innerJoin('cards as c', (join) =>
      join.onRef('c.organization_id', '=', 'd.organization_id').onRef('c.id', '=', 'd.card_id'),
    )
    .select('c.highnote_financial_account_id')
    .distinct()
    .where('d.organization_id', '=', organizationId)
    .where('d.program_id', '=', programId)
    .where('d.status', '=', 'settled')
    .execute();
  return rows.map((row) => row.highnote_financial_account_id);
}

/** The spends on the card accounts the given settled disbursements funded, attributed. */
export async function spendsOfDisbursements(
  db: Db,
  organizationId: string,
  disbursements: readonly { status: string; cardId: string | null }[],
): Promise<{ spends: Spend[]; spentByDisbursement: Map<string, bigint> }> {
  const cardIds = [
    ...new Set(disbursements.flatMap((d) => (d.status === 'settled' && d.cardId !== null ? [d.cardId] : []))),
  ];
  if (cardIds.length === 0) return { spends: [], spentByDisbursement: new Map() };
  const accounts = await db
    .selectFrom('cards')
    .select('highnote_financial_account_id')
    .distinct()
    .where('organization_id', '=', organizationId)
    .where('id', 'in', cardIds)
    .execute();
  return spendsOfAccounts(
    db,
    organizationId,
    accounts.map((row) => row.highnote_financial_account_id),
  );
}

/** `spent` for each settled disbursement given (others spent nothing), from its account's FIFO. */
export async function spentOfDisbursements(
  db: Db,
  organizationId: string,
  disbursements: readonly { status: string; cardId: string | null }[],
): Promise<Map<string, bigint>> {
  return (await spendsOfDisbursements(db, organizationId, disbursements)).spentByDisbursement;
}

/**
 * Records one transaction event in the unit, once by Highnote's event id, and emits its
 * `spend.*` event. Answers false when the event was recorded before or its card is not Tranche's.
 */
export async function recordSpendEvent(
  unit: UnitOfWork,
  input: SpendEventInput,
  source: 'notification' | 'reconciliation',
): Promise<boolean> {
  const card = await unit.tx
    .selectFrom('cards')
    .select(['id', 'user_id', 'highnote_financial_account_id'])
    .where('organization_id', '=', unit.organizationId)
    .where('highnote_payment_card_id', '=', input.paymentCardId)
    .executeTakeFirst();
  if (card === undefined) return false;
  const tables = spendTablesOf(unit.tx);
  await tables
    .insertInto('spends')
    .values({
      organization_id: unit.organizationId,
      id: newId('spend'),
      highnote_transaction_id: input.transactionId,
      user_id: card.user_id,
      card_id: card.id,
      highnote_financial_account_id: card.highnote_financial_account_id,
      created_at: unit.now,
    })
    .onConflict((conflict) => conflict.columns(['organization_id', 'highnote_transaction_id']).doNothing())
    .execute();
  const spend = await tables
    .selectFrom('spends')
    .select(['id', 'highnote_financial_account_id'])
    .where('organization_id', '=', unit.organizationId)
    .where('highnote_transaction_id', '=', input.transactionId)
    .executeTakeFirstOrThrow();
  const inserted = await tables
    .insertInto('spend_events')
    .values({
      organization_id: unit.organizationId,
      id: input.id,
      spend_id: spend.id,
      kind: input.kind,
      amount_cents: input.amountCents,
      response_code: input.responseCode,
      merchant: JSON.stringify(input.merchant),
      occurred_at: input.occurredAt,
      source,
      recorded_at: unit.now,
    })
    .onConflict((conflict) => conflict.columns(['organization_id', 'id']).doNothing())
    .returning('id')
    .executeTakeFirst();
  if (inserted === undefined) return false;
  const { spends } = await spendsOfAccounts(unit.tx, unit.organizationId, [spend.highnote_financial_account_id]);
  const recorded = spends.find((candidate) => candidate.id === spend.id);
  assert(recorded !== undefined, `spend ${spend.id} has the event just recorded`);
  unit.emit(spendEventTypeOf[input.kind], presentSpend(recorded));
  return true;
}

const MerchantSchema = Type.Object(
  {
    name: Nullable(Type.String({ description: 'Merchant name.', examples: ['CORNER GROCERY'] })),
    category: Nullable(Type.String({ description: 'Merchant category.', examples: ['GROCERY_STORES_SUPERMARKETS'] })),
    categoryCode: Nullable(Type.String({ description: 'Merchant category code (MCC).', examples: ['5411'] })),
    merchantId: Nullable(Type.String({ description: 'The acquirer’s merchant id.', examples: ['MID123'] })),
    country: Nullable(Type.String({ description: 'ISO 3166 alpha-3 country.', examples: ['USA'] })),
  },
  { description: 'Where the card was used, as Highnote reported it.' },
);

export const SpendSchema = Type.Object(
  {
    id: Id('spd', 'Spend id.'),
    object: ObjectKind('spend'),
    userId: Id('usr', 'Participant.'),
    cardId: Id('card', 'The card used.'),
    highnoteTransactionId: Type.String({ description: 'Highnote’s transaction id.', examples: ['txn_5Qe'] }),
    amount: BalanceDollars('What the transaction holds or took from the card now: held + cleared − refunded.', 42.5),
    status: OneOf(spendStatuses, {
      description:
        '`authorized` (held), `declined`, `reversed` (hold released), `cleared` (taken), `refunded` (some or all returned).',
      examples: ['cleared'],
    }),
    authorizedAmount: BalanceDollars('Approved by authorizations.', 42.5),
    reversedAmount: BalanceDollars('Released by reversals.', 0),
    clearedAmount: BalanceDollars('Taken by clearings.', 42.5),
    refundedAmount: BalanceDollars('Returned by refunds.', 0),
    merchant: MerchantSchema,
    attributions: Type.Array(
      Type.Object({
        disbursementId: Id('dsb', 'The disbursement whose money this draws on.'),
        userTaskId: Id('ut', 'The milestone that disbursement paid for.'),
        programId: Id('prg', 'Its program.'),
        amount: BalanceDollars('How much of the spend it paid.', 42.5),
      }),
      {
        description:
          'The milestones that paid for the spend, first-in-first-out over the card account’s settled disbursements.',
      },
    ),
    unattributedAmount: BalanceDollars('Drawn on money no disbursement put on the card.', 0),
    occurredAt: Timestamp('The transaction’s first event at Highnote.'),
    updatedAt: Timestamp('Its latest event at Highnote.'),
  },
  { $id: 'Spend' },
);

export function presentSpend(spend: Spend) {
  return {
    id: spend.id,
    object: 'spend' as const,
    userId: spend.userId,
    cardId: spend.cardId,
    highnoteTransactionId: spend.highnoteTransactionId,
    amount: dollars(spend.amountCents),
    status: spend.status,
    authorizedAmount: dollars(spend.authorizedCents),
    reversedAmount: dollars(spend.reversedCents),
    clearedAmount: dollars(spend.clearedCents),
    refundedAmount: dollars(spend.refundedCents),
    merchant: spend.merchant,
    attributions: spend.attributions.map((a) => ({
      disbursementId: a.disbursementId,
      userTaskId: a.userTaskId,
      programId: a.programId,
      amount: dollars(a.amountCents),
    })),
    unattributedAmount: dollars(spend.unattributedCents),
    occurredAt: isoRequired(spend.occurredAt),
    updatedAt: isoRequired(spend.lastEventAt),
  };
}
