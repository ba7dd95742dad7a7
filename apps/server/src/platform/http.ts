import { createHash, timingSafeEqual } from 'node:crypto';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { applyLedgerStep, type LedgerStep } from '../ledger/ledger.js';
import { type Db, databaseErrorOf } from './db.js';
import { ApiError, type ErrorCode, errorStatuses, InvariantViolation, type Result } from './errors.js';
import { defaultPageSize } from './schemas.js';

export type App = FastifyInstance<
  import('node:http').Server,
  import('node:http').IncomingMessage,
  import('node:http').ServerResponse,
  import('fastify').FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** Largest request body accepted, in bytes. */
export const maxBodyBytes = 64 * 1024;
/** Longest `Idempotency-Key` accepted. */
export const maxIdempotencyKeyLength = 255;
/** How long a stored response answers a replay. */
export const idempotencyKeyLifetimeMs = 24 * 60 * 60 * 1000;
/** Attempts for a transaction that lost a deadlock or serialization race before giving up. */
export const maxTransactionAttempts = 3;
/** How long a verified API key is trusted without asking the database again. */
export const apiKeyCacheTtlMs = 10_000;
export const apiKeyCacheMaxEntries = 10_000;

declare module 'fastify' {
  interface FastifyRequest {
    organizationId: string;
  }
  interface FastifyContextConfig {
    /** Who may call the route: an organization's API key, the operator token, or anyone. */
    auth?: 'organization' | 'operator' | 'public';
  }
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/**
 * Bodies are validated strictly (a string is never coerced into a number, unknown fields are
 * rejected); path and query strings are coerced, since everything there arrives as text.
 */
export function installValidation(app: App): void {
  const strict = addFormats(new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, strict: false }));
  const coercing = addFormats(
    new Ajv({ coerceTypes: true, useDefaults: true, removeAdditional: false, strict: false }),
  );
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? strict.compile(schema) : coercing.compile(schema),
  );
}

function paramOf(error: ErrorObject, context: string | undefined): string | undefined {
  const path = error.instancePath
    .split('/')
    .filter((part) => part.length > 0)
    .join('.');
  const params = error.params as { missingProperty?: string; additionalProperty?: string };
  const leaf = params.missingProperty ?? params.additionalProperty;
  const param = [path, leaf].filter((part) => part !== undefined && part !== '').join('.');
  if (param !== '') return param;
  return context === 'body' ? undefined : context;
}

function describeValidation(error: ErrorObject, param: string | undefined): string {
  const subject = param ?? 'request body';
  switch (error.keyword) {
    case 'required':
      return `${subject} is required`;
    case 'additionalProperties':
      return `${subject} is not a known field`;
    case 'type':
      return `${subject} must be of type ${(error.params as { type: string }).type}`;
    default:
      return `${subject} ${error.message ?? 'is invalid'}`;
  }
}

export function sendError(reply: FastifyReply, code: ErrorCode, message: string, param?: string): FastifyReply {
  return reply.status(errorStatuses[code]).send({
    error: { code, message, ...(param === undefined ? {} : { param }), requestId: reply.request.id },
  });
}

/** The one place errors become responses: the closed code list, and no internals in a 500. */
export function installErrorHandling(app: App): void {
  app.setNotFoundHandler((request, reply) => {
    sendError(reply, 'not_found', `No route ${request.method} ${request.url.split('?')[0]}`);
  });
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof ApiError) {
      return sendError(reply, error.failure.code, error.failure.message, error.failure.param);
    }
    if (error.validation && error.validation.length > 0) {
      const first = error.validation[0] as ErrorObject;
      const param = paramOf(first, error.validationContext);
      return sendError(reply, 'validation_error', describeValidation(first, param), param);
    }
    switch (error.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return sendError(reply, 'payload_too_large', `Request body is larger than ${maxBodyBytes} bytes`);
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendError(reply, 'unsupported_media_type', 'Send the body as application/json');
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return sendError(reply, 'validation_error', 'Body is empty but Content-Type is application/json');
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return sendError(reply, 'validation_error', 'Content-Length does not match the body');
    }
    if (error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      return sendError(reply, 'validation_error', 'Body is not valid JSON');
    }
    if (error.statusCode === 400 && typeof error.message === 'string') {
      return sendError(reply, 'validation_error', error.message);
    }
    const level = error instanceof InvariantViolation ? 'fatal' : 'error';
    request.log[level]({ err: error }, 'request failed');
    return sendError(reply, 'internal_error', 'Something went wrong on our side; the request changed nothing');
  });
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function hashSecret(secret: string): string {
  return sha256(secret);
}

function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  return match?.[1];
}

function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(sha256(a));
  const right = Buffer.from(sha256(b));
  return timingSafeEqual(left, right);
}

/** Authenticates every route by its `config.auth`; an organization key names the tenant. */
export function installAuth(app: App, deps: { db: Db; adminToken: string | undefined }): void {
  const cache = new Map<string, { organizationId: string; expiresAt: number }>();
  app.decorateRequest('organizationId', '');
  app.addHook('onRequest', async (request) => {
    const auth = request.routeOptions.config.auth ?? 'public';
    if (auth === 'public') return;
    const token = bearerOf(request);
    if (token === undefined) {
      throw new ApiError('unauthorized', 'Send your API key as "Authorization: Bearer <key>"');
    }
    if (auth === 'operator') {
      if (deps.adminToken === undefined || !sameSecret(token, deps.adminToken)) {
        throw new ApiError('unauthorized', 'This route takes the operator token');
      }
      return;
    }
    const hash = hashSecret(token);
    const cached = cache.get(hash);
    if (cached !== undefined && cached.expiresAt > Date.now()) {
      request.organizationId = cached.organizationId;
      return;
    }
    const row = await deps.db
      .selectFrom('api_keys')
      .select(['organization_id'])
      .where('secret_hash', '=', hash)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (row === undefined) throw new ApiError('unauthorized', 'The API key is not valid');
    if (cache.size >= apiKeyCacheMaxEntries) cache.clear();
    cache.set(hash, { organizationId: row.organization_id, expiresAt: Date.now() + apiKeyCacheTtlMs });
    request.organizationId = row.organization_id;
  });
}

/** A response body whose request still has its money to move: see `LedgerStep`. */
export class WithLedgerStep {
  constructor(
    readonly body: unknown,
    readonly step: LedgerStep,
  ) {}
}

function isRetryable(error: unknown): boolean {
  const code = databaseErrorOf(error)?.code;
  return code === '40P01' || code === '40001';
}

/** Runs one database transaction, again when it lost a deadlock or serialization race. */
export async function inTransaction<T>(db: Db, work: (tx: Db) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().execute(work);
    } catch (error) {
      if (attempt >= maxTransactionAttempts || !isRetryable(error)) throw error;
    }
  }
}

/**
 * Runs a mutating request in one transaction together with its `Idempotency-Key`: the key is
 * claimed first (a concurrent request with the same key waits on it), the response is stored
 * before commit, and a failure rolls everything back, the claim included, so a failed request
 * leaves nothing behind and may be retried with the same key.
 */
export async function mutate(
  db: Db,
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  work: (tx: Db) => Promise<Result<unknown>>,
): Promise<FastifyReply> {
  const rawKey = request.headers['idempotency-key'];
  const key = Array.isArray(rawKey) ? rawKey[0] : rawKey;
  if (key !== undefined && (key.length === 0 || key.length > maxIdempotencyKeyLength)) {
    throw new ApiError(
      'validation_error',
      `Idempotency-Key must be 1 to ${maxIdempotencyKeyLength} characters`,
      'Idempotency-Key',
    );
  }
  const scope = request.organizationId === '' ? 'operator' : request.organizationId;
  const requestHash = sha256(`${request.method} ${request.url}\n${JSON.stringify(request.body ?? null)}`);

  const outcome = await inTransaction(db, async (tx) => {
    if (key !== undefined) {
      const claimed = await tx
        .insertInto('idempotency_keys')
        .values({
          scope,
          key,
          request_hash: requestHash,
          expires_at: new Date(Date.now() + idempotencyKeyLifetimeMs),
        })
        .onConflict((conflict) =>
          conflict
            .columns(['scope', 'key'])
            .doUpdateSet((eb) => ({
              request_hash: eb.ref('excluded.request_hash'),
              response_status: null,
              response_body: null,
              created_at: new Date(),
              expires_at: eb.ref('excluded.expires_at'),
            }))
            .where('idempotency_keys.expires_at', '<', new Date()),
        )
        .returning('key')
        .executeTakeFirst();
      if (claimed === undefined) {
        const stored = await tx
          .selectFrom('idempotency_keys')
          .select(['request_hash', 'response_status', 'response_body'])
          .where('scope', '=', scope)
          .where('key', '=', key)
          .executeTakeFirstOrThrow();
        if (stored.request_hash !== requestHash) {
          throw new ApiError(
            'idempotency_key_reused',
            'This Idempotency-Key was used with a different request; use a new key for a new request',
            'Idempotency-Key',
          );
        }
        if (stored.response_status === null) {
          throw new ApiError('idempotency_request_in_progress', 'A request with this Idempotency-Key is still running');
        }
        return { status: stored.response_status, body: stored.response_body, replayed: true };
      }
    }
    const result = await work(tx);
    if (!result.ok) throw ApiError.of(result.failure);
    const staged = result.value instanceof WithLedgerStep ? result.value : undefined;
    const body = staged === undefined ? result.value : staged.body;
    if (key !== undefined) {
      await tx
        .updateTable('idempotency_keys')
        .set({ response_status: status, response_body: JSON.stringify(body) })
        .where('scope', '=', scope)
        .where('key', '=', key)
        .execute();
    }
    // Last: the money. A refusal rolls back everything above, the stored response included.
    if (staged !== undefined) {
      const refusal = await applyLedgerStep(tx, staged.step);
      if (refusal !== undefined) throw ApiError.of(refusal);
    }
    return { status, body, replayed: false };
  });
  if (outcome.replayed) reply.header('Idempotent-Replayed', 'true');
  return reply.status(outcome.status).send(outcome.body);
}

/** Cursors are opaque to callers: the last id of a page, encoded. */
export function encodeCursor(lastId: string): string {
  return Buffer.from(JSON.stringify({ after: lastId })).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown };
    if (typeof parsed.after === 'string' && parsed.after.length > 0 && parsed.after.length <= 64) return parsed.after;
  } catch {
    // fall through to the validation error
  }
  throw new ApiError('validation_error', 'cursor is not one this API returned', 'cursor');
}

/** Turns `limit + 1` rows, newest first, into a page. */
export function page<Row extends { id: string }, Item>(
  rows: Row[],
  limit: number | undefined,
  present: (row: Row) => Item,
): { data: Item[]; hasMore: boolean; nextCursor: string | null } {
  const size = limit ?? defaultPageSize;
  const hasMore = rows.length > size;
  const visible = hasMore ? rows.slice(0, size) : rows;
  const last = visible[visible.length - 1];
  return {
    data: visible.map(present),
    hasMore,
    nextCursor: hasMore && last !== undefined ? encodeCursor(last.id) : null,
  };
}

export function pageSize(limit: number | undefined): number {
  return (limit ?? defaultPageSize) + 1;
}
