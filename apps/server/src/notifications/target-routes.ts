import { Type } from 'typebox';
import type { Issuers } from '../configurations/service.js';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import type { App } from '../platform/http.js';
import { iso, isoRequired } from '../platform/present.js';
import { errorResponses, Nullable, NullableTimestamp, ObjectKind, OneOf, Timestamp } from '../platform/schemas.js';
import { notificationTablesOf, rotateSigningKey, targetOf } from './targets.js';

/**
 * The organization's Highnote notification target as operators need to see it (where Highnote
 * sends, whether registration worked, which signing keys verify until when), and the rotation of
 * its signing key. Secrets are never shown: only key ids and their lifetimes.
 */

export const NotificationTargetSchema = Type.Object(
  {
    object: ObjectKind('notification_target'),
    status: OneOf(['registering', 'registered', 'failed'] as const, {
      description: '`registered` once Highnote accepted the target; `failed` is retried by a job.',
      examples: ['registered'],
    }),
    uri: Type.String({
      description: 'Where Highnote POSTs notifications.',
      examples: ['https://tranche.example.com/v1/webhooks?organizationId=org_01jd8n'],
    }),
    highnoteTargetId: Nullable(Type.String({ description: 'Highnote’s target id.', examples: ['wnt_5Qe'] })),
    lastError: Nullable(Type.String({ description: 'Why the last registration failed.', examples: ['timeout'] })),
    signingKeys: Type.Array(
      Type.Object({
        id: Type.String({ description: 'Highnote’s signing key id.', examples: ['sk_8Kd'] }),
        createdAt: Timestamp('Stored.'),
        expiresAt: NullableTimestamp('Stops verifying; null while it is the current key.'),
      }),
      { description: 'Every key that verifies `highnote-signature` now or did; secrets are never shown.' },
    ),
    updatedAt: Timestamp('Last changed.'),
  },
  { $id: 'NotificationTarget' },
);

async function present(db: Db, organizationId: string) {
  const target = await targetOf(db, organizationId);
  if (target === undefined) {
    throw new ApiError('not_found', 'No notification target: configure Highnote first (GET or PUT /v1/configurations)');
  }
  const keys = await notificationTablesOf(db)
    .selectFrom('highnote_signing_keys')
    .select(['key_id', 'created_at', 'expires_at'])
    .where('organization_id', '=', organizationId)
    .orderBy('created_at')
    .execute();
  return {
    object: 'notification_target' as const,
    status: target.status,
    uri: target.uri,
    highnoteTargetId: target.target_id,
    lastError: target.last_error,
    signingKeys: keys.map((key) => ({
      id: key.key_id,
      createdAt: isoRequired(new Date(key.created_at)),
      expiresAt: iso(key.expires_at === null ? null : new Date(key.expires_at)),
    })),
    updatedAt: isoRequired(new Date(target.updated_at)),
  };
}

export function notificationTargetRoutes(app: App, deps: { db: Db; issuers: Issuers }): void {
  const { db, issuers } = deps;
  app.addSchema(NotificationTargetSchema);
  const config = { auth: 'organization' as const };
  const TargetRef = Type.Ref('NotificationTarget');

  app.get(
    '/v1/configurations/notification-target',
    {
      config,
      schema: {
        tags: ['configuration'],
        summary: 'Where Highnote sends this organization’s notifications, and the signing keys that verify them',
        response: { 200: TargetRef, ...errorResponses() },
      },
    },
    async (request) => present(db, request.organizationId),
  );

  app.post(
    '/v1/configurations/notification-target/rotate-key',
    {
      config,
      schema: {
        tags: ['configuration'],
        summary: 'Rotate the notification signing key at Highnote',
        description:
          'Highnote issues a new key and signs with both during its overlap; both verify here until the old one expires. Repeating the call rotates again, which is harmless: every key stays verifiable until it expires.',
        response: { 200: TargetRef, ...errorResponses(409, 502) },
      },
    },
    async (request) => {
      const target = await targetOf(db, request.organizationId);
      if (target === undefined) throw new ApiError('not_found', 'No notification target: configure Highnote first');
      if (target.status !== 'registered') {
        throw new ApiError('invalid_state', `The notification target is ${target.status}, not registered`);
      }
      const rotated = await rotateSigningKey(db, issuers, request.organizationId);
      if (!rotated.ok) throw new ApiError('issuer_error', `Highnote did not rotate the key: ${rotated.reason}`);
      request.log.info({ keyIds: rotated.keyIds }, 'notification signing key rotated');
      return present(db, request.organizationId);
    },
  );
}
