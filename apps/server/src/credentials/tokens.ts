import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../platform/db.js';
import type { CredentialScope, Principal } from '../platform/http.js';

/**
 * OAuth2 access tokens: JWTs signed with HMAC-SHA256 (HS256) under a key derived with HKDF from
 * the process's encryption key (`TRANCHE_ENCRYPTION_KEY`). Every process of an installation shares
 * that key, so any process verifies any token in-process, with one HMAC and no database read; no
 * signing key is stored anywhere, and rotating the encryption key ends every access token (they
 * live an hour; clients fetch a new one). Only this service issues and verifies these tokens, so
 * a symmetric key gives up nothing an asymmetric one would offer here, and costs a few
 * microseconds instead of an RSA verification.
 *
 * Only one header is ever accepted, byte for byte: a token naming another algorithm (`none`, RS256
 * with our key as an HMAC secret) is refused before any signature check.
 *
 * A token names its organization, OAuth2 client and scope, and its token family (the
 * client_credentials grant it descends from, see migration 0011). Revocation of the client or the
 * family is checked through a cache that trusts what it read for `revocationCacheTtlMs`.
 */

/** How long an access token lives, in seconds (Stretch: one hour). */
export const accessTokenLifetimeSeconds = 3_600;
/** How long a refresh token lives, in milliseconds (Stretch: 48 hours). */
export const refreshTokenLifetimeMs = 48 * 60 * 60 * 1000;
/**
 * How long this process trusts that a client and token family were not revoked, in milliseconds:
 * a revocation in another process stops its access tokens within this time (at once here).
 */
export const revocationCacheTtlMs = 10_000;
export const revocationCacheMaxEntries = 10_000;
/** Access tokens whose signature this process checked, kept until they expire. */
export const verifiedTokenCacheMaxEntries = 10_000;
/** Longest bearer token looked at as a JWT; ours are about 400 characters. */
const maxAccessTokenLength = 2_048;

const issuer = 'tranche';
const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'hkdf-v1' })).toString('base64url');

export interface AccessTokenClaims {
  /** The OAuth2 client id. */
  sub: string;
  org: string;
  scope: CredentialScope;
  /** The token family. */
  fam: string;
  iat: number;
  exp: number;
  jti: string;
  iss: string;
}

/** The HS256 key of access tokens, derived from the encryption key (HKDF-SHA256, 32 bytes). */
export function accessTokenSigningKey(encryptionKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', encryptionKey, 'tranche', 'oauth2 access token signing key v1', 32));
}

function signatureOf(key: Buffer, signingInput: string): Buffer {
  return createHmac('sha256', key).update(signingInput).digest();
}

/** Signs an access token; `now` in milliseconds (tests mint expired tokens with a past one). */
export function signAccessToken(
  key: Buffer,
  principal: Principal & { familyId: string },
  now: number = Date.now(),
): { token: string; expiresIn: number } {
  const issuedAt = Math.floor(now / 1000);
  const claims: AccessTokenClaims = {
    iss: issuer,
    sub: principal.credentialId,
    org: principal.organizationId,
    scope: principal.scope,
    fam: principal.familyId,
    iat: issuedAt,
    exp: issuedAt + accessTokenLifetimeSeconds,
    jti: randomBytes(12).toString('base64url'),
  };
  const signingInput = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return {
    token: `${signingInput}.${signatureOf(key, signingInput).toString('base64url')}`,
    expiresIn: accessTokenLifetimeSeconds,
  };
}

/** The claims of a well-signed, unexpired token of ours; undefined otherwise. */
export function readAccessToken(key: Buffer, token: string, now: number = Date.now()): AccessTokenClaims | undefined {
  if (token.length > maxAccessTokenLength) return undefined;
  const [head, payload, signature, extra] = token.split('.');
  if (head !== header || payload === undefined || signature === undefined || extra !== undefined) return undefined;
  const given = Buffer.from(signature, 'base64url');
  const expected = signatureOf(key, `${head}.${payload}`);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  let claims: Partial<AccessTokenClaims>;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Partial<AccessTokenClaims>;
  } catch {
    return undefined;
  }
  const valid =
    claims.iss === issuer &&
    typeof claims.sub === 'string' &&
    typeof claims.org === 'string' &&
    typeof claims.fam === 'string' &&
    (claims.scope === 'read' || claims.scope === 'write') &&
    typeof claims.exp === 'number' &&
    claims.exp * 1000 > now;
  return valid ? (claims as AccessTokenClaims) : undefined;
}

/**
 * Verifies bearer access tokens for `installAuth`: the signature and expiry in-process, then
 * whether the client or the family was revoked, from a short-lived cache of the database's answer.
 */
export class AccessTokenVerifier {
  readonly #revoked = new Map<string, { revoked: boolean; credentialId: string; expiresAt: number }>();
  readonly #verified = new Map<string, AccessTokenClaims>();

  constructor(
    readonly db: Db,
    readonly key: Buffer,
  ) {}

  verify = async (token: string): Promise<Principal | undefined> => {
    const now = Date.now();
    // A client sends one token for up to an hour: after its first check, its claims come from a
    // map keyed by the whole token (a lookup, where the HMAC costs a few hashes).
    let claims = this.#verified.get(token);
    if (claims === undefined || claims.exp * 1000 <= now) {
      claims = readAccessToken(this.key, token, now);
      if (claims === undefined) return undefined;
      if (this.#verified.size >= verifiedTokenCacheMaxEntries) this.#verified.clear();
      this.#verified.set(token, claims);
    }
    let state = this.#revoked.get(claims.fam);
    if (state === undefined || state.expiresAt <= now) {
      const row = await this.db
        .withTables<CredentialTables>()
        .selectFrom('oauth_token_families as family')
        .innerJoin('client_credentials as client', (join) =>
          join
            .onRef('client.organization_id', '=', 'family.organization_id')
            .onRef('client.id', '=', 'family.credential_id'),
        )
        .select(['family.revoked_at as family_revoked_at', 'client.revoked_at as client_revoked_at'])
        .where('family.organization_id', '=', claims.org)
        .where('family.id', '=', claims.fam)
        .where('family.credential_id', '=', claims.sub)
        .executeTakeFirst();
      state = {
        revoked: row === undefined || row.family_revoked_at !== null || row.client_revoked_at !== null,
        credentialId: claims.sub,
        expiresAt: now + revocationCacheTtlMs,
      };
      if (this.#revoked.size >= revocationCacheMaxEntries) this.#revoked.clear();
      this.#revoked.set(claims.fam, state);
    }
    if (state.revoked) return undefined;
    return { organizationId: claims.org, credentialId: claims.sub, scope: claims.scope };
  };

  /** Forgets what this process knew of a client's families, after it was revoked here. */
  forgetCredential(credentialId: string): void {
    for (const [family, state] of this.#revoked) if (state.credentialId === credentialId) this.#revoked.delete(family);
  }

  forgetFamily(familyId: string): void {
    this.#revoked.delete(familyId);
  }
}

/** The tables of this module (migration 0011), beside the app's schema. */
export type CredentialTables = {
  /** The columns migration 0011 added to `api_keys`. */
  api_keys: {
    scope: CredentialScope;
    name: string | null;
    secret_last4: string | null;
  };
  client_credentials: {
    organization_id: string;
    id: string;
    scope: CredentialScope;
    secret_hash: string;
    encoded_secret_hash: string;
    secret_last4: string;
    encoded_public_key: string;
    created_at: Date;
    revoked_at: Date | null;
  };
  oauth_token_families: {
    organization_id: string;
    id: string;
    credential_id: string;
    created_at: Date;
    revoked_at: Date | null;
  };
  oauth_refresh_tokens: {
    organization_id: string;
    id: string;
    family_id: string;
    token_hash: string;
    created_at: Date;
    expires_at: Date;
    exchanged_at: Date | null;
  };
};

export function credentialTablesOf(db: Db) {
  return db.withTables<CredentialTables>();
}
