import { type Kysely, sql } from 'kysely';

// Frozen once landed: a schema change is a new migration file. No application imports here.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
-- One row per card transaction Highnote reported (an authorization and what followed it): what a
-- participant spent. Its state and amount are derived from its events, never stored, so events
-- arriving twice or in any order end in the same spend.
CREATE TABLE spends (
  organization_id text NOT NULL REFERENCES organizations (id),
  id text NOT NULL,
  highnote_transaction_id text NOT NULL,
  user_id text NOT NULL,
  card_id text NOT NULL,
  -- The cardholder financial account the card draws on: the pool the card's disbursements filled.
  highnote_financial_account_id text NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (organization_id, id),
  CONSTRAINT spends_transaction_once UNIQUE (organization_id, highnote_transaction_id),
  FOREIGN KEY (organization_id, card_id) REFERENCES cards (organization_id, id),
  FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id)
);
CREATE INDEX spends_user ON spends (organization_id, user_id, id);
CREATE INDEX spends_financial_account ON spends (organization_id, highnote_financial_account_id);

-- Highnote's transaction events (authorization approved or declined, reversal, clearing, refund),
-- each once by Highnote's event id, whether a notification or a reconciliation run brought it.
CREATE TABLE spend_events (
  organization_id text NOT NULL,
  id text NOT NULL,
  spend_id text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('authorization_approved', 'authorization_declined', 'reversal', 'clearing', 'refund')),
  amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
  response_code text CHECK (length(response_code) <= 100),
  merchant jsonb NOT NULL,
  occurred_at timestamptz NOT NULL,
  source text NOT NULL CHECK (source IN ('notification', 'reconciliation')),
  recorded_at timestamptz NOT NULL,
  PRIMARY KEY (organization_id, id),
  FOREIGN KEY (organization_id, spend_id) REFERENCES spends (organization_id, id)
);
CREATE INDEX spend_events_spend ON spend_events (organization_id, spend_id);

CREATE FUNCTION spends_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% rows are never changed or deleted', TG_TABLE_NAME;
END $$;
CREATE TRIGGER spends_append_only BEFORE UPDATE OR DELETE ON spends
  FOR EACH ROW EXECUTE FUNCTION spends_append_only();
CREATE TRIGGER spend_events_append_only BEFORE UPDATE OR DELETE ON spend_events
  FOR EACH ROW EXECUTE FUNCTION spends_append_only();

-- The attribution reads a financial account's settled disbursements through their cards.
CREATE INDEX disbursements_card_settled ON disbursements (organization_id, card_id)
  WHERE status = 'settled';
`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
