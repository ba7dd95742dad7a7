import { type ColumnType, type Selectable, sql } from 'kysely';
import { Type } from 'typebox';
import type { Issuers } from '../configurations/service.js';
import { type Disbursement, disbursementOf } from '../disbursements/disbursement.js';
import { failFunding, settleFunding } from '../disbursements/funding.js';
import { highnoteReconcileClient, type IssuerTransferRow } from '../issuer/highnote-reconcile.js';
import type { Db } from '../platform/db.js';
import { ok } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { defineJob, type JobContext, type JobRequest } from '../platform/jobs.js';
import { dollars, iso, isoRequired } from '../platform/present.js';
import { Id, Nullable, NullableTimestamp, ObjectKind, OneOf, Timestamp } from '../platform/schemas.js';
import { merchantOf, recordSpendEvent, spendsOfAccounts } from '../spend/spend.js';
import { runUnit, systemContext } from '../work/runner.js';
import type { UnitOfWork } from '../work/unit.js';

/**
 * Reconciliation (migration 0009): Tranche's disbursements, spend and ledger compared with what
 * Highnote holds: the transfers out of the product funding account, each cardholder account's
 * transaction events and its available cash. Every difference is reported; the ones Highnote's
 * record settles beyond doubt are repaired through the same code the notifications use:
 *
 * - a transfer Highnote completed (or failed) while Tranche still follows it: the disbursement
 *   settles (or fails), as the lost notification would have done;
 * - a transaction event whose notification was lost: recorded as spend.
 *
 * Everything else (a transfer Tranche does not know, a settled disbursement Highnote failed, an
 * amount or a balance that differs, the ledger disagreeing with the disbursements) is reported for
 * a person to look at, and changes nothing: repairing those by rule could move money twice.
 */

export const reconciliationRunStatuses = ['queued', 'running', 'completed', 'failed'] as const;
export type ReconciliationRunStatus = (typeof reconciliationRunStatuses)[number];
export const mismatchKinds = ['missing', 'unknown', 'status', 'amount', 'balance', 'ledger'] as const;
export type MismatchKind = (typeof mismatchKinds)[number];

export const reconcileJobName = 'reconciliation.run';
export const reconcileScheduleJobName = 'reconciliation.schedule';
/** How often every configured organization is reconciled (TRANCHE_RECONCILIATION_INTERVAL_MS). */
export const defaultReconciliationIntervalMs = 24 * 60 * 60 * 1000;

interface RunsTable {
  organization_id: string;
  id: string;
  trigger: 'manual' | 'scheduled';
  status: ReconciliationRunStatus;
  failure_reason: string | null;
  summary: ColumnType<unknown, string | null, string | null>;
  created_at: ColumnType<Date, Date, never>;
  started_at: ColumnType<Date | null, Date | null, Date | null>;
  completed_at: ColumnType<Date | null, Date | null, Date | null>;
}

interface MismatchesTable {
  organization_id: string;
  run_id: string;
  position: number;
  kind: MismatchKind;
  subject: ColumnType<unknown, string, never>;
  expected: string;
  actual: string;
  repaired: boolean;
  resolution: string;
}

function tablesOf(db: Db) {
  return db.withTables<{ reconciliation_runs: RunsTable; reconciliation_mismatches: MismatchesTable }>();
}

export interface Mismatch {
  kind: MismatchKind;
  subject: Record<string, string>;
  expected: string;
  actual: string;
  repaired: boolean;
  resolution: string;
}

export interface RunSummary {
  disbursementsChecked: number;
  transfersChecked: number;
  accountsChecked: number;
  transactionEventsChecked: number;
  mismatches: number;
  repaired: number;
}

export interface ReconciliationRun {
  id: string;
  trigger: 'manual' | 'scheduled';
  status: ReconciliationRunStatus;
  failureReason: string | null;
  summary: RunSummary | null;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
}

function runOf(row: Selectable<RunsTable>): ReconciliationRun {
  return {
    id: row.id,
    trigger: row.trigger,
    status: row.status,
    failureReason: row.failure_reason,
    summary: (row.summary ?? null) as RunSummary | null,
    createdAt: new Date(row.created_at),
    startedAt: row.started_at === null ? null : new Date(row.started_at),
    completedAt: row.completed_at === null ? null : new Date(row.completed_at),
  };
}

function reconcileRequest(runId: string): JobRequest {
  return { name: reconcileJobName, payload: { runId }, maxAttempts: reconcileMaxAttempts };
}

/** Opens a run and queues the job that performs it, in the unit. */
export async function createRun(unit: UnitOfWork, trigger: 'manual' | 'scheduled'): Promise<ReconciliationRun> {
  const row = {
    organization_id: unit.organizationId,
    id: newId('reconciliationRun'),
    trigger,
    status: 'queued' as const,
    failure_reason: null,
    summary: null,
    created_at: unit.now,
    started_at: null,
    completed_at: null,
  };
  await tablesOf(unit.tx).insertInto('reconciliation_runs').values(row).execute();
  unit.enqueue(reconcileRequest(row.id));
  return runOf({ ...row, summary: null });
}

export async function getRun(db: Db, organizationId: string, id: string) {
  const row = await tablesOf(db)
    .selectFrom('reconciliation_runs')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
  if (row === undefined) return undefined;
  const mismatches = await tablesOf(db)
    .selectFrom('reconciliation_mismatches')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('run_id', '=', id)
    .orderBy('position')
    .execute();
  return {
    run: runOf(row),
    mismatches: mismatches.map(
      (m): Mismatch => ({
        kind: m.kind,
        subject: m.subject as Record<string, string>,
        expected: m.expected,
        actual: m.actual,
        repaired: m.repaired,
        resolution: m.resolution,
      }),
    ),
  };
}

export async function listRuns(db: Db, organizationId: string, options: { afterId?: string; limit: number }) {
  let query = tablesOf(db)
    .selectFrom('reconciliation_runs')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .orderBy('id', 'desc')
    .limit(options.limit);
  if (options.afterId !== undefined) query = query.where('id', '<', options.afterId);
  return (await query.execute()).map(runOf);
}

const reconcileMaxAttempts = 5;

export function reconciliationJobs(deps: { issuers: Issuers; intervalMs: number }) {
  return [
    defineJob<{ runId: string }>({
      name: reconcileJobName,
      maxAttempts: reconcileMaxAttempts,
      backoff: { baseMs: 5_000, maxMs: 10 * 60 * 1000 },
      visibilityTimeoutMs: 10 * 60 * 1000,
      run: async (context, payload) => {
        const organizationId = context.job.organizationId;
        if (organizationId === null) return;
        await performRun(context.db, deps.issuers, organizationId, payload.runId);
      },
    }),
    defineJob<Record<string, never>>({
      name: reconcileScheduleJobName,
      maxAttempts: 3,
      backoff: { baseMs: 60_000, maxMs: 60 * 60 * 1000 },
      visibilityTimeoutMs: 5 * 60 * 1000,
      recurring: { intervalMs: deps.intervalMs, payload: {} },
      run: (context) => scheduleRuns(context),
    }),
  ];
}

/** The daily schedule: a run for every organization configured for Highnote. */
async function scheduleRuns(context: JobContext): Promise<void> {
  const organizations = await context.db.selectFrom('issuer_configurations').select('organization_id').execute();
  for (const { organization_id } of organizations) {
    await runUnit(context.db, systemContext(organization_id, reconcileScheduleJobName), async (unit) =>
      ok(await createRun(unit, 'scheduled')),
    );
  }
  if (organizations.length > 0) context.log.info({ organizations: organizations.length }, 'reconciliation runs queued');
}

/**
 * Performs one run. Safe to run again after a crash: a repair is a state change that happens
 * once whoever makes it, and the findings are written with the run's completion, in one
 * transaction, so a run reports everything it found or nothing.
 */
export async function performRun(db: Db, issuers: Issuers, organizationId: string, runId: string): Promise<void> {
  const tables = tablesOf(db);
  const claimed = await tables
    .updateTable('reconciliation_runs')
    .set({ status: 'running', started_at: new Date() })
    .where('organization_id', '=', organizationId)
    .where('id', '=', runId)
    .where('status', 'in', ['queued', 'running'])
    .returning('id')
    .executeTakeFirst();
  if (claimed === undefined) return;

  const issuer = await issuers.forOrganization(organizationId);
  if (!issuer.ok) {
    await finish(db, organizationId, runId, { failure: `Highnote is not reachable: ${issuer.failure.message}` });
    return;
  }
  const context = systemContext(organizationId, reconcileJobName);
  const reader = highnoteReconcileClient(issuer.value.connection);
  const { highnote, configuration } = issuer.value;
  const fundingAccount = configuration.fundingFinancialAccountId;
  const found: Mismatch[] = [];
  const summary: RunSummary = {
    disbursementsChecked: 0,
    transfersChecked: 0,
    accountsChecked: 0,
    transactionEventsChecked: 0,
    mismatches: 0,
    repaired: 0,
  };

  // 1. Transfers out of the funding account against the disbursements that asked for them.
  const transfers = await reader.transfersOfAccount(fundingAccount);
  if (!transfers.ok) {
    await finish(db, organizationId, runId, { failure: `Reading Highnote's transfers: ${transfers.failure.message}` });
    return;
  }
  const outgoing = transfers.value.filter((transfer) => transfer.fromFinancialAccountId === fundingAccount);
  summary.transfersChecked = outgoing.length;
  const byId = new Map(outgoing.map((transfer) => [transfer.id, transfer]));
  const rows = await db
    .selectFrom('disbursements')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('highnote_transfer_id', 'is not', null)
    .execute();
  const known = new Set<string>();
  for (const row of rows) {
    const disbursement = disbursementOf(row);
    const transferId = disbursement.highnoteTransferId as string;
    known.add(transferId);
    summary.disbursementsChecked++;
    let transfer: IssuerTransferRow | undefined = byId.get(transferId);
    if (transfer === undefined) {
      const read = await highnote.transfer(transferId);
      if (read.ok) {
        transfer = {
          id: read.value.id,
          status: read.value.status,
          statusReason: read.value.statusReasonCode,
          amountCents: read.value.amountCents,
          fromFinancialAccountId: fundingAccount,
          toFinancialAccountId: '',
          createdAt: '',
          updatedAt: '',
        };
      }
    }
    if (transfer === undefined) {
      found.push({
        kind: 'missing',
        subject: { disbursementId: disbursement.id, highnoteTransferId: transferId },
        expected: `Highnote transfer ${transferId} of ${dollarsText(disbursement.amountCents)}`,
        actual: 'Highnote has no such transfer',
        repaired: false,
        resolution: 'Reported: look the transfer up with Highnote before retrying or cancelling the disbursement.',
      });
      continue;
    }
    found.push(...(await compareTransfer(db, context, disbursement, transfer)));
  }
  for (const transfer of outgoing) {
    if (known.has(transfer.id)) continue;
    found.push({
      kind: 'unknown',
      subject: { highnoteTransferId: transfer.id, toFinancialAccountId: transfer.toFinancialAccountId },
      expected: 'a disbursement that asked for this transfer',
      actual: `Highnote transfer ${transfer.id} of ${dollarsText(transfer.amountCents)}, ${transfer.status}, to ${transfer.toFinancialAccountId}`,
      repaired: false,
      resolution: 'Reported: a transfer out of the funding account that Tranche did not make.',
    });
  }

  // 2. Each cardholder account: transaction events recorded as spend, then its balance.
  const accounts = await db
    .selectFrom('cards')
    .select('highnote_financial_account_id')
    .distinct()
    .where('organization_id', '=', organizationId)
    .execute();
  for (const { highnote_financial_account_id: account } of accounts) {
    summary.accountsChecked++;
    const events = await reader.transactionEventsOfAccount(account);
    if (!events.ok) {
      await finish(db, organizationId, runId, {
        failure: `Reading Highnote's transaction events of ${account}: ${events.failure.message}`,
      });
      return;
    }
    for (const event of events.value) {
      summary.transactionEventsChecked++;
      if (event.kind === 'other' || event.cardId === null) {
        found.push({
          kind: 'unknown',
          subject: { transactionEventId: event.id, financialAccountId: account },
          expected: 'an authorization, reversal, clearing or refund',
          actual: `${event.eventType} of ${dollarsText(event.amountCents)}`,
          repaired: false,
          resolution: 'Reported: a transaction event Tranche does not attribute.',
        });
        continue;
      }
      const kind = event.kind;
      const paymentCardId = event.cardId;
      const recorded = await runUnit(db, context, async (unit) =>
        ok(
          await recordSpendEvent(
            unit,
            {
              id: event.id,
              transactionId: event.transactionId,
              paymentCardId,
              kind,
              amountCents: event.amountCents,
              responseCode: event.responseCode,
              merchant: merchantOf(event.merchant),
              occurredAt: new Date(event.createdAt),
            },
            'reconciliation',
          ),
        ),
      );
      if (recorded.ok && !recorded.replayed && recorded.value) {
        found.push({
          kind: 'missing',
          subject: {
            transactionEventId: event.id,
            highnoteTransactionId: event.transactionId,
            financialAccountId: account,
          },
          expected: `Highnote's ${event.kind.replace('_', ' ')} of ${dollarsText(event.amountCents)}`,
          actual: 'no spend event in Tranche (its notification was lost)',
          repaired: true,
          resolution: 'Recorded the spend event and attributed it.',
        });
      }
    }
    const balance = await highnote.availableCashCents(account);
    if (!balance.ok) continue;
    const expected = await expectedAvailableCents(db, organizationId, account);
    if (balance.value !== expected) {
      found.push({
        kind: 'balance',
        subject: { financialAccountId: account },
        expected: `${dollarsText(expected)} available: settled disbursements less spend`,
        actual: `${dollarsText(balance.value)} available at Highnote`,
        repaired: false,
        resolution:
          'Reported: a transfer or transaction in flight explains a passing difference; a lasting one needs a look.',
      });
    }
  }

  // 3. Tranche's ledger against its own disbursements.
  found.push(...(await compareLedger(db, organizationId)));

  summary.mismatches = found.length;
  summary.repaired = found.filter((mismatch) => mismatch.repaired).length;
  await finish(db, organizationId, runId, { summary, mismatches: found });
}

/** An amount as a person reads it in a finding: `$25.50`. */
function dollarsText(cents: bigint): string {
  return `$${dollars(cents).toFixed(2)}`;
}

/** One disbursement against Highnote's transfer: the differences, each repaired when safe. */
async function compareTransfer(
  db: Db,
  context: ReturnType<typeof systemContext>,
  disbursement: Disbursement,
  transfer: IssuerTransferRow,
): Promise<Mismatch[]> {
  const subject = { disbursementId: disbursement.id, highnoteTransferId: transfer.id };
  const found: Mismatch[] = [];
  if (transfer.amountCents !== disbursement.amountCents) {
    found.push({
      kind: 'amount',
      subject,
      expected: dollarsText(disbursement.amountCents),
      actual: dollarsText(transfer.amountCents),
      repaired: false,
      resolution: 'Reported: the amounts differ, so nothing is settled or failed by rule.',
    });
    return found;
  }
  const status = disbursement.status;
  if (status === 'processing' && (transfer.status === 'COMPLETED' || transfer.status === 'FAILED')) {
    if (transfer.status === 'COMPLETED') await settleFunding(db, context, disbursement.id);
    else {
      const reason = transfer.statusReason ?? 'FAILED';
      await failFunding(db, context, disbursement.id, reason, `Highnote failed the transfer: ${reason}`);
    }
    const after = await db
      .selectFrom('disbursements')
      .select('status')
      .where('organization_id', '=', context.organizationId)
      .where('id', '=', disbursement.id)
      .executeTakeFirstOrThrow();
    found.push({
      kind: 'status',
      subject,
      expected: transfer.status === 'COMPLETED' ? 'settled' : 'failed',
      actual: 'processing (the transfer’s notification did not arrive)',
      repaired: after.status !== 'processing',
      resolution:
        after.status === 'settled'
          ? 'Settled the disbursement: ledger in_transit → disbursed, the user task funded.'
          : `The disbursement is now ${after.status}.`,
    });
    return found;
  }
  const agrees =
    (status === 'processing' && transfer.status === 'PENDING') ||
    (status === 'settled' && transfer.status === 'COMPLETED') ||
    ((status === 'failed' || status === 'cancelled' || status === 'pending') && transfer.status === 'FAILED');
  if (!agrees) {
    found.push({
      kind: 'status',
      subject,
      expected: `a transfer matching a ${status} disbursement`,
      actual: `Highnote's transfer is ${transfer.status}`,
      repaired: false,
      resolution:
        transfer.status === 'COMPLETED'
          ? 'Reported: the money reached the card although Tranche did not record it; do not retry this disbursement.'
          : 'Reported: Tranche recorded an outcome Highnote does not show.',
    });
  }
  return found;
}

/** What a cardholder account should hold available: settled disbursements into it, less its spend. */
async function expectedAvailableCents(db: Db, organizationId: string, account: string): Promise<bigint> {
  const funded = await db
    .selectFrom('disbursements as d')
    .innerJoin('cards as c', (join) =>
      join.onRef('c.organization_id', '=', 'd.organization_id').onRef('c.id', '=', 'd.card_id'),
    )
    .where('d.organization_id', '=', organizationId)
    .where('d.status', '=', 'settled')
    .where('c.highnote_financial_account_id', '=', account)
    .select(sql<string>`coalesce(sum(d.amount_cents), 0)::text`.as('cents'))
    .executeTakeFirstOrThrow();
  const { spends } = await spendsOfAccounts(db, organizationId, [account]);
  return BigInt(funded.cents) - spends.reduce((sum, spend) => sum + spend.amountCents, 0n);
}

/** The ledger's in-transit and disbursed balances against the disbursements they stand for. */
async function compareLedger(db: Db, organizationId: string): Promise<Mismatch[]> {
  const ledger = await db
    .selectFrom('ledger_accounts')
    .where('organization_id', '=', organizationId)
    .where('kind', 'in', ['in_transit', 'disbursed'])
    .groupBy('kind')
    .select([
      'kind',
      sql<string>`coalesce(sum(credits_posted_cents - debits_posted_cents), 0)::text`.as('balance'),
      sql<string>`coalesce(sum(credits_pending_cents - debits_pending_cents), 0)::text`.as('pending'),
    ])
    .execute();
  const disbursements = await db
    .selectFrom('disbursements')
    .where('organization_id', '=', organizationId)
    .groupBy('status')
    .select(['status', sql<string>`sum(amount_cents)::text`.as('cents')])
    .execute();
  const sumOf = (statuses: readonly string[]) =>
    disbursements.filter((row) => statuses.includes(row.status)).reduce((sum, row) => sum + BigInt(row.cents), 0n);
  const balanceOf = (kind: string) => BigInt(ledger.find((row) => row.kind === kind)?.balance ?? '0');
  const found: Mismatch[] = [];
  const checks = [
    { kind: 'disbursed', expected: sumOf(['settled']), what: 'settled disbursements' },
    {
      kind: 'in_transit',
      expected: sumOf(['awaiting_card', 'pending', 'processing', 'failed']),
      what: 'disbursements not yet settled or cancelled',
    },
  ];
  for (const check of checks) {
    const actual = balanceOf(check.kind);
    if (actual === check.expected) continue;
    found.push({
      kind: 'ledger',
      subject: { ledgerAccountKind: check.kind },
      expected: `${dollarsText(check.expected)}: the sum of ${check.what}`,
      actual: `${dollarsText(actual)} in the ${check.kind} accounts`,
      repaired: false,
      resolution: 'Reported: the ledger is never changed by a reconciliation.',
    });
  }
  return found;
}

async function finish(
  db: Db,
  organizationId: string,
  runId: string,
  outcome: { failure: string } | { summary: RunSummary; mismatches: Mismatch[] },
): Promise<void> {
  const result = await runUnit(db, systemContext(organizationId, reconcileJobName), async (unit) => {
    const tables = tablesOf(unit.tx);
    if ('failure' in outcome) {
      await tables
        .updateTable('reconciliation_runs')
        .set({ status: 'failed', failure_reason: outcome.failure.slice(0, 1000), completed_at: unit.now })
        .where('organization_id', '=', organizationId)
        .where('id', '=', runId)
        .execute();
    } else {
      if (outcome.mismatches.length > 0) {
        await tables
          .insertInto('reconciliation_mismatches')
          .values(
            outcome.mismatches.map((mismatch, position) => ({
              organization_id: organizationId,
              run_id: runId,
              position,
              kind: mismatch.kind,
              subject: JSON.stringify(mismatch.subject),
              expected: mismatch.expected.slice(0, 1000),
              actual: mismatch.actual.slice(0, 1000),
              repaired: mismatch.repaired,
              resolution: mismatch.resolution.slice(0, 1000),
            })),
          )
          .execute();
      }
      await tables
        .updateTable('reconciliation_runs')
        .set({ status: 'completed', summary: JSON.stringify(outcome.summary), completed_at: unit.now })
        .where('organization_id', '=', organizationId)
        .where('id', '=', runId)
        .execute();
    }
    const row = await tables
      .selectFrom('reconciliation_runs')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('id', '=', runId)
      .executeTakeFirstOrThrow();
    unit.emit('reconciliation.completed', presentRun(runOf(row)));
    return ok(null);
  });
  if (!result.ok) throw new Error(`recording reconciliation run ${runId}: ${result.failure.message}`);
}

const MismatchSchema = Type.Object({
  kind: OneOf(mismatchKinds, {
    description:
      '`missing` (one side lacks what the other has), `unknown` (Highnote has what Tranche did not make), `status`, `amount`, `balance`, `ledger`.',
    examples: ['status'],
  }),
  subject: Type.Record(Type.String(), Type.String(), {
    description:
      'The ids concerned: `disbursementId`, `highnoteTransferId`, `financialAccountId`, `transactionEventId`…',
    examples: [{ disbursementId: 'dsb_01jd8x', highnoteTransferId: 'iftr_8Kd' }],
  }),
  expected: Type.String({ description: 'What Tranche’s record says.', examples: ['settled'] }),
  actual: Type.String({
    description: 'What was found.',
    examples: ['processing (the transfer’s notification did not arrive)'],
  }),
  repaired: Type.Boolean({ description: 'Whether the run repaired it.', examples: [true] }),
  resolution: Type.String({
    description: 'What the run did, or why it only reported.',
    examples: ['Settled the disbursement: ledger in_transit → disbursed, the user task funded.'],
  }),
});

const SummarySchema = Type.Object(
  {
    disbursementsChecked: Type.Integer({
      minimum: 0,
      description: 'Disbursements with a Highnote transfer compared.',
      examples: [120],
    }),
    transfersChecked: Type.Integer({
      minimum: 0,
      description: 'Transfers out of the funding account read from Highnote.',
      examples: [120],
    }),
    accountsChecked: Type.Integer({ minimum: 0, description: 'Cardholder accounts compared.', examples: [40] }),
    transactionEventsChecked: Type.Integer({
      minimum: 0,
      description: 'Card transaction events read from Highnote.',
      examples: [310],
    }),
    mismatches: Type.Integer({ minimum: 0, description: 'Differences found.', examples: [1] }),
    repaired: Type.Integer({ minimum: 0, description: 'Differences the run repaired.', examples: [1] }),
  },
  {
    description: 'What the run compared and found; null until it completes.',
    examples: [
      {
        disbursementsChecked: 120,
        transfersChecked: 120,
        accountsChecked: 40,
        transactionEventsChecked: 310,
        mismatches: 1,
        repaired: 1,
      },
    ],
  },
);

export const ReconciliationRunSchema = Type.Object(
  {
    id: Id('rcn', 'Reconciliation run id.'),
    object: ObjectKind('reconciliation_run'),
    trigger: OneOf(['manual', 'scheduled'] as const, {
      description: '`manual` (POST /v1/reconciliation/runs) or `scheduled` (the daily run).',
      examples: ['manual'],
    }),
    status: OneOf(reconciliationRunStatuses, {
      description: '`queued` → `running` → `completed`, or `failed` when Highnote could not be read.',
      examples: ['completed'],
    }),
    failureReason: Nullable(
      Type.String({ description: 'Why the run failed.', examples: ['Highnote is not reachable'] }),
    ),
    summary: Nullable(SummarySchema),
    mismatches: Type.Optional(
      Type.Array(MismatchSchema, { description: 'Every difference found, in the order found (on retrieval).' }),
    ),
    createdAt: Timestamp('Requested.'),
    startedAt: NullableTimestamp('Started.'),
    completedAt: NullableTimestamp('Completed or failed.'),
  },
  { $id: 'ReconciliationRun' },
);

export function presentRun(run: ReconciliationRun, mismatches?: readonly Mismatch[]) {
  return {
    id: run.id,
    object: 'reconciliation_run' as const,
    trigger: run.trigger,
    status: run.status,
    failureReason: run.failureReason,
    summary: run.summary,
    ...(mismatches === undefined ? {} : { mismatches: [...mismatches] }),
    createdAt: isoRequired(run.createdAt),
    startedAt: iso(run.startedAt),
    completedAt: iso(run.completedAt),
  };
}
