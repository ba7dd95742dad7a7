import { type Kysely, sql } from 'kysely';

// Frozen once landed: a schema change is a new migration file. No application imports here.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
-- An organization's card platform: where Tranche reaches Highnote and with which key. The key is
-- stored encrypted (AES-256-GCM under TRANCHE_ENCRYPTION_KEY); the embedded sandbox needs none.
CREATE TABLE issuer_configurations (
  organization_id text PRIMARY KEY REFERENCES organizations (id),
  environment text NOT NULL CHECK (environment IN ('sandbox', 'test', 'live')),
  graphql_url text NOT NULL,
  api_key_ciphertext text,
  api_key_last4 text,
  card_product_id text NOT NULL,
  funding_financial_account_id text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  CONSTRAINT issuer_configurations_key CHECK ((api_key_ciphertext IS NULL) = (api_key_last4 IS NULL)),
  CONSTRAINT issuer_configurations_key_outside_sandbox CHECK (environment = 'sandbox' OR api_key_ciphertext IS NOT NULL)
);

-- Highnote operations without an idempotencyKey (account holders, applications) are deduplicated
-- here: the id Highnote answered is recorded under the request's Idempotency-Key, and a retry of
-- that request reuses it instead of creating a second one.
CREATE TABLE issuer_requests (
  organization_id text NOT NULL REFERENCES organizations (id),
  operation text NOT NULL,
  request_key text NOT NULL,
  issuer_id text NOT NULL,
  -- Our own id the request made for it (the user whose account holder it is), if any.
  local_id text,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (organization_id, operation, request_key)
);

-- A participant's postal address (never an SSN: that passes through to Highnote and is not kept).
ALTER TABLE users ADD COLUMN address jsonb;

-- A program's spend controls, as the API declares them; the cards carry their translation.
ALTER TABLE programs ADD COLUMN spend_controls jsonb NOT NULL DEFAULT '{}';

CREATE TABLE applications (
  organization_id text NOT NULL,
  id text NOT NULL,
  user_id text NOT NULL,
  card_product_id text NOT NULL,
  highnote_application_id text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'in_review', 'approved', 'denied', 'closed')),
  consent_accepted_at timestamptz NOT NULL,
  consent_ip_address text,
  highnote_financial_account_id text,
  denial_reason text,
  decided_at timestamptz,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (organization_id, id),
  FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id),
  CONSTRAINT applications_highnote_once UNIQUE (organization_id, highnote_application_id),
  CONSTRAINT applications_decided CHECK ((decided_at IS NULL) = (status IN ('pending', 'in_review'))),
  CONSTRAINT applications_account_when_approved CHECK (highnote_financial_account_id IS NULL OR status IN ('approved', 'closed'))
);
CREATE INDEX applications_list ON applications (organization_id, id DESC);
-- One open application per participant and card product.
CREATE UNIQUE INDEX applications_open_once ON applications (organization_id, user_id, card_product_id)
  WHERE status IN ('pending', 'in_review', 'approved');

CREATE TABLE cards (
  organization_id text NOT NULL,
  id text NOT NULL,
  user_id text NOT NULL,
  application_id text NOT NULL,
  card_product_id text NOT NULL,
  highnote_payment_card_id text NOT NULL,
  highnote_financial_account_id text NOT NULL,
  form_factor text NOT NULL CHECK (form_factor IN ('virtual', 'physical')),
  status text NOT NULL CHECK (status IN ('activation_required', 'active', 'suspended', 'closed')),
  last4 text,
  network text,
  expiration_date text,
  physical_order_id text,
  physical_order_status text,
  shipping jsonb,
  -- The Highnote rules attached to the card, and a digest of the controls they translate.
  spend_rules jsonb NOT NULL DEFAULT '[]',
  spend_controls_digest text,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  closed_at timestamptz,
  PRIMARY KEY (organization_id, id),
  FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id),
  FOREIGN KEY (organization_id, application_id) REFERENCES applications (organization_id, id),
  CONSTRAINT cards_highnote_once UNIQUE (organization_id, highnote_payment_card_id),
  CONSTRAINT cards_closed_at CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
  CONSTRAINT cards_physical_order CHECK ((form_factor = 'physical') = (physical_order_id IS NOT NULL))
);
CREATE INDEX cards_list ON cards (organization_id, id DESC);
-- One card per participant per card product (a closed card can be replaced).
CREATE UNIQUE INDEX cards_one_per_product ON cards (organization_id, user_id, card_product_id)
  WHERE status <> 'closed';

-- Funding: the card a disbursement pays, the Highnote transfer it follows, and the idempotency key
-- of that transfer, written before the call so that a retry after a lost answer reuses it. Each
-- retry of a failed funding is a new attempt with a new key.
ALTER TABLE disbursements
  ADD COLUMN card_id text,
  ADD COLUMN attempt integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
  ADD COLUMN transfer_idempotency_key text,
  ADD COLUMN highnote_transfer_id text,
  ADD COLUMN failure_code text,
  ADD COLUMN cancelled_at timestamptz,
  ADD FOREIGN KEY (organization_id, card_id) REFERENCES cards (organization_id, id);
ALTER TABLE disbursements DROP CONSTRAINT disbursements_status_check;
ALTER TABLE disbursements ADD CONSTRAINT disbursements_status_check
  CHECK (status IN ('awaiting_card', 'pending', 'processing', 'settled', 'failed', 'cancelled'));
ALTER TABLE disbursements ADD CONSTRAINT disbursements_settled_at CHECK ((status = 'settled') = (settled_at IS NOT NULL));
ALTER TABLE disbursements ADD CONSTRAINT disbursements_cancelled_at CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL));
ALTER TABLE disbursements ADD CONSTRAINT disbursements_transfer_keyed
  CHECK (status NOT IN ('processing', 'settled') OR (transfer_idempotency_key IS NOT NULL AND card_id IS NOT NULL));
CREATE UNIQUE INDEX disbursements_transfer_key_once ON disbursements (organization_id, transfer_idempotency_key)
  WHERE transfer_idempotency_key IS NOT NULL;
-- A participant's disbursements waiting for a card, found when the card is issued.
CREATE INDEX disbursements_awaiting_card ON disbursements (organization_id, user_id) WHERE status = 'awaiting_card';

-- A user task whose failed funding was cancelled keeps what was completed, and is cancelled.
ALTER TABLE user_tasks DROP CONSTRAINT user_tasks_completed_amount;
ALTER TABLE user_tasks ADD CONSTRAINT user_tasks_completed_amount CHECK (
  (completed_amount_cents IS NOT NULL) = (status IN ('completed', 'funded', 'funding_failed')
    OR (status = 'cancelled' AND completed_at IS NOT NULL))
  AND (completed_amount_cents IS NULL OR (completed_amount_cents > 0 AND completed_amount_cents <= monetary_value_cents)));

-- A cancelled funding returns the money from in_transit to the pool: code disbursement_return.
ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_code_check;
ALTER TABLE ledger_transfers ADD CONSTRAINT ledger_transfers_code_check
  CHECK (code IN ('program_funding', 'reservation', 'program_return', 'settlement', 'disbursement_return'));
CREATE INDEX ledger_transfers_disbursement_returns ON ledger_transfers (organization_id, program_id)
  INCLUDE (amount_cents) WHERE code = 'disbursement_return';

-- The program identity again, with the pool's credits from returned disbursements: those are not
-- funding, so the pool's funded credits are its posted credits less them.
CREATE OR REPLACE FUNCTION ledger_check_program_identity() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  p programs%ROWTYPE;
  pool ledger_accounts%ROWTYPE;
  transit ledger_accounts%ROWTYPE;
  settled ledger_accounts%ROWTYPE;
  returned_cents bigint;
  reversed_cents bigint;
BEGIN
  IF NEW.program_id IS NULL THEN
    RETURN NULL;
  END IF;
  SELECT * INTO p FROM programs WHERE organization_id = NEW.organization_id AND id = NEW.program_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'ledger account % has no program %', NEW.id, NEW.program_id USING ERRCODE = 'check_violation';
  END IF;
  SELECT * INTO pool FROM ledger_accounts WHERE organization_id = p.organization_id AND id = p.pool_account_id;
  SELECT * INTO transit FROM ledger_accounts WHERE organization_id = p.organization_id AND id = p.in_transit_account_id;
  SELECT * INTO settled FROM ledger_accounts WHERE organization_id = p.organization_id AND id = p.disbursed_account_id;
  SELECT coalesce(sum(amount_cents), 0) INTO returned_cents FROM ledger_transfers
    WHERE organization_id = p.organization_id AND program_id = p.id AND code = 'program_return';
  SELECT coalesce(sum(amount_cents), 0) INTO reversed_cents FROM ledger_transfers
    WHERE organization_id = p.organization_id AND program_id = p.id AND code = 'disbursement_return';
  IF p.total_award_pool_cents <> pool.credits_posted_cents - reversed_cents
     OR p.total_award_pool_cents <>
       (pool.credits_posted_cents - pool.debits_posted_cents - pool.debits_pending_cents)
       + pool.debits_pending_cents
       + (transit.credits_posted_cents - transit.debits_posted_cents)
       + (settled.credits_posted_cents - settled.debits_posted_cents)
       + returned_cents
     OR pool.debits_pending_cents <> transit.credits_pending_cents
  THEN
    RAISE EXCEPTION 'program % breaks totalAwardPool = available + reserved + disbursing + disbursed + returned', p.id
      USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_program_identity';
  END IF;
  RETURN NULL;
END
$$;
`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
