import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from '../platform/db.js';
import { ApiError, type Result } from '../platform/errors.js';
import { type IdempotencyClaim, maxIdempotencyKeyLength, type StoredResponse } from '../platform/idempotency.js';
import type { Batcher } from './batcher.js';
import { runUnit, type UnitOutcome } from './runner.js';
import type { UnitContext, UnitOfWork } from './unit.js';

/** OAuth2 clients' ids (credentials/clients.ts); everything else that authenticates is an API key. */
const clientCredentialPrefix = 'cli_';

/**
 * The HTTP adapter over the runner, and the only part of `work/` that knows HTTP: it reads the
 * `Idempotency-Key`, names the actor from the credential the request authenticated with, runs the
 * unit, and turns its outcome into a response (a replay carries `Idempotent-Replayed: true`).
 * The work's value is the response body, as the API presents it.
 */
export async function mutate<T>(
  db: Db,
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  work: (unit: UnitOfWork) => Promise<Result<T>>,
  options: MutateOptions<T> = {},
): Promise<FastifyReply> {
  const base = contextOf(request);
  const context = options.organizationId === undefined ? base : { ...base, organizationId: options.organizationId };
  const idempotency = idempotencyOf(request, base, status, options.redact);
  const outcome = await runUnit(db, context, work, { idempotency });
  return answer(reply, status, outcome);
}

export interface MutateOptions<T> {
  /** The organization the unit acts for, when an operator request names one. */
  organizationId?: string;
  /**
   * The copy of the response kept to answer a replay of the same `Idempotency-Key`, for a body
   * that shows a secret once: the caller gets the secret, the idempotency table never does.
   */
  redact?: (body: T) => unknown;
}

/**
 * The same for the hot path: the unit joins its organization's next batch (see `Batcher`), and
 * `present` turns the work's value into the response body.
 */
export async function mutateInBatch<I, T>(
  batcher: Batcher<I, T>,
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  input: I,
  present: (value: T) => unknown,
): Promise<FastifyReply> {
  const context = contextOf(request);
  const idempotency = idempotencyOf(request, context, status);
  // The body is presented once, whether it is stored with the key, sent, or both.
  let body: { of: T; presented: unknown } | undefined;
  const presentOnce = (value: T) => {
    if (body?.of !== value) body = { of: value, presented: present(value) };
    return body.presented;
  };
  const outcome = await batcher.run(context.organizationId, {
    context,
    input,
    idempotency:
      idempotency === undefined
        ? undefined
        : { claim: idempotency.claim, respond: (value: T) => idempotency.respond(presentOnce(value)) },
  });
  return answer(
    reply,
    status,
    outcome.ok && !outcome.replayed ? { ...outcome, value: presentOnce(outcome.value) } : outcome,
  );
}

/** The request's `Idempotency-Key` as a claim: its scope, the key, and a hash of the request. */
function idempotencyOf<T>(
  request: FastifyRequest,
  context: UnitContext,
  status: number,
  redact?: (body: T) => unknown,
): { claim: IdempotencyClaim; respond(body: T): StoredResponse } | undefined {
  const rawKey = request.headers['idempotency-key'];
  const key = Array.isArray(rawKey) ? rawKey[0] : rawKey;
  if (key === undefined) return undefined;
  if (key.length === 0 || key.length > maxIdempotencyKeyLength) {
    throw new ApiError(
      'validation_error',
      `Idempotency-Key must be 1 to ${maxIdempotencyKeyLength} characters`,
      'Idempotency-Key',
    );
  }
  const scope = context.organizationId === '' ? 'operator' : context.organizationId;
  const requestHash = createHash('sha256')
    .update(`${request.method} ${request.url}\n${JSON.stringify(request.body ?? null, withoutSecrets)}`)
    .digest('hex');
  return {
    claim: { scope, key, requestHash },
    respond: (body) => ({ status, body: redact === undefined ? body : redact(body) }),
  };
}

/**
 * Fields kept out of the stored request hash: an SSN (nine digits), an API key or a client
 * password hashed with the
 * rest of a known body could be found again by trying every value. The same key with another
 * SSN is then a replay, not `idempotency_key_reused`.
 */
const secretFields = new Set(['ssn', 'apiKey', 'clientPassword']);
function withoutSecrets(key: string, value: unknown): unknown {
  return secretFields.has(key) ? undefined : value;
}

/** A unit's outcome as the response: a replay carries `Idempotent-Replayed: true`. */
function answer(reply: FastifyReply, status: number, outcome: UnitOutcome<unknown>): FastifyReply {
  if (!outcome.ok) throw ApiError.of(outcome.failure);
  if (outcome.replayed) {
    reply.header('Idempotent-Replayed', 'true');
    return reply.status(outcome.response.status).send(outcome.response.body);
  }
  return reply.status(status).send(outcome.value);
}

/** The unit's context from an authenticated request. */
export function contextOf(request: FastifyRequest): UnitContext {
  return {
    organizationId: request.organizationId,
    actor:
      request.credentialId === ''
        ? { kind: 'operator' }
        : request.credentialId.startsWith(clientCredentialPrefix)
          ? { kind: 'client', id: request.credentialId }
          : { kind: 'api_key', id: request.credentialId },
    requestId: request.id,
  };
}

/** A domain result as the response body: the value presented, or the failure unchanged. */
export function presented<T>(result: Result<T>, present: (value: T) => unknown): Result<unknown> {
  return result.ok ? { ok: true, value: present(result.value) } : result;
}
