import { type Kysely, sql } from 'kysely';

// Frozen once landed: a schema change is a new migration file. No application imports here.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
-- Partner webhook endpoints: where an organization wants its events delivered, and how far the
-- fan-out has read its events (cursor_sequence: every matching event at or below it has a delivery).
CREATE TABLE webhook_endpoints (
  organization_id text NOT NULL REFERENCES organizations (id),
  id text NOT NULL,
  url text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
  description text CHECK (length(description) <= 500),
  -- A JSON array of event types, or ["*"] for all of them.
  event_types jsonb NOT NULL CHECK (jsonb_typeof(event_types) = 'array' AND jsonb_array_length(event_types) BETWEEN 1 AND 100),
  status text NOT NULL CHECK (status IN ('enabled', 'disabled')),
  disabled_reason text CHECK (length(disabled_reason) <= 500),
  -- The signing secret, sealed (AES-256-GCM under TRANCHE_ENCRYPTION_KEY); never stored in the clear.
  secret_ciphertext text NOT NULL,
  -- After a rotation the previous secret keeps signing, beside the new one, until this time.
  previous_secret_ciphertext text,
  previous_secret_expires_at timestamptz,
  cursor_sequence bigint NOT NULL CHECK (cursor_sequence >= 0),
  -- Since when every attempt to this endpoint has failed; null after a success.
  failing_since timestamptz,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (organization_id, id),
  CHECK ((previous_secret_ciphertext IS NULL) = (previous_secret_expires_at IS NULL)),
  CHECK ((status = 'disabled') OR disabled_reason IS NULL)
);
CREATE INDEX webhook_endpoints_enabled ON webhook_endpoints (id) WHERE status = 'enabled';

-- One row per (endpoint, event): the delivery log. The event is delivered until one 2xx.
-- No foreign key to events: events are never deleted (their trigger refuses it), and a key
-- referencing them would change how TRUNCATE events is refused.
CREATE TABLE webhook_deliveries (
  organization_id text NOT NULL,
  id text NOT NULL,
  endpoint_id text NOT NULL,
  event_id text NOT NULL,
  event_type text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  attempts integer NOT NULL CHECK (attempts >= 0 AND attempts <= 1000),
  next_attempt_at timestamptz,
  last_attempt_at timestamptz,
  last_status_code integer CHECK (last_status_code BETWEEN 100 AND 599),
  last_error text CHECK (length(last_error) <= 1000),
  succeeded_at timestamptz,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (organization_id, id),
  UNIQUE (organization_id, endpoint_id, event_id),
  FOREIGN KEY (organization_id, endpoint_id) REFERENCES webhook_endpoints (organization_id, id) ON DELETE CASCADE,
  CHECK ((status = 'succeeded') = (succeeded_at IS NOT NULL))
);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (organization_id, endpoint_id, id);
`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
