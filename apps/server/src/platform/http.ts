import { createHash, timingSafeEqual } from 'node:crypto';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Db, databaseUnavailableReason } from './db.js';
import {
  ApiError,
  type ErrorCode,
  errorStatuses,
  InvariantViolation,
  serviceUnavailableRetryAfterSeconds,
} from './errors.js';
import { dateFormats, idCharacters } from './input.js';
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
/**
 * How long a verified API key is trusted without asking the database again, in milliseconds: a key
 * revoked in another process is refused within this time (at once in the process that revoked it).
 */
export const apiKeyCacheTtlMs = 10_000;
export const apiKeyCacheMaxEntries = 10_000;

/** What a credential may do: `read` calls GET and HEAD routes only; `write` calls every route. */
export const credentialScopes = ['read', 'write'] as const;
export type CredentialScope = (typeof credentialScopes)[number];

/** Who a request authenticated as: the organization, the credential (key or OAuth2 client), its scope. */
export interface Principal {
  organizationId: string;
  credentialId: string;
  scope: CredentialScope;
}

/**
 * Checks a bearer token shaped like a JWT (an OAuth2 access token): its principal, or undefined
 * when it is not valid (bad signature, expired, revoked). Must be cheap: it runs on every request
 * that carries one.
 */
export type AccessTokenVerifier = (token: string) => Principal | undefined | Promise<Principal | undefined>;

/** Per-credential request budget: 0 when the request may go ahead, else seconds until it may. */
export interface RateLimiter {
  take(key: string): number;
}

/** The authentication hook's collaborators that are registered after it (see `credentials/`). */
export interface Authentication {
  useAccessTokens(verifier: AccessTokenVerifier): void;
  useRateLimiter(limiter: RateLimiter): void;
  /** Charges one request to `key`; throws `rate_limited` (with `Retry-After`) when over budget. */
  charge(reply: FastifyReply, key: string): void;
  /** Drops a revoked credential from this process's cache, so it is refused at once here. */
  forgetCredential(credentialId: string): void;
}

declare module 'fastify' {
  interface FastifyRequest {
    organizationId: string;
    /** The API key or OAuth2 client the request authenticated with; empty for the operator token and public routes. */
    credentialId: string;
    /** The credential's scope; empty for the operator token and public routes. */
    credentialScope: CredentialScope | '';
  }
  interface FastifyContextConfig {
    /**
     * Who may call the route: an organization's credential (API key or OAuth2 access token), the
     * operator token, either of them, an OAuth2 client with HTTP Basic (checked by the route
     * itself), or anyone.
     */
    auth?: 'organization' | 'operator' | 'organization_or_operator' | 'client' | 'public';
    /** The scope an organization credential needs; by default `read` for GET and HEAD, else `write`. */
    scope?: CredentialScope;
  }
  interface FastifyInstance {
    authentication: Authentication;
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
  // Dates PostgreSQL cannot hold (year 0000) or reads differently from JavaScript are a 400, not a 500.
  for (const ajv of [strict, coercing]) {
    for (const [name, format] of Object.entries(dateFormats)) ajv.addFormat(name, format);
  }
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
  // A 503 says when to come back, so that clients (the SDK included) wait instead of hammering.
  if (code === 'service_unavailable') reply.header('Retry-After', String(serviceUnavailableRetryAfterSeconds));
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
    // The database is down or restarting: every request fails the same way while it lasts, so one
    // warn line each, without a stack, and a 503 the client retries. A write that lost its
    // connection during COMMIT may have committed; its Idempotency-Key makes the retry safe.
    const unavailable = databaseUnavailableReason(error);
    if (unavailable !== undefined) {
      request.log.warn({ reason: unavailable }, 'database unavailable');
      return sendError(
        reply,
        'service_unavailable',
        'The database is unavailable; retry after Retry-After seconds with the same Idempotency-Key',
      );
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

/** A JWT (three base64url parts, the first a JSON header) and not an API key (`sk_…`, no dots). */
function looksLikeJwt(token: string): boolean {
  return token.startsWith('eyJ') && token.split('.').length === 3;
}

/** The scope a route needs from an organization credential. */
function requiredScope(request: FastifyRequest): CredentialScope {
  const declared = request.routeOptions.config.scope;
  if (declared !== undefined) return declared;
  return request.method === 'GET' || request.method === 'HEAD' ? 'read' : 'write';
}

/**
 * Authenticates every route by its `config.auth`, then charges the credential's rate limit, then
 * checks its scope. An organization credential names the tenant. API keys are looked up by hash
 * and trusted for `apiKeyCacheTtlMs`; access tokens go to the verifier `credentials/` registers.
 */
export function installAuth(app: App, deps: { db: Db; adminToken: string | undefined }): void {
  const cache = new Map<string, Principal & { expiresAt: number }>();
  let verifyAccessToken: AccessTokenVerifier | undefined;
  let limiter: RateLimiter | undefined;
  const authentication: Authentication = {
    useAccessTokens(verifier) {
      verifyAccessToken = verifier;
    },
    useRateLimiter(rateLimiter) {
      limiter = rateLimiter;
    },
    charge(reply, key) {
      if (limiter === undefined) return;
      const retryAfterSeconds = limiter.take(key);
      if (retryAfterSeconds === 0) return;
      reply.header('Retry-After', String(retryAfterSeconds));
      throw new ApiError('rate_limited', `Too many requests for this credential; retry after ${retryAfterSeconds} s`);
    },
    forgetCredential(credentialId) {
      for (const [hash, entry] of cache) if (entry.credentialId === credentialId) cache.delete(hash);
    },
  };
  app.decorate('authentication', authentication);
  app.decorateRequest('organizationId', '');
  app.decorateRequest('credentialId', '');
  app.decorateRequest('credentialScope', '');

  async function principalOf(token: string): Promise<Principal | undefined> {
    if (looksLikeJwt(token)) return verifyAccessToken === undefined ? undefined : await verifyAccessToken(token);
    const hash = hashSecret(token);
    const cached = cache.get(hash);
    if (cached !== undefined && cached.expiresAt > Date.now()) return cached;
    const row = await deps.db
      .withTables<{ api_keys: { scope: CredentialScope } }>()
      .selectFrom('api_keys')
      .select(['organization_id', 'id', 'scope'])
      .where('secret_hash', '=', hash)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    const principal = { organizationId: row.organization_id, credentialId: row.id, scope: row.scope };
    if (cache.size >= apiKeyCacheMaxEntries) cache.clear();
    cache.set(hash, { ...principal, expiresAt: Date.now() + apiKeyCacheTtlMs });
    return principal;
  }

  app.addHook('onRequest', async (request, reply) => {
    const auth = request.routeOptions.config.auth ?? 'public';
    if (auth === 'public' || auth === 'client') return;
    const token = bearerOf(request);
    if (token === undefined) {
      throw new ApiError('unauthorized', 'Send your API key or access token as "Authorization: Bearer <credential>"');
    }
    if (auth === 'operator' || auth === 'organization_or_operator') {
      const isOperator = deps.adminToken !== undefined && sameSecret(token, deps.adminToken);
      if (isOperator) return;
      if (auth === 'operator') throw new ApiError('unauthorized', 'This route takes the operator token');
    }
    const principal = await principalOf(token);
    if (principal === undefined) throw new ApiError('unauthorized', 'The API key or access token is not valid');
    request.organizationId = principal.organizationId;
    request.credentialId = principal.credentialId;
    request.credentialScope = principal.scope;
    authentication.charge(reply, principal.credentialId);
    if (principal.scope === 'read' && requiredScope(request) === 'write') {
      throw new ApiError('forbidden', 'This credential has the read scope; this route needs a write credential');
    }
  });
}

/** Cursors are opaque to callers: the last id of a page, encoded. */
export function encodeCursor(lastId: string): string {
  return Buffer.from(JSON.stringify({ after: lastId })).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown };
    // Only characters of our own ids: a forged cursor carrying NUL or other text never reaches SQL.
    const after = parsed.after;
    if (typeof after === 'string' && after.length > 0 && after.length <= 64 && idCharacters.test(after)) return after;
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
