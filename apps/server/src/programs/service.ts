import { applyLedgerBatch, assertAllApplied, type LedgerOperation, maxBatchSize } from '../ledger/ledger.js';
import { type Db, dateOf } from '../platform/db.js';
import { assert, fail, ok, type Result } from '../platform/errors.js';
import { newId, resolutionTransferIdOfRow } from '../platform/ids.js';
import type { ProgramStatus } from '../platform/schema.js';

export interface ProgramBalances {
  availableCents: bigint;
  reservedCents: bigint;
  disbursingCents: bigint;
  disbursedCents: bigint;
  returnedCents: bigint;
}

export interface Program {
  id: string;
  name: string;
  description: string | null;
  programType: string | null;
  cardProductId: string | null;
  status: ProgramStatus;
  totalAwardPoolCents: bigint;
  maxParticipants: number;
  participantCount: number;
  startsAt: Date | null;
  endsAt: Date | null;
  metadata: Record<string, string>;
  balances: ProgramBalances;
  poolAccountId: string;
  inTransitAccountId: string;
  disbursedAccountId: string;
  fundingAccountId: string;
  createdAt: Date;
  updatedAt: Date;
  closedAt: Date | null;
}

function programQuery(db: Db, organizationId: string) {
  return db
    .selectFrom('programs as p')
    .innerJoin('ledger_accounts as pool', (join) =>
      join.onRef('pool.organization_id', '=', 'p.organization_id').onRef('pool.id', '=', 'p.pool_account_id'),
    )
    .innerJoin('ledger_accounts as transit', (join) =>
      join
        .onRef('transit.organization_id', '=', 'p.organization_id')
        .onRef('transit.id', '=', 'p.in_transit_account_id'),
    )
    .innerJoin('ledger_accounts as settled', (join) =>
      join
        .onRef('settled.organization_id', '=', 'p.organization_id')
        .onRef('settled.id', '=', 'p.disbursed_account_id'),
    )
    .selectAll('p')
    .select([
      'pool.credits_posted_cents as pool_credits_posted',
      'pool.debits_posted_cents as pool_debits_posted',
      'pool.debits_pending_cents as pool_debits_pending',
      'transit.credits_posted_cents as transit_credits_posted',
      'transit.debits_posted_cents as transit_debits_posted',
      'settled.credits_posted_cents as settled_credits_posted',
      'settled.debits_posted_cents as settled_debits_posted',
    ])
    .where('p.organization_id', '=', organizationId);
}

type ProgramRow = Awaited<ReturnType<ReturnType<typeof programQuery>['executeTakeFirstOrThrow']>>;

/**
 * Balances from the program's accounts. The pool's posted debits go either to in_transit
 * (completed milestones) or back to funding (returned), which gives `returned`; the identity
 * `total = available + reserved + disbursing + disbursed + returned` is asserted here and held
 * at commit by the `ledger_program_identity` constraint trigger.
 */
function programOf(row: ProgramRow): Program {
  const balances: ProgramBalances = {
    availableCents: row.pool_credits_posted - row.pool_debits_posted - row.pool_debits_pending,
    reservedCents: row.pool_debits_pending,
    disbursingCents: row.transit_credits_posted - row.transit_debits_posted,
    disbursedCents: row.settled_credits_posted - row.settled_debits_posted,
    returnedCents: row.pool_debits_posted - row.transit_credits_posted,
  };
  const sum =
    balances.availableCents +
    balances.reservedCents +
    balances.disbursingCents +
    balances.disbursedCents +
    balances.returnedCents;
  assert(
    sum === row.total_award_pool_cents && row.pool_credits_posted === row.total_award_pool_cents,
    `program ${row.id} breaks totalAwardPool = available + reserved + disbursing + disbursed + returned`,
  );
  for (const [name, value] of Object.entries(balances)) {
    assert(value >= 0n, `program ${row.id} has a negative ${name}`);
  }
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    programType: row.program_type,
    cardProductId: row.card_product_id,
    status: row.status,
    totalAwardPoolCents: row.total_award_pool_cents,
    maxParticipants: row.max_participants,
    participantCount: row.participant_count,
    startsAt: dateOf(row.starts_at),
    endsAt: dateOf(row.ends_at),
    metadata: row.metadata as Record<string, string>,
    balances,
    poolAccountId: row.pool_account_id,
    inTransitAccountId: row.in_transit_account_id,
    disbursedAccountId: row.disbursed_account_id,
    fundingAccountId: row.funding_account_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    closedAt: dateOf(row.closed_at),
  };
}

export async function getProgram(db: Db, organizationId: string, id: string): Promise<Program | undefined> {
  const row = await programQuery(db, organizationId).where('p.id', '=', id).executeTakeFirst();
  return row === undefined ? undefined : programOf(row);
}

export async function findProgram(db: Db, organizationId: string, id: string): Promise<Result<Program>> {
  const program = await getProgram(db, organizationId, id);
  return program === undefined ? fail('not_found', `No program ${id}`, 'programId') : ok(program);
}

export async function listPrograms(
  db: Db,
  organizationId: string,
  options: { afterId: string | undefined; limit: number; status: ProgramStatus | undefined },
): Promise<Program[]> {
  let query = programQuery(db, organizationId).orderBy('p.id', 'desc').limit(options.limit);
  if (options.afterId !== undefined) query = query.where('p.id', '<', options.afterId);
  if (options.status !== undefined) query = query.where('p.status', '=', options.status);
  return (await query.execute()).map(programOf);
}

export interface CreateProgramInput {
  name: string;
  description?: string | undefined;
  programType?: string | undefined;
  cardProductId?: string | undefined;
  totalAwardPoolCents: bigint;
  maxParticipants: number;
  startsAt?: string | undefined;
  endsAt?: string | undefined;
  metadata?: Record<string, string> | undefined;
}

async function fundingAccountId(tx: Db, organizationId: string): Promise<string> {
  const row = await tx
    .selectFrom('ledger_accounts')
    .select('id')
    .where('organization_id', '=', organizationId)
    .where('kind', '=', 'funding')
    .executeTakeFirstOrThrow();
  return row.id;
}

/** Creates the program and its three accounts, and funds the pool from the organization's funding account. */
export async function createProgram(
  tx: Db,
  organizationId: string,
  input: CreateProgramInput,
): Promise<Result<Program>> {
  if (input.startsAt !== undefined && input.endsAt !== undefined && input.startsAt >= input.endsAt) {
    return fail('validation_error', 'endsAt must be after startsAt', 'endsAt');
  }
  const id = newId('program');
  const funding = await fundingAccountId(tx, organizationId);
  const accounts = {
    pool: newId('account'),
    in_transit: newId('account'),
    disbursed: newId('account'),
  } as const;
  await tx
    .insertInto('ledger_accounts')
    .values(
      (Object.entries(accounts) as ['pool' | 'in_transit' | 'disbursed', string][]).map(([kind, accountId]) => ({
        organization_id: organizationId,
        id: accountId,
        program_id: id,
        kind,
        debits_must_not_exceed_credits: true,
        credits_must_not_exceed_debits: false,
      })),
    )
    .execute();
  await tx
    .insertInto('programs')
    .values({
      organization_id: organizationId,
      id,
      name: input.name,
      description: input.description ?? null,
      program_type: input.programType ?? null,
      card_product_id: input.cardProductId ?? null,
      total_award_pool_cents: input.totalAwardPoolCents,
      max_participants: input.maxParticipants,
      starts_at: input.startsAt ?? null,
      ends_at: input.endsAt ?? null,
      metadata: JSON.stringify(input.metadata ?? {}),
      pool_account_id: accounts.pool,
      in_transit_account_id: accounts.in_transit,
      disbursed_account_id: accounts.disbursed,
      funding_account_id: funding,
    })
    .execute();
  if (input.totalAwardPoolCents > 0n) {
    const [result] = await applyLedgerBatch(tx, organizationId, [
      {
        type: 'create',
        id: newId('transfer'),
        debitAccountId: funding,
        creditAccountId: accounts.pool,
        amountCents: input.totalAwardPoolCents,
        pending: false,
        code: 'program_funding',
        programId: id,
      },
    ]);
    assert(result?.ok, `funding program ${id} failed: ${result && !result.ok ? result.reason : 'no result'}`);
  }
  return findProgram(tx, organizationId, id);
}

/** Locks the program row for a status change or a change to its pool. */
async function lockProgram(tx: Db, organizationId: string, id: string) {
  return tx
    .selectFrom('programs')
    .select(['id', 'status', 'participant_count', 'pool_account_id', 'funding_account_id', 'starts_at', 'ends_at'])
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
}

export interface UpdateProgramInput {
  name?: string | undefined;
  description?: string | null | undefined;
  maxParticipants?: number | undefined;
  endsAt?: string | null | undefined;
  metadata?: Record<string, string> | undefined;
}

export async function updateProgram(
  tx: Db,
  organizationId: string,
  id: string,
  input: UpdateProgramInput,
): Promise<Result<Program>> {
  const current = await lockProgram(tx, organizationId, id);
  if (current === undefined) return fail('not_found', `No program ${id}`);
  if (current.status === 'closed') return fail('invalid_state', `Program ${id} is closed and can no longer change`);
  if (input.maxParticipants !== undefined && input.maxParticipants < current.participant_count) {
    return fail(
      'invalid_state',
      `maxParticipants cannot drop below the ${current.participant_count} participants enrolled`,
      'maxParticipants',
    );
  }
  const startsAt = dateOf(current.starts_at);
  if (input.endsAt && startsAt !== null && new Date(input.endsAt) <= startsAt) {
    return fail('validation_error', 'endsAt must be after startsAt', 'endsAt');
  }
  await tx
    .updateTable('programs')
    .set({
      ...(input.name !== undefined ? { name: input.name } : {}),
      ...(input.description !== undefined ? { description: input.description } : {}),
      ...(input.maxParticipants !== undefined ? { max_participants: input.maxParticipants } : {}),
      ...(input.endsAt !== undefined ? { ends_at: input.endsAt } : {}),
      ...(input.metadata !== undefined ? { metadata: JSON.stringify(input.metadata) } : {}),
      updated_at: new Date(),
    })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .execute();
  return findProgram(tx, organizationId, id);
}

export async function fundProgram(
  tx: Db,
  organizationId: string,
  id: string,
  amountCents: bigint,
): Promise<Result<Program>> {
  const current = await lockProgram(tx, organizationId, id);
  if (current === undefined) return fail('not_found', `No program ${id}`);
  if (current.status === 'closed') return fail('invalid_state', `Program ${id} is closed; fund a new program instead`);
  await tx
    .updateTable('programs')
    .set((eb) => ({ total_award_pool_cents: eb('total_award_pool_cents', '+', amountCents), updated_at: new Date() }))
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .execute();
  const [result] = await applyLedgerBatch(tx, organizationId, [
    {
      type: 'create',
      id: newId('transfer'),
      debitAccountId: current.funding_account_id,
      creditAccountId: current.pool_account_id,
      amountCents,
      pending: false,
      code: 'program_funding',
      programId: id,
    },
  ]);
  assert(result?.ok, `funding program ${id} failed`);
  return findProgram(tx, organizationId, id);
}

async function setPoolFrozen(tx: Db, organizationId: string, poolAccountId: string, frozen: boolean) {
  await tx
    .updateTable('ledger_accounts')
    .set({ frozen })
    .where('organization_id', '=', organizationId)
    .where('id', '=', poolAccountId)
    .execute();
}

/** Pausing freezes the pool: nothing new is reserved or released; cancels still release. */
export async function pauseProgram(tx: Db, organizationId: string, id: string): Promise<Result<Program>> {
  const current = await lockProgram(tx, organizationId, id);
  if (current === undefined) return fail('not_found', `No program ${id}`);
  if (current.status !== 'active') return fail('invalid_state', `Program ${id} is ${current.status}, not active`);
  await setPoolFrozen(tx, organizationId, current.pool_account_id, true);
  await setStatus(tx, organizationId, id, 'paused');
  return findProgram(tx, organizationId, id);
}

export async function resumeProgram(tx: Db, organizationId: string, id: string): Promise<Result<Program>> {
  const current = await lockProgram(tx, organizationId, id);
  if (current === undefined) return fail('not_found', `No program ${id}`);
  if (current.status !== 'paused') return fail('invalid_state', `Program ${id} is ${current.status}, not paused`);
  await setPoolFrozen(tx, organizationId, current.pool_account_id, false);
  await setStatus(tx, organizationId, id, 'active');
  return findProgram(tx, organizationId, id);
}

async function setStatus(tx: Db, organizationId: string, id: string, status: ProgramStatus) {
  const now = new Date();
  await tx
    .updateTable('programs')
    .set({ status, updated_at: now, ...(status === 'closed' ? { closed_at: now } : {}) })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .execute();
}

/**
 * Closing voids every open reservation, returns the available pool to the funding account and
 * freezes the pool for good. Milestones already completed keep settling to their cards.
 */
export async function closeProgram(tx: Db, organizationId: string, id: string): Promise<Result<Program>> {
  const current = await lockProgram(tx, organizationId, id);
  if (current === undefined) return fail('not_found', `No program ${id}`);
  if (current.status === 'closed') return fail('invalid_state', `Program ${id} is already closed`);
  // Lock order everywhere: enrollment, program, user tasks, accounts.
  for (;;) {
    const released = await releaseOpenUserTasks(tx, organizationId, { programId: id }, 'program_closed');
    if (released < maxBatchSize) break;
  }
  // Voids pass a frozen pool, but the return is a debit: thaw inside this transaction.
  await setPoolFrozen(tx, organizationId, current.pool_account_id, false);
  const program = await getProgram(tx, organizationId, id);
  assert(program !== undefined, `program ${id} vanished inside its own transaction`);
  if (program.balances.availableCents > 0n) {
    const [result] = await applyLedgerBatch(tx, organizationId, [
      {
        type: 'create',
        id: newId('transfer'),
        debitAccountId: current.pool_account_id,
        creditAccountId: current.funding_account_id,
        amountCents: program.balances.availableCents,
        pending: false,
        code: 'program_return',
        programId: id,
      },
    ]);
    assert(result?.ok, `returning the pool of program ${id} failed`);
  }
  await setPoolFrozen(tx, organizationId, current.pool_account_id, true);
  await setStatus(tx, organizationId, id, 'closed');
  return findProgram(tx, organizationId, id);
}

/**
 * Cancels up to one ledger batch of open user tasks matching the filter and voids their
 * reservations; returns how many it released. Used by close and by dismissal.
 */
export async function releaseOpenUserTasks(
  tx: Db,
  organizationId: string,
  filter: { programId: string; userId?: string },
  reason: string,
): Promise<number> {
  let query = tx
    .updateTable('user_tasks')
    .set({
      status: 'cancelled',
      cancellation_reason: reason,
      cancelled_at: new Date(),
      updated_at: new Date(),
      resolution_transfer_id: resolutionTransferIdOfRow,
    })
    .where('organization_id', '=', organizationId)
    .where('program_id', '=', filter.programId)
    .where('status', 'in', ['assigned', 'pending_approval']);
  if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
  // One UPDATE … WHERE id IN (… LIMIT n) keeps each round bounded.
  const rows = await query
    .where(
      'id',
      'in',
      (() => {
        let inner = tx
          .selectFrom('user_tasks')
          .select('id')
          .where('organization_id', '=', organizationId)
          .where('program_id', '=', filter.programId)
          .where('status', 'in', ['assigned', 'pending_approval'])
          .limit(maxBatchSize);
        if (filter.userId !== undefined) inner = inner.where('user_id', '=', filter.userId);
        return inner;
      })(),
    )
    .returning(['id', 'reservation_transfer_id', 'resolution_transfer_id'])
    .execute();
  if (rows.length === 0) return 0;
  const operations: LedgerOperation[] = rows.map((row) => ({
    type: 'void',
    id: row.resolution_transfer_id as string,
    pendingId: row.reservation_transfer_id,
  }));
  const results = await applyLedgerBatch(tx, organizationId, operations);
  assertAllApplied(results, 'voiding reservations');
  return rows.length;
}
