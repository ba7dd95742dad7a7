import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disbursementStatuses } from '../src/disbursements/disbursement.js';
import { enrollmentStatuses } from '../src/enrollments/enrollment.js';
import { accountKinds, transferCodes, transferKinds } from '../src/ledger/kinds.js';
import { jobStatuses } from '../src/platform/jobs.js';
import { programStatuses } from '../src/programs/program.js';
import { userTaskStatuses } from '../src/usertasks/usertask.js';
import { startTestServer, type TestServer } from './harness.js';

// Each closed list is declared once in the code; the migrations (frozen, importing no app code)
// spell the same values in CHECK constraints. This holds the two together.

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server.close();
});

/** The values of the CHECK that holds one column to a list (`CHECK (col IN (…))`), read back from the database. */
async function checkedValues(table: string, column: string): Promise<string[]> {
  const result = await sql<{ definition: string }>`
    SELECT pg_get_constraintdef(c.oid) AS definition
    FROM pg_constraint c
    JOIN pg_class t ON t.oid = c.conrelid
    WHERE c.contype = 'c' AND t.relname = ${table}`.execute(server.database.db);
  const definitions = result.rows
    .map((row) => row.definition)
    .filter((definition) =>
      new RegExp(`^CHECK \\(\\(${column} = ANY \\(ARRAY\\[[^\\]]*\\]\\)\\)\\)$`).test(definition),
    );
  expect(definitions, `one CHECK lists the values of ${table}.${column}`).toHaveLength(1);
  return [...(definitions[0] as string).matchAll(/'([a-z_]+)'::text/g)].map((match) => match[1] as string);
}

describe('closed lists and the CHECK constraints behind them', () => {
  it.each([
    ['user_tasks', 'status', userTaskStatuses],
    ['programs', 'status', programStatuses],
    ['enrollments', 'status', enrollmentStatuses],
    ['disbursements', 'status', disbursementStatuses],
    ['ledger_accounts', 'kind', accountKinds],
    ['ledger_transfers', 'kind', transferKinds],
    ['ledger_transfers', 'code', transferCodes],
    ['jobs', 'status', jobStatuses],
  ] as const)('%s.%s', async (table, column, values) => {
    expect((await checkedValues(table, column)).sort()).toEqual([...values].sort());
  });
});
