import { type Expression, sql } from 'kysely';
import type { Db } from './db.js';
import { newId } from './ids.js';

/**
 * Events: every state change appends one or more, in the transaction of the change, as
 * `{id, object: "event", type, createdAt, data: {object}}` where `object` is the resource as the
 * API presents it. Rows are never changed or deleted (a trigger refuses it). Their order within an
 * organization is the `sequence` column, assigned at insert.
 */

/** Every event type, `resource.verb`; one list for the route schemas, the writer and the tests. */
export const eventTypes = [
  'program.created',
  'program.updated',
  'program.funded',
  'program.paused',
  'program.resumed',
  'program.closed',
  'user.created',
  'user.updated',
  'enrollment.created',
  'enrollment.dismissed',
  'task.created',
  'task.updated',
  'usertask.assigned',
  'usertask.completed',
  'usertask.cancelled',
  'usertask.expired',
  'usertask.funded',
  'usertask.funding_failed',
  'usertask.funding_retried',
  'disbursement.created',
  'disbursement.awaiting_card',
  'disbursement.processing',
  'disbursement.settled',
  'disbursement.failed',
  'disbursement.retried',
  'disbursement.cancelled',
  'configuration.updated',
  'application.created',
  'application.in_review',
  'application.approved',
  'application.denied',
  'application.closed',
  'card.created',
  'card.activated',
  'card.suspended',
  'card.closed',
  'card.physical_ordered',
  'card.physical_shipped',
  'card.physical_ship_failed',
  'spend.authorized',
  'spend.declined',
  'spend.reversed',
  'spend.cleared',
  'spend.refunded',
  'reconciliation.completed',
  'agreement.created',
  'agreement.version_created',
  'consent.accepted',
  'consent.withdrawn',
  'usertask.pending_approval',
  'usertask.approved',
  'usertask.rejected',
  'api_key.created',
  'api_key.revoked',
  'client_credential.created',
  'client_credential.revoked',
] as const;

export type EventType = (typeof eventTypes)[number];

export interface StoredEvent {
  id: string;
  sequence: bigint;
  type: EventType;
  createdAt: Date;
  data: { object: unknown };
}

/** Who wrote a group of events: each unit of a batch writes under its own request and actor. */
export interface EventContext {
  organizationId: string;
  requestId: string | null;
  actor: string;
  now: Date;
}

/**
 * Writes the events of one or more units in one statement; the sequence keeps their order (unit
 * by unit, each unit's in the order it emitted them). `alongside` are other writes of the same
 * units (their stored idempotent responses, rows nothing reads back) sent in the same statement,
 * as data-modifying CTEs: one round trip instead of several.
 */
export async function writeEvents(
  tx: Db,
  groups: readonly { context: EventContext; drafts: readonly { type: EventType; object: unknown }[] }[],
  alongside: readonly Expression<unknown>[] = [],
): Promise<void> {
  const rows = groups.flatMap(({ context, drafts }) =>
    drafts.map(
      (draft) =>
        sql`(${context.organizationId}, ${newId('event')}, ${draft.type}, ${JSON.stringify({ object: draft.object })}::json, ${context.requestId}, ${context.actor}, ${context.now.toISOString()}::timestamptz)`,
    ),
  );
  if (rows.length === 0) {
    for (const write of alongside) await sql`${write}`.execute(tx);
    return;
  }
  const before =
    alongside.length === 0
      ? sql``
      : sql`WITH ${sql.join(
          alongside.map((write, index) => sql`${sql.raw(`alongside_${index}`)} AS (${write})`),
          sql`, `,
        )} `;
  await sql`${before}INSERT INTO events (organization_id, id, type, data, request_id, actor, created_at)
    VALUES ${sql.join(rows)}`.execute(tx);
}

function storedEventOf(row: {
  id: string;
  sequence: bigint;
  type: string;
  created_at: Date;
  data: unknown;
}): StoredEvent {
  return {
    id: row.id,
    sequence: row.sequence,
    type: row.type as EventType,
    createdAt: row.created_at,
    data: row.data as { object: unknown },
  };
}

export async function getEvent(db: Db, organizationId: string, id: string): Promise<StoredEvent | undefined> {
  const row = await db
    .selectFrom('events')
    .select(['id', 'sequence', 'type', 'created_at', 'data'])
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined ? undefined : storedEventOf(row);
}

/** Newest first; `beforeSequence` continues a page. */
export async function listEvents(
  db: Db,
  organizationId: string,
  filter: { beforeSequence: bigint | undefined; limit: number; type?: EventType | undefined; createdAfter?: Date },
): Promise<StoredEvent[]> {
  let query = db
    .selectFrom('events')
    .select(['id', 'sequence', 'type', 'created_at', 'data'])
    .where('organization_id', '=', organizationId)
    .orderBy('sequence', 'desc')
    .limit(filter.limit);
  if (filter.beforeSequence !== undefined) query = query.where('sequence', '<', filter.beforeSequence);
  if (filter.type !== undefined) query = query.where('type', '=', filter.type);
  if (filter.createdAfter !== undefined) query = query.where('created_at', '>', filter.createdAfter);
  return (await query.execute()).map(storedEventOf);
}

export function presentEvent(event: StoredEvent) {
  return {
    id: event.id,
    object: 'event' as const,
    type: event.type,
    createdAt: event.createdAt.toISOString(),
    data: event.data,
  };
}
