import { syncProgramCardsRequest } from '../cards/controls.js';
import { type Db, dateOf } from '../platform/db.js';
import { assert, fail, ok, type Result } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { defineJob, type JobRequest, jobRequest } from '../platform/jobs.js';
import { releaseOpenUserTasks } from '../usertasks/transitions.js';
import { openUserTaskStatuses } from '../usertasks/usertask.js';
import { runUnit, systemContext } from '../work/runner.js';
import type { UnitOfWork } from '../work/unit.js';
import { findProgram, type Program, type ProgramStatus, presentProgram } from './program.js';
import {
  type RequiredAgreement,
  replaceRequiredAgreements,
  validateRequiredAgreements,
} from './required-agreements.js';
import {
  noSpendControls,
  type SpendControls,
  spendControlsDigest,
  spendControlsFromStorage,
  spendControlsToStorage,
} from './spend-controls.js';

/**
 * Program changes, each inside a unit of work. Lock order, everywhere a unit takes more than one
 * of these: enrollment, program, user tasks, ledger accounts (by id). Program rows are locked
 * FOR NO KEY UPDATE, which does not conflict with the KEY SHARE locks that foreign keys take
 * (a new transfer, disbursement or user task naming the program), so a program change never
 * deadlocks with the hot path's writes.
 */

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
  spendControls?: SpendControls | undefined;
  requiredAgreements?: readonly RequiredAgreement[] | undefined;
}

/** Most open user tasks one closing or dismissal releases in its own transaction; a job does the rest. */
export const releaseBatchSize = 1_000;

async function fundingAccountId(tx: Db, organizationId: string): Promise<string> {
  const row = await tx
    .selectFrom('ledger_accounts')
    .select('id')
    .where('organization_id', '=', organizationId)
    .where('kind', '=', 'funding')
    .executeTakeFirstOrThrow();
  return row.id;
}

/** Reads the program a unit just changed; it exists, since the unit holds its lock or wrote it. */
async function reread(unit: UnitOfWork, id: string): Promise<Program> {
  const program = await findProgram(unit.tx, unit.organizationId, id);
  assert(program.ok, `program ${id} vanished inside its own transaction`);
  return program.value;
}

/** Creates the program and its three accounts, and funds the pool from the organization's funding account. */
export async function createProgram(unit: UnitOfWork, input: CreateProgramInput): Promise<Result<Program>> {
  const { tx, organizationId } = unit;
  if (
    input.startsAt !== undefined &&
    input.endsAt !== undefined &&
    !(new Date(input.startsAt) < new Date(input.endsAt))
  ) {
    return fail('validation_error', 'endsAt must be after startsAt', 'endsAt');
  }
  const requiredAgreements = input.requiredAgreements ?? [];
  const valid = await validateRequiredAgreements(tx, organizationId, requiredAgreements);
  if (!valid.ok) return valid;
  const id = newId('program');
  const funding = await fundingAccountId(tx, organizationId);
  const accounts = { pool: newId('account'), in_transit: newId('account'), disbursed: newId('account') } as const;
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
        created_at: unit.now,
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
      spend_controls: spendControlsToStorage(input.spendControls ?? noSpendControls),
      pool_account_id: accounts.pool,
      in_transit_account_id: accounts.in_transit,
      disbursed_account_id: accounts.disbursed,
      funding_account_id: funding,
      created_at: unit.now,
      updated_at: unit.now,
    })
    .execute();
  await replaceRequiredAgreements(unit, id, requiredAgreements);
  if (input.totalAwardPoolCents > 0n) {
    unit.moveMoney([
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
    // The answer shows the funded balances.
    await unit.flushLedger();
  }
  const program = await reread(unit, id);
  unit.emit('program.created', presentProgram(program));
  return ok(program);
}

/** Locks the program row for a status change or a change to its pool. */
export async function lockProgram(tx: Db, organizationId: string, id: string) {
  return tx
    .selectFrom('programs')
    .select(['id', 'status', 'participant_count', 'pool_account_id', 'funding_account_id', 'starts_at', 'ends_at'])
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .forNoKeyUpdate()
    .executeTakeFirst();
}

export interface UpdateProgramInput {
  name?: string | undefined;
  description?: string | null | undefined;
  maxParticipants?: number | undefined;
  endsAt?: string | null | undefined;
  metadata?: Record<string, string> | undefined;
  /** Replaces the program's controls as a whole; `noSpendControls` removes them. */
  spendControls?: SpendControls | undefined;
  /** Replaces the program's required agreements as a whole; `[]` removes them. */
  requiredAgreements?: readonly RequiredAgreement[] | undefined;
}

export async function updateProgram(unit: UnitOfWork, id: string, input: UpdateProgramInput): Promise<Result<Program>> {
  const { tx, organizationId } = unit;
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
  if (input.requiredAgreements !== undefined) {
    const valid = await validateRequiredAgreements(tx, organizationId, input.requiredAgreements);
    if (!valid.ok) return valid;
    await replaceRequiredAgreements(unit, id, input.requiredAgreements);
  }
  const spendControlsChanged =
    input.spendControls !== undefined && (await spendControlsDiffer(unit, id, input.spendControls));
  // The cards of the program's participants carry its controls: a job brings them in step.
  if (spendControlsChanged) unit.enqueue(syncProgramCardsRequest(id));
  await tx
    .updateTable('programs')
    .set({
      ...(input.name !== undefined ? { name: input.name } : {}),
      ...(input.description !== undefined ? { description: input.description } : {}),
      ...(input.maxParticipants !== undefined ? { max_participants: input.maxParticipants } : {}),
      ...(input.endsAt !== undefined ? { ends_at: input.endsAt } : {}),
      ...(input.metadata !== undefined ? { metadata: JSON.stringify(input.metadata) } : {}),
      ...(spendControlsChanged && input.spendControls !== undefined
        ? { spend_controls: spendControlsToStorage(input.spendControls) }
        : {}),
      updated_at: unit.now,
    })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .execute();
  const program = await reread(unit, id);
  unit.emit('program.updated', presentProgram(program));
  return ok(program);
}

/** Whether `next` differs from the controls of the program the unit holds locked. */
async function spendControlsDiffer(unit: UnitOfWork, id: string, next: SpendControls): Promise<boolean> {
  const row = await unit.tx
    .selectFrom('programs')
    .select('spend_controls')
    .where('organization_id', '=', unit.organizationId)
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
  const current = spendControlsFromStorage(row.spend_controls, `program ${id} spend_controls`);
  return spendControlsDigest(current) !== spendControlsDigest(next);
}

export async function fundProgram(unit: UnitOfWork, id: string, amountCents: bigint): Promise<Result<Program>> {
  const { tx, organizationId } = unit;
  const current = await lockProgram(tx, organizationId, id);
  if (current === undefined) return fail('not_found', `No program ${id}`);
  if (current.status === 'closed') return fail('invalid_state', `Program ${id} is closed; fund a new program instead`);
  await tx
    .updateTable('programs')
    .set((eb) => ({ total_award_pool_cents: eb('total_award_pool_cents', '+', amountCents), updated_at: unit.now }))
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .execute();
  unit.moveMoney([
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
  await unit.flushLedger();
  const program = await reread(unit, id);
  unit.emit('program.funded', presentProgram(program));
  return ok(program);
}

async function setPoolFrozen(tx: Db, organizationId: string, poolAccountId: string, frozen: boolean) {
  await tx
    .updateTable('ledger_accounts')
    .set({ frozen })
    .where('organization_id', '=', organizationId)
    .where('id', '=', poolAccountId)
    .execute();
}

async function setStatus(unit: UnitOfWork, id: string, status: ProgramStatus) {
  await unit.tx
    .updateTable('programs')
    .set({ status, updated_at: unit.now, ...(status === 'closed' ? { closed_at: unit.now } : {}) })
    .where('organization_id', '=', unit.organizationId)
    .where('id', '=', id)
    .execute();
}

/** Pausing freezes the pool: nothing new is reserved or released; cancels still release. */
export async function pauseProgram(unit: UnitOfWork, id: string): Promise<Result<Program>> {
  const current = await lockProgram(unit.tx, unit.organizationId, id);
  if (current === undefined) return fail('not_found', `No program ${id}`);
  if (current.status !== 'active') return fail('invalid_state', `Program ${id} is ${current.status}, not active`);
  await setPoolFrozen(unit.tx, unit.organizationId, current.pool_account_id, true);
  await setStatus(unit, id, 'paused');
  const program = await reread(unit, id);
  unit.emit('program.paused', presentProgram(program));
  return ok(program);
}

export async function resumeProgram(unit: UnitOfWork, id: string): Promise<Result<Program>> {
  const current = await lockProgram(unit.tx, unit.organizationId, id);
  if (current === undefined) return fail('not_found', `No program ${id}`);
  if (current.status !== 'paused') return fail('invalid_state', `Program ${id} is ${current.status}, not paused`);
  await setPoolFrozen(unit.tx, unit.organizationId, current.pool_account_id, false);
  await setStatus(unit, id, 'active');
  const program = await reread(unit, id);
  unit.emit('program.resumed', presentProgram(program));
  return ok(program);
}

/**
 * Closing voids open reservations, returns the available pool to the funding account and freezes
 * the pool for good. Milestones already completed keep settling to their cards. One transaction
 * releases at most `releaseBatchSize` reservations; a program with more finishes closing in a
 * job, which releases the rest in bounded rounds and returns what each round freed.
 */
export async function closeProgram(unit: UnitOfWork, id: string): Promise<Result<Program>> {
  const current = await lockProgram(unit.tx, unit.organizationId, id);
  if (current === undefined) return fail('not_found', `No program ${id}`);
  if (current.status === 'closed') return fail('invalid_state', `Program ${id} is already closed`);
  await setStatus(unit, id, 'closed');
  await releaseRound(unit, { ...current, status: 'closed' }, { programId: id }, 'program_closed');
  const program = await reread(unit, id);
  unit.emit('program.closed', presentProgram(program));
  return ok(program);
}

export interface ReleaseScope {
  programId: string;
  /** Only this participant's open user tasks (a dismissal); all of the program's otherwise. */
  userId?: string | undefined;
}

/**
 * One bounded round of releasing open user tasks, inside a unit that holds the program's lock.
 * In a closed program the pool's available balance then returns to the funding account, so no
 * money is left in a pool that will never reserve again. A full round enqueues the next one.
 */
export async function releaseRound(
  unit: UnitOfWork,
  program: { id: string; status: ProgramStatus; pool_account_id: string; funding_account_id: string },
  scope: ReleaseScope,
  reason: string,
): Promise<void> {
  await releaseOpenUserTasks(unit, scope, reason, releaseBatchSize);
  if (program.status === 'closed') {
    // Voids pass a frozen pool, but the return is a debit: thaw inside this transaction. The
    // UPDATE takes the pool's lock, so from here on no reservation commits unseen: one that
    // committed before it is visible to the next statement, one that did not will find the
    // pool frozen again when this unit commits.
    await setPoolFrozen(unit.tx, unit.organizationId, program.pool_account_id, false);
  }
  // Not "the round was full": rows another unit completed meanwhile are skipped (a short round
  // with more left), and a reservation can commit after the round's snapshot. What is still
  // open now is the next round's.
  if (await hasOpenUserTasks(unit, scope)) unit.enqueue(releaseOpenJobRequest({ ...scope, reason }));
  if (program.status !== 'closed') return;
  await unit.flushLedger();
  const { balances } = await reread(unit, program.id);
  if (balances.availableCents > 0n) {
    unit.moveMoney([
      {
        type: 'create',
        id: newId('transfer'),
        debitAccountId: program.pool_account_id,
        creditAccountId: program.funding_account_id,
        amountCents: balances.availableCents,
        pending: false,
        code: 'program_return',
        programId: program.id,
      },
    ]);
    await unit.flushLedger();
  }
  await setPoolFrozen(unit.tx, unit.organizationId, program.pool_account_id, true);
}

async function hasOpenUserTasks(unit: UnitOfWork, scope: ReleaseScope): Promise<boolean> {
  let query = unit.tx
    .selectFrom('user_tasks')
    .select('id')
    .where('organization_id', '=', unit.organizationId)
    .where('program_id', '=', scope.programId)
    .where('status', 'in', openUserTaskStatuses)
    .limit(1);
  if (scope.userId !== undefined) query = query.where('user_id', '=', scope.userId);
  return (await query.executeTakeFirst()) !== undefined;
}

export interface ReleaseOpenPayload extends ReleaseScope {
  reason: string;
}

/**
 * Continues a release too large for one transaction: each run is one unit that locks the program
 * first (the global lock order) and releases one more round, which enqueues the next if needed.
 */
export const releaseOpenJob = defineJob<ReleaseOpenPayload>({
  name: 'usertasks.release_open',
  maxAttempts: 10,
  backoff: { baseMs: 1_000, maxMs: 60_000 },
  visibilityTimeoutMs: 5 * 60 * 1000,
  async run(context, payload) {
    const organizationId = context.job.organizationId;
    assert(organizationId !== null, `job ${context.job.id} releases user tasks of no organization`);
    const outcome = await runUnit(context.db, systemContext(organizationId, context.job.name), (unit) =>
      continueRelease(unit, payload),
    );
    if (!outcome.ok) throw new Error(`releasing open user tasks failed: ${outcome.failure.message}`);
  },
});

function releaseOpenJobRequest(payload: ReleaseOpenPayload): JobRequest {
  // No dedupe key: the running round enqueues its successor, and an extra round releases nothing.
  return jobRequest(releaseOpenJob, payload);
}

/** The job's work: lock the program first (the global lock order), then one more round. */
export async function continueRelease(unit: UnitOfWork, payload: ReleaseOpenPayload): Promise<Result<null>> {
  if (payload.userId !== undefined) {
    // A dismissal's rounds: the enrollment first (the global lock order). A participant seated
    // again has nothing left from before (re-seating waits for this job), so nothing to release.
    const enrollment = await unit.tx
      .selectFrom('enrollments')
      .select('status')
      .where('organization_id', '=', unit.organizationId)
      .where('program_id', '=', payload.programId)
      .where('user_id', '=', payload.userId)
      .forUpdate()
      .executeTakeFirst();
    if (enrollment?.status === 'active') return ok(null);
  }
  const program = await lockProgram(unit.tx, unit.organizationId, payload.programId);
  assert(program !== undefined, `release job names program ${payload.programId}, which does not exist`);
  await releaseRound(unit, program, payload, payload.reason);
  return ok(null);
}
