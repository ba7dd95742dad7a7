import { sql } from 'kysely';
import { consentRequiredFailure, missingConsents } from '../agreements/consent.js';
import { syncCardControls } from '../cards/controls.js';
import { cardForFunding } from '../cards/service.js';
import type { Issuers } from '../configurations/service.js';
import type { IssuerTransfer } from '../issuer/highnote.js';
import type { Db } from '../platform/db.js';
import { assert, fail, ok, type Result } from '../platform/errors.js';
import { disbursementReturnTransferId, issuerIdempotencyKey, settlementTransferId } from '../platform/ids.js';
import { defineJob, enqueueJobs, type JobContext, type JobRequest } from '../platform/jobs.js';
import { moveFunding } from '../usertasks/funding.js';
import { runUnit } from '../work/runner.js';
import type { UnitOfWork } from '../work/unit.js';
import { type Disbursement, type DisbursementStatus, disbursementOf, presentDisbursement } from './disbursement.js';

/**
 * Funding a card for a verified milestone, as a job the completion enqueues in its own
 * transaction. The job follows one disbursement:
 *
 * 1. No card yet: the disbursement waits in `awaiting_card`; issuing the card enqueues it again.
 * 2. `→ processing`: the transfer's idempotency key (derived from the disbursement id and its
 *    attempt) is committed with the card it pays, before Highnote hears of it.
 * 3. The transfer is initiated with that key. A lost answer, a crash, a second worker: each sends
 *    the same key again, and Highnote answers with the same transfer, so the card is paid once.
 * 4. The transfer is followed to `COMPLETED` (settled: ledger `in_transit → disbursed`, user task
 *    `funded`) or `FAILED` (failed, with Highnote's reason; user task `funding_failed`, its money
 *    still in transit until it is retried or cancelled).
 *
 * Transient trouble (Highnote unreachable, a transfer still pending) ends the run with an error,
 * and the job queue runs it again with backoff.
 */

export const fundDisbursementJobName = 'disbursements.fund';

/** How long one run follows a pending transfer before leaving it to the next run. */
export const transferFollowMs = 10_000;
/** Between two reads of a pending transfer: doubling from the first, up to the cap. */
const transferPollFirstMs = 50;
const transferPollMaxMs = 1_000;

export interface FundPayload {
  disbursementId: string;
}

export class FundingNotDone extends Error {}

async function readDisbursement(db: Db, organizationId: string, id: string): Promise<Disbursement | undefined> {
  const row = await db
    .selectFrom('disbursements')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined ? undefined : disbursementOf(row);
}

/** Moves a disbursement between states and emits its event; false when it was not in `from`. */
async function moveDisbursement(
  unit: UnitOfWork,
  id: string,
  from: readonly DisbursementStatus[],
  set: Record<string, unknown> & { status: DisbursementStatus },
  event: Parameters<UnitOfWork['emit']>[0],
): Promise<Disbursement | undefined> {
  const row = await unit.tx
    .updateTable('disbursements')
    .set({ ...set, updated_at: unit.now })
    .where('organization_id', '=', unit.organizationId)
    .where('id', '=', id)
    .where('status', 'in', [...from])
    .returningAll()
    .executeTakeFirst();
  if (row === undefined) return undefined;
  const moved = disbursementOf(row);
  unit.emit(event, presentDisbursement(moved));
  return moved;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs of one funding before it is dead: with the backoff below, about a day of trying. */
const fundMaxAttempts = 40;

export function fundDisbursementJob(deps: { issuers: Issuers; visibilityTimeoutMs?: number }) {
  return defineJob<FundPayload>({
    name: fundDisbursementJobName,
    maxAttempts: fundMaxAttempts,
    backoff: { baseMs: 500, maxMs: 60_000 },
    visibilityTimeoutMs: deps.visibilityTimeoutMs ?? 60_000,
    run: (context, payload) => fund(context, deps.issuers, payload.disbursementId),
  });
}

/**
 * A request for the funding job of one disbursement. A card issued or a retry asks with a dedupe
 * key, so a funding already queued or running is not queued twice.
 */
export function fundRequest(disbursementId: string, options: { dedupe: boolean }): JobRequest {
  const payload: FundPayload = { disbursementId };
  return {
    name: fundDisbursementJobName,
    payload,
    maxAttempts: fundMaxAttempts,
    ...(options.dedupe ? { dedupeKey: `${fundDisbursementJobName}:${disbursementId}` } : {}),
  };
}

async function fund(context: JobContext, issuers: Issuers, disbursementId: string): Promise<void> {
  const organizationId = context.job.organizationId;
  assert(organizationId !== null, 'a funding job belongs to an organization');
  const unitContext = { organizationId, actor: { kind: 'system' as const, id: context.job.id }, requestId: null };
  let disbursement = await readDisbursement(context.db, organizationId, disbursementId);
  if (disbursement === undefined) return;
  if (!['awaiting_card', 'pending', 'processing'].includes(disbursement.status)) return;
  const issuer = await issuers.forOrganization(organizationId);
  if (!issuer.ok) throw new FundingNotDone(issuer.failure.message);
  const { configuration, highnote } = issuer.value;

  if (disbursement.status !== 'processing') {
    const card = await cardForFunding(context.db, organizationId, disbursement.userId, configuration.cardProductId);
    if (card === undefined) {
      if (disbursement.status === 'pending') {
        await runUnit(context.db, unitContext, async (unit) => {
          await moveDisbursement(
            unit,
            disbursementId,
            ['pending'],
            { status: 'awaiting_card' },
            'disbursement.awaiting_card',
          );
          return ok(null);
        });
      }
      return;
    }
    // The card carries the controls of every program that pays it before any money lands.
    await syncCardControls(context.db, issuers, organizationId, card.id);
    const key = issuerIdempotencyKey('transfer', organizationId, disbursementId, String(disbursement.attempt));
    const started = await runUnit(context.db, unitContext, async (unit) => {
      const moved = await moveDisbursement(
        unit,
        disbursementId,
        ['pending', 'awaiting_card'],
        { status: 'processing', card_id: card.id, transfer_idempotency_key: key },
        'disbursement.processing',
      );
      return ok(moved);
    });
    if (!started.ok) throw new FundingNotDone(started.failure.message);
    disbursement = await readDisbursement(context.db, organizationId, disbursementId);
    if (disbursement === undefined || disbursement.status !== 'processing') return;
  }

  const key = disbursement.transferIdempotencyKey;
  const cardId = disbursement.cardId;
  assert(key !== null && cardId !== null, `disbursement ${disbursementId} is processing without its key and card`);
  const card = await context.db
    .selectFrom('cards')
    .select('highnote_financial_account_id')
    .where('organization_id', '=', organizationId)
    .where('id', '=', cardId)
    .executeTakeFirstOrThrow();
  const initiated = await highnote.fundCard({
    fromFinancialAccountId: configuration.fundingFinancialAccountId,
    toFinancialAccountId: card.highnote_financial_account_id,
    amountCents: disbursement.amountCents,
    idempotencyKey: key,
    memo: `Tranche ${disbursement.id} for ${disbursement.userTaskId}`,
  });
  if (!initiated.ok) {
    if (initiated.failure.kind === 'rejected') {
      const reason = initiated.failure.errors[0]?.code ?? 'REJECTED';
      await failFunding(context.db, unitContext, disbursementId, reason, initiated.failure.message);
      return;
    }
    throw new FundingNotDone(initiated.failure.message);
  }
  let transfer: IssuerTransfer = initiated.value;
  if (disbursement.highnoteTransferId === null) {
    await context.db
      .updateTable('disbursements')
      .set({ highnote_transfer_id: transfer.id })
      .where('organization_id', '=', organizationId)
      .where('id', '=', disbursementId)
      .where('highnote_transfer_id', 'is', null)
      .execute();
  }
  const deadline = Date.now() + transferFollowMs;
  let delay = transferPollFirstMs;
  while (transfer.status === 'PENDING' || transfer.status === 'PROCESSING') {
    if (Date.now() >= deadline || context.signal.aborted) {
      throw new FundingNotDone(`transfer ${transfer.id} is still ${transfer.status}`);
    }
    await sleep(delay);
    delay = Math.min(delay * 2, transferPollMaxMs);
    const read = await highnote.transfer(transfer.id);
    if (read.ok) transfer = read.value;
  }
  if (transfer.status === 'COMPLETED') {
    assert(
      transfer.amountCents === disbursement.amountCents,
      `transfer ${transfer.id} moved ${transfer.amountCents} cents for disbursement ${disbursementId} of ${disbursement.amountCents}`,
    );
    await settleFunding(context.db, unitContext, disbursementId);
  } else {
    const reason = transfer.statusReasonCode ?? 'FAILED';
    await failFunding(context.db, unitContext, disbursementId, reason, `Highnote failed the transfer: ${reason}`);
  }
}

type UnitContextOf = Parameters<typeof runUnit>[1];

/** The card holds the money: in_transit → disbursed, the user task funded. Once, whoever calls. */
export async function settleFunding(db: Db, context: UnitContextOf, disbursementId: string): Promise<void> {
  const outcome = await runUnit(db, context, async (unit) => {
    const settled = await moveDisbursement(
      unit,
      disbursementId,
      ['processing'],
      { status: 'settled', settled_at: unit.now },
      'disbursement.settled',
    );
    if (settled === undefined) return ok(null);
    const accounts = await programAccounts(unit, settled.programId);
    unit.moveMoney([
      {
        type: 'create',
        id: settlementTransferId(settled.id),
        debitAccountId: accounts.in_transit_account_id,
        creditAccountId: accounts.disbursed_account_id,
        amountCents: settled.amountCents,
        pending: false,
        code: 'settlement',
        programId: settled.programId,
        userTaskId: settled.userTaskId,
      },
    ]);
    await moveFunding(unit, 'funded', settled.userTaskId, settled.id);
    return ok(null);
  });
  if (!outcome.ok) throw new FundingNotDone(outcome.failure.message);
}

/** Highnote refused or failed the transfer: the money stays in transit until a retry or a cancel. */
export async function failFunding(
  db: Db,
  context: UnitContextOf,
  disbursementId: string,
  code: string,
  reason: string,
): Promise<void> {
  const outcome = await runUnit(db, context, async (unit) => {
    const failed = await moveDisbursement(
      unit,
      disbursementId,
      ['processing'],
      { status: 'failed', failure_code: code, failure_reason: reason.slice(0, 500) },
      'disbursement.failed',
    );
    if (failed !== undefined) await moveFunding(unit, 'failed', failed.userTaskId, failed.id);
    return ok(null);
  });
  if (!outcome.ok) throw new FundingNotDone(outcome.failure.message);
}

async function programAccounts(unit: UnitOfWork, programId: string) {
  return unit.tx
    .selectFrom('programs')
    .select(['pool_account_id', 'in_transit_account_id', 'disbursed_account_id'])
    .where('organization_id', '=', unit.organizationId)
    .where('id', '=', programId)
    .executeTakeFirstOrThrow();
}

/** A failed funding tried again: a new attempt, so a new transfer key. */
export async function retryDisbursement(unit: UnitOfWork, id: string): Promise<Result<Disbursement>> {
  const retried = await moveDisbursement(
    unit,
    id,
    ['failed'],
    {
      status: 'pending',
      attempt: sql<number>`attempt + 1`,
      transfer_idempotency_key: null,
      highnote_transfer_id: null,
      card_id: null,
      failure_code: null,
      failure_reason: null,
    },
    'disbursement.retried',
  );
  if (retried === undefined) return refusal(unit, id, 'retried', 'failed');
  // Funding again needs the consents the program requires now (one may have been withdrawn).
  const missing = (await missingConsents(unit.tx, unit.organizationId, retried.programId, [retried.userId])).get(
    retried.userId,
  );
  if (missing !== undefined) return { ok: false, failure: consentRequiredFailure(missing) };
  await moveFunding(unit, 'retried', retried.userTaskId, retried.id);
  unit.enqueue(fundRequest(retried.id, { dedupe: true }));
  return ok(retried);
}

/**
 * Gives up on a funding that has not reached Highnote, or that failed there: the money goes back
 * from in_transit to the program's pool and the user task is cancelled. A disbursement whose
 * transfer is in flight (`processing`) cannot be cancelled: it settles or fails first.
 */
export async function cancelDisbursement(unit: UnitOfWork, id: string): Promise<Result<Disbursement>> {
  const cancelled = await moveDisbursement(
    unit,
    id,
    ['failed', 'awaiting_card', 'pending'],
    { status: 'cancelled', cancelled_at: unit.now },
    'disbursement.cancelled',
  );
  if (cancelled === undefined) return refusal(unit, id, 'cancelled', 'failed, pending or awaiting_card');
  const accounts = await programAccounts(unit, cancelled.programId);
  unit.moveMoney([
    {
      type: 'create',
      id: disbursementReturnTransferId(cancelled.id),
      debitAccountId: accounts.in_transit_account_id,
      creditAccountId: accounts.pool_account_id,
      amountCents: cancelled.amountCents,
      pending: false,
      code: 'disbursement_return',
      programId: cancelled.programId,
      userTaskId: cancelled.userTaskId,
    },
  ]);
  await moveFunding(unit, 'released', cancelled.userTaskId, cancelled.id);
  return ok(cancelled);
}

async function refusal(unit: UnitOfWork, id: string, action: string, from: string): Promise<Result<never>> {
  const current = await readDisbursement(unit.tx, unit.organizationId, id);
  if (current === undefined) return fail('not_found', `No disbursement ${id}`);
  return fail('invalid_state', `Disbursement ${id} is ${current.status}; only a ${from} one can be ${action}`);
}

/**
 * The sweep. A completion opens its disbursement `awaiting_card` when the participant has no card
 * (read in the completion's batch), and issuing a card sends those disbursements to funding. A
 * card issued while such a completion was committing can miss it; the sweep finds every
 * disbursement still awaiting a card whose participant now has one, and funds it.
 */
export const awaitingCardSweepJobName = 'disbursements.awaiting_card_sweep';
/** Disbursements one sweep run sends to funding. */
export const awaitingCardSweepBatchSize = 1_000;

export function awaitingCardSweepJob(deps: { sweepIntervalMs: number }) {
  return defineJob<Record<string, never>>({
    name: awaitingCardSweepJobName,
    maxAttempts: 5,
    backoff: { baseMs: 1_000, maxMs: 60_000 },
    visibilityTimeoutMs: 5 * 60 * 1000,
    recurring: { intervalMs: deps.sweepIntervalMs, payload: {} },
    run: async (context) => {
      const found = await context.db
        .selectFrom('disbursements as d')
        .innerJoin('cards as c', (join) =>
          join
            .onRef('c.organization_id', '=', 'd.organization_id')
            .onRef('c.user_id', '=', 'd.user_id')
            .on('c.status', '<>', 'closed'),
        )
        .select(['d.organization_id', 'd.id'])
        .where('d.status', '=', 'awaiting_card')
        .limit(awaitingCardSweepBatchSize)
        .execute();
      await enqueueJobs(
        context.db,
        found.map((row) => ({ ...fundRequest(row.id, { dedupe: true }), organizationId: row.organization_id })),
        context.now,
      );
    },
  });
}
