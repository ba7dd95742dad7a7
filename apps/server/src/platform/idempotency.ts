import { type RawBuilder, sql } from 'kysely';
import type { Db } from './db.js';
import { fail, ok, type Result } from './errors.js';

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

/**
 * Claims the key inside the caller's transaction. A key seen before answers with its stored
 * response (a replay) or a failure; a new key (or one past its lifetime) is claimed, and a
 * concurrent request with the same key waits on this transaction's row lock, then replays.
 * Answers `undefined` when the caller holds the claim and should do the work.
 */
export async function claimIdempotencyKey(
  tx: Db,
  claim: IdempotencyClaim,
  now: Date,
): Promise<Result<StoredResponse | undefined>> {
  const claimed = await tx
    .insertInto('idempotency_keys')
    .values({
      scope: claim.scope,
      key: claim.key,
      request_hash: claim.requestHash,
      created_at: now,
      expires_at: new Date(now.getTime() + idempotencyKeyLifetimeMs),
    })
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
    .returning('key')
    .executeTakeFirst();
  if (claimed !== undefined) return ok(undefined);
  const stored = await tx
    .selectFrom('idempotency_keys')
    .select(['request_hash', 'response_status', 'response_body'])
    .where('scope', '=', claim.scope)
    .where('key', '=', claim.key)
    .executeTakeFirstOrThrow();
  if (stored.request_hash !== claim.requestHash) {
    return fail(
      'idempotency_key_reused',
      'This Idempotency-Key was used with a different request; use a new key for a new request',
      'Idempotency-Key',
    );
  }
  if (stored.response_status === null) {
    return fail('idempotency_request_in_progress', 'A request with this Idempotency-Key is still running');
  }
  return ok({ status: stored.response_status, body: stored.response_body });
}

/**
 * The statement that stores the response of a claimed key, for the runner to send in the same
 * round trip as the unit's events (see `writeEvents`).
 */
export function storeIdempotentResponse(claim: IdempotencyClaim, response: StoredResponse): RawBuilder<unknown> {
  return sql`UPDATE idempotency_keys
    SET response_status = ${response.status}, response_body = ${JSON.stringify(response.body)}::json
    WHERE scope = ${claim.scope} AND key = ${claim.key}`;
}
