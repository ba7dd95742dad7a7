import type { Insertable } from 'kysely';
import { applyLedgerBatch, type LedgerOperation, type LedgerResult } from '../ledger/ledger.js';
import type { Db } from '../platform/db.js';
import { assert, type Failure } from '../platform/errors.js';
import type { EventType } from '../platform/events.js';
import type { JobRequest } from '../platform/jobs.js';
import type { Database } from '../platform/schema.js';

/**
 * One state change: the transaction it runs in, who asked for it, one clock reading, and what it
 * collects beside its row writes — the ledger operations (applied last), the events it emits and
 * the jobs it enqueues. Domain functions take a unit instead of a bare transaction, so that no
 * caller can write a state change and forget its money, its event or its job. Nothing in here
 * knows HTTP: routes, workers, scripts and the bench build units the same way (see `runUnit`).
 */

/** Who a unit acts for: an organization's API key or OAuth2 client, the operator, or the system (a job). */
export type Actor =
  | { kind: 'api_key'; id: string }
  /** An OAuth2 client, through one of its access tokens. */
  | { kind: 'client'; id: string }
  | { kind: 'operator' }
  | { kind: 'system'; id: string };

export interface UnitContext {
  organizationId: string;
  actor: Actor;
  /** The request that caused the change, when there was one. */
  requestId: string | null;
}

/** An event waiting to be written with the unit: its type and the resource as the API presents it. */
export interface EventDraft {
  type: EventType;
  object: unknown;
}

/**
 * Turns the ledger's answers to one group of operations into the unit's failure, or undefined
 * when the unit may go on. The default treats any refusal as a bug: the operation cannot be
 * refused unless the code is wrong.
 */
export type LedgerRefusal = (results: readonly LedgerResult[]) => Failure | undefined;

interface LedgerGroup {
  operations: LedgerOperation[];
  refusal: LedgerRefusal;
}

/** Tables whose rows a unit may write with its events (see `insertWithEvents`). */
export type DeferredTable = 'disbursements';

export interface DeferredInsert {
  table: DeferredTable;
  row: Insertable<Database[DeferredTable]>;
}

/** Raised inside the runner to roll a unit back with a failure from the closed list. */
export class UnitFailure extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
  }
}

export class UnitOfWork {
  readonly organizationId: string;
  readonly actor: Actor;
  readonly requestId: string | null;
  /** One clock reading for every timestamp the unit writes. */
  readonly now: Date;
  readonly #ledger: LedgerGroup[] = [];
  readonly #events: EventDraft[] = [];
  readonly #jobs: JobRequest[] = [];
  readonly #inserts: DeferredInsert[] = [];

  constructor(
    readonly tx: Db,
    context: UnitContext,
    now: Date,
    /** Whether other transactions run at the same time as this one (see `transactionsInterleave`). */
    readonly interleaved = true,
  ) {
    this.organizationId = context.organizationId;
    this.actor = context.actor;
    this.requestId = context.requestId;
    this.now = now;
  }

  /** Queues ledger operations of this unit's organization; the runner applies them last. */
  moveMoney(operations: readonly LedgerOperation[], refusal: LedgerRefusal = refusedIsBug): void {
    if (operations.length === 0) return;
    this.#ledger.push({ operations: [...operations], refusal });
  }

  /** Appends an event, written in this unit's transaction. */
  emit(type: EventType, object: unknown): void {
    this.#events.push({ type, object });
  }

  /** Enqueues a job, committed with this unit: it runs only if the change does. */
  enqueue(job: JobRequest): void {
    this.#jobs.push({ organizationId: this.organizationId, ...job });
  }

  /**
   * Applies the queued ledger operations now, as one batch. Only for changes that must read the
   * balances they produced (funding, closing a program); the hot path leaves its money to the
   * runner, which applies it after every other write. A refusal rolls the unit back.
   */
  async flushLedger(): Promise<void> {
    const refused = (await applyLedgerOf(this.tx, [this])).get(this);
    if (refused !== undefined) throw new UnitFailure(refused.failure);
  }

  /** Takes the queued ledger groups, once, for whoever applies them. */
  takeLedger(): LedgerGroup[] {
    return this.#ledger.splice(0);
  }

  /** Hands the collected events over, once, to whoever writes them. */
  takeEvents(): EventDraft[] {
    return this.#events.splice(0);
  }

  takeJobs(): JobRequest[] {
    return this.#jobs.splice(0);
  }

  /**
   * Inserts a row with the unit's events, in the same statement: for rows nothing in the unit
   * reads back (a disbursement the completion opens). The runner sends the rows of every unit of a
   * batch as one multi-row INSERT per table.
   */
  insertWithEvents(table: DeferredTable, row: Insertable<Database[DeferredTable]>): void {
    this.#inserts.push({ table, row });
  }

  takeInserts(): DeferredInsert[] {
    return this.#inserts.splice(0);
  }
}

/**
 * What the units of a batch share: one transaction, one organization, one clock reading. Set-wise
 * work reads them here; undefined for an empty batch.
 */
export function sharedBy(
  units: readonly UnitOfWork[],
): { tx: Db; organizationId: string; now: Date; interleaved: boolean } | undefined {
  const first = units[0];
  if (first === undefined) return undefined;
  const { tx, organizationId, now, interleaved } = first;
  assert(
    units.every((unit) => unit.tx === tx && unit.organizationId === organizationId && unit.now === now),
    'a batch shares one transaction, organization and clock',
  );
  return { tx, organizationId, now, interleaved };
}

/** A unit the ledger refused: why, and whether some of its operations were applied all the same. */
export interface LedgerRefused {
  failure: Failure;
  partlyApplied: boolean;
}

/**
 * Applies the queued ledger operations of several units, one ledger batch per organization (one
 * in practice: a batch of units belongs to one organization), and answers the units the ledger
 * refused. Operations keep the units' order, so a refusal depends only on the units before it,
 * as if they had run one after another.
 */
export async function applyLedgerOf(tx: Db, units: readonly UnitOfWork[]): Promise<Map<UnitOfWork, LedgerRefused>> {
  const refused = new Map<UnitOfWork, LedgerRefused>();
  const byOrganization = new Map<string, { unit: UnitOfWork; group: LedgerGroup }[]>();
  for (const unit of units) {
    for (const group of unit.takeLedger()) {
      const list = byOrganization.get(unit.organizationId) ?? [];
      list.push({ unit, group });
      byOrganization.set(unit.organizationId, list);
    }
  }
  for (const [organizationId, groups] of byOrganization) {
    const results = await applyLedgerBatch(
      tx,
      organizationId,
      groups.flatMap(({ group }) => group.operations),
    );
    const applied = new Set<UnitOfWork>();
    let offset = 0;
    for (const { unit, group } of groups) {
      const answered = results.slice(offset, offset + group.operations.length);
      offset += group.operations.length;
      if (answered.some((result) => result.ok)) applied.add(unit);
      const failure = group.refusal(answered);
      if (failure !== undefined && !refused.has(unit)) refused.set(unit, { failure, partlyApplied: false });
    }
    for (const [unit, refusal] of refused) if (applied.has(unit)) refusal.partlyApplied = true;
  }
  return refused;
}

function refusedIsBug(results: readonly LedgerResult[]): Failure | undefined {
  results.forEach((result, index) => {
    assert(result.ok, `ledger operation ${index} refused (${result.ok ? '' : result.reason})`);
  });
  return undefined;
}
