import { sql } from 'kysely';
import { consentsInForce } from '../agreements/consent.js';
import { type Disbursement, disbursementOf, disbursementQuery } from '../disbursements/disbursement.js';
import type { TransferKind } from '../ledger/kinds.js';
import type { Db } from '../platform/db.js';
import { assert } from '../platform/errors.js';
import { type EventType, eventTypes } from '../platform/events.js';
import { disbursementReturnTransferId, settlementTransferId } from '../platform/ids.js';
import { dollars, iso, isoRequired } from '../platform/present.js';
import { type Spend, spendsOfDisbursements } from '../spend/spend.js';
import { presentUserTask, type UserTask } from '../usertasks/usertask.js';

/**
 * The record of a user task: why its money was reserved, who completed and approved it, and when
 * its disbursement settled and what it paid for — gathered from stored facts only: the rows, the
 * ledger transfers and the events the changes appended. Nothing here is recomputed from rules; a
 * fact that was not stored shows as null.
 *
 * The events of one resource are found by the id of the resource they carry
 * (`data->'object'->>'id'`), among the organization's events of the few types the record reads
 * (index `events_by_type`). For a page of records that is one scan of those types per
 * organization; an expression index on the object id would make it a lookup.
 */

/** The event types the record reads for a user task; the approval ones are read generically. */
const userTaskEventTypes = [
  'usertask.assigned',
  'usertask.completed',
  'usertask.pending_approval',
  'usertask.approved',
  'usertask.rejected',
] as const satisfies readonly EventType[];
const approvalEventTypes: readonly EventType[] = [
  'usertask.pending_approval',
  'usertask.approved',
  'usertask.rejected',
];
const disbursementEventTypes = eventTypes.filter((type) => type.startsWith('disbursement.'));

interface RecordEvent {
  id: string;
  type: EventType;
  createdAt: Date;
  object: Record<string, unknown>;
  requestId: string | null;
  actor: string;
}

interface RecordTransfer {
  id: string;
  kind: TransferKind;
  amountCents: bigint;
  createdAt: Date;
}

/** Who acted: the actor as stored beside the event, and the credential it names, if any. */
function actorOf(event: RecordEvent) {
  const separator = event.actor.indexOf(':');
  const kind = separator === -1 ? event.actor : event.actor.slice(0, separator);
  // `system:<job>` and `operator` act without an organization credential.
  const credentialId = kind === 'system' || separator === -1 ? null : event.actor.slice(separator + 1);
  return { actor: event.actor, credentialId, requestId: event.requestId, eventId: event.id };
}

function textOf(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

async function eventsOf(db: Db, organizationId: string, objectIds: readonly string[]): Promise<RecordEvent[]> {
  if (objectIds.length === 0) return [];
  const types = [...userTaskEventTypes, ...disbursementEventTypes];
  const rows = await db
    .selectFrom('events')
    .select(['id', 'type', 'data', 'request_id', 'actor', 'created_at'])
    .where('organization_id', '=', organizationId)
    .where('type', 'in', types)
    .where(sql<string>`data -> 'object' ->> 'id'`, 'in', [...objectIds])
    .orderBy('sequence', 'asc')
    .execute();
  return rows.map((row) => ({
    id: row.id,
    type: row.type as EventType,
    createdAt: row.created_at,
    object: (row.data as { object: Record<string, unknown> }).object,
    requestId: row.request_id,
    actor: row.actor,
  }));
}

async function transfersOf(db: Db, organizationId: string, ids: readonly string[]) {
  if (ids.length === 0) return new Map<string, RecordTransfer>();
  const rows = await db
    .selectFrom('ledger_transfers')
    .select(['id', 'kind', 'amount_cents', 'created_at'])
    .where('organization_id', '=', organizationId)
    .where('id', 'in', [...ids])
    .execute();
  return new Map(
    rows.map((row) => [
      row.id,
      { id: row.id, kind: row.kind, amountCents: row.amount_cents, createdAt: row.created_at },
    ]),
  );
}

function presentTransfer(transfer: RecordTransfer | undefined) {
  if (transfer === undefined) return null;
  return {
    id: transfer.id,
    kind: transfer.kind,
    amount: dollars(transfer.amountCents),
    createdAt: isoRequired(transfer.createdAt),
  };
}

/**
 * The records of these user tasks (all of one organization), in their order, read in a fixed
 * number of statements whatever their count.
 */
export async function gatherRecords(db: Db, organizationId: string, userTasks: readonly UserTask[]) {
  if (userTasks.length === 0) return [];
  const userTaskIds = userTasks.map((userTask) => userTask.id);
  const disbursements = (
    await disbursementQuery(db, organizationId).where('user_task_id', 'in', userTaskIds).execute()
  ).map(disbursementOf);
  const disbursementByUserTask = new Map(disbursements.map((d) => [d.userTaskId, d]));
  const [reservationRows, users, programs, events, spend] = await Promise.all([
    db
      .selectFrom('user_tasks')
      .select(['id', 'reservation_transfer_id', 'resolution_transfer_id'])
      .where('organization_id', '=', organizationId)
      .where('id', 'in', userTaskIds)
      .execute(),
    db
      .selectFrom('users')
      .select(['id', 'external_id'])
      .where('organization_id', '=', organizationId)
      .where('id', 'in', [...new Set(userTasks.map((userTask) => userTask.userId))])
      .execute(),
    db
      .selectFrom('programs')
      .select(['id', 'name'])
      .where('organization_id', '=', organizationId)
      .where('id', 'in', [...new Set(userTasks.map((userTask) => userTask.programId))])
      .execute(),
    eventsOf(db, organizationId, [...userTaskIds, ...disbursements.map((d) => d.id)]),
    spendsOfDisbursements(db, organizationId, disbursements),
  ]);
  const transferIdsOf = new Map(
    reservationRows.map((row) => [
      row.id,
      { reservation: row.reservation_transfer_id, resolution: row.resolution_transfer_id },
    ]),
  );
  const transfers = await transfersOf(db, organizationId, [
    ...reservationRows.flatMap((row) => [
      row.reservation_transfer_id,
      ...(row.resolution_transfer_id ? [row.resolution_transfer_id] : []),
    ]),
    ...disbursements.flatMap((d) => [settlementTransferId(d.id), disbursementReturnTransferId(d.id)]),
  ]);
  const userById = new Map(users.map((row) => [row.id, row]));
  const programById = new Map(programs.map((row) => [row.id, row]));
  const eventsByObject = new Map<string, RecordEvent[]>();
  for (const event of events) {
    const id = textOf(event.object.id);
    if (id === null) continue;
    const list = eventsByObject.get(id) ?? [];
    list.push(event);
    eventsByObject.set(id, list);
  }

  // The consents that applied when the milestone was completed (now, while it is not).
  const consents = await Promise.all(
    userTasks.map((userTask) =>
      consentsInForce(db, organizationId, userTask.programId, userTask.userId, userTask.completedAt ?? undefined),
    ),
  );
  return userTasks.map((userTask, index) => {
    const ids = transferIdsOf.get(userTask.id);
    assert(ids !== undefined, `user task ${userTask.id} has its row`);
    const user = userById.get(userTask.userId);
    const program = programById.get(userTask.programId);
    assert(user !== undefined && program !== undefined, `user task ${userTask.id} has its user and program`);
    const own = eventsByObject.get(userTask.id) ?? [];
    const disbursement = disbursementByUserTask.get(userTask.id);
    return {
      object: 'user_task_record' as const,
      userTask: presentUserTask(userTask),
      program: { id: program.id, name: program.name },
      user: { id: user.id, externalId: user.external_id },
      reservation: presentReservation(
        userTask,
        own,
        transfers.get(ids.reservation),
        ids.resolution === null ? undefined : transfers.get(ids.resolution),
      ),
      completion: presentCompletion(userTask, own),
      approvals: own.filter((event) => approvalEventTypes.includes(event.type)).map(presentApproval),
      consents: (consents[index] ?? []).map((consent) => ({
        consentId: consent.consentId,
        agreementId: consent.agreementId,
        agreementType: consent.agreementType,
        title: consent.title,
        version: consent.version,
        contentHash: consent.contentHash,
        acceptedAt: isoRequired(consent.acceptedAt),
        ipAddress: consent.ipAddress,
        userAgent: consent.userAgent,
        method: consent.method,
      })),
      disbursement:
        disbursement === undefined
          ? null
          : presentRecordDisbursement(disbursement, eventsByObject.get(disbursement.id) ?? [], spend, transfers),
    };
  });
}

export type UserTaskRecord = Awaited<ReturnType<typeof gatherRecords>>[number];

function presentReservation(
  userTask: UserTask,
  events: readonly RecordEvent[],
  transfer: RecordTransfer | undefined,
  resolution: RecordTransfer | undefined,
) {
  const assigned = events.find((event) => event.type === 'usertask.assigned');
  assert(transfer !== undefined, `user task ${userTask.id} has its reservation transfer`);
  return {
    reservedAt: isoRequired(assigned?.createdAt ?? transfer.createdAt),
    amount: dollars(transfer.amountCents),
    ...(assigned === undefined
      ? { actor: null, credentialId: null, requestId: null, eventId: null }
      : actorOf(assigned)),
    transfer: presentTransfer(transfer),
    resolution: presentTransfer(resolution),
  };
}

function presentCompletion(userTask: UserTask, events: readonly RecordEvent[]) {
  if (userTask.completedAt === null) return null;
  // The last one: a rejected approval can send the milestone back to be completed again.
  const completed = events.filter((event) => event.type === 'usertask.completed').at(-1);
  return {
    completedBy: userTask.completedBy,
    completedAt: isoRequired(userTask.completedAt),
    evidence: userTask.evidence,
    amount: userTask.completedAmountCents === null ? null : dollars(userTask.completedAmountCents),
    ...(completed === undefined
      ? { actor: null, credentialId: null, requestId: null, eventId: null }
      : actorOf(completed)),
  };
}

function presentApproval(event: RecordEvent) {
  const by =
    event.type === 'usertask.approved'
      ? textOf(event.object.approvedBy)
      : event.type === 'usertask.rejected'
        ? textOf(event.object.rejectedBy)
        : textOf(event.object.completedBy);
  return { type: event.type, by, at: isoRequired(event.createdAt), ...actorOf(event) };
}

function presentRecordDisbursement(
  disbursement: Disbursement,
  events: readonly RecordEvent[],
  spend: { spends: Spend[]; spentByDisbursement: Map<string, bigint> },
  transfers: Map<string, RecordTransfer>,
) {
  const settled = disbursement.status === 'settled';
  const spentCents = settled ? (spend.spentByDisbursement.get(disbursement.id) ?? 0n) : 0n;
  const spends = spend.spends
    .flatMap((candidate) =>
      candidate.attributions
        .filter((attribution) => attribution.disbursementId === disbursement.id)
        .map((attribution) => ({ spend: candidate, amountCents: attribution.amountCents })),
    )
    .map(({ spend: drawn, amountCents }) => ({
      spendId: drawn.id,
      amount: dollars(amountCents),
      status: drawn.status,
      merchant: drawn.merchant.name,
      occurredAt: isoRequired(drawn.occurredAt),
    }));
  return {
    id: disbursement.id,
    amount: dollars(disbursement.amountCents),
    status: disbursement.status,
    cardId: disbursement.cardId,
    highnoteTransferId: disbursement.highnoteTransferId,
    attempt: disbursement.attempt,
    failureCode: disbursement.failureCode,
    failureReason: disbursement.failureReason,
    createdAt: isoRequired(disbursement.createdAt),
    settledAt: iso(disbursement.settledAt),
    history: events.map((event) => ({
      type: event.type,
      status: textOf(event.object.status),
      at: isoRequired(event.createdAt),
      ...actorOf(event),
    })),
    settlementTransfer: presentTransfer(transfers.get(settlementTransferId(disbursement.id))),
    returnTransfer: presentTransfer(transfers.get(disbursementReturnTransferId(disbursement.id))),
    spent: dollars(spentCents),
    remaining: dollars(settled ? disbursement.amountCents - spentCents : 0n),
    spends,
  };
}
