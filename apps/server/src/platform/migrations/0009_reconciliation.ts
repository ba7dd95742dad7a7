import { type Kysely, sql } from 'kysely';

// Frozen once landed: a schema change is a new migration file. No application imports here.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
-- A reconciliation run: Tranche's disbursements, spend and ledger compared with Highnote's
-- transfers, transaction events and balances. The row follows the run; what it found is below.
CREATE TABLE reconciliation_runs (
  organization_id text NOT NULL REFERENCES organizations (id),
  id text NOT NULL,
  trigger text NOT NULL CHECK (trigger IN ('manual', 'scheduled')),
  status text NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed')),
  failure_reason text CHECK (length(failure_reason) <= 1000),
  summary jsonb,
  created_at timestamptz NOT NULL,
  started_at timestamptz,
  completed_at timestamptz,
  PRIMARY KEY (organization_id, id),
  CONSTRAINT reconciliation_runs_done CHECK ((status IN ('completed', 'failed')) = (completed_at IS NOT NULL)),
  CONSTRAINT reconciliation_runs_failed CHECK ((status = 'failed') = (failure_reason IS NOT NULL))
);
CREATE INDEX reconciliation_runs_list ON reconciliation_runs (organization_id, id DESC);

-- Every difference a run found, and what it did about it. Never changed.
CREATE TABLE reconciliation_mismatches (
  organization_id text NOT NULL,
  run_id text NOT NULL,
  position integer NOT NULL CHECK (position >= 0),
  kind text NOT NULL CHECK (kind IN ('missing', 'unknown', 'status', 'amount', 'balance', 'ledger')),
  subject jsonb NOT NULL,
  expected text NOT NULL CHECK (length(expected) <= 1000),
  actual text NOT NULL CHECK (length(actual) <= 1000),
  repaired boolean NOT NULL,
  resolution text NOT NULL CHECK (length(resolution) <= 1000),
  PRIMARY KEY (organization_id, run_id, position),
  FOREIGN KEY (organization_id, run_id) REFERENCES reconciliation_runs (organization_id, id)
);

CREATE FUNCTION reconciliation_mismatches_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'reconciliation_mismatches rows are never changed or deleted';
END $$;
CREATE TRIGGER reconciliation_mismatches_append_only BEFORE UPDATE OR DELETE ON reconciliation_mismatches
  FOR EACH ROW EXECUTE FUNCTION reconciliation_mismatches_append_only();
`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
