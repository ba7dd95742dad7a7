import type { Config } from '../config.js';
import type { Db } from '../platform/db.js';
import type { App } from '../platform/http.js';
import { operationIds, tagDescriptions } from '../platform/openapi.js';
import { apiKeyRoutes } from './api-key-routes.js';
import { clientCredentialRoutes } from './client-credential-routes.js';
import { TokenBuckets } from './rate-limit.js';
import { tokenRoutes } from './token-routes.js';
import { AccessTokenVerifier, accessTokenSigningKey } from './tokens.js';

/**
 * Credentials: API keys (`/v1/api-keys`), OAuth2 clients and tokens (`/v1/client-credentials`,
 * `/v1/oauth2/token`), and what `installAuth` needs from them: the access-token verifier and the
 * per-credential rate limit.
 *
 * `limits` are read from the configuration `tranche serve` parses (config.ts); an app built
 * without them (tests, the OpenAPI script) has no rate limit.
 */
export function credentialRoutes(
  app: App,
  deps: {
    db: Db;
    encryptionKey: Buffer | undefined;
    limits: Pick<Config, 'adminToken'> & Partial<Pick<Config, 'rateLimitPerSecond' | 'rateLimitBurst'>>;
  },
): void {
  const { db, encryptionKey, limits } = deps;
  const perSecond = limits.rateLimitPerSecond ?? 0;
  if (perSecond > 0) {
    app.authentication.useRateLimiter(new TokenBuckets(perSecond, limits.rateLimitBurst ?? perSecond));
  }
  const signingKey = encryptionKey === undefined ? undefined : accessTokenSigningKey(encryptionKey);
  const verifier = signingKey === undefined ? undefined : new AccessTokenVerifier(db, signingKey);
  if (verifier !== undefined) app.authentication.useAccessTokens(verifier.verify);

  documentCredentialRoutes();
  apiKeyRoutes(app, { db });
  clientCredentialRoutes(app, { db, signingKey, verifier });
  tokenRoutes(app, { db, signingKey, verifier });
}

/**
 * The operation ids and tag of these routes. They belong in the tables of `platform/openapi.ts`;
 * until they are moved there, they are added here, before the routes register (the startup check
 * reads the tables then). Adding an entry the table already has is a no-op.
 */
export const credentialOperationIds: Readonly<Record<string, string>> = {
  'POST /v1/api-keys': 'createApiKey',
  'GET /v1/api-keys': 'listApiKeys',
  'GET /v1/api-keys/:id': 'retrieveApiKey',
  'DELETE /v1/api-keys/:id': 'revokeApiKey',
  'POST /v1/client-credentials': 'createClientCredential',
  'GET /v1/client-credentials': 'listClientCredentials',
  'GET /v1/client-credentials/:id': 'retrieveClientCredential',
  'DELETE /v1/client-credentials/:id': 'revokeClientCredential',
  'POST /v1/oauth2/token': 'createAccessToken',
};
export const authenticationTagDescription =
  'API keys (`read` or `write` scope, shown once, stored hashed) and Stretch-compatible OAuth2 client credentials: a client id and secret exchanged at `POST /v1/oauth2/token` for signed access tokens (1 hour) and rotating refresh tokens (48 hours).';

function documentCredentialRoutes(): void {
  const ids = operationIds as Record<string, string>;
  for (const [key, id] of Object.entries(credentialOperationIds)) ids[key] ??= id;
  (tagDescriptions as Record<string, string>).authentication ??= authenticationTagDescription;
}
