import { sql } from 'kysely';
import type { Db } from '../platform/db.js';
import { auditTablesOf, blockHash, entryHash, eventsForChain, genesisHash } from './chain.js';

/**
 * `tranche audit verify`: recomputes every organization's chain from the events and the blocks,
 * and names the first entry or block that does not match. An altered event changes its entry hash;
 * a removed or inserted one shifts the entries after it; an altered or removed block breaks the
 * link of the next one, or the head.
 */

export type AuditVerdict =
  | { ok: true; organizations: number; blocks: number; events: number; unchained: number }
  | {
      ok: false;
      organizationId: string;
      blockNo: number | null;
      sequence: string | null;
      eventId: string | null;
      problem: string;
    };

export async function verifyAuditLog(db: Db): Promise<AuditVerdict> {
  const organizations = await db.selectFrom('organizations').select('id').orderBy('id').execute();
  let blocksChecked = 0;
  let eventsChecked = 0;
  let unchained = 0;
  const tables = auditTablesOf(db);
  for (const { id: organizationId } of organizations) {
    const fail = (problem: string, where: { blockNo?: number; sequence?: string; eventId?: string } = {}) =>
      ({
        ok: false,
        organizationId,
        blockNo: where.blockNo ?? null,
        sequence: where.sequence ?? null,
        eventId: where.eventId ?? null,
        problem,
      }) as const;
    const head = await tables
      .selectFrom('audit_heads')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .executeTakeFirst();
    const blocks = await tables
      .selectFrom('audit_blocks')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .orderBy('block_no')
      .execute();
    let prevHash = genesisHash;
    let lastSequence = '0';
    for (const [index, block] of blocks.entries()) {
      const blockNo = index + 1;
      if (block.block_no !== blockNo) return fail(`block ${blockNo} is missing`, { blockNo });
      if (block.prev_hash !== prevHash) {
        return fail(`block ${blockNo} does not link to block ${blockNo - 1}`, { blockNo });
      }
      const events = await eventsForChain(db, organizationId, {
        afterSequence: lastSequence,
        upToSequence: String(block.last_sequence),
      });
      for (let position = 0; position < block.event_count; position++) {
        const expected = block.event_hashes.slice(position * 32, position * 32 + 32);
        const event = events[position];
        if (event === undefined) {
          return fail(`entry ${position + 1} of block ${blockNo} was removed`, { blockNo });
        }
        if (entryHash(event) !== expected) {
          return fail(
            `event ${event.id} (sequence ${event.sequence}) does not match entry ${position + 1} of block ${blockNo}: it was altered, or an entry before it was removed or inserted`,
            { blockNo, sequence: event.sequence, eventId: event.id },
          );
        }
      }
      const extra = events[block.event_count];
      if (extra !== undefined) {
        return fail(`event ${extra.id} (sequence ${extra.sequence}) was inserted into block ${blockNo}`, {
          blockNo,
          sequence: extra.sequence,
          eventId: extra.id,
        });
      }
      const recomputed = blockHash({
        prevHash,
        blockNo,
        firstSequence: String(block.first_sequence),
        lastSequence: String(block.last_sequence),
        eventHashes: block.event_hashes,
      });
      if (recomputed !== block.hash) return fail(`block ${blockNo} was altered`, { blockNo });
      prevHash = block.hash;
      lastSequence = String(block.last_sequence);
      blocksChecked++;
      eventsChecked += block.event_count;
    }
    const headBlock = head?.block_no ?? 0;
    const headHash = head?.hash ?? genesisHash;
    if (headBlock !== blocks.length || headHash !== prevHash) {
      return fail(
        `the chain ends at block ${blocks.length} but its head records block ${headBlock}: a block was removed or the head altered`,
        { blockNo: headBlock },
      );
    }
    const pending = await sql<{ count: string }>`
      SELECT count(*)::text AS count FROM events
      WHERE organization_id = ${organizationId} AND sequence > ${lastSequence}::bigint`.execute(db);
    unchained += Number(pending.rows[0]?.count ?? 0);
  }
  return { ok: true, organizations: organizations.length, blocks: blocksChecked, events: eventsChecked, unchained };
}
