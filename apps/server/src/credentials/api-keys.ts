import { randomBytes } from 'node:crypto';
import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { fail, ok, type Result } from '../platform/errors.js';
import { type CredentialScope, credentialScopes, hashSecret } from '../platform/http.js';
import { newId } from '../platform/ids.js';
import { Id, Nullable, NullableTimestamp, ObjectKind, OneOf, Timestamp } from '../platform/schemas.js';
import type { UnitOfWork } from '../work/unit.js';
import { credentialTablesOf } from './tokens.js';

/**
 * Organization API keys: `sk_` and 32 random bytes, shown once; the database keeps the SHA-256
 * hash (what `installAuth` looks a key up by), the first seven characters and the last four.
 * Keys are revoked, never deleted (a trigger holds it, migration 0011).
 */

export const maxApiKeyNameLength = 200;
const secretPrefixLength = 7;

/** A new secret API key: a recognisable prefix, then 32 random bytes. */
export function newApiKeySecret(): string {
  return `sk_${randomBytes(32).toString('base64url')}`;
}

export interface ApiKeyRow {
  organization_id: string;
  id: string;
  scope: CredentialScope;
  name: string | null;
  secret_last4: string | null;
  created_at: Date;
  revoked_at: Date | null;
}

/** Stores a new key of `organizationId` and returns its row and its secret (to show once). */
export async function insertApiKey(
  tx: Db,
  input: { organizationId: string; scope: CredentialScope; name: string | null; now: Date },
): Promise<{ row: ApiKeyRow; secret: string }> {
  const secret = newApiKeySecret();
  const row = await credentialTablesOf(tx)
    .insertInto('api_keys')
    .values({
      organization_id: input.organizationId,
      id: newId('apiKey'),
      secret_hash: hashSecret(secret),
      secret_prefix: secret.slice(0, secretPrefixLength),
      secret_last4: secret.slice(-4),
      scope: input.scope,
      name: input.name,
      created_at: input.now,
    })
    .returning(columns)
    .executeTakeFirstOrThrow();
  return { row, secret };
}

const columns = ['organization_id', 'id', 'scope', 'name', 'secret_last4', 'created_at', 'revoked_at'] as const;

export async function createApiKey(
  unit: UnitOfWork,
  input: { name?: string | undefined; scope: CredentialScope },
): Promise<Result<{ row: ApiKeyRow; secret: string }>> {
  const created = await insertApiKey(unit.tx, {
    organizationId: unit.organizationId,
    scope: input.scope,
    name: input.name ?? null,
    now: unit.now,
  });
  unit.emit('api_key.created', presentApiKey(created.row));
  return ok(created);
}

export async function listApiKeys(
  db: Db,
  organizationId: string,
  filter: { afterId: string | undefined; limit: number },
): Promise<ApiKeyRow[]> {
  let query = credentialTablesOf(db)
    .selectFrom('api_keys')
    .select(columns)
    .where('organization_id', '=', organizationId)
    .orderBy('id', 'desc')
    .limit(filter.limit);
  if (filter.afterId !== undefined) query = query.where('id', '<', filter.afterId);
  return query.execute();
}

export async function getApiKey(db: Db, organizationId: string, id: string): Promise<ApiKeyRow | undefined> {
  return credentialTablesOf(db)
    .selectFrom('api_keys')
    .select(columns)
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
}

/**
 * Revokes a key; revoking a revoked key answers it as it is, without a second event. A key does
 * not revoke itself (`409 invalid_state`): an organization cannot lock itself out by revoking the
 * key it holds; it makes a new key first and revokes the old one with it.
 */
export async function revokeApiKey(unit: UnitOfWork, id: string): Promise<Result<ApiKeyRow>> {
  if (unit.actor.kind === 'api_key' && unit.actor.id === id) {
    return fail('invalid_state', 'A key cannot revoke itself: revoke it with another write credential');
  }
  const revoked = await credentialTablesOf(unit.tx)
    .updateTable('api_keys')
    .set({ revoked_at: unit.now })
    .where('organization_id', '=', unit.organizationId)
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .returning(columns)
    .executeTakeFirst();
  if (revoked !== undefined) {
    unit.emit('api_key.revoked', presentApiKey(revoked));
    return ok(revoked);
  }
  const existing = await getApiKey(unit.tx, unit.organizationId, id);
  return existing === undefined ? fail('not_found', `No API key ${id}`) : ok(existing);
}

export const Scope = OneOf(credentialScopes, {
  description: '`read`: GET requests only. `write`: every request of the organization.',
  examples: ['write'],
});

const apiKeyFields = {
  id: Id('key', 'API key id.'),
  object: ObjectKind('api_key'),
  name: Nullable(Type.String({ description: 'Your name for the key.', examples: ['Payroll sync'] })),
  scope: Scope,
  last4: Nullable(
    Type.String({
      description: 'The last four characters of the secret; null for keys made before they were kept.',
      examples: ['x9Qa'],
    }),
  ),
  createdAt: Timestamp('Created.'),
  revokedAt: NullableTimestamp('When the key was revoked; null while it works.'),
};

export const ApiKeySchema = Type.Object(apiKeyFields, {
  $id: 'ApiKey',
  description: 'An API key, without its secret.',
});
export const ApiKeyWithSecretSchema = Type.Object(
  {
    ...apiKeyFields,
    secret: Type.String({
      description:
        'The secret key, shown this once: send it as `Authorization: Bearer <secret>`. A replay of the request with the same `Idempotency-Key` shows only its prefix and last four characters (`sk_…x9Qa`).',
      examples: ['sk_Jt3kq0mV1b8nYw5xHfA2cR7uLzP4sE6dG9iKoT1vX9Qa'],
    }),
  },
  { $id: 'ApiKeyWithSecret', description: 'A new API key with its secret, shown once.' },
);

export function presentApiKey(row: ApiKeyRow) {
  return {
    id: row.id,
    object: 'api_key' as const,
    name: row.name,
    scope: row.scope,
    last4: row.secret_last4,
    createdAt: row.created_at.toISOString(),
    revokedAt: row.revoked_at?.toISOString() ?? null,
  };
}
