/** The closed list of error codes and their statuses; nothing else is ever answered. */
export const errorStatuses = {
  validation_error: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  insufficient_funds: 409,
  participant_cap_reached: 409,
  invalid_state: 409,
  consent_required: 409,
  idempotency_request_in_progress: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  idempotency_key_reused: 422,
  rate_limited: 429,
  issuer_error: 502,
  service_unavailable: 503,
  internal_error: 500,
} as const;

/**
 * The `Retry-After` sent with `service_unavailable`, in seconds: about how long a PostgreSQL
 * restart or failover takes, so a client that waits this long usually finds the database back.
 */
export const serviceUnavailableRetryAfterSeconds = 2;

export type ErrorCode = keyof typeof errorStatuses;

export interface Failure {
  code: ErrorCode;
  message: string;
  /** The request field the error is about, as a dotted path (`monetaryValue`, `metadata.plan`). */
  param?: string;
}

/** A domain outcome: the value, or a failure from the closed list. */
export type Result<T> = { ok: true; value: T } | { ok: false; failure: Failure };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail<T = never>(code: ErrorCode, message: string, param?: string): Result<T> {
  return { ok: false, failure: param === undefined ? { code, message } : { code, message, param } };
}

/** Thrown at the edge to answer with an error envelope; also unwinds a transaction. */
export class ApiError extends Error {
  readonly failure: Failure;
  constructor(code: ErrorCode, message: string, param?: string) {
    super(message);
    this.failure = param === undefined ? { code, message } : { code, message, param };
  }
  static of(failure: Failure): ApiError {
    return new ApiError(failure.code, failure.message, failure.param);
  }
}

export function unwrap<T>(result: Result<T>): T {
  if (!result.ok) throw ApiError.of(result.failure);
  return result.value;
}

/** An invariant broke: a bug, never a user error. The request ends with a 500 and a log line. */
export class InvariantViolation extends Error {
  override name = 'InvariantViolation';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantViolation(message);
}
