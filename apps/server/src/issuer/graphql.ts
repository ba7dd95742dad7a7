/**
 * The transport to Highnote's GraphQL API (or the local sandbox, which speaks the same): one POST
 * per operation with HTTP Basic auth (the API key as the username, no password), a bounded
 * timeout per attempt, and bounded retries with exponential backoff and full jitter. What can go
 * wrong is answered as our own closed union, `IssuerFailure`, never as Highnote's shapes: the rest
 * of Tranche does not know GraphQL.
 *
 * Retrying is the caller's decision, per operation: only a query, or a mutation whose input
 * carries an `idempotencyKey` Highnote deduplicates on, may be sent twice. A mutation without one
 * is sent once; if its answer is lost, the caller finds out what happened by reading (see the
 * adapter).
 */

/** Longest one attempt may take before it counts as timed out, in milliseconds. */
export const issuerRequestTimeoutMs = 10_000;
/** Attempts of a retryable operation, the first included. */
export const issuerMaxAttempts = 4;
/** Backoff before the second attempt, doubled for each one after, in milliseconds. */
export const issuerRetryBaseDelayMs = 200;
/** Longest wait between two attempts, in milliseconds. */
export const issuerRetryMaxDelayMs = 5_000;
/** Longest error text kept from a response, in characters: enough to diagnose, never a whole page. */
const maxErrorTextChars = 500;

export interface IssuerConnection {
  graphqlUrl: string;
  apiKey: string;
  /** Overrides of the limits above, for tests that must not wait seconds. */
  requestTimeoutMs?: number;
  maxAttempts?: number;
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
}

/** One field-level error of a Highnote `UserError`. */
export interface IssuerFieldError {
  code: string | null;
  description: string | null;
  path: string[];
}

/**
 * Why a call to the issuer did not succeed, in our words:
 * - `unavailable`: no answer we can use (connection refused, 5xx, 429), after the retries allowed;
 * - `timeout`: no answer within the timeout, after the retries allowed; the operation may or may
 *   not have happened;
 * - `unauthorized`: the API key was refused (401); retrying does not help;
 * - `rejected`: Highnote refused the input (`UserError`), with its field errors;
 * - `access_denied`: the key may not do this (`AccessDeniedError`);
 * - `unexpected`: an answer we do not understand (top-level GraphQL errors, another error type).
 */
export type IssuerFailure =
  | { kind: 'unavailable' | 'timeout' | 'unauthorized' | 'unexpected'; message: string; attempts: number }
  | { kind: 'rejected'; message: string; errors: IssuerFieldError[]; attempts: number }
  | { kind: 'access_denied'; message: string; attempts: number };

export type IssuerResult<T> = { ok: true; value: T; requestId: string | null } | { ok: false; failure: IssuerFailure };

export interface GraphqlOperation {
  /** The root field the operation selects; its payload is what the call answers. */
  field: string;
  document: string;
  variables: Record<string, unknown>;
  /** Whether sending it twice is safe (a query, or an input with an `idempotencyKey`). */
  retryable: boolean;
  /** The root field is a scalar (`ping`), not a payload object or union. */
  scalar?: boolean;
}

/**
 * Sends one operation and answers the payload of its root field. A payload whose `__typename`
 * is `UserError` or `AccessDeniedError` (or any other `…Error`) is a failure; anything else is
 * the value, as Highnote sent it.
 */
export async function callIssuer<T>(
  connection: IssuerConnection,
  operation: GraphqlOperation,
): Promise<IssuerResult<T>> {
  const maxAttempts = operation.retryable ? (connection.maxAttempts ?? issuerMaxAttempts) : 1;
  let last: IssuerFailure | undefined;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    if (attempt > 1) await sleep(backoffMs(connection, attempt));
    const sent = await sendOnce(connection, operation, attempt);
    if (sent.ok || !isTransient(sent.failure)) return sent as IssuerResult<T>;
    last = sent.failure;
  }
  if (last === undefined) throw new Error('an issuer call makes at least one attempt');
  return { ok: false, failure: last };
}

function isTransient(failure: IssuerFailure): boolean {
  return failure.kind === 'unavailable' || failure.kind === 'timeout';
}

/** Full jitter: a uniform wait between zero and the capped exponential delay. */
function backoffMs(connection: IssuerConnection, attempt: number): number {
  const base = connection.retryBaseDelayMs ?? issuerRetryBaseDelayMs;
  const cap = connection.retryMaxDelayMs ?? issuerRetryMaxDelayMs;
  return Math.random() * Math.min(cap, base * 2 ** (attempt - 2));
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function sendOnce(
  connection: IssuerConnection,
  operation: GraphqlOperation,
  attempts: number,
): Promise<IssuerResult<unknown>> {
  const fail = (kind: 'unavailable' | 'timeout' | 'unauthorized' | 'unexpected', message: string) =>
    ({ ok: false, failure: { kind, message, attempts } }) as const;
  let response: Response;
  try {
    response = await fetch(connection.graphqlUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Basic ${Buffer.from(`${connection.apiKey}:`).toString('base64')}`,
      },
      body: JSON.stringify({ query: operation.document, variables: operation.variables }),
      signal: AbortSignal.timeout(connection.requestTimeoutMs ?? issuerRequestTimeoutMs),
    });
  } catch (error) {
    if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
      return fail('timeout', `${operation.field}: no answer within the timeout`);
    }
    return fail('unavailable', `${operation.field}: ${describe(error)}`);
  }
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    return fail(
      error instanceof Error && error.name === 'TimeoutError' ? 'timeout' : 'unavailable',
      `${operation.field}: the answer was cut off (${describe(error)})`,
    );
  }
  if (response.status === 401) return fail('unauthorized', `${operation.field}: the issuer refused the API key`);
  if (response.status === 429 || response.status >= 500) {
    return fail('unavailable', `${operation.field}: HTTP ${response.status} ${text.slice(0, maxErrorTextChars)}`);
  }
  let body: { data?: Record<string, unknown> | null; errors?: { message?: string }[]; extensions?: unknown };
  try {
    body = JSON.parse(text);
  } catch {
    return fail(
      'unexpected',
      `${operation.field}: HTTP ${response.status}, not JSON: ${text.slice(0, maxErrorTextChars)}`,
    );
  }
  if (response.status !== 200 || (body.errors !== undefined && body.errors.length > 0)) {
    const messages = (body.errors ?? []).map((error) => error.message ?? '?').join('; ');
    return fail('unexpected', `${operation.field}: HTTP ${response.status} ${messages}`.slice(0, maxErrorTextChars));
  }
  const requestId = requestIdOf(body.extensions);
  const payload = body.data?.[operation.field];
  if (operation.scalar === true && payload !== undefined && payload !== null) {
    return { ok: true, value: payload, requestId };
  }
  if (payload === null || typeof payload !== 'object') {
    return fail('unexpected', `${operation.field}: no payload in the answer`);
  }
  const typed = payload as { __typename?: unknown; errors?: unknown; message?: unknown };
  const typename = typeof typed.__typename === 'string' ? typed.__typename : undefined;
  if (typename === 'UserError') {
    const errors = fieldErrorsOf(typed.errors);
    return {
      ok: false,
      failure: {
        kind: 'rejected',
        message: `${operation.field}: ${errors.map((error) => error.description ?? error.code ?? '?').join('; ') || 'rejected'}`,
        errors,
        attempts,
      },
    };
  }
  if (typename === 'AccessDeniedError') {
    const message = typeof typed.message === 'string' ? typed.message : 'access denied';
    return { ok: false, failure: { kind: 'access_denied', message: `${operation.field}: ${message}`, attempts } };
  }
  if (typename === undefined || typename.endsWith('Error')) {
    return fail('unexpected', `${operation.field}: an answer of type ${typename ?? 'unknown'}`);
  }
  return { ok: true, value: typed, requestId };
}

function fieldErrorsOf(raw: unknown): IssuerFieldError[] {
  if (!Array.isArray(raw)) return [];
  return raw.map((entry: { code?: unknown; description?: unknown; errorPath?: unknown; path?: unknown }) => ({
    code: typeof entry?.code === 'string' ? entry.code : null,
    description: typeof entry?.description === 'string' ? entry.description : null,
    path: Array.isArray(entry?.errorPath ?? entry?.path)
      ? ((entry.errorPath ?? entry.path) as unknown[]).map(String)
      : [],
  }));
}

function requestIdOf(extensions: unknown): string | null {
  if (extensions === null || typeof extensions !== 'object') return null;
  const requestId = (extensions as { requestId?: unknown }).requestId;
  return typeof requestId === 'string' ? requestId : null;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}
