import { type Kysely, sql } from 'kysely';

// Frozen once landed: a schema change is a new migration file. No application imports here.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
-- Durable jobs: side effects and background work enqueued in the transaction of the change that
-- asks for them, claimed by workers with FOR UPDATE SKIP LOCKED. The key is the job id alone,
-- not (organization_id, id): some jobs are system-wide (sweeps, retention) and have no tenant.
CREATE TABLE jobs (
  id text PRIMARY KEY CHECK (left(id, 4) = 'job_'),
  organization_id text REFERENCES organizations (id),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  payload jsonb NOT NULL DEFAULT '{}',
  status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'dead')),
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
  run_at timestamptz NOT NULL,
  locked_until timestamptz,
  last_error text CHECK (length(last_error) <= 1000),
  dedupe_key text CHECK (length(dedupe_key) BETWEEN 1 AND 200),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  CONSTRAINT jobs_attempts_within_max CHECK (attempts >= 0 AND attempts <= max_attempts),
  -- A running job holds a lease (its visibility timeout); no other state does.
  CONSTRAINT jobs_lease_while_running CHECK ((status = 'running') = (locked_until IS NOT NULL)),
  CONSTRAINT jobs_finished_at CHECK ((status IN ('succeeded', 'dead')) = (finished_at IS NOT NULL))
);

-- At most one job per dedupe key waits or runs at a time (a recurring sweep is enqueued by every
-- worker's scheduler; the second insert is a no-op). Finished jobs leave the index.
CREATE UNIQUE INDEX jobs_dedupe ON jobs (dedupe_key) WHERE status IN ('queued', 'running');
-- Claiming: due queued jobs, and running jobs whose lease passed (their worker died).
CREATE INDEX jobs_due ON jobs (run_at) WHERE status = 'queued';
CREATE INDEX jobs_lease ON jobs (locked_until) WHERE status = 'running';
-- The operator listing, by status, newest first.
CREATE INDEX jobs_list ON jobs (status, id DESC);
-- Retention: succeeded jobs are deleted in bounded batches once old enough.
CREATE INDEX jobs_succeeded_retention ON jobs (finished_at) WHERE status = 'succeeded';
`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
