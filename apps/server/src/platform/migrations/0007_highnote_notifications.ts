import { type Kysely, sql } from 'kysely';

// Frozen once landed: a schema change is a new migration file. No application imports here.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
-- Where Highnote sends an organization's notifications: the webhook notification target Tranche
-- registered, or why it could not (registration is retried by a job; polling works meanwhile).
CREATE TABLE highnote_notification_targets (
  organization_id text PRIMARY KEY REFERENCES organizations (id),
  -- The GraphQL endpoint the target was registered with: a new configuration registers anew.
  graphql_url text NOT NULL,
  target_id text,
  uri text NOT NULL,
  status text NOT NULL CHECK (status IN ('registering', 'registered', 'failed')),
  last_error text CHECK (length(last_error) <= 1000),
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  CONSTRAINT highnote_notification_targets_id CHECK ((status = 'registered') = (target_id IS NOT NULL))
);

-- The target's signing keys, sealed (AES-256-GCM under TRANCHE_ENCRYPTION_KEY). A key verifies
-- signatures until expires_at (null: no end); during a rotation several are valid at once.
CREATE TABLE highnote_signing_keys (
  organization_id text NOT NULL REFERENCES organizations (id),
  key_id text NOT NULL,
  target_id text NOT NULL,
  secret_ciphertext text NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz,
  PRIMARY KEY (organization_id, key_id)
);

-- Every notification accepted, append-only, once per notification event id (data.node.id): a
-- retry or a replay finds its row and is acknowledged without being applied again.
CREATE TABLE highnote_notifications (
  organization_id text NOT NULL REFERENCES organizations (id),
  id text NOT NULL CHECK (length(id) BETWEEN 1 AND 200),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  payload jsonb NOT NULL,
  replay boolean NOT NULL,
  received_at timestamptz NOT NULL,
  PRIMARY KEY (organization_id, id)
);

CREATE FUNCTION highnote_notifications_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'highnote_notifications rows are never changed or deleted';
END $$;
CREATE TRIGGER highnote_notifications_append_only BEFORE UPDATE OR DELETE ON highnote_notifications
  FOR EACH ROW EXECUTE FUNCTION highnote_notifications_append_only();

-- A transfer notification finds its disbursement by Highnote's transfer id.
CREATE UNIQUE INDEX disbursements_highnote_transfer ON disbursements (organization_id, highnote_transfer_id)
  WHERE highnote_transfer_id IS NOT NULL;
-- A physical order notification finds its card by Highnote's order id.
CREATE INDEX cards_physical_order ON cards (organization_id, physical_order_id)
  WHERE physical_order_id IS NOT NULL;
`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
