import { type ColumnType, sql } from 'kysely';
import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { fail, ok, type Result } from '../platform/errors.js';
import { eventTypes } from '../platform/events.js';
import { newId } from '../platform/ids.js';
import { Id, Nullable, NullableTimestamp, ObjectKind, OneOf, Timestamp } from '../platform/schemas.js';
import { openSecret, sealSecret } from '../platform/secrets.js';
import type { UnitOfWork } from '../work/unit.js';
import { newWebhookSecret } from './signing.js';

/**
 * Partner webhook endpoints (migration 0006): a URL, the event types it wants, its signing secret
 * (sealed at rest, shown once) and how far the fan-out has read the organization's events.
 */

export const webhookEndpointStatuses = ['enabled', 'disabled'] as const;
export type WebhookEndpointStatus = (typeof webhookEndpointStatuses)[number];

/** Every event type, or one of them; `*` subscribes to all, including types added later. */
export const allEventTypes = '*';
export const subscribableEventTypes = [allEventTypes, ...eventTypes] as const;

/** Longest endpoint URL and description (CHECKs in the migration hold the same numbers). */
export const maxWebhookUrlLength = 2048;
export const maxWebhookDescriptionLength = 500;
/** Most event types one endpoint lists (CHECK in the migration). */
export const maxWebhookEventTypes = 100;
/** How long a rotated-out secret keeps signing beside the new one. */
export const previousSecretOverlapMs = 24 * 60 * 60 * 1000;

export interface WebhookEndpointsTable {
  organization_id: string;
  id: string;
  url: string;
  description: string | null;
  event_types: ColumnType<string[], string, string>;
  status: WebhookEndpointStatus;
  disabled_reason: string | null;
  secret_ciphertext: string;
  previous_secret_ciphertext: string | null;
  previous_secret_expires_at: ColumnType<Date | null, Date | null, Date | null>;
  cursor_sequence: ColumnType<bigint, bigint | string, bigint | string>;
  failing_since: ColumnType<Date | null, Date | null, Date | null>;
  created_at: ColumnType<Date, Date, Date>;
  updated_at: ColumnType<Date, Date, Date>;
}

export type WebhookEndpointRow = {
  [K in keyof WebhookEndpointsTable]: WebhookEndpointsTable[K] extends ColumnType<infer S, unknown, unknown>
    ? S
    : WebhookEndpointsTable[K];
};

/** The table through its own row types, so that this module stays self-contained (as `jobs.ts` does). */
export function endpointsOf(db: Db) {
  return db.withTables<{ webhook_endpoints: WebhookEndpointsTable }>();
}

export const WebhookEndpointSchema = Type.Object(
  {
    id: Id('whe', 'Webhook endpoint id.'),
    object: ObjectKind('webhook_endpoint'),
    url: Type.String({
      description: 'Where events are POSTed. http or https; use https in production.',
      examples: ['https://partner.example.com/tranche/webhooks'],
    }),
    description: Nullable(
      Type.String({ description: 'Your note about the endpoint.', examples: ['Payroll sync, production'] }),
    ),
    eventTypes: Type.Array(Type.String(), {
      description: 'The event types delivered, or `["*"]` for every type.',
      examples: [['usertask.completed', 'disbursement.settled']],
    }),
    status: OneOf(webhookEndpointStatuses, {
      description: '`enabled` receives events; `disabled` receives none (you disabled it, or it failed for 5 days).',
      examples: ['enabled'],
    }),
    disabledReason: Nullable(
      Type.String({
        description: 'Why the endpoint is disabled; null while enabled.',
        examples: ['Every delivery failed for 5 days'],
      }),
    ),
    failingSince: NullableTimestamp('Since when every delivery attempt has failed; null after a success.'),
    createdAt: Timestamp('When the endpoint was created.'),
    updatedAt: Timestamp('When the endpoint last changed.'),
  },
  { $id: 'WebhookEndpoint' },
);

/** The endpoint with its new secret: the answer of create and rotate-secret, the only ones that show it. */
export const WebhookEndpointWithSecretSchema = Type.Object(
  {
    ...WebhookEndpointSchema.properties,
    secret: Type.String({
      description:
        'The signing secret (`whsec_` + base64), shown only now: keep it to verify the `webhook-signature` header.',
      examples: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'],
    }),
  },
  { $id: 'WebhookEndpointWithSecret' },
);

export function presentWebhookEndpoint(row: WebhookEndpointRow) {
  return {
    id: row.id,
    object: 'webhook_endpoint' as const,
    url: row.url,
    description: row.description,
    eventTypes: row.event_types,
    status: row.status,
    disabledReason: row.disabled_reason,
    failingSince: row.failing_since?.toISOString() ?? null,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

/** The sealing key of the process (TRANCHE_ENCRYPTION_KEY); without it no secret can be stored. */
export function sealWebhookSecret(encryptionKey: Buffer | undefined, secret: string): Result<string> {
  if (encryptionKey === undefined) {
    return fail('service_unavailable', 'TRANCHE_ENCRYPTION_KEY is not set, so a webhook secret cannot be stored');
  }
  return ok(sealSecret(encryptionKey, secret));
}

/** The secrets an attempt signs with at `now`: the current one, and a rotated-out one still in its overlap. */
export function signingSecretsOf(encryptionKey: Buffer, row: WebhookEndpointRow, now: Date): string[] {
  const secrets = [openSecret(encryptionKey, row.secret_ciphertext)];
  if (
    row.previous_secret_ciphertext !== null &&
    row.previous_secret_expires_at !== null &&
    row.previous_secret_expires_at > now
  ) {
    secrets.push(openSecret(encryptionKey, row.previous_secret_ciphertext));
  }
  return secrets;
}

/** Duplicates dropped, order kept; `*` stands alone. */
function normalizedEventTypes(types: readonly string[]): string[] {
  const unique = [...new Set(types)];
  return unique.includes(allEventTypes) ? [allEventTypes] : unique;
}

export async function getWebhookEndpoint(
  db: Db,
  organizationId: string,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<WebhookEndpointRow | undefined> {
  let query = endpointsOf(db)
    .selectFrom('webhook_endpoints')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('id', '=', id);
  if (options.forUpdate === true) query = query.forUpdate();
  return query.executeTakeFirst();
}

export async function listWebhookEndpoints(
  db: Db,
  organizationId: string,
  filter: { afterId: string | undefined; limit: number },
): Promise<WebhookEndpointRow[]> {
  let query = endpointsOf(db)
    .selectFrom('webhook_endpoints')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .orderBy('id', 'desc')
    .limit(filter.limit);
  if (filter.afterId !== undefined) query = query.where('id', '<', filter.afterId);
  return query.execute();
}

export interface WebhookEndpointInput {
  url: string;
  eventTypes: readonly string[];
  description?: string | undefined;
}

/**
 * Creates an endpoint whose cursor starts at the organization's latest event: it receives what
 * happens from now on. Returns the row and the secret in the clear, for the one answer that shows it.
 */
export async function createWebhookEndpoint(
  unit: UnitOfWork,
  encryptionKey: Buffer | undefined,
  input: WebhookEndpointInput,
): Promise<Result<{ row: WebhookEndpointRow; secret: string }>> {
  const secret = newWebhookSecret();
  const sealed = sealWebhookSecret(encryptionKey, secret);
  if (!sealed.ok) return sealed;
  const latest = await sql<{ sequence: bigint | null }>`
    SELECT max(sequence) AS sequence FROM events WHERE organization_id = ${unit.organizationId}`.execute(unit.tx);
  const row = await endpointsOf(unit.tx)
    .insertInto('webhook_endpoints')
    .values({
      organization_id: unit.organizationId,
      id: newId('webhookEndpoint'),
      url: input.url,
      description: input.description ?? null,
      event_types: JSON.stringify(normalizedEventTypes(input.eventTypes)),
      status: 'enabled',
      disabled_reason: null,
      secret_ciphertext: sealed.value,
      previous_secret_ciphertext: null,
      previous_secret_expires_at: null,
      cursor_sequence: (latest.rows[0]?.sequence ?? 0n).toString(),
      failing_since: null,
      created_at: unit.now,
      updated_at: unit.now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return ok({ row, secret });
}

export interface WebhookEndpointChanges {
  url?: string | undefined;
  eventTypes?: readonly string[] | undefined;
  description?: string | null | undefined;
  status?: WebhookEndpointStatus | undefined;
}

/** Updates an endpoint; enabling one clears its failure record, and disabling one says you did it. */
export async function updateWebhookEndpoint(
  unit: UnitOfWork,
  id: string,
  changes: WebhookEndpointChanges,
): Promise<Result<WebhookEndpointRow>> {
  const current = await getWebhookEndpoint(unit.tx, unit.organizationId, id, { forUpdate: true });
  if (current === undefined) return fail('not_found', `No webhook endpoint ${id}`);
  const statusChange =
    changes.status === undefined || changes.status === current.status
      ? {}
      : changes.status === 'enabled'
        ? { status: 'enabled' as const, disabled_reason: null, failing_since: null }
        : { status: 'disabled' as const, disabled_reason: 'Disabled through the API' };
  const row = await endpointsOf(unit.tx)
    .updateTable('webhook_endpoints')
    .set({
      ...(changes.url === undefined ? {} : { url: changes.url }),
      ...(changes.eventTypes === undefined
        ? {}
        : { event_types: JSON.stringify(normalizedEventTypes(changes.eventTypes)) }),
      ...(changes.description === undefined ? {} : { description: changes.description }),
      ...statusChange,
      updated_at: unit.now,
    })
    .where('organization_id', '=', unit.organizationId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return ok(row);
}

/** Deletes an endpoint and its delivery log; queued attempts find nothing and end. */
export async function deleteWebhookEndpoint(unit: UnitOfWork, id: string): Promise<Result<WebhookEndpointRow>> {
  const row = await endpointsOf(unit.tx)
    .deleteFrom('webhook_endpoints')
    .where('organization_id', '=', unit.organizationId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  return row === undefined ? fail('not_found', `No webhook endpoint ${id}`) : ok(row);
}

/** A new secret; the current one keeps signing beside it for `previousSecretOverlapMs`. */
export async function rotateWebhookSecret(
  unit: UnitOfWork,
  encryptionKey: Buffer | undefined,
  id: string,
): Promise<Result<{ row: WebhookEndpointRow; secret: string }>> {
  const current = await getWebhookEndpoint(unit.tx, unit.organizationId, id, { forUpdate: true });
  if (current === undefined) return fail('not_found', `No webhook endpoint ${id}`);
  const secret = newWebhookSecret();
  const sealed = sealWebhookSecret(encryptionKey, secret);
  if (!sealed.ok) return sealed;
  const row = await endpointsOf(unit.tx)
    .updateTable('webhook_endpoints')
    .set({
      secret_ciphertext: sealed.value,
      previous_secret_ciphertext: current.secret_ciphertext,
      previous_secret_expires_at: new Date(unit.now.getTime() + previousSecretOverlapMs),
      updated_at: unit.now,
    })
    .where('organization_id', '=', unit.organizationId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return ok({ row, secret });
}
