import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainAll } from '../src/audit/chain.js';
import { verifyAuditLog } from '../src/audit/verify.js';
import {
  newOrganization,
  pollUntil,
  programWithUser,
  startTestServer,
  type TestServer,
  testDatabaseKind,
} from './harness.js';

// The audit log: every state change with its actor, credential and request, before and after,
// sealed into a hash chain off the request path; `tranche audit verify` finds any tampering.

const run = promisify(execFile);
const binary = fileURLToPath(new URL('../bin/tranche.js', import.meta.url));

let server: TestServer;
let org: Awaited<ReturnType<typeof newOrganization>>;
let userTaskId: string;

beforeAll(async () => {
  server = await startTestServer({ auditSettleMs: 0, sweepIntervalMs: 100 });
  org = await newOrganization(server, 'Audited');
  const { programId, userId } = await programWithUser(org.call);
  const assigned = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 25 });
  userTaskId = assigned.body.id;
  const completed = await org.call('PUT', `/v1/usertasks/${userTaskId}/complete`, { completedBy: 'supervisor-7' });
  expect(completed.status).toBe(200);
});

afterAll(async () => {
  await server?.close();
});

type Entry = {
  id: string;
  type: string;
  resourceId: string | null;
  actor: string;
  credentialId: string | null;
  requestId: string | null;
  before: { status?: string } | null;
  after: { status?: string };
  chain: { blockNo: number; blockHash: string } | null;
};

async function allEntries(): Promise<Entry[]> {
  const entries: Entry[] = [];
  let cursor: string | null = null;
  do {
    const page: { status: number; body: { data: Entry[]; nextCursor: string | null } } = await org.call(
      'GET',
      `/v1/audit-log?limit=3${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`,
    );
    expect(page.status).toBe(200);
    entries.push(...page.body.data);
    cursor = page.body.nextCursor;
  } while (cursor !== null);
  return entries;
}

async function verify(command = false): Promise<{ ok: boolean; output: string }> {
  // The command itself where another process can reach the database; the same function otherwise.
  if (command && testDatabaseKind === 'postgres') {
    try {
      const { stdout } = await run(process.execPath, [binary, 'audit', 'verify'], {
        env: { ...process.env, DATABASE_URL: server.databaseUrl },
      });
      return { ok: true, output: stdout };
    } catch (error) {
      return { ok: false, output: String((error as { stderr?: string }).stderr) };
    }
  }
  const verdict = await verifyAuditLog(server.database.db);
  return { ok: verdict.ok, output: JSON.stringify(verdict) };
}

async function withTriggersOff(table: string, change: () => Promise<unknown>) {
  await sql`ALTER TABLE ${sql.table(table)} DISABLE TRIGGER USER`.execute(server.database.db);
  try {
    await change();
  } finally {
    await sql`ALTER TABLE ${sql.table(table)} ENABLE TRIGGER USER`.execute(server.database.db);
  }
}

describe('the audit log', () => {
  it('lists every change with actor, credential, request, before and after, sealed by the chain job', async () => {
    const entries = await pollUntil(
      allEntries,
      (list) => list.length > 0 && list.every((entry) => entry.chain !== null),
      { what: 'the chain to seal every entry', deadlineMs: 20_000 },
    );
    // Oldest first, by sequence as a number (not as text: 10 comes after 9).
    const sequences = entries.map((entry) => BigInt((entry as Entry & { sequence: string }).sequence));
    expect(sequences.every((sequence, index) => index === 0 || sequence > (sequences[index - 1] as bigint))).toBe(true);
    const types = entries.map((entry) => entry.type);
    expect(types).toEqual(expect.arrayContaining(['program.created', 'usertask.assigned', 'usertask.completed']));
    const completion = entries.find((entry) => entry.type === 'usertask.completed' && entry.resourceId === userTaskId);
    expect(completion).toMatchObject({
      actor: expect.stringMatching(/^api_key:key_/),
      credentialId: expect.stringMatching(/^key_/),
      requestId: expect.stringMatching(/^req_/),
      before: { status: 'assigned' },
      after: { status: 'completed' },
    });
    const ofOne = await org.call('GET', `/v1/audit-log?resourceId=${userTaskId}`);
    expect(ofOne.body.data.map((entry: Entry) => entry.type)).toEqual(['usertask.assigned', 'usertask.completed']);
    expect(ofOne.body.data[0].before).toBeNull();
    // Another organization sees none of it.
    const other = await newOrganization(server, 'Other');
    expect((await other.call('GET', `/v1/audit-log?resourceId=${userTaskId}`)).body.data).toEqual([]);
  });

  it('verifies an intact log, and names the entry or block that was altered, removed or inserted', async () => {
    // The worker stops, so that nothing else holds the tables the test alters.
    await server.stopWorker();
    await chainAll(server.database.db, 0);
    const intact = await verify(true);
    expect(intact.ok, intact.output).toBe(true);

    const db = server.database.db;
    const target = await sql<{ id: string; data: string }>`
      SELECT id, data::text AS data FROM events
      WHERE organization_id = ${org.id} AND type = 'usertask.completed'`.execute(db);
    const event = target.rows[0] as { id: string; data: string };

    // An altered event.
    await withTriggersOff('events', () =>
      sql`UPDATE events SET data = ${event.data.replace('supervisor-7', 'someone-else')}::json
        WHERE organization_id = ${org.id} AND id = ${event.id}`.execute(db),
    );
    const altered = await verify(true);
    expect(altered.ok).toBe(false);
    expect(altered.output).toContain(event.id);
    await withTriggersOff('events', () =>
      sql`UPDATE events SET data = ${event.data}::json WHERE organization_id = ${org.id} AND id = ${event.id}`.execute(
        db,
      ),
    );
    expect((await verify()).ok).toBe(true);

    // A removed event.
    const saved = await sql<Record<string, unknown>>`
      SELECT organization_id, id, sequence, type, data::text AS data, request_id, actor, created_at
      FROM events WHERE organization_id = ${org.id} AND id = ${event.id}`.execute(db);
    const row = saved.rows[0] as Record<string, unknown>;
    await withTriggersOff('events', () =>
      sql`DELETE FROM events WHERE organization_id = ${org.id} AND id = ${event.id}`.execute(db),
    );
    const removed = await verify();
    expect(removed.ok).toBe(false);
    expect(removed.output).toMatch(/removed|does not match/);
    await sql`INSERT INTO events (organization_id, id, sequence, type, data, request_id, actor, created_at)
      OVERRIDING SYSTEM VALUE VALUES (${row.organization_id}, ${row.id}, ${row.sequence}, ${row.type},
        ${row.data}::json, ${row.request_id}, ${row.actor}, ${row.created_at})`.execute(db);
    expect((await verify()).ok).toBe(true);

    // An altered block, and a removed last block.
    const block = await sql<{ block_no: number; hash: string }>`
      SELECT block_no, hash FROM audit_blocks WHERE organization_id = ${org.id} ORDER BY block_no DESC LIMIT 1`.execute(
      db,
    );
    const last = block.rows[0] as { block_no: number; hash: string };
    await withTriggersOff('audit_blocks', () =>
      sql`UPDATE audit_blocks SET hash = ${'f'.repeat(64)} WHERE organization_id = ${org.id} AND block_no = ${last.block_no}`.execute(
        db,
      ),
    );
    const forged = await verify();
    expect(forged.ok).toBe(false);
    expect(forged.output).toContain(`block ${last.block_no}`);
    await withTriggersOff('audit_blocks', () =>
      sql`UPDATE audit_blocks SET hash = ${last.hash} WHERE organization_id = ${org.id} AND block_no = ${last.block_no}`.execute(
        db,
      ),
    );
    expect((await verify()).ok).toBe(true);
  }, 120_000);
});
