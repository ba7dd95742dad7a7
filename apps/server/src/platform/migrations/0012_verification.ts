import { type Kysely, sql } from 'kysely';

// Frozen once landed: a schema change is a new migration file. No application imports here.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
-- A task's verification policy: one attestation, typed evidence, or a second person's approval
-- (optionally only above an amount, in cents).
ALTER TABLE tasks
  ADD COLUMN verification_mode text NOT NULL DEFAULT 'attestation'
    CHECK (verification_mode IN ('attestation', 'evidence', 'dual_approval')),
  ADD COLUMN verification_threshold_cents bigint CHECK (verification_threshold_cents > 0),
  ADD CONSTRAINT tasks_verification_threshold
    CHECK (verification_threshold_cents IS NULL OR verification_mode = 'dual_approval');

-- A user task keeps the policy it was assigned under (the task's, or its own for a one-off
-- milestone), so completion reads it from the row it moves, and the record names the rule that
-- applied. Who approved or last rejected a completion, and when, is kept beside it.
ALTER TABLE user_tasks
  ADD COLUMN verification_mode text NOT NULL DEFAULT 'attestation'
    CHECK (verification_mode IN ('attestation', 'evidence', 'dual_approval')),
  ADD COLUMN verification_threshold_cents bigint CHECK (verification_threshold_cents > 0),
  ADD COLUMN approved_by text CHECK (length(approved_by) BETWEEN 1 AND 200),
  ADD COLUMN approved_at timestamptz,
  ADD COLUMN rejected_by text CHECK (length(rejected_by) BETWEEN 1 AND 200),
  ADD COLUMN rejected_at timestamptz,
  ADD COLUMN rejection_reason text CHECK (length(rejection_reason) BETWEEN 1 AND 1000),
  ADD CONSTRAINT user_tasks_verification_threshold
    CHECK (verification_threshold_cents IS NULL OR verification_mode = 'dual_approval');

-- A completion awaiting approval holds its claim: the amount approval will post, who completed
-- it and when. Leaving pending_approval other than by approval clears the claim.
ALTER TABLE user_tasks DROP CONSTRAINT user_tasks_completed_amount;
ALTER TABLE user_tasks ADD CONSTRAINT user_tasks_completed_amount CHECK (
  (completed_amount_cents IS NOT NULL) = (status IN ('pending_approval', 'completed', 'funded', 'funding_failed')
    OR (status = 'cancelled' AND completed_at IS NOT NULL))
  AND (completed_amount_cents IS NULL OR (completed_amount_cents > 0 AND completed_amount_cents <= monetary_value_cents)));
ALTER TABLE user_tasks ADD CONSTRAINT user_tasks_pending_approval_claimed
  CHECK (status <> 'pending_approval' OR (completed_by IS NOT NULL AND completed_at IS NOT NULL));

-- Approval is a second person's: recorded whole, only on a released milestone, never by the
-- actor who completed it.
ALTER TABLE user_tasks ADD CONSTRAINT user_tasks_approved CHECK (
  (approved_by IS NULL) = (approved_at IS NULL)
  AND (approved_at IS NULL OR (status IN ('completed', 'funded', 'funding_failed', 'cancelled')
    AND completed_by IS NOT NULL AND approved_by <> completed_by)));

-- A dual-approval milestone above its threshold releases money only once approved.
ALTER TABLE user_tasks ADD CONSTRAINT user_tasks_dual_approval CHECK (
  approved_at IS NOT NULL
  OR verification_mode <> 'dual_approval'
  OR status NOT IN ('completed', 'funded', 'funding_failed')
  OR (verification_threshold_cents IS NOT NULL AND completed_amount_cents <= verification_threshold_cents));

-- An evidence milestone releases money only with at least one typed reference.
ALTER TABLE user_tasks ADD CONSTRAINT user_tasks_evidence_referenced CHECK (
  verification_mode <> 'evidence'
  OR status NOT IN ('pending_approval', 'completed', 'funded', 'funding_failed')
  OR CASE WHEN jsonb_typeof(evidence -> 'references') = 'array'
       THEN jsonb_array_length(evidence -> 'references') > 0 ELSE false END);

-- The last rejection: who and when together; a reason only with them.
ALTER TABLE user_tasks ADD CONSTRAINT user_tasks_rejected CHECK (
  (rejected_by IS NULL) = (rejected_at IS NULL) AND (rejection_reason IS NULL OR rejected_at IS NOT NULL));
`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
