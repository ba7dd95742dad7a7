import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import { type IdempotencyClaim, maxIdempotencyKeyLength, type StoredResponse } from '../platform/idempotency.js';
import { contextOf } from '../work/mutate.js';
import { runUnit, type Work } from '../work/runner.js';

/**
 * `mutate` for the responses that show a secret once (a new API key, an OAuth2 client): the
 * secret goes to the caller but never into the idempotency table, whose stored copy of the
 * response is `redact(body)`. A replay with the same `Idempotency-Key` therefore answers with the
 * redacted copy (`Idempotent-Replayed: true`): the ids and the secret's last four characters, not
 * the secret. A caller that lost the first response revokes that credential and makes another.
 *
 * It differs from `work/mutate.ts` only in that and in `organizationId`, which lets an operator
 * request act for an organization it names; the key and request hash follow `mutate` (the scope of
 * an operator's keys is `operator`), leaving the fields in `secretFields` out of the hash.
 */
export async function mutateRevealingOnce<T>(
  db: Db,
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  options: { organizationId?: string; redact: (body: T) => unknown },
  work: Work<T>,
): Promise<FastifyReply> {
  const context = {
    ...contextOf(request),
    ...(options.organizationId === undefined ? {} : { organizationId: options.organizationId }),
  };
  const rawKey = request.headers['idempotency-key'];
  const key = Array.isArray(rawKey) ? rawKey[0] : rawKey;
  let idempotency: { claim: IdempotencyClaim; respond(value: T): StoredResponse } | undefined;
  if (key !== undefined) {
    if (key.length === 0 || key.length > maxIdempotencyKeyLength) {
      throw new ApiError(
        'validation_error',
        `Idempotency-Key must be 1 to ${maxIdempotencyKeyLength} characters`,
        'Idempotency-Key',
      );
    }
    const scope = request.organizationId === '' ? 'operator' : request.organizationId;
    const requestHash = createHash('sha256')
      .update(`${request.method} ${request.url}\n${JSON.stringify(request.body ?? null, withoutSecrets)}`)
      .digest('hex');
    idempotency = {
      claim: { scope, key, requestHash },
      respond: (body: T) => ({ status, body: options.redact(body) }),
    };
  }
  const outcome = await runUnit(db, context, work, { idempotency });
  if (!outcome.ok) throw ApiError.of(outcome.failure);
  if (outcome.replayed) {
    reply.header('Idempotent-Replayed', 'true');
    return reply.status(outcome.response.status).send(outcome.response.body);
  }
  return reply.status(status).send(outcome.value);
}

/** Request fields never hashed into the stored request hash (a password could be found again from it). */
const secretFields = new Set(['clientPassword', 'apiKey', 'ssn']);
function withoutSecrets(key: string, value: unknown): unknown {
  return secretFields.has(key) ? undefined : value;
}

/** A secret as a replay shows it: its prefix and last four characters. */
export function redactedSecret(secret: string): string {
  const prefix = /^[a-z]+_/.exec(secret)?.[0] ?? '';
  return `${prefix}…${secret.slice(-4)}`;
}
