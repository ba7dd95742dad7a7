import { type Kysely, sql } from 'kysely';

// Frozen once landed: a schema change is a new migration file. No application imports here.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
-- The audit log is the events table (every state change, its actor, request and the resource
-- after it) made tamper-evident: a background job chains an organization's committed events, in
-- sequence order, into blocks. A block holds a hash of each of its events (in order) and links to
-- the previous block's hash; altering, removing or inserting an event or a block breaks the chain.
-- Written off the request path, one row per block: the hot path writes nothing more.
CREATE TABLE audit_blocks (
  organization_id text NOT NULL REFERENCES organizations (id),
  block_no integer NOT NULL CHECK (block_no >= 1),
  first_sequence bigint NOT NULL,
  last_sequence bigint NOT NULL,
  event_count integer NOT NULL CHECK (event_count >= 1),
  -- One 32-hex hash per event, in sequence order, concatenated.
  event_hashes text NOT NULL CHECK (length(event_hashes) = 32 * event_count),
  prev_hash text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
  hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
  created_at timestamptz NOT NULL,
  PRIMARY KEY (organization_id, block_no),
  CHECK (first_sequence <= last_sequence)
);

CREATE FUNCTION audit_blocks_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_blocks rows are never changed or deleted';
END $$;
CREATE TRIGGER audit_blocks_append_only BEFORE UPDATE OR DELETE ON audit_blocks
  FOR EACH ROW EXECUTE FUNCTION audit_blocks_append_only();

-- Each organization's chain head: the last block and how far the chain reached. A removed last
-- block no longer matches it.
CREATE TABLE audit_heads (
  organization_id text PRIMARY KEY REFERENCES organizations (id),
  block_no integer NOT NULL CHECK (block_no >= 0),
  last_sequence bigint NOT NULL,
  hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
  updated_at timestamptz NOT NULL
);
`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
