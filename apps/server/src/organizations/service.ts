import { randomBytes } from 'node:crypto';
import type { Db } from '../platform/db.js';
import { ok, type Result } from '../platform/errors.js';
import { hashSecret } from '../platform/http.js';
import { newId } from '../platform/ids.js';

export interface CreatedOrganization {
  id: string;
  name: string;
  apiKey: string;
  createdAt: Date;
}

/** Secret API keys: a recognisable prefix, then 32 random bytes. Only their hash is stored. */
export function newApiKeySecret(): string {
  return `sk_${randomBytes(32).toString('base64url')}`;
}

/** Creates a tenant with its funding account and a first API key, shown this once. */
export async function createOrganization(tx: Db, name: string): Promise<Result<CreatedOrganization>> {
  const id = newId('organization');
  const secret = newApiKeySecret();
  const created = await tx
    .insertInto('organizations')
    .values({ id, name })
    .returning('created_at')
    .executeTakeFirstOrThrow();
  await tx
    .insertInto('ledger_accounts')
    .values({
      organization_id: id,
      id: newId('account'),
      program_id: null,
      kind: 'funding',
      debits_must_not_exceed_credits: false,
      credits_must_not_exceed_debits: true,
    })
    .execute();
  await tx
    .insertInto('api_keys')
    .values({
      organization_id: id,
      id: newId('apiKey'),
      secret_hash: hashSecret(secret),
      secret_prefix: secret.slice(0, 7),
    })
    .execute();
  return ok({ id, name, apiKey: secret, createdAt: created.created_at });
}
