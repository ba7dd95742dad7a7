import { type Kysely, sql } from 'kysely';

// Frozen once landed: a schema change is a new migration file. No application imports here.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
-- A foreign-key check looks its row up by (organization_id, id), with a plan each connection
-- makes once and keeps. On a table that has not been analyzed yet (a new database, and always on
-- the embedded one, which has no autovacuum) an index that starts with organization_id alone costs
-- the same to the planner as the primary key, and the check that picked it read every row of the
-- organization: a batch of 32 completions spent 7 ms in the user_tasks check. Program ids are
-- unique, so these indexes need no organization_id in front, and no lookup by id can choose them.
DROP INDEX user_tasks_by_program;
CREATE INDEX user_tasks_by_program ON user_tasks (program_id, status);
DROP INDEX ledger_transfers_by_program;
CREATE INDEX ledger_transfers_by_program ON ledger_transfers (program_id, id DESC);
`.execute(db);
}
