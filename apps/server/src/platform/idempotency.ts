import { type RawBuilder, sql } from 'kysely';
import type { Db } from './db.js';
import { assert, fail, ok, type Result } from './errors.js';

/** Longest `Idempotency-Key` accepted. */
export const maxIdempotencyKeyLength = 255;
/** How long a stored response answers a replay. */
export const idempotencyKeyLifetimeMs = 24 * 60 * 60 * 1000;

/** A request's claim on a key: who scopes it, the key, and a hash of the request it stands for. */
export interface IdempotencyClaim {
  scope: string;
  key: string;
  requestHash: string;
}

export interface StoredResponse {
  status: number;
  body: unknown;
}

/** How a key stood when a request claimed it: the caller holds it, or it answers from before. */
export type ClaimOutcome = Result<StoredResponse | undefined>;

const claimId = (claim: { scope: string; key: string }) => `${claim.scope}\u0000${claim.key}`;

/**
 * Claims keys inside the caller's transaction, in one statement (and reads the ones already taken
 * in a second), answering in the order of `claims`; the keys must be distinct. A key seen before
 * answers with its stored response (a replay) or a failure; a new key (or one past its lifetime)
 * is claimed (`undefined`: the caller holds it and does the work), and a concurrent request with
 * the same key waits on this transaction's row lock, then replays. Rows are claimed in (scope, key) order, so
 * batches of two processes that share keys wait on each other instead of deadlocking.
 */
export async function claimIdempotencyKeys(
  tx: Db,
  claims: readonly IdempotencyClaim[],
  now: Date,
): Promise<ClaimOutcome[]> {
  if (claims.length === 0) return [];
  const expiresAt = new Date(now.getTime() + idempotencyKeyLifetimeMs);
  const ordered = [...claims].sort((a, b) => (claimId(a) < claimId(b) ? -1 : claimId(a) > claimId(b) ? 1 : 0));
  const claimed = await tx
    .insertInto('idempotency_keys')
    .values(
      ordered.map((claim) => ({
        scope: claim.scope,
        key: claim.key,
        request_hash: claim.requestHash,
        created_at: now,
        expires_at: expiresAt,
      })),
    )
    .onConflict((conflict) =>
      conflict
        .columns(['scope', 'key'])
        .doUpdateSet((eb) => ({
          request_hash: eb.ref('excluded.request_hash'),
          response_status: null,
          response_body: null,
          created_at: eb.ref('excluded.created_at'),
          expires_at: eb.ref('excluded.expires_at'),
        }))
        .where('idempotency_keys.expires_at', '<', now),
    )
    .returning(['scope', 'key'])
    .execute();
  const held = new Set(claimed.map(claimId));
  const taken = claims.filter((claim) => !held.has(claimId(claim)));
  const stored = new Map<string, { request_hash: string; response_status: number | null; response_body: unknown }>();
  if (taken.length > 0) {
    const rows = await tx
      .selectFrom('idempotency_keys')
      .select(['scope', 'key', 'request_hash', 'response_status', 'response_body'])
      .where((eb) => eb.or(taken.map((claim) => eb.and([eb('scope', '=', claim.scope), eb('key', '=', claim.key)]))))
      .execute();
    for (const row of rows) stored.set(claimId(row), row);
  }
  return claims.map((claim): ClaimOutcome => {
    if (held.has(claimId(claim))) return ok(undefined);
    const row = stored.get(claimId(claim));
    assert(row !== undefined, `idempotency key ${claim.key} is neither claimed nor stored`);
    if (row.request_hash !== claim.requestHash) {
      return fail(
        'idempotency_key_reused',
        'This Idempotency-Key was used with a different request; use a new key for a new request',
        'Idempotency-Key',
      );
    }
    if (row.response_status === null) {
      return fail('idempotency_request_in_progress', 'A request with this Idempotency-Key is still running');
    }
    return ok({ status: row.response_status, body: row.response_body });
  });
}

/**
 * Gives back keys claimed by requests that then failed without writing anything else, so that a
 * retry with the same key runs again (the rollback of a lone request does the same).
 */
export async function releaseIdempotencyKeys(tx: Db, claims: readonly IdempotencyClaim[]): Promise<void> {
  if (claims.length === 0) return;
  await tx
    .deleteFrom('idempotency_keys')
    .where((eb) => eb.or(claims.map((claim) => eb.and([eb('scope', '=', claim.scope), eb('key', '=', claim.key)]))))
    .execute();
}

/**
 * The statement that stores the responses of claimed keys, for the runner to send in the same
 * round trip as the units' events (see `writeEvents`).
 */
export function storeIdempotentResponses(
  stored: readonly { claim: IdempotencyClaim; response: StoredResponse }[],
): RawBuilder<unknown> | undefined {
  if (stored.length === 0) return undefined;
  const rows = stored.map(
    ({ claim, response }) =>
      sql`(${claim.scope}::text, ${claim.key}::text, ${response.status}::integer, ${JSON.stringify(response.body)}::json)`,
  );
  return sql`UPDATE idempotency_keys AS k
    SET response_status = v.status, response_body = v.body
    FROM (VALUES ${sql.join(rows)}) AS v (scope, key, status, body)
    WHERE k.scope = v.scope AND k.key = v.key`;
}
