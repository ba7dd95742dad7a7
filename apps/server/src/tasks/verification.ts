import type { ColumnType } from 'kysely';
import { Type } from 'typebox';
import { ApiError } from '../platform/errors.js';
import { dollars, optionalCentsOf } from '../platform/present.js';
import { BalanceDollars, Dollars, Nullable, OneOf } from '../platform/schemas.js';

/**
 * A milestone's verification policy: what `complete` needs before money moves.
 * - `attestation`: one `complete` releases the reservation (the default);
 * - `evidence`: `complete` must carry at least one typed reference in `evidence.references`;
 * - `dual_approval`: `complete` leaves the user task `pending_approval`, and a different actor's
 *   approval releases it — only above `amountThresholdCents` when one is set (at or below, the
 *   completion releases at once).
 *
 * A user task keeps the policy it was assigned under (its task's, or its own for a one-off
 * milestone): completion reads it from the row it moves, at no extra cost, and the record names
 * the rule that applied. Changing a task's policy applies to assignments made from then on.
 */
export const verificationModes = ['attestation', 'evidence', 'dual_approval'] as const;
export type VerificationMode = (typeof verificationModes)[number];

export interface Verification {
  mode: VerificationMode;
  amountThresholdCents: bigint | null;
}

export const attestation: Verification = { mode: 'attestation', amountThresholdCents: null };

// The columns migration 0012 adds to `tasks` and `user_tasks`, typed for Kysely here, beside the
// policy they store.
type ModeColumn = ColumnType<VerificationMode, VerificationMode | undefined, VerificationMode>;
type ThresholdColumn = ColumnType<bigint | null, bigint | null | undefined, bigint | null>;
declare module '../platform/schema.js' {
  interface TasksTable {
    verification_mode: ModeColumn;
    verification_threshold_cents: ThresholdColumn;
  }
  interface UserTasksTable {
    verification_mode: ModeColumn;
    verification_threshold_cents: ThresholdColumn;
  }
}

export function verificationOf(row: {
  verification_mode: VerificationMode;
  verification_threshold_cents: bigint | null;
}): Verification {
  return { mode: row.verification_mode, amountThresholdCents: row.verification_threshold_cents };
}

/** The policy as columns, for an insert or an update. */
export function verificationColumns(verification: Verification) {
  return {
    verification_mode: verification.mode,
    verification_threshold_cents: verification.amountThresholdCents,
  };
}

/** Whether completing `amountCents` under this policy waits for a second person's approval. */
export function needsApproval(verification: Verification, amountCents: bigint): boolean {
  return (
    verification.mode === 'dual_approval' &&
    (verification.amountThresholdCents === null || amountCents > verification.amountThresholdCents)
  );
}

const modeDescription =
  '`attestation`: one `complete` releases the money. `evidence`: `complete` must carry typed references in `evidence.references`. `dual_approval`: `complete` leaves the user task `pending_approval` until a different actor approves it.';

/** The policy as a request sends it. */
export const VerificationBody = Type.Object(
  {
    mode: OneOf(verificationModes, { description: modeDescription, examples: ['dual_approval'] }),
    amountThreshold: Type.Optional(
      Dollars(
        'Dual approval only: completions of at most this amount release at once; above it, a second person approves.',
        1000,
      ),
    ),
  },
  {
    additionalProperties: false,
    description: 'How a completion is verified before money moves; `attestation` when not given.',
    examples: [{ mode: 'dual_approval', amountThreshold: 1000 }],
  },
);

/** The policy as the API presents it, on a task and on each user task. */
export const VerificationSchema = Type.Object(
  {
    mode: OneOf(verificationModes, { description: modeDescription, examples: ['dual_approval'] }),
    amountThreshold: Nullable(
      BalanceDollars('Dual approval applies only to completions above this amount; null: to every one.', 1000),
    ),
  },
  {
    description: 'How a completion is verified before money moves.',
    examples: [{ mode: 'dual_approval', amountThreshold: 1000 }],
  },
);

/** A policy from a validated body; `param` names the field in errors (`verification`). */
export function verificationFrom(
  body: { mode: VerificationMode; amountThreshold?: number | undefined },
  param: string,
): Verification {
  const amountThresholdCents = optionalCentsOf(body.amountThreshold, `${param}.amountThreshold`);
  if (amountThresholdCents !== undefined && body.mode !== 'dual_approval') {
    throw new ApiError(
      'validation_error',
      `${param}.amountThreshold applies to mode dual_approval only`,
      `${param}.amountThreshold`,
    );
  }
  return { mode: body.mode, amountThresholdCents: amountThresholdCents ?? null };
}

export function presentVerification(verification: Verification) {
  return {
    mode: verification.mode,
    amountThreshold: verification.amountThresholdCents === null ? null : dollars(verification.amountThresholdCents),
  };
}
