import { type Kysely, sql } from 'kysely';

// Frozen once landed: a schema change is a new migration file. No application imports here.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
CREATE TABLE organizations (
  id text PRIMARY KEY,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
  organization_id text NOT NULL REFERENCES organizations (id),
  id text NOT NULL,
  secret_hash text NOT NULL UNIQUE,
  secret_prefix text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  PRIMARY KEY (organization_id, id)
);

-- Accounts carry the four cumulative counters of a two-phase ledger. Balance limits are flags
-- held by CHECK constraints, so no code path can overdraw or over-reserve an account.
CREATE TABLE ledger_accounts (
  organization_id text NOT NULL REFERENCES organizations (id),
  id text NOT NULL,
  program_id text,
  kind text NOT NULL CHECK (kind IN ('funding', 'pool', 'in_transit', 'disbursed')),
  debits_pending_cents bigint NOT NULL DEFAULT 0 CHECK (debits_pending_cents >= 0),
  debits_posted_cents bigint NOT NULL DEFAULT 0 CHECK (debits_posted_cents >= 0),
  credits_pending_cents bigint NOT NULL DEFAULT 0 CHECK (credits_pending_cents >= 0),
  credits_posted_cents bigint NOT NULL DEFAULT 0 CHECK (credits_posted_cents >= 0),
  debits_must_not_exceed_credits boolean NOT NULL,
  credits_must_not_exceed_debits boolean NOT NULL,
  frozen boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, id),
  CONSTRAINT ledger_accounts_debits_within_credits CHECK (
    NOT debits_must_not_exceed_credits OR debits_pending_cents + debits_posted_cents <= credits_posted_cents),
  CONSTRAINT ledger_accounts_credits_within_debits CHECK (
    NOT credits_must_not_exceed_debits OR credits_pending_cents + credits_posted_cents <= debits_posted_cents),
  CONSTRAINT ledger_accounts_program_kind CHECK ((kind = 'funding') = (program_id IS NULL))
);
CREATE UNIQUE INDEX ledger_accounts_one_per_kind ON ledger_accounts (organization_id, coalesce(program_id, ''), kind);

CREATE TABLE programs (
  organization_id text NOT NULL REFERENCES organizations (id),
  id text NOT NULL,
  name text NOT NULL,
  description text,
  program_type text,
  card_product_id text,
  total_award_pool_cents bigint NOT NULL CHECK (total_award_pool_cents >= 0),
  max_participants integer NOT NULL CHECK (max_participants > 0),
  participant_count integer NOT NULL DEFAULT 0,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'closed')),
  starts_at timestamptz,
  ends_at timestamptz,
  metadata jsonb NOT NULL DEFAULT '{}',
  pool_account_id text NOT NULL,
  in_transit_account_id text NOT NULL,
  disbursed_account_id text NOT NULL,
  funding_account_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  closed_at timestamptz,
  PRIMARY KEY (organization_id, id),
  CONSTRAINT programs_participant_cap CHECK (participant_count >= 0 AND participant_count <= max_participants),
  CONSTRAINT programs_closed_at CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
  FOREIGN KEY (organization_id, pool_account_id) REFERENCES ledger_accounts (organization_id, id),
  FOREIGN KEY (organization_id, in_transit_account_id) REFERENCES ledger_accounts (organization_id, id),
  FOREIGN KEY (organization_id, disbursed_account_id) REFERENCES ledger_accounts (organization_id, id),
  FOREIGN KEY (organization_id, funding_account_id) REFERENCES ledger_accounts (organization_id, id)
);
CREATE INDEX programs_list ON programs (organization_id, id DESC);

CREATE TABLE users (
  organization_id text NOT NULL REFERENCES organizations (id),
  id text NOT NULL,
  external_id text,
  highnote_account_holder_id text,
  first_name text,
  last_name text,
  email text,
  phone_number text,
  date_of_birth date,
  metadata jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, id)
);
CREATE UNIQUE INDEX users_external_id ON users (organization_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX users_list ON users (organization_id, id DESC);

CREATE TABLE enrollments (
  organization_id text NOT NULL,
  program_id text NOT NULL,
  user_id text NOT NULL,
  status text NOT NULL CHECK (status IN ('active', 'dismissed')),
  enrolled_at timestamptz NOT NULL DEFAULT now(),
  dismissed_at timestamptz,
  PRIMARY KEY (organization_id, program_id, user_id),
  FOREIGN KEY (organization_id, program_id) REFERENCES programs (organization_id, id),
  FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id),
  CONSTRAINT enrollments_dismissed_at CHECK ((status = 'dismissed') = (dismissed_at IS NOT NULL))
);

CREATE TABLE tasks (
  organization_id text NOT NULL,
  id text NOT NULL,
  program_id text NOT NULL,
  name text NOT NULL,
  description text,
  monetary_value_cents bigint NOT NULL CHECK (monetary_value_cents > 0),
  starts_at timestamptz,
  ends_at timestamptz,
  metadata jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, id),
  FOREIGN KEY (organization_id, program_id) REFERENCES programs (organization_id, id),
  CONSTRAINT tasks_window CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at)
);
CREATE INDEX tasks_list ON tasks (organization_id, id DESC);

CREATE TABLE user_tasks (
  organization_id text NOT NULL,
  id text NOT NULL,
  program_id text NOT NULL,
  user_id text NOT NULL,
  task_id text,
  name text,
  status text NOT NULL CHECK (status IN
    ('assigned', 'pending_approval', 'completed', 'funded', 'cancelled', 'expired', 'funding_failed')),
  monetary_value_cents bigint NOT NULL CHECK (monetary_value_cents > 0),
  completed_amount_cents bigint,
  reservation_transfer_id text NOT NULL,
  resolution_transfer_id text,
  completed_by text,
  evidence jsonb,
  cancellation_reason text,
  expires_at timestamptz,
  completed_at timestamptz,
  cancelled_at timestamptz,
  expired_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, id),
  UNIQUE (organization_id, reservation_transfer_id),
  FOREIGN KEY (organization_id, program_id, user_id) REFERENCES enrollments (organization_id, program_id, user_id),
  FOREIGN KEY (organization_id, task_id) REFERENCES tasks (organization_id, id),
  CONSTRAINT user_tasks_completed_amount CHECK (
    (completed_amount_cents IS NOT NULL) = (status IN ('completed', 'funded', 'funding_failed'))
    AND (completed_amount_cents IS NULL OR (completed_amount_cents > 0 AND completed_amount_cents <= monetary_value_cents))),
  CONSTRAINT user_tasks_resolved CHECK ((resolution_transfer_id IS NULL) = (status IN ('assigned', 'pending_approval')))
);
CREATE INDEX user_tasks_list ON user_tasks (organization_id, id DESC);
CREATE INDEX user_tasks_by_program ON user_tasks (organization_id, program_id, status);
CREATE INDEX user_tasks_expiring ON user_tasks (expires_at) WHERE status IN ('assigned', 'pending_approval') AND expires_at IS NOT NULL;
-- A task is assigned to a user at most once while that assignment is open or has paid out.
CREATE UNIQUE INDEX user_tasks_task_once ON user_tasks (organization_id, task_id, user_id)
  WHERE task_id IS NOT NULL AND status NOT IN ('cancelled', 'expired');

-- Transfers are immutable: a reservation is a pending transfer; it is resolved, at most once,
-- by a later post (possibly partial) or void that names it in pending_id.
CREATE TABLE ledger_transfers (
  organization_id text NOT NULL,
  id text NOT NULL,
  debit_account_id text NOT NULL,
  credit_account_id text NOT NULL,
  amount_cents bigint NOT NULL CHECK (amount_cents > 0),
  kind text NOT NULL CHECK (kind IN ('posted', 'pending', 'post_pending', 'void_pending')),
  pending_id text,
  code text NOT NULL CHECK (code IN ('program_funding', 'reservation', 'program_return', 'settlement')),
  program_id text NOT NULL,
  user_task_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, id),
  FOREIGN KEY (organization_id, debit_account_id) REFERENCES ledger_accounts (organization_id, id),
  FOREIGN KEY (organization_id, credit_account_id) REFERENCES ledger_accounts (organization_id, id),
  FOREIGN KEY (organization_id, pending_id) REFERENCES ledger_transfers (organization_id, id),
  FOREIGN KEY (organization_id, program_id) REFERENCES programs (organization_id, id) DEFERRABLE INITIALLY DEFERRED,
  FOREIGN KEY (organization_id, user_task_id) REFERENCES user_tasks (organization_id, id),
  CONSTRAINT ledger_transfers_two_accounts CHECK (debit_account_id <> credit_account_id),
  CONSTRAINT ledger_transfers_resolution CHECK ((kind IN ('post_pending', 'void_pending')) = (pending_id IS NOT NULL))
);
CREATE UNIQUE INDEX ledger_transfers_resolved_once ON ledger_transfers (organization_id, pending_id) WHERE pending_id IS NOT NULL;
CREATE INDEX ledger_transfers_by_program ON ledger_transfers (organization_id, program_id, id DESC);

CREATE FUNCTION ledger_transfers_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger transfers are never updated or deleted' USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER ledger_transfers_immutable BEFORE UPDATE OR DELETE ON ledger_transfers
  FOR EACH ROW EXECUTE FUNCTION ledger_transfers_are_immutable();
CREATE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_transfers_are_immutable();

-- The program identity, checked at commit for every program whose accounts moved:
-- totalAwardPool = available + reserved + disbursing + disbursed + returned.
CREATE FUNCTION ledger_check_program_identity() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  p programs%ROWTYPE;
  pool ledger_accounts%ROWTYPE;
  transit ledger_accounts%ROWTYPE;
  settled ledger_accounts%ROWTYPE;
  returned_cents bigint;
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
  IF p.total_award_pool_cents <> pool.credits_posted_cents
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
CREATE CONSTRAINT TRIGGER ledger_program_identity AFTER INSERT OR UPDATE ON ledger_accounts
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_program_identity();

CREATE TABLE disbursements (
  organization_id text NOT NULL,
  id text NOT NULL,
  user_task_id text NOT NULL,
  program_id text NOT NULL,
  user_id text NOT NULL,
  amount_cents bigint NOT NULL CHECK (amount_cents > 0),
  status text NOT NULL CHECK (status IN ('awaiting_card', 'pending', 'processing', 'settled', 'failed')),
  failure_reason text,
  settled_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, id),
  -- A user task is funded at most once.
  CONSTRAINT disbursements_one_per_user_task UNIQUE (organization_id, user_task_id),
  FOREIGN KEY (organization_id, user_task_id) REFERENCES user_tasks (organization_id, id),
  FOREIGN KEY (organization_id, program_id) REFERENCES programs (organization_id, id)
);
CREATE INDEX disbursements_list ON disbursements (organization_id, id DESC);

CREATE TABLE idempotency_keys (
  scope text NOT NULL,
  key text NOT NULL,
  request_hash text NOT NULL,
  response_status integer,
  response_body jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
