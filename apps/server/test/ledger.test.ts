import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyLedgerBatch } from '../src/ledger/ledger.js';
import type { Db } from '../src/platform/db.js';
import { newId } from '../src/platform/ids.js';
import { newOrganization, startTestServer, type TestServer } from './harness.js';

// The ledger on the real database: two-phase semantics, per-operation results, and the
// constraints that hold the invariants even against code that skips the checks.

let server: TestServer;
let db: Db;
let organizationId: string;
let programId: string;
let accounts: { pool: string; transit: string; disbursed: string; funding: string };

beforeAll(async () => {
  server = await startTestServer();
  db = server.database.db;
  const organization = await newOrganization(server);
  organizationId = organization.id;
  const program = await organization.call('POST', '/v1/programs', {
    name: 'Ledger',
    totalAwardPool: 10000,
    maxParticipants: 10,
  });
  programId = program.body.id;
  const row = await db
    .selectFrom('programs')
    .select(['pool_account_id', 'in_transit_account_id', 'disbursed_account_id', 'funding_account_id'])
    .where('id', '=', programId)
    .executeTakeFirstOrThrow();
  accounts = {
    pool: row.pool_account_id,
    transit: row.in_transit_account_id,
    disbursed: row.disbursed_account_id,
    funding: row.funding_account_id,
  };
});

afterAll(async () => {
  await server.close();
});

async function account(id: string) {
  return db.selectFrom('ledger_accounts').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

function reserve(amountCents: bigint) {
  return {
    type: 'create' as const,
    id: newId('transfer'),
    debitAccountId: accounts.pool,
    creditAccountId: accounts.transit,
    amountCents,
    pending: true,
    code: 'reservation' as const,
    programId,
  };
}

describe('ledger batches', () => {
  it('answers every operation in order and applies only the accepted ones', async () => {
    const poolBefore = await account(accounts.pool);
    const available =
      poolBefore.credits_posted_cents - poolBefore.debits_posted_cents - poolBefore.debits_pending_cents;
    const results = await db.transaction().execute(
      (tx) => applyLedgerBatch(tx, organizationId, [reserve(40_000n), reserve(available), reserve(60_000n)]),
      // The second asks for everything that was available before the first: refused, the third fits.
    );
    expect(results.map((result) => (result.ok ? 'ok' : result.reason))).toEqual(['ok', 'exceeds_credits', 'ok']);
    const pool = await account(accounts.pool);
    expect(pool.debits_pending_cents - poolBefore.debits_pending_cents).toBe(100_000n);
    const transit = await account(accounts.transit);
    expect(transit.credits_pending_cents).toBe(pool.debits_pending_cents);
  });

  it('posts part of a reservation and releases the rest; a pending transfer resolves once', async () => {
    const reservation = reserve(10_000n);
    const post = { type: 'post' as const, id: newId('transfer'), pendingId: reservation.id, amountCents: 2_500n };
    const again = { type: 'void' as const, id: newId('transfer'), pendingId: reservation.id };
    const poolBefore = await account(accounts.pool);
    const results = await db
      .transaction()
      .execute((tx) => applyLedgerBatch(tx, organizationId, [reservation, post, again]));
    expect(results.map((result) => (result.ok ? 'ok' : result.reason))).toEqual([
      'ok',
      'ok',
      'pending_transfer_already_posted',
    ]);
    const pool = await account(accounts.pool);
    expect(pool.debits_pending_cents).toBe(poolBefore.debits_pending_cents);
    expect(pool.debits_posted_cents - poolBefore.debits_posted_cents).toBe(2_500n);

    const later = await db
      .transaction()
      .execute((tx) =>
        applyLedgerBatch(tx, organizationId, [{ type: 'post', id: newId('transfer'), pendingId: reservation.id }]),
      );
    expect(later[0]).toEqual({ ok: false, reason: 'pending_transfer_already_posted' });
  });

  it('refuses to post more than was reserved, and voids release the full amount', async () => {
    const reservation = reserve(1_000n);
    const results = await db
      .transaction()
      .execute((tx) =>
        applyLedgerBatch(tx, organizationId, [
          reservation,
          { type: 'post', id: newId('transfer'), pendingId: reservation.id, amountCents: 1_001n },
          { type: 'void', id: newId('transfer'), pendingId: reservation.id },
          { type: 'void', id: newId('transfer'), pendingId: 'trf_missing' },
        ]),
      );
    expect(results.map((result) => (result.ok ? 'ok' : result.reason))).toEqual([
      'ok',
      'exceeds_pending_transfer_amount',
      'ok',
      'pending_transfer_not_found',
    ]);
    const voided = results[2];
    expect(voided?.ok && voided.transfer.amountCents).toBe(1_000n);
  });

  it('a frozen pool takes no new debits but still voids its reservations', async () => {
    const reservation = reserve(500n);
    await db.transaction().execute((tx) => applyLedgerBatch(tx, organizationId, [reservation]));
    await db.updateTable('ledger_accounts').set({ frozen: true }).where('id', '=', accounts.pool).execute();
    try {
      const results = await db
        .transaction()
        .execute((tx) =>
          applyLedgerBatch(tx, organizationId, [
            reserve(100n),
            { type: 'post', id: newId('transfer'), pendingId: reservation.id },
            { type: 'void', id: newId('transfer'), pendingId: reservation.id },
          ]),
        );
      expect(results.map((result) => (result.ok ? 'ok' : result.reason))).toEqual([
        'account_frozen',
        'account_frozen',
        'ok',
      ]);
    } finally {
      await db.updateTable('ledger_accounts').set({ frozen: false }).where('id', '=', accounts.pool).execute();
    }
  });
});

describe('constraints behind the invariants', () => {
  it('transfers are never updated or deleted', async () => {
    const any = await db.selectFrom('ledger_transfers').select('id').executeTakeFirstOrThrow();
    await expect(sql`UPDATE ledger_transfers SET amount_cents = 1 WHERE id = ${any.id}`.execute(db)).rejects.toThrow(
      /never updated or deleted/,
    );
    await expect(sql`DELETE FROM ledger_transfers WHERE id = ${any.id}`.execute(db)).rejects.toThrow(
      /never updated or deleted/,
    );
    await expect(sql`TRUNCATE ledger_transfers CASCADE`.execute(db)).rejects.toThrow(/never updated or deleted/);
  });

  it('no account can be overdrawn or over-reserved, whatever the code does', async () => {
    await expect(
      sql`UPDATE ledger_accounts SET debits_pending_cents = credits_posted_cents + 1 WHERE id = ${accounts.pool}`.execute(
        db,
      ),
    ).rejects.toThrow(/ledger_accounts_debits_within_credits/);
    await expect(
      sql`UPDATE ledger_accounts SET debits_posted_cents = -1 WHERE id = ${accounts.transit}`.execute(db),
    ).rejects.toThrow(/check/i);
  });

  it('a change that breaks total = available + reserved + disbursing + disbursed + returned is refused at commit', async () => {
    // Moving posted money into the pool without a transfer or a change of totalAwardPool.
    await expect(
      db.transaction().execute(async (tx) => {
        await sql`UPDATE ledger_accounts SET credits_posted_cents = credits_posted_cents + 100 WHERE id = ${accounts.pool}`.execute(
          tx,
        );
      }),
    ).rejects.toThrow(/totalAwardPool = available \+ reserved/);
    // A reservation whose two legs disagree.
    await expect(
      db.transaction().execute(async (tx) => {
        await sql`UPDATE ledger_accounts SET credits_pending_cents = credits_pending_cents + 100 WHERE id = ${accounts.transit}`.execute(
          tx,
        );
      }),
    ).rejects.toThrow(/totalAwardPool = available \+ reserved/);
  });

  it("the commit-time identity check reads only the program's returns, whatever its history", async () => {
    // The trigger sums the program's `program_return` transfers; with a plan over every transfer
    // of the program, each commit on a busy pool would cost more than the one before.
    const plan = await db.connection().execute(async (connection) => {
      await sql`SET plan_cache_mode = force_generic_plan`.execute(connection);
      await sql`PREPARE returns_of(text, text) AS SELECT coalesce(sum(amount_cents), 0) FROM ledger_transfers
        WHERE organization_id = $1 AND program_id = $2 AND code = 'program_return'`.execute(connection);
      const explained = await sql<{
        'QUERY PLAN': string;
      }>`EXPLAIN EXECUTE returns_of(${sql.lit(organizationId)}, ${sql.lit(programId)})`.execute(connection);
      await sql`DEALLOCATE returns_of`.execute(connection);
      await sql`RESET plan_cache_mode`.execute(connection);
      return explained.rows.map((row) => row['QUERY PLAN']).join('\n');
    });
    expect(plan).toMatch(/Index Only Scan using ledger_transfers_program_returns/);
    const trigger = await sql<{
      source: string;
    }>`SELECT prosrc AS source FROM pg_proc WHERE proname = 'ledger_check_program_identity'`.execute(db);
    expect(trigger.rows[0]?.source).toContain("code = 'program_return'");
  });

  it('a user task is funded at most once', async () => {
    const disbursement = sql`INSERT INTO disbursements (organization_id, id, user_task_id, program_id, user_id, amount_cents, status)
      VALUES (${organizationId}, ${newId('disbursement')}, 'ut_none', ${programId}, 'usr_none', 100, 'pending')`;
    // Unknown user task: the foreign key refuses a disbursement that references no user task.
    await expect(disbursement.execute(db)).rejects.toThrow(/foreign key/);
  });
});
