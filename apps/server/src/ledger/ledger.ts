import { type Selectable, sql } from 'kysely';
import type { Db } from '../platform/db.js';
import { assert } from '../platform/errors.js';
import { observeLedgerBatch } from '../platform/metrics.js';
import type { LedgerTransfersTable } from '../platform/schema.js';
import type { TransferCode, TransferKind } from './kinds.js';

/**
 * The money engine: double-entry accounts with two-phase transfers, after TigerBeetle.
 * A batch of operations is applied in one transaction; each gets its own result, in order,
 * and a rejected operation changes nothing while the others go ahead.
 */

/** Most operations one batch may carry. */
export const maxBatchSize = 8_190;

export type LedgerOperation =
  | {
      type: 'create';
      id: string;
      debitAccountId: string;
      creditAccountId: string;
      amountCents: bigint;
      /** A pending transfer reserves the amount; it is later posted or voided. */
      pending: boolean;
      code: TransferCode;
      programId: string;
      userTaskId?: string | null;
    }
  | {
      /** Posts a pending transfer; a smaller amount posts only that and releases the rest. */
      type: 'post';
      id: string;
      pendingId: string;
      amountCents?: bigint;
    }
  | { type: 'void'; id: string; pendingId: string };

export type LedgerRejection =
  | 'amount_must_be_positive'
  | 'accounts_must_be_different'
  | 'account_not_found'
  | 'account_frozen'
  | 'exceeds_credits'
  | 'exceeds_debits'
  | 'pending_transfer_not_found'
  | 'pending_transfer_not_pending'
  | 'pending_transfer_already_posted'
  | 'pending_transfer_already_voided'
  | 'exceeds_pending_transfer_amount'
  | 'id_already_used';

export interface Transfer {
  id: string;
  debitAccountId: string;
  creditAccountId: string;
  amountCents: bigint;
  kind: TransferKind;
  pendingId: string | null;
  code: TransferCode;
  programId: string;
  userTaskId: string | null;
  createdAt: Date;
}

export type LedgerResult = { ok: true; transfer: Transfer } | { ok: false; reason: LedgerRejection };

export interface AccountState {
  id: string;
  debitsPendingCents: bigint;
  debitsPostedCents: bigint;
  creditsPendingCents: bigint;
  creditsPostedCents: bigint;
  debitsMustNotExceedCredits: boolean;
  creditsMustNotExceedDebits: boolean;
  frozen: boolean;
}

interface AccountRow {
  id: string;
  debits_pending_cents: bigint;
  debits_posted_cents: bigint;
  credits_pending_cents: bigint;
  credits_posted_cents: bigint;
  debits_must_not_exceed_credits: boolean;
  credits_must_not_exceed_debits: boolean;
  frozen: boolean;
}

function accountOf(row: AccountRow): AccountState {
  return {
    id: row.id,
    debitsPendingCents: row.debits_pending_cents,
    debitsPostedCents: row.debits_posted_cents,
    creditsPendingCents: row.credits_pending_cents,
    creditsPostedCents: row.credits_posted_cents,
    debitsMustNotExceedCredits: row.debits_must_not_exceed_credits,
    creditsMustNotExceedDebits: row.credits_must_not_exceed_debits,
    frozen: row.frozen,
  };
}

interface Delta {
  debitsPendingCents: bigint;
  debitsPostedCents: bigint;
  creditsPendingCents: bigint;
  creditsPostedCents: bigint;
}

const zeroDelta = (): Delta => ({
  debitsPendingCents: 0n,
  debitsPostedCents: 0n,
  creditsPendingCents: 0n,
  creditsPostedCents: 0n,
});

function withinLimits(account: AccountState): LedgerRejection | undefined {
  if (
    account.debitsMustNotExceedCredits &&
    account.debitsPendingCents + account.debitsPostedCents > account.creditsPostedCents
  ) {
    return 'exceeds_credits';
  }
  if (
    account.creditsMustNotExceedDebits &&
    account.creditsPendingCents + account.creditsPostedCents > account.debitsPostedCents
  ) {
    return 'exceeds_debits';
  }
  return undefined;
}

function nonNegative(account: AccountState): boolean {
  return (
    account.debitsPendingCents >= 0n &&
    account.debitsPostedCents >= 0n &&
    account.creditsPendingCents >= 0n &&
    account.creditsPostedCents >= 0n
  );
}

function transferOf(row: Selectable<LedgerTransfersTable>): Transfer {
  return {
    id: row.id,
    debitAccountId: row.debit_account_id,
    creditAccountId: row.credit_account_id,
    amountCents: row.amount_cents,
    kind: row.kind,
    pendingId: row.pending_id,
    code: row.code,
    programId: row.program_id,
    userTaskId: row.user_task_id,
    createdAt: row.created_at,
  };
}

/**
 * Applies a batch of operations for one organization inside the caller's transaction.
 * Accounts are locked in id order (no deadlock between batches), every check runs after the
 * lock, and the writes go out as one statement, so the lock is held for as little as possible.
 * The lock is FOR NO KEY UPDATE, the one an UPDATE of the balances takes anyway: it does not
 * conflict with the KEY SHARE locks that foreign-key checks (a new program or transfer naming
 * the account) take, so those never deadlock against a ledger batch.
 */
export async function applyLedgerBatch(
  tx: Db,
  organizationId: string,
  operations: readonly LedgerOperation[],
): Promise<LedgerResult[]> {
  assert(operations.length <= maxBatchSize, `a ledger batch holds at most ${maxBatchSize} operations`);
  if (operations.length === 0) return [];
  observeLedgerBatch(operations.length);

  const pendingIds = [
    ...new Set(operations.flatMap((operation) => (operation.type === 'create' ? [] : [operation.pendingId]))),
  ];
  const referenced = new Map<string, Transfer>();
  if (pendingIds.length > 0) {
    const rows = await tx
      .selectFrom('ledger_transfers')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('id', 'in', pendingIds)
      .execute();
    for (const row of rows) referenced.set(row.id, transferOf(row));
  }

  const accountIds = new Set<string>();
  for (const operation of operations) {
    if (operation.type === 'create') {
      accountIds.add(operation.debitAccountId);
      accountIds.add(operation.creditAccountId);
    } else {
      const pending = referenced.get(operation.pendingId);
      if (pending !== undefined) {
        accountIds.add(pending.debitAccountId);
        accountIds.add(pending.creditAccountId);
      }
    }
  }
  const lockedRows = await sql<AccountRow>`
    SELECT id, debits_pending_cents, debits_posted_cents, credits_pending_cents, credits_posted_cents,
           debits_must_not_exceed_credits, credits_must_not_exceed_debits, frozen
    FROM ledger_accounts
    WHERE organization_id = ${organizationId} AND id = ANY(${[...accountIds].sort()}::text[])
    ORDER BY id
    FOR NO KEY UPDATE`.execute(tx);
  const accounts = new Map(lockedRows.rows.map((row) => [row.id, accountOf(row)]));

  // Read after the lock: whoever resolves a pending transfer holds these same account locks.
  const resolvedBy = new Map<string, TransferKind>();
  if (pendingIds.length > 0) {
    const rows = await tx
      .selectFrom('ledger_transfers')
      .select(['pending_id', 'kind'])
      .where('organization_id', '=', organizationId)
      .where('pending_id', 'in', pendingIds)
      .execute();
    for (const row of rows) if (row.pending_id !== null) resolvedBy.set(row.pending_id, row.kind);
  }

  const usedIds = new Set<string>();
  const deltas = new Map<string, Delta>();
  const created: Transfer[] = [];
  const now = new Date();

  const apply = (account: AccountState, change: Partial<Delta>) => {
    const delta = deltas.get(account.id) ?? zeroDelta();
    for (const [field, amount] of Object.entries(change) as [keyof Delta, bigint][]) {
      account[field] += amount;
      delta[field] += amount;
    }
    deltas.set(account.id, delta);
  };
  const revert = (account: AccountState, change: Partial<Delta>) => {
    const negated: Partial<Delta> = {};
    for (const [field, amount] of Object.entries(change) as [keyof Delta, bigint][]) negated[field] = -amount;
    apply(account, negated);
  };

  const results = operations.map((operation): LedgerResult => {
    if (usedIds.has(operation.id) || referenced.has(operation.id)) return { ok: false, reason: 'id_already_used' };
    let transfer: Transfer;
    let debitChange: Partial<Delta>;
    let creditChange: Partial<Delta>;
    if (operation.type === 'create') {
      if (operation.amountCents <= 0n) return { ok: false, reason: 'amount_must_be_positive' };
      if (operation.debitAccountId === operation.creditAccountId) {
        return { ok: false, reason: 'accounts_must_be_different' };
      }
      const amount = operation.amountCents;
      debitChange = operation.pending ? { debitsPendingCents: amount } : { debitsPostedCents: amount };
      creditChange = operation.pending ? { creditsPendingCents: amount } : { creditsPostedCents: amount };
      transfer = {
        id: operation.id,
        debitAccountId: operation.debitAccountId,
        creditAccountId: operation.creditAccountId,
        amountCents: amount,
        kind: operation.pending ? 'pending' : 'posted',
        pendingId: null,
        code: operation.code,
        programId: operation.programId,
        userTaskId: operation.userTaskId ?? null,
        createdAt: now,
      };
    } else {
      const pending = referenced.get(operation.pendingId);
      if (pending === undefined) return { ok: false, reason: 'pending_transfer_not_found' };
      if (pending.kind !== 'pending') return { ok: false, reason: 'pending_transfer_not_pending' };
      const resolution = resolvedBy.get(pending.id);
      if (resolution === 'post_pending') return { ok: false, reason: 'pending_transfer_already_posted' };
      if (resolution === 'void_pending') return { ok: false, reason: 'pending_transfer_already_voided' };
      const held = pending.amountCents;
      let amount = held;
      if (operation.type === 'post') {
        amount = operation.amountCents ?? held;
        if (amount <= 0n) return { ok: false, reason: 'amount_must_be_positive' };
        if (amount > held) return { ok: false, reason: 'exceeds_pending_transfer_amount' };
        debitChange = { debitsPendingCents: -held, debitsPostedCents: amount };
        creditChange = { creditsPendingCents: -held, creditsPostedCents: amount };
      } else {
        debitChange = { debitsPendingCents: -held };
        creditChange = { creditsPendingCents: -held };
      }
      transfer = {
        id: operation.id,
        debitAccountId: pending.debitAccountId,
        creditAccountId: pending.creditAccountId,
        amountCents: amount,
        kind: operation.type === 'post' ? 'post_pending' : 'void_pending',
        pendingId: pending.id,
        code: pending.code,
        programId: pending.programId,
        userTaskId: pending.userTaskId,
        createdAt: now,
      };
    }
    const debit = accounts.get(transfer.debitAccountId);
    const credit = accounts.get(transfer.creditAccountId);
    if (debit === undefined || credit === undefined) return { ok: false, reason: 'account_not_found' };
    // A frozen account (the pool of a paused or closed program) takes no new debit, neither
    // reserved nor posted; it still takes credits, and its reservations can still be voided.
    if (debit.frozen && transfer.kind !== 'void_pending') {
      return { ok: false, reason: 'account_frozen' };
    }
    apply(debit, debitChange);
    apply(credit, creditChange);
    const rejection = withinLimits(debit) ?? withinLimits(credit);
    if (rejection !== undefined) {
      revert(debit, debitChange);
      revert(credit, creditChange);
      return { ok: false, reason: rejection };
    }
    assert(nonNegative(debit) && nonNegative(credit), `transfer ${transfer.id} drives an account counter below zero`);
    usedIds.add(transfer.id);
    if (transfer.kind === 'pending') referenced.set(transfer.id, transfer);
    if (transfer.pendingId !== null) resolvedBy.set(transfer.pendingId, transfer.kind);
    created.push(transfer);
    return { ok: true, transfer };
  });

  // Double entry: every change to a debit counter is matched by one to a credit counter.
  let pendingBalance = 0n;
  let postedBalance = 0n;
  for (const delta of deltas.values()) {
    pendingBalance += delta.debitsPendingCents - delta.creditsPendingCents;
    postedBalance += delta.debitsPostedCents - delta.creditsPostedCents;
  }
  assert(pendingBalance === 0n && postedBalance === 0n, 'a ledger batch must move debits and credits equally');

  if (created.length > 0) await writeBatch(tx, organizationId, deltas, created);
  return results;
}

async function writeBatch(
  tx: Db,
  organizationId: string,
  deltas: Map<string, Delta>,
  transfers: Transfer[],
): Promise<void> {
  const changed = [...deltas.entries()].filter(
    ([, d]) =>
      d.debitsPendingCents !== 0n ||
      d.debitsPostedCents !== 0n ||
      d.creditsPendingCents !== 0n ||
      d.creditsPostedCents !== 0n,
  );
  const accountValues = sql.join(
    changed.map(
      ([id, d]) =>
        sql`(${id}::text, ${d.debitsPendingCents}::bigint, ${d.debitsPostedCents}::bigint, ${d.creditsPendingCents}::bigint, ${d.creditsPostedCents}::bigint)`,
    ),
  );
  const transferValues = sql.join(
    transfers.map(
      (t) =>
        sql`(${organizationId}, ${t.id}, ${t.debitAccountId}, ${t.creditAccountId}, ${t.amountCents}::bigint, ${t.kind}, ${t.pendingId}, ${t.code}, ${t.programId}, ${t.userTaskId}, ${t.createdAt.toISOString()}::timestamptz)`,
    ),
  );
  const moved =
    changed.length === 0
      ? sql``
      : sql`WITH moved AS (
      UPDATE ledger_accounts AS a SET
        debits_pending_cents = a.debits_pending_cents + d.debits_pending,
        debits_posted_cents = a.debits_posted_cents + d.debits_posted,
        credits_pending_cents = a.credits_pending_cents + d.credits_pending,
        credits_posted_cents = a.credits_posted_cents + d.credits_posted
      FROM (VALUES ${accountValues}) AS d (id, debits_pending, debits_posted, credits_pending, credits_posted)
      WHERE a.organization_id = ${organizationId} AND a.id = d.id
      RETURNING a.id
    ) `;
  await sql`${moved}INSERT INTO ledger_transfers
      (organization_id, id, debit_account_id, credit_account_id, amount_cents, kind, pending_id, code, program_id, user_task_id, created_at)
    VALUES ${transferValues}`.execute(tx);
}

export async function readTransfer(tx: Db, organizationId: string, id: string): Promise<Transfer | undefined> {
  const row = await tx
    .selectFrom('ledger_transfers')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined ? undefined : transferOf(row);
}

export { transferOf };

/** For batches that cannot be refused unless the code is wrong: every result must be ok. */
export function assertAllApplied(results: readonly LedgerResult[], what: string): Transfer[] {
  return results.map((result, index) => {
    assert(result.ok, `${what}: operation ${index} refused (${result.ok ? '' : result.reason})`);
    return result.transfer;
  });
}
