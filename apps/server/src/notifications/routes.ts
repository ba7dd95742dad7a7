import { Type } from 'typebox';
import type { Issuers } from '../configurations/service.js';
import type { Db } from '../platform/db.js';
import { ApiError, ok } from '../platform/errors.js';
import type { App } from '../platform/http.js';
import { runUnit } from '../work/runner.js';
import { signedByAny, timestampIsFresh } from './signature.js';
import { applyNotificationRequest, type ReceivedNotification, storeNotification } from './store.js';
import { activeSigningSecrets, targetOf } from './targets.js';

/**
 * `POST /v1/webhooks?organizationId=…`: Highnote's notifications in. Authenticated by the
 * signature, not by an organization key, and kept out of the API document: it is Highnote's
 * callback, not part of the partner API, so the SDK has no method for it and the organization-key
 * security matrix does not list it.
 *
 * The body is kept as the bytes that arrived (a content-type parser of this route's own) and
 * verified before it is parsed. Every failure of authentication is the same `401` and writes
 * nothing; an accepted notification is stored once per notification event id with its apply job,
 * in one transaction, and answered at once. A retry or a replay is acknowledged and not applied
 * again.
 */

const unauthorized = () => new ApiError('unauthorized', 'The notification signature could not be verified');
/** Longest notification event id and name kept (CHECKs in migration 0007 hold the same number). */
const maxNotificationFieldLength = 200;
/** Longest organization id accepted in the query; ours are far shorter. */
const maxOrganizationIdLength = 64;

export function notificationRoutes(app: App, deps: { db: Db; issuers: Issuers }): void {
  const { db, issuers } = deps;
  // An encapsulated scope, so the raw-body parser applies to this route only.
  app.register(async (scope) => {
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    scope.post(
      '/v1/webhooks',
      {
        config: { auth: 'public' as const },
        schema: {
          hide: true,
          querystring: Type.Object({
            organizationId: Type.Optional(Type.String({ maxLength: maxOrganizationIdLength })),
          }),
        },
      },
      async (request, reply) => {
        const body = request.body;
        const organizationId = (request.query as { organizationId?: string }).organizationId;
        if (!Buffer.isBuffer(body) || organizationId === undefined) throw unauthorized();
        const now = new Date();
        const secrets = await activeSigningSecrets(db, issuers, organizationId, now);
        if (secrets.length === 0) {
          // The activation may arrive while the target's keys are still on their way back from
          // Highnote: ask for a retry rather than refuse it for good.
          const target = await targetOf(db, organizationId);
          if (target?.status === 'registering') {
            throw new ApiError('service_unavailable', 'The notification target is still being registered');
          }
          throw unauthorized();
        }
        const signature = request.headers['highnote-signature'];
        if (!signedByAny(typeof signature === 'string' ? signature : undefined, body, secrets)) throw unauthorized();
        const notification = parseNotification(body);
        if (!timestampIsFresh(notification.signatureTimestamp, now.getTime())) throw unauthorized();
        const received: ReceivedNotification = {
          ...notification,
          replay: request.headers['highnote-replay'] === 'true',
        };
        const outcome = await runUnit(
          db,
          { organizationId, actor: { kind: 'system', id: 'highnote' }, requestId: request.id },
          async (unit) => {
            const stored = await storeNotification(unit, received);
            if (stored) unit.enqueue(applyNotificationRequest(received.id));
            return ok(stored);
          },
        );
        if (!outcome.ok) throw ApiError.of(outcome.failure);
        const stored = !outcome.replayed && outcome.value;
        return reply.status(200).send({ received: true, duplicate: !stored });
      },
    );
  });
}

/** The envelope's parts Tranche keys on; anything else about the body is not ours to refuse. */
function parseNotification(body: Buffer): Omit<ReceivedNotification, 'replay'> & { signatureTimestamp: unknown } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ApiError('validation_error', 'The notification body is not JSON');
  }
  const envelope = parsed as {
    data?: { node?: { id?: unknown; name?: unknown } };
    extensions?: { signatureTimestamp?: unknown };
  } | null;
  const node = envelope?.data?.node;
  const fits = (value: unknown): value is string =>
    typeof value === 'string' && value.length > 0 && value.length <= maxNotificationFieldLength;
  if (!fits(node?.id) || !fits(node?.name)) {
    throw new ApiError('validation_error', 'The notification has no data.node.id and data.node.name', 'data.node');
  }
  return {
    id: node?.id as string,
    name: node?.name as string,
    payload: parsed,
    signatureTimestamp: envelope?.extensions?.signatureTimestamp,
  };
}
