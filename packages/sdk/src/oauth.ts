/**
 * OAuth2 client credentials for the Tranche API (Stretch-compatible): make a client with an API
 * key, then let an `OAuthTokenProvider` hold a fresh access token for it. No runtime dependencies;
 * global `fetch`, Node 20 or later.
 *
 * The token endpoint is `POST /v1/oauth2/token?grant_type=client_credentials|refresh_token` with
 * HTTP Basic `clientId:clientSecret`; a refresh sends the refresh token in the `refresh-token`
 * header. Access tokens live an hour, refresh tokens 48 hours, and a refresh token exchanges once:
 * the provider always keeps the newest one, and when a refresh fails it starts over with the
 * client credentials.
 */

/** Refresh an access token this long before it expires, so a request never carries a stale one. */
export const defaultRefreshMarginMs = 60_000;
/** How long one token request may take, in milliseconds. */
export const defaultTokenTimeoutMs = 30_000;
/** How long a refresh token lives (the server's limit), in milliseconds. */
export const refreshTokenLifetimeMs = 48 * 60 * 60 * 1000;

/** The scope of a credential: `read` for GET requests only, `write` for every request. */
export type CredentialScope = 'read' | 'write';

/** A new OAuth2 client, as `POST /v1/client-credentials` answers: the secrets are shown this once. */
export interface ClientCredentialWithSecret {
  id: string;
  object: 'client_credential';
  clientId: string;
  scope: CredentialScope;
  /** The password of HTTP Basic at the token endpoint. */
  clientSecret: string;
  /** The client secret encrypted (RSA-OAEP, SHA-256) under `encodedPublicKey`, base64; also accepted as the password. */
  encodedClientSecret: string;
  /** The RSA private key: base64 DER of a PKCS#8 encrypted under `clientPassword`. */
  encodedPrivateKey: string;
  /** The RSA public key: base64 DER SubjectPublicKeyInfo. */
  encodedPublicKey: string;
  last4: string;
  /** Milliseconds since the epoch. */
  creationTimestamp: number;
  createdAt: string;
  revokedAt: string | null;
}

/** What the token endpoint answers. */
export interface TokenResponse {
  accessToken: string;
  refreshToken: string;
  /** Seconds the access token lives. */
  expiresIn: number;
  scope: CredentialScope;
  tokenType: 'bearer';
}

/** A failed OAuth2 call: the API's error code and message, the HTTP status, the request id. */
export class OAuthError extends Error {
  override readonly name = 'OAuthError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | undefined,
  ) {
    super(message);
  }
}

type Fetch = typeof fetch;

async function send<T>(
  fetchImpl: Fetch,
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
  timeoutMs: number,
): Promise<T> {
  let response: Response;
  try {
    response = await fetchImpl(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw new OAuthError(0, 'network_error', `Could not reach ${url}: ${(error as Error).message}`, undefined);
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const error = (body as { error?: { code?: string; message?: string; requestId?: string } } | undefined)?.error;
    throw new OAuthError(
      response.status,
      error?.code ?? 'unexpected_response',
      error?.message ?? `HTTP ${response.status}`,
      error?.requestId ?? response.headers.get('x-request-id') ?? undefined,
    );
  }
  if (body === undefined)
    throw new OAuthError(response.status, 'unexpected_response', 'The body is not JSON', undefined);
  return body as T;
}

function trimmed(baseUrl: string): string {
  return baseUrl.replace(/\/+$/, '');
}

/**
 * Creates an OAuth2 client with an organization's write API key (or the operator token and an
 * `organizationId`). Keep `clientSecret` (and, if you use them, the encoded private key and
 * secret): they are not shown again.
 *
 * @example
 * ```ts
 * import { createClientCredential } from '@tranche/sdk';
 * const client = await createClientCredential({
 *   baseUrl: 'http://127.0.0.1:3000',
 *   apiKey: 'sk_test',
 *   clientPassword: 'correct horse battery staple',
 * });
 * console.log(client.clientId);
 * ```
 */
export async function createClientCredential(options: {
  baseUrl: string;
  apiKey: string;
  clientPassword: string;
  scope?: CredentialScope;
  organizationId?: string;
  /** Sent as `Idempotency-Key`; a replay answers without the secrets. A random one by default. */
  idempotencyKey?: string;
  fetch?: Fetch;
  timeoutMs?: number;
}): Promise<ClientCredentialWithSecret> {
  const { baseUrl, apiKey, idempotencyKey, fetch: fetchImpl = fetch, timeoutMs = defaultTokenTimeoutMs } = options;
  const body = {
    clientPassword: options.clientPassword,
    ...(options.scope === undefined ? {} : { scope: options.scope }),
    ...(options.organizationId === undefined ? {} : { organizationId: options.organizationId }),
  };
  return send<ClientCredentialWithSecret>(
    fetchImpl,
    `${trimmed(baseUrl)}/v1/client-credentials`,
    {
      method: 'POST',
      headers: {
        authorization: `Bearer ${apiKey}`,
        'content-type': 'application/json',
        'idempotency-key': idempotencyKey ?? crypto.randomUUID(),
      },
      body: JSON.stringify(body),
    },
    timeoutMs,
  );
}

/**
 * One call to the token endpoint. `refreshToken` selects the refresh grant; without it, the client
 * credentials grant.
 *
 * @example
 * ```ts
 * import { requestToken } from '@tranche/sdk';
 * const tokens = await requestToken({ baseUrl: 'http://127.0.0.1:3000', clientId: 'cli_…', clientSecret: 'cs_…' });
 * console.log(tokens.expiresIn); // 3600
 * ```
 */
export async function requestToken(options: {
  baseUrl: string;
  clientId: string;
  clientSecret: string;
  refreshToken?: string;
  fetch?: Fetch;
  timeoutMs?: number;
}): Promise<TokenResponse> {
  const { baseUrl, clientId, clientSecret, refreshToken, fetch: fetchImpl = fetch } = options;
  const grantType = refreshToken === undefined ? 'client_credentials' : 'refresh_token';
  const basic = Buffer.from(`${clientId}:${clientSecret}`, 'utf8').toString('base64');
  return send<TokenResponse>(
    fetchImpl,
    `${trimmed(baseUrl)}/v1/oauth2/token?grant_type=${grantType}`,
    {
      method: 'POST',
      headers: {
        authorization: `Basic ${basic}`,
        ...(refreshToken === undefined ? {} : { 'refresh-token': refreshToken }),
      },
    },
    options.timeoutMs ?? defaultTokenTimeoutMs,
  );
}

/**
 * Holds a valid access token for one OAuth2 client: fetched on first use, kept until
 * `refreshMarginMs` before it expires, then refreshed with the refresh token (which rotates), or,
 * when that fails or the refresh token is too old, fetched again with the client credentials.
 * Concurrent callers share one token request.
 *
 * @example
 * ```ts
 * import { OAuthTokenProvider } from '@tranche/sdk';
 * const tokens = new OAuthTokenProvider({ baseUrl: 'http://127.0.0.1:3000', clientId: 'cli_…', clientSecret: 'cs_…' });
 * const response = await fetch('http://127.0.0.1:3000/v1/programs', {
 *   headers: { authorization: `Bearer ${await tokens.getAccessToken()}` },
 * });
 * ```
 */
export class OAuthTokenProvider {
  readonly #options: {
    baseUrl: string;
    clientId: string;
    clientSecret: string;
    fetch: Fetch;
    timeoutMs: number;
  };
  readonly #refreshMarginMs: number;
  readonly #now: () => number;
  #current: { accessToken: string; expiresAt: number; refreshToken: string; refreshExpiresAt: number } | undefined;
  #pending: Promise<string> | undefined;

  constructor(options: {
    baseUrl: string;
    clientId: string;
    clientSecret: string;
    refreshMarginMs?: number;
    fetch?: Fetch;
    timeoutMs?: number;
    /** The clock, in milliseconds since the epoch; tests move it. */
    now?: () => number;
  }) {
    if (typeof options.clientId !== 'string' || options.clientId === '') throw new TypeError('clientId is required');
    if (typeof options.clientSecret !== 'string' || options.clientSecret === '') {
      throw new TypeError('clientSecret is required');
    }
    this.#options = {
      baseUrl: options.baseUrl,
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      fetch: options.fetch ?? fetch,
      timeoutMs: options.timeoutMs ?? defaultTokenTimeoutMs,
    };
    this.#refreshMarginMs = options.refreshMarginMs ?? defaultRefreshMarginMs;
    this.#now = options.now ?? Date.now;
  }

  /** A valid access token, for `Authorization: Bearer <token>`. */
  async getAccessToken(): Promise<string> {
    const current = this.#current;
    if (current !== undefined && this.#now() < current.expiresAt - this.#refreshMarginMs) return current.accessToken;
    this.#pending ??= this.#renew().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  /**
   * Forgets the access token (after a 401: the client was revoked or the token's family ended), so
   * the next `getAccessToken` asks the server again.
   */
  invalidate(): void {
    if (this.#current !== undefined) this.#current = { ...this.#current, expiresAt: 0 };
  }

  async #renew(): Promise<string> {
    const current = this.#current;
    let tokens: TokenResponse | undefined;
    if (current !== undefined && this.#now() < current.refreshExpiresAt - this.#refreshMarginMs) {
      try {
        tokens = await requestToken({ ...this.#options, refreshToken: current.refreshToken });
      } catch (error) {
        // A spent, expired or revoked refresh token: start over with the client credentials. A
        // wrong or revoked client fails there too, with its own error.
        if (!(error instanceof OAuthError) || error.status !== 401) throw error;
      }
    }
    tokens ??= await requestToken(this.#options);
    const now = this.#now();
    this.#current = {
      accessToken: tokens.accessToken,
      expiresAt: now + tokens.expiresIn * 1000,
      refreshToken: tokens.refreshToken,
      refreshExpiresAt: now + refreshTokenLifetimeMs,
    };
    return tokens.accessToken;
  }
}
