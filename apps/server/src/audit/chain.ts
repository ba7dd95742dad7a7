import { createHash } from 'node:crypto';
import { type ColumnType, sql } from 'kysely';
import type { Db } from '../platform/db.js';
import { defineJob, type JobContext } from '../platform/jobs.js';

/**
 * The audit chain (migration 0013). Events are the audit log's entries: each state change, who
 * made it (`actor`: the API key, the operator or a job), the request, and the resource after it.
 * A recurring job chains each organization's committed events, in sequence order, into blocks:
 *
 *   entry hash = sha256(sequence, id, type, actor, request id, time, data as stored), 32 hex
 *   block hash = sha256(previous block hash, block number, first and last sequence, entry hashes)
 *
 * Only events older than `settleMs` are chained, so an event whose transaction committed after a
 * later sequence number did is still chained in order (transactions here last seconds, not a
 * minute). The request path writes nothing for the audit: no lock, no extra row.
 */

/** The hash the first block links to. */
export const genesisHash = '0'.repeat(64);
/** Events chained per block, at most. */
export const maxBlockEvents = 2_000;
/** Events older than this are committed for certain: the chain reaches them. */
export const defaultAuditSettleMs = 60_000;
export const auditChainJobName = 'audit.chain';

interface AuditBlocksTable {
  organization_id: string;
  block_no: number;
  first_sequence: ColumnType<string, string | bigint, never>;
  last_sequence: ColumnType<string, string | bigint, never>;
  event_count: number;
  event_hashes: string;
  prev_hash: string;
  hash: string;
  created_at: ColumnType<Date, Date, never>;
}

interface AuditHeadsTable {
  organization_id: string;
  block_no: number;
  last_sequence: ColumnType<string, string | bigint, string | bigint>;
  hash: string;
  updated_at: ColumnType<Date, Date, Date>;
}

export function auditTablesOf(db: Db) {
  return db.withTables<{ audit_blocks: AuditBlocksTable; audit_heads: AuditHeadsTable }>();
}

/** An event as the chain reads it: `data` is the stored JSON text, byte for byte. */
export interface ChainedEvent {
  sequence: string;
  id: string;
  type: string;
  actor: string;
  request_id: string | null;
  created_at: Date;
  data: string;
}

export function entryHash(event: ChainedEvent): string {
  return createHash('sha256')
    .update(
      [
        event.sequence,
        event.id,
        event.type,
        event.actor,
        event.request_id ?? '',
        new Date(event.created_at).toISOString(),
        event.data,
      ].join('\u001f'),
    )
    .digest('hex')
    .slice(0, 32);
}

export function blockHash(block: {
  prevHash: string;
  blockNo: number;
  firstSequence: string;
  lastSequence: string;
  eventHashes: string;
}): string {
  return createHash('sha256')
    .update([block.prevHash, block.blockNo, block.firstSequence, block.lastSequence, block.eventHashes].join('\u001f'))
    .digest('hex');
}

/** An organization's events in sequence order after `afterSequence`, up to `upTo` when given. */
export async function eventsForChain(
  db: Db,
  organizationId: string,
  range: { afterSequence: string; upToSequence?: string; createdBefore?: Date; limit?: number },
): Promise<ChainedEvent[]> {
  const rows = await sql<ChainedEvent>`
    SELECT sequence::text AS sequence, id, type, actor, request_id, created_at, data::text AS data
    FROM events
    WHERE organization_id = ${organizationId} AND sequence > ${range.afterSequence}::bigint
      ${range.upToSequence === undefined ? sql`` : sql`AND sequence <= ${range.upToSequence}::bigint`}
      ${range.createdBefore === undefined ? sql`` : sql`AND created_at < ${range.createdBefore.toISOString()}::timestamptz`}
    ORDER BY events.sequence
    ${range.limit === undefined ? sql`` : sql`LIMIT ${range.limit}`}`.execute(db);
  return rows.rows;
}

/**
 * Appends the organization's next block, if it has settled events not yet chained; answers how
 * many events it chained. The head row is locked, so two workers never chain the same events.
 */
export async function chainNextBlock(db: Db, organizationId: string, settledBefore: Date, now: Date): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const tx = trx as unknown as Db;
    const tables = auditTablesOf(tx);
    await tables
      .insertInto('audit_heads')
      .values({ organization_id: organizationId, block_no: 0, last_sequence: '0', hash: genesisHash, updated_at: now })
      .onConflict((conflict) => conflict.column('organization_id').doNothing())
      .execute();
    const head = await tables
      .selectFrom('audit_heads')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .forUpdate()
      .executeTakeFirstOrThrow();
    const events = await eventsForChain(tx, organizationId, {
      afterSequence: String(head.last_sequence),
      createdBefore: settledBefore,
      limit: maxBlockEvents,
    });
    const first = events[0];
    const last = events[events.length - 1];
    if (first === undefined || last === undefined) return 0;
    const blockNo = head.block_no + 1;
    const eventHashes = events.map(entryHash).join('');
    const hash = blockHash({
      prevHash: head.hash,
      blockNo,
      firstSequence: first.sequence,
      lastSequence: last.sequence,
      eventHashes,
    });
    await tables
      .insertInto('audit_blocks')
      .values({
        organization_id: organizationId,
        block_no: blockNo,
        first_sequence: first.sequence,
        last_sequence: last.sequence,
        event_count: events.length,
        event_hashes: eventHashes,
        prev_hash: head.hash,
        hash,
        created_at: now,
      })
      .execute();
    await tables
      .updateTable('audit_heads')
      .set({ block_no: blockNo, last_sequence: last.sequence, hash, updated_at: now })
      .where('organization_id', '=', organizationId)
      .execute();
    return events.length;
  });
}

/** Chains every organization's settled events, block after block, until none is left. */
export async function chainAll(db: Db, settleMs: number, now = new Date()): Promise<number> {
  const settledBefore = new Date(now.getTime() - settleMs);
  const due = await sql<{ organization_id: string }>`
    SELECT o.id AS organization_id FROM organizations o
    LEFT JOIN audit_heads h ON h.organization_id = o.id
    WHERE EXISTS (
      SELECT 1 FROM events e
      WHERE e.organization_id = o.id AND e.sequence > COALESCE(h.last_sequence, 0)
        AND e.created_at < ${settledBefore.toISOString()}::timestamptz
    )`.execute(db);
  let chained = 0;
  for (const { organization_id } of due.rows) {
    for (;;) {
      const count = await chainNextBlock(db, organization_id, settledBefore, now);
      chained += count;
      if (count < maxBlockEvents) break;
    }
  }
  return chained;
}

export function auditChainJob(deps: { intervalMs: number; settleMs: number }) {
  return defineJob<Record<string, never>>({
    name: auditChainJobName,
    maxAttempts: 5,
    backoff: { baseMs: 1_000, maxMs: 60_000 },
    visibilityTimeoutMs: 5 * 60 * 1000,
    recurring: { intervalMs: deps.intervalMs, payload: {} },
    run: async (context: JobContext) => {
      const chained = await chainAll(context.db, deps.settleMs, context.now);
      if (chained > 0) context.log.info({ chained }, 'audit events chained');
    },
  });
}
