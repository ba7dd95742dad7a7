import { constants, generateKeyPair, publicEncrypt, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { monotonicFactory } from 'ulid';
import type { Db } from '../platform/db.js';
import { fail, ok, type Result } from '../platform/errors.js';
import { type CredentialScope, hashSecret } from '../platform/http.js';
import { inTransaction } from '../platform/transaction.js';
import type { UnitOfWork } from '../work/unit.js';
import { credentialTablesOf, refreshTokenLifetimeMs, signAccessToken } from './tokens.js';

/**
 * OAuth2 clients, Stretch-compatible (`POST /v1/client-credentials`), and the grants of the token
 * endpoint. What the Stretch fields are here:
 * - `clientId`: the client's id (`cli_…`); `clientSecret`: `cs_` and 32 random bytes, shown once.
 * - `encodedPublicKey` / `encodedPrivateKey`: an RSA-2048 key pair made for the client; the public
 *   key as base64 DER (SPKI), the private key as base64 DER of an encrypted PKCS#8 (AES-256-CBC,
 *   PBKDF2 from the `clientPassword`). The private key is never stored: only the client can open it.
 * - `encodedClientSecret`: the `clientSecret` encrypted with RSA-OAEP (SHA-256) under the public
 *   key, base64. Decrypting it with the private key gives the `clientSecret` back.
 * - The token endpoint takes `clientId:clientSecret` in HTTP Basic; `clientId:encodedClientSecret`
 *   is accepted too (Stretch's clients send the encoded one). Both are stored as SHA-256 hashes.
 */

export const minClientPasswordLength = 8;
export const maxClientPasswordLength = 256;
const rsaModulusBits = 2048;
const generateRsaKeyPair = promisify(generateKeyPair);

const nextUlid = monotonicFactory();
/** Ids of this module's rows; `platform/ids.ts` has no kind for them yet. */
export function credentialObjectId(prefix: 'cli' | 'tfm' | 'rtk'): string {
  return `${prefix}_${nextUlid().toLowerCase()}`;
}

export interface ClientCredentialRow {
  organization_id: string;
  id: string;
  scope: CredentialScope;
  secret_last4: string;
  encoded_public_key: string;
  created_at: Date;
  revoked_at: Date | null;
}

const columns = [
  'organization_id',
  'id',
  'scope',
  'secret_last4',
  'encoded_public_key',
  'created_at',
  'revoked_at',
] as const;

/** What a new client needs before its transaction: made first, since an RSA key takes a while. */
export interface ClientKeys {
  secret: string;
  encodedSecret: string;
  encodedPublicKey: string;
  encodedPrivateKey: string;
}

export async function newClientKeys(clientPassword: string): Promise<ClientKeys> {
  const { publicKey, privateKey } = await generateRsaKeyPair('rsa', { modulusLength: rsaModulusBits });
  const secret = `cs_${randomBytes(32).toString('base64url')}`;
  const encodedSecret = publicEncrypt(
    { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    Buffer.from(secret),
  ).toString('base64');
  return {
    secret,
    encodedSecret,
    encodedPublicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
    encodedPrivateKey: privateKey
      .export({ type: 'pkcs8', format: 'der', cipher: 'aes-256-cbc', passphrase: clientPassword })
      .toString('base64'),
  };
}

export async function createClientCredential(
  unit: UnitOfWork,
  input: { scope: CredentialScope; keys: ClientKeys },
): Promise<Result<{ row: ClientCredentialRow; keys: ClientKeys }>> {
  const organization = await unit.tx
    .selectFrom('organizations')
    .select('id')
    .where('id', '=', unit.organizationId)
    .executeTakeFirst();
  if (organization === undefined) return fail('not_found', `No organization ${unit.organizationId}`, 'organizationId');
  const row = await credentialTablesOf(unit.tx)
    .insertInto('client_credentials')
    .values({
      organization_id: unit.organizationId,
      id: credentialObjectId('cli'),
      scope: input.scope,
      secret_hash: hashSecret(input.keys.secret),
      encoded_secret_hash: hashSecret(input.keys.encodedSecret),
      secret_last4: input.keys.secret.slice(-4),
      encoded_public_key: input.keys.encodedPublicKey,
      created_at: unit.now,
    })
    .returning(columns)
    .executeTakeFirstOrThrow();
  unit.emit('client_credential.created', presentClientCredential(row));
  return ok({ row, keys: input.keys });
}

export async function listClientCredentials(
  db: Db,
  organizationId: string,
  filter: { afterId: string | undefined; limit: number },
): Promise<ClientCredentialRow[]> {
  let query = credentialTablesOf(db)
    .selectFrom('client_credentials')
    .select(columns)
    .where('organization_id', '=', organizationId)
    .orderBy('id', 'desc')
    .limit(filter.limit);
  if (filter.afterId !== undefined) query = query.where('id', '<', filter.afterId);
  return query.execute();
}

export async function getClientCredential(
  db: Db,
  organizationId: string,
  id: string,
): Promise<ClientCredentialRow | undefined> {
  return credentialTablesOf(db)
    .selectFrom('client_credentials')
    .select(columns)
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
}

/** Revokes a client and every token family it holds (so its access and refresh tokens stop). */
export async function revokeClientCredential(unit: UnitOfWork, id: string): Promise<Result<ClientCredentialRow>> {
  const tables = credentialTablesOf(unit.tx);
  const revoked = await tables
    .updateTable('client_credentials')
    .set({ revoked_at: unit.now })
    .where('organization_id', '=', unit.organizationId)
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .returning(columns)
    .executeTakeFirst();
  if (revoked === undefined) {
    const existing = await getClientCredential(unit.tx, unit.organizationId, id);
    return existing === undefined ? fail('not_found', `No client credential ${id}`) : ok(existing);
  }
  await tables
    .updateTable('oauth_token_families')
    .set({ revoked_at: unit.now })
    .where('organization_id', '=', unit.organizationId)
    .where('credential_id', '=', id)
    .where('revoked_at', 'is', null)
    .execute();
  unit.emit('client_credential.revoked', presentClientCredential(revoked));
  return ok(revoked);
}

export function presentClientCredential(row: ClientCredentialRow) {
  return {
    id: row.id,
    object: 'client_credential' as const,
    clientId: row.id,
    scope: row.scope,
    last4: row.secret_last4,
    encodedPublicKey: row.encoded_public_key,
    creationTimestamp: row.created_at.getTime(),
    createdAt: row.created_at.toISOString(),
    revokedAt: row.revoked_at?.toISOString() ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// The token endpoint.

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  scope: CredentialScope;
  tokenType: 'bearer';
}

function sameHash(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** The client a Basic `clientId:password` names, when the password is its secret (or encoded secret). */
export async function authenticateClient(
  db: Db,
  clientId: string,
  password: string,
): Promise<{ organizationId: string; id: string; scope: CredentialScope } | undefined> {
  const row = await credentialTablesOf(db)
    .selectFrom('client_credentials')
    .select(['organization_id', 'id', 'scope', 'secret_hash', 'encoded_secret_hash'])
    .where('id', '=', clientId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  // Hash either way, so that an unknown client id takes as long as a wrong secret.
  const hash = hashSecret(password);
  if (row === undefined) return undefined;
  const matches = sameHash(hash, row.secret_hash) || sameHash(hash, row.encoded_secret_hash);
  return matches ? { organizationId: row.organization_id, id: row.id, scope: row.scope } : undefined;
}

async function issuePair(
  tx: Db,
  signingKey: Buffer,
  client: { organizationId: string; id: string; scope: CredentialScope },
  familyId: string,
  now: Date,
): Promise<TokenPair> {
  const refreshToken = `rt_${randomBytes(32).toString('base64url')}`;
  await credentialTablesOf(tx)
    .insertInto('oauth_refresh_tokens')
    .values({
      organization_id: client.organizationId,
      id: credentialObjectId('rtk'),
      family_id: familyId,
      token_hash: hashSecret(refreshToken),
      created_at: now,
      expires_at: new Date(now.getTime() + refreshTokenLifetimeMs),
    })
    .execute();
  const access = signAccessToken(
    signingKey,
    { organizationId: client.organizationId, credentialId: client.id, scope: client.scope, familyId },
    now.getTime(),
  );
  return {
    accessToken: access.token,
    refreshToken,
    expiresIn: access.expiresIn,
    scope: client.scope,
    tokenType: 'bearer',
  };
}

/** `grant_type=client_credentials`: a new token family and its first pair. */
export async function grantClientCredentials(
  db: Db,
  signingKey: Buffer,
  client: { organizationId: string; id: string; scope: CredentialScope },
): Promise<TokenPair> {
  const now = new Date();
  return inTransaction(db, async (tx) => {
    const familyId = credentialObjectId('tfm');
    await credentialTablesOf(tx)
      .insertInto('oauth_token_families')
      .values({ organization_id: client.organizationId, id: familyId, credential_id: client.id, created_at: now })
      .execute();
    return issuePair(tx, signingKey, client, familyId, now);
  });
}

export type RefreshOutcome =
  | { ok: true; pair: TokenPair }
  | { ok: false; reason: 'unknown' | 'expired' | 'revoked' }
  | { ok: false; reason: 'reused'; familyId: string };

/**
 * `grant_type=refresh_token`: exchanges a refresh token of this client for a new pair in the same
 * family; the old one is spent. A refresh token presented a second time means it leaked (or two
 * parties hold it): the whole family is revoked, committed, and the request refused.
 */
export async function grantRefreshToken(
  db: Db,
  signingKey: Buffer,
  client: { organizationId: string; id: string; scope: CredentialScope },
  refreshToken: string,
): Promise<RefreshOutcome> {
  const now = new Date();
  return inTransaction(db, async (tx): Promise<RefreshOutcome> => {
    const tables = credentialTablesOf(tx);
    const row = await tables
      .selectFrom('oauth_refresh_tokens as token')
      .innerJoin('oauth_token_families as family', (join) =>
        join.onRef('family.organization_id', '=', 'token.organization_id').onRef('family.id', '=', 'token.family_id'),
      )
      .select(['token.id', 'token.family_id', 'token.expires_at', 'family.revoked_at'])
      .where('token.token_hash', '=', hashSecret(refreshToken))
      .where('token.organization_id', '=', client.organizationId)
      .where('family.credential_id', '=', client.id)
      .executeTakeFirst();
    if (row === undefined) return { ok: false, reason: 'unknown' };
    if (row.revoked_at !== null) return { ok: false, reason: 'revoked' };
    if (row.expires_at.getTime() <= now.getTime()) return { ok: false, reason: 'expired' };
    const spent = await tables
      .updateTable('oauth_refresh_tokens')
      .set({ exchanged_at: now })
      .where('organization_id', '=', client.organizationId)
      .where('id', '=', row.id)
      .where('exchanged_at', 'is', null)
      .returning('id')
      .executeTakeFirst();
    if (spent === undefined) {
      await tables
        .updateTable('oauth_token_families')
        .set({ revoked_at: now })
        .where('organization_id', '=', client.organizationId)
        .where('id', '=', row.family_id)
        .where('revoked_at', 'is', null)
        .execute();
      return { ok: false, reason: 'reused', familyId: row.family_id };
    }
    return { ok: true, pair: await issuePair(tx, signingKey, client, row.family_id, now) };
  });
}
