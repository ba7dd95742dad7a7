import { insertApiKey } from '../credentials/api-keys.js';
import type { Db } from '../platform/db.js';
import { ok, type Result } from '../platform/errors.js';
import { newId } from '../platform/ids.js';

export interface CreatedOrganization {
  id: string;
  name: string;
  apiKey: string;
  createdAt: Date;
}

/** The name of the API key an organization starts with. */
export const firstApiKeyName = 'First key';

/** Creates a tenant with its funding account and a first API key (write scope), shown this once. */
export async function createOrganization(tx: Db, name: string, now: Date): Promise<Result<CreatedOrganization>> {
  const id = newId('organization');
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
  const { secret } = await insertApiKey(tx, { organizationId: id, scope: 'write', name: firstApiKeyName, now });
  return ok({ id, name, apiKey: secret, createdAt: created.created_at });
}
