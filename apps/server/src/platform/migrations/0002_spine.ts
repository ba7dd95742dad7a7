import { type Kysely, sql } from 'kysely';

// Frozen once landed: a schema change is a new migration file. No application imports here.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
-- Events: appended in the transaction of the change they describe, never changed or deleted.
-- sequence orders an organization's events (assigned at insert, from one identity sequence).
CREATE TABLE events (
  organization_id text NOT NULL REFERENCES organizations (id),
  id text NOT NULL,
  sequence bigint GENERATED ALWAYS AS IDENTITY,
  type text NOT NULL CHECK (type ~ '^[a-z_]+\\.[a-z_]+$'),
  -- json, not jsonb: the resource keeps the exact text and field order the API presented.
  data json NOT NULL CHECK (json_typeof(data -> 'object') = 'object'),
  request_id text,
  actor text NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (organization_id, id)
);
CREATE UNIQUE INDEX events_in_order ON events (organization_id, sequence);
CREATE INDEX events_by_type ON events (organization_id, type, sequence);

CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'events are never updated or deleted' USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER events_immutable BEFORE UPDATE OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION events_are_immutable();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();

-- The identity check summed every transfer of the program at each commit; only the returns
-- matter, and a program returns money only when it closes. With this partial index the sum reads
-- those few rows, so the check costs the same whatever the program's history.
CREATE INDEX ledger_transfers_program_returns ON ledger_transfers (organization_id, program_id)
  INCLUDE (amount_cents) WHERE code = 'program_return';

-- A replay answers with the very response it stored: json keeps its text and field order, where
-- jsonb would reorder the fields.
ALTER TABLE idempotency_keys ALTER COLUMN response_body TYPE json USING response_body::json;

-- Expiry claims one organization's due user tasks at a time.
CREATE INDEX user_tasks_expiring_by_organization ON user_tasks (organization_id, expires_at)
  WHERE status IN ('assigned', 'pending_approval') AND expires_at IS NOT NULL;
`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
