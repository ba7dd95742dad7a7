import type { ColumnType } from 'kysely';
import type { Issuers } from '../configurations/service.js';
import type { IssuerFailure } from '../issuer/graphql.js';
import type { Db } from '../platform/db.js';
import { assert } from '../platform/errors.js';
import { defineJob } from '../platform/jobs.js';
import { inTransaction } from '../platform/transaction.js';
import {
  addWebhookNotificationTarget,
  type IssuerNotificationTarget,
  rotateNotificationTargetSigningKey,
} from './highnote-targets.js';
import {
  type RegisterTargetPayload,
  registerTargetJobName,
  registerTargetMaxAttempts,
  subscribedEvents,
} from './subscriptions.js';

/**
 * An organization's Highnote notification target: registered by a job once the organization is
 * configured (an issuer call, outside any transaction; a failure is recorded and retried, and
 * polling keeps everything moving meanwhile), its signing keys kept sealed, and rotated.
 */

/** Longest error text kept on a target row (the migration's CHECK holds the same number). */
const maxTargetErrorLength = 1_000;
/** How long keys of a replaced target keep verifying: Highnote's own overlap after a rotation. */
export const signingKeyOverlapMs = 24 * 60 * 60 * 1000;

type Timestamp = ColumnType<Date, Date | string, Date | string>;

type HighnoteNotificationTargetsTable = {
  organization_id: string;
  graphql_url: string;
  target_id: string | null;
  uri: string;
  status: 'registering' | 'registered' | 'failed';
  last_error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
};

type HighnoteSigningKeysTable = {
  organization_id: string;
  key_id: string;
  target_id: string;
  secret_ciphertext: string;
  created_at: Timestamp;
  expires_at: ColumnType<Date | null, Date | string | null, Date | string | null>;
};

/** The tables of this module (migration 0007), reached through `notificationTablesOf(db)`. */
export type NotificationTables = {
  highnote_notification_targets: HighnoteNotificationTargetsTable;
  highnote_signing_keys: HighnoteSigningKeysTable;
};

export function notificationTablesOf(db: Db) {
  return db.withTables<NotificationTables>();
}

export type TargetState = HighnoteNotificationTargetsTable['status'];

export async function targetOf(db: Db, organizationId: string) {
  return notificationTablesOf(db)
    .selectFrom('highnote_notification_targets')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .executeTakeFirst();
}

/** The plaintext secrets of the keys that verify signatures now, newest first. */
export async function activeSigningSecrets(
  db: Db,
  issuers: Issuers,
  organizationId: string,
  now: Date,
): Promise<string[]> {
  const rows = await notificationTablesOf(db)
    .selectFrom('highnote_signing_keys')
    .select('secret_ciphertext')
    .where('organization_id', '=', organizationId)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .orderBy('created_at', 'desc')
    .execute();
  const secrets: string[] = [];
  for (const row of rows) {
    const opened = issuers.open(row.secret_ciphertext);
    if (opened.ok) secrets.push(opened.value);
  }
  return secrets;
}

/** Stores the keys Highnote answered (new ones sealed; expiries as Highnote states them). */
async function storeSigningKeys(db: Db, issuers: Issuers, organizationId: string, target: IssuerNotificationTarget) {
  for (const key of target.signingKeys) {
    const sealed = issuers.seal(key.secret);
    assert(sealed.ok, 'signing keys are stored only when the process can seal them');
    await notificationTablesOf(db)
      .insertInto('highnote_signing_keys')
      .values({
        organization_id: organizationId,
        key_id: key.id,
        target_id: target.id,
        secret_ciphertext: sealed.value,
        created_at: key.createdAt,
        expires_at: key.expiresAt,
      })
      .onConflict((conflict) =>
        conflict.columns(['organization_id', 'key_id']).doUpdateSet({ expires_at: key.expiresAt }),
      )
      .execute();
  }
}

async function recordFailure(db: Db, organizationId: string, failure: IssuerFailure, now: Date) {
  await notificationTablesOf(db)
    .updateTable('highnote_notification_targets')
    .set({ status: 'failed', last_error: failure.message.slice(0, maxTargetErrorLength), updated_at: now })
    .where('organization_id', '=', organizationId)
    .where('status', '<>', 'registered')
    .execute();
}

export type RegisterOutcome = 'registered' | 'already_registered' | 'not_configured' | 'refused';

/**
 * Registers the organization's target at Highnote unless one is registered for its current
 * endpoint. A transient failure throws (the job runs again); a refusal is recorded and final.
 */
export async function registerNotificationTarget(
  db: Db,
  issuers: Issuers,
  organizationId: string,
  now = new Date(),
): Promise<RegisterOutcome> {
  const uri = issuers.notificationUri(organizationId);
  if (uri === undefined || !issuers.canSeal()) return 'not_configured';
  const issuer = await issuers.forOrganization(organizationId);
  if (!issuer.ok) throw new Error(issuer.failure.message);
  const graphqlUrl = issuer.value.configuration.graphqlUrl;
  const current = await targetOf(db, organizationId);
  if (current?.status === 'registered' && current.graphql_url === graphqlUrl && current.uri === uri) {
    return 'already_registered';
  }
  // Recorded before the call, so that an activation arriving before the answer is asked to retry.
  const registering = {
    graphql_url: graphqlUrl,
    uri,
    status: 'registering' as const,
    target_id: null,
    last_error: null,
  };
  await notificationTablesOf(db)
    .insertInto('highnote_notification_targets')
    .values({ organization_id: organizationId, created_at: now, updated_at: now, ...registering })
    .onConflict((conflict) => conflict.column('organization_id').doUpdateSet({ ...registering, updated_at: now }))
    .execute();
  const added = await addWebhookNotificationTarget(issuer.value.connection, {
    name: `Tranche ${organizationId}`,
    uri,
    subscriptions: subscribedEvents,
  });
  if (!added.ok) {
    await recordFailure(db, organizationId, added.failure, new Date());
    if (added.failure.kind === 'rejected' || added.failure.kind === 'access_denied') return 'refused';
    throw new Error(added.failure.message);
  }
  const target = added.value;
  await inTransaction(db, async (tx) => {
    // Keys of a target this one replaces keep verifying for the overlap, then stop.
    await notificationTablesOf(tx)
      .updateTable('highnote_signing_keys')
      .set({ expires_at: new Date(now.getTime() + signingKeyOverlapMs) })
      .where('organization_id', '=', organizationId)
      .where('target_id', '<>', target.id)
      .where('expires_at', 'is', null)
      .execute();
    await storeSigningKeys(tx, issuers, organizationId, target);
    await notificationTablesOf(tx)
      .updateTable('highnote_notification_targets')
      .set({ status: 'registered', target_id: target.id, last_error: null, updated_at: new Date() })
      .where('organization_id', '=', organizationId)
      .execute();
  });
  return 'registered';
}

/**
 * Rotates the target's signing key at Highnote and stores the new one. Highnote signs with the old
 * and the new key for 24 hours; verification accepts any key that has not expired.
 */
export async function rotateSigningKey(
  db: Db,
  issuers: Issuers,
  organizationId: string,
): Promise<{ ok: true; keyIds: string[] } | { ok: false; reason: string }> {
  const current = await targetOf(db, organizationId);
  if (current?.target_id === null || current === undefined) return { ok: false, reason: 'no target registered' };
  const issuer = await issuers.forOrganization(organizationId);
  if (!issuer.ok) return { ok: false, reason: issuer.failure.message };
  const rotated = await rotateNotificationTargetSigningKey(issuer.value.connection, current.target_id);
  if (!rotated.ok) return { ok: false, reason: rotated.failure.message };
  await storeSigningKeys(db, issuers, organizationId, rotated.value);
  return { ok: true, keyIds: rotated.value.signingKeys.map((key) => key.id) };
}

/** Stops a key verifying now, before Highnote's overlap ends (e.g. a key thought leaked). */
export async function retireSigningKey(db: Db, organizationId: string, keyId: string, now = new Date()) {
  const result = await notificationTablesOf(db)
    .updateTable('highnote_signing_keys')
    .set({ expires_at: now })
    .where('organization_id', '=', organizationId)
    .where('key_id', '=', keyId)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export function registerTargetJob(deps: { issuers: Issuers }) {
  return defineJob<RegisterTargetPayload>({
    name: registerTargetJobName,
    maxAttempts: registerTargetMaxAttempts,
    backoff: { baseMs: 500, maxMs: 60 * 60 * 1000 },
    visibilityTimeoutMs: 60_000,
    run: async (context, payload) => {
      await registerNotificationTarget(context.db, deps.issuers, payload.organizationId, context.now);
    },
  });
}
