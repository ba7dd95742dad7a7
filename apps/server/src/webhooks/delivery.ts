import { sql } from 'kysely';
import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { fail, ok, type Result } from '../platform/errors.js';
import { getEvent, presentEvent } from '../platform/events.js';
import { newId } from '../platform/ids.js';
import { defineJob, enqueueJobs, type JobDefinition, jobRequest } from '../platform/jobs.js';
import { Id, Nullable, NullableTimestamp, ObjectKind, OneOf, Timestamp } from '../platform/schemas.js';
import { inTransaction } from '../platform/transaction.js';
import type { UnitOfWork } from '../work/unit.js';
import { allEventTypes, endpointsOf, signingSecretsOf, type WebhookEndpointRow } from './endpoint.js';
import { signedHeaders } from './signing.js';

/**
 * Delivery of partner webhooks, off the hot path: a change writes only its event rows. A recurring
 * fan-out reads, per enabled endpoint, the organization's events past the endpoint's cursor and
 * writes one delivery row (and one attempt job) per matching event, advancing the cursor in the
 * same transaction. Each attempt POSTs the event as `GET /v1/events/{id}` presents it, signed per
 * Standard Webhooks with `webhook-id` = the event id, so every retry of one event carries one id.
 * Delivery is at least once; receivers dedupe by `webhook-id`; order across events is not kept.
 */

/** The first attempt goes out as soon as the fan-out sees the event. */
export const webhookFirstAttemptDelayMs = 0;
/**
 * The published retry schedule (Svix's): after each failed attempt, the wait before the next.
 * With the first attempt that makes 8; the last goes out about 27 h 35 min after the first.
 */
export const webhookRetryDelaysMs: readonly number[] = [
  5 * 1000, // 5 s
  5 * 60 * 1000, // 5 min
  30 * 60 * 1000, // 30 min
  2 * 60 * 60 * 1000, // 2 h
  5 * 60 * 60 * 1000, // 5 h
  10 * 60 * 60 * 1000, // 10 h
  10 * 60 * 60 * 1000, // 10 h
];
/** One attempt waits this long for the receiver's answer; longer counts as a failure. */
export const webhookRequestTimeoutMs = 15_000;
/** An endpoint whose every attempt failed for this long is disabled. */
export const webhookDisableAfterFailingMs = 5 * 24 * 60 * 60 * 1000;
export const webhookDisabledReason = 'Every delivery attempt failed for 5 days';
/** How often the fan-out looks for new events. */
// Every 5 s, not every second: each run is a job claimed, finished and enqueued again, and at one a
// second that background churn cost the hot program's requests measurably on a 2-core machine.
export const webhookFanOutIntervalMs = 5_000;
/** Events one endpoint's fan-out takes per transaction, and endpoints per run. */
export const webhookFanOutBatchSize = 100;
export const maxWebhookEndpointsPerFanOut = 1_000;
/**
 * The cursor only passes events older than this. Event sequences are drawn at insert and a
 * transaction commits later, so a lower sequence can become visible after a higher one; an event
 * younger than this window is delivered as soon as it is seen (deliveries are unique per
 * endpoint and event) but the cursor stays behind it, so a late committer is still found. A
 * transaction that stays open longer than this after writing its event could be missed.
 */
export const webhookFanOutSettleMs = 60_000;
/** Longest receiver answer text kept in the delivery log's error. */
const maxErrorLength = 1_000;

export const webhookDeliveryStatuses = ['pending', 'succeeded', 'failed'] as const;
export type WebhookDeliveryStatus = (typeof webhookDeliveryStatuses)[number];

export interface WebhookDeliveriesTable {
  organization_id: string;
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  status: WebhookDeliveryStatus;
  attempts: number;
  next_attempt_at: Date | null;
  last_attempt_at: Date | null;
  last_status_code: number | null;
  last_error: string | null;
  succeeded_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

function deliveriesOf(db: Db) {
  return db.withTables<{ webhook_deliveries: WebhookDeliveriesTable }>();
}

export type WebhookDeliveryRow = WebhookDeliveriesTable;

export const WebhookDeliverySchema = Type.Object(
  {
    id: Id('whd', 'Delivery id.'),
    object: ObjectKind('webhook_delivery'),
    endpointId: Id('whe', 'The endpoint delivered to.'),
    eventId: Id('evt', 'The event delivered; also the `webhook-id` header of every attempt.'),
    eventType: Type.String({ description: 'The event’s type.', examples: ['usertask.completed'] }),
    status: OneOf(webhookDeliveryStatuses, {
      description: '`pending` (an attempt is due), `succeeded` (a 2xx came back) or `failed` (out of attempts).',
      examples: ['succeeded'],
    }),
    attempts: Type.Integer({ description: 'Attempts made so far.', examples: [3] }),
    lastStatusCode: Nullable(
      Type.Integer({ description: 'The HTTP status of the last attempt; null for a network error.', examples: [200] }),
    ),
    lastError: Nullable(
      Type.String({
        description: 'Why the last attempt failed; null after a success.',
        examples: ['The receiver answered 503'],
      }),
    ),
    nextAttemptAt: NullableTimestamp('When the next attempt is due; null once the delivery is over.'),
    lastAttemptAt: NullableTimestamp('When the last attempt was made.'),
    succeededAt: NullableTimestamp('When a 2xx came back.'),
    createdAt: Timestamp('When the fan-out created the delivery.'),
  },
  { $id: 'WebhookDelivery' },
);

export function presentWebhookDelivery(row: WebhookDeliveryRow) {
  return {
    id: row.id,
    object: 'webhook_delivery' as const,
    endpointId: row.endpoint_id,
    eventId: row.event_id,
    eventType: row.event_type,
    status: row.status,
    attempts: row.attempts,
    lastStatusCode: row.last_status_code,
    lastError: row.last_error,
    nextAttemptAt: row.next_attempt_at?.toISOString() ?? null,
    lastAttemptAt: row.last_attempt_at?.toISOString() ?? null,
    succeededAt: row.succeeded_at?.toISOString() ?? null,
    createdAt: row.created_at.toISOString(),
  };
}

export async function getWebhookDelivery(
  db: Db,
  organizationId: string,
  endpointId: string,
  id: string,
): Promise<WebhookDeliveryRow | undefined> {
  return deliveriesOf(db)
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('endpoint_id', '=', endpointId)
    .where('id', '=', id)
    .executeTakeFirst();
}

export async function listWebhookDeliveries(
  db: Db,
  organizationId: string,
  endpointId: string,
  filter: { afterId: string | undefined; limit: number; eventId?: string | undefined },
): Promise<WebhookDeliveryRow[]> {
  let query = deliveriesOf(db)
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('endpoint_id', '=', endpointId)
    .orderBy('id', 'desc')
    .limit(filter.limit);
  if (filter.afterId !== undefined) query = query.where('id', '<', filter.afterId);
  if (filter.eventId !== undefined) query = query.where('event_id', '=', filter.eventId);
  return query.execute();
}

/** One attempt of one delivery; `attempt` fences it, so a stale job of an earlier attempt does nothing. */
export interface AttemptPayload {
  deliveryId: string;
  attempt: number;
}

export const webhookAttemptJobName = 'webhooks.attempt';
export const webhookFanOutJobName = 'webhooks.fan_out';

/** Options the catalog passes; tests shorten the schedule and the interval. */
export interface WebhookDeliveryOptions {
  encryptionKey: Buffer;
  retryDelaysMs?: readonly number[];
  fanOutIntervalMs?: number;
  requestTimeoutMs?: number;
}

/** The attempt job's shape without its `run`, so units (redelivery) can enqueue it by name. */
const attemptJobShape = {
  name: webhookAttemptJobName,
  // The job records its own failures (the schedule above); a job retry is only for a database error.
  maxAttempts: 5,
  backoff: { baseMs: 1_000, maxMs: 60_000 },
  visibilityTimeoutMs: 2 * webhookRequestTimeoutMs,
};

export function attemptRequest(organizationId: string, payload: AttemptPayload, runAt: Date) {
  return jobRequest(attemptJobShape as JobDefinition<AttemptPayload>, payload, { organizationId, runAt });
}

/**
 * Redelivers one event to one endpoint now, as a new attempt of its delivery (same `webhook-id`).
 * A delivery still pending already has an attempt due, so it is refused.
 */
export async function redeliver(
  unit: UnitOfWork,
  endpointId: string,
  deliveryId: string,
): Promise<Result<WebhookDeliveryRow>> {
  const current = await deliveriesOf(unit.tx)
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('organization_id', '=', unit.organizationId)
    .where('endpoint_id', '=', endpointId)
    .where('id', '=', deliveryId)
    .forUpdate()
    .executeTakeFirst();
  if (current === undefined) return fail('not_found', `No delivery ${deliveryId} of webhook endpoint ${endpointId}`);
  if (current.status === 'pending') {
    return fail('invalid_state', `Delivery ${deliveryId} is pending: its next attempt is already due`);
  }
  const row = await deliveriesOf(unit.tx)
    .updateTable('webhook_deliveries')
    .set({ status: 'pending', succeeded_at: null, next_attempt_at: unit.now, updated_at: unit.now })
    .where('organization_id', '=', unit.organizationId)
    .where('id', '=', deliveryId)
    .returningAll()
    .executeTakeFirstOrThrow();
  unit.enqueue(attemptRequest(unit.organizationId, { deliveryId, attempt: current.attempts + 1 }, unit.now));
  return ok(row);
}

/**
 * Fans one endpoint's new events out into deliveries, in one transaction: locks the endpoint
 * (skipping it if another worker has it), takes up to a batch of matching events past its cursor
 * that have no delivery yet, writes their deliveries and first-attempt jobs, and moves the cursor
 * past what is both covered and settled. Returns how many deliveries it wrote.
 */
export async function fanOutEndpoint(db: Db, organizationId: string, endpointId: string, now: Date): Promise<number> {
  return inTransaction(db, async (tx) => {
    const endpoint = await endpointsOf(tx)
      .selectFrom('webhook_endpoints')
      .select(['event_types', 'cursor_sequence'])
      .where('organization_id', '=', organizationId)
      .where('id', '=', endpointId)
      .where('status', '=', 'enabled')
      .forUpdate()
      .skipLocked()
      .executeTakeFirst();
    if (endpoint === undefined) return 0;
    const types = endpoint.event_types;
    const matching = types.includes(allEventTypes) ? sql`TRUE` : sql`e.type IN (${sql.join(types)})`;
    const fresh = await sql<{ id: string; type: string; sequence: bigint }>`
      SELECT e.id, e.type, e.sequence FROM events e
      WHERE e.organization_id = ${organizationId} AND e.sequence > ${endpoint.cursor_sequence} AND ${matching}
        AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
          WHERE d.organization_id = e.organization_id AND d.endpoint_id = ${endpointId} AND d.event_id = e.id)
      ORDER BY e.sequence LIMIT ${webhookFanOutBatchSize}`.execute(tx);
    const rows = fresh.rows.map((event) => ({
      organization_id: organizationId,
      id: newId('webhookDelivery'),
      endpoint_id: endpointId,
      event_id: event.id,
      event_type: event.type,
      status: 'pending' as const,
      attempts: 0,
      next_attempt_at: new Date(now.getTime() + webhookFirstAttemptDelayMs),
      last_attempt_at: null,
      last_status_code: null,
      last_error: null,
      succeeded_at: null,
      created_at: now,
      updated_at: now,
    }));
    if (rows.length > 0) {
      await deliveriesOf(tx).insertInto('webhook_deliveries').values(rows).execute();
      await enqueueJobs(
        tx,
        rows.map((row) => attemptRequest(organizationId, { deliveryId: row.id, attempt: 1 }, row.next_attempt_at)),
        now,
      );
    }
    // Past every settled event; but when the batch was full, not past its last (more may match).
    const settledBefore = new Date(now.getTime() - webhookFanOutSettleMs);
    const settled = await sql<{ sequence: bigint | null }>`
      SELECT max(sequence) AS sequence FROM events
      WHERE organization_id = ${organizationId} AND sequence > ${endpoint.cursor_sequence}
        AND created_at < ${settledBefore.toISOString()}::timestamptz`.execute(tx);
    let cursor = settled.rows[0]?.sequence ?? null;
    const last = fresh.rows[fresh.rows.length - 1];
    if (cursor !== null && fresh.rows.length === webhookFanOutBatchSize && last !== undefined) {
      const lastSequence = BigInt(last.sequence);
      if (lastSequence < BigInt(cursor)) cursor = lastSequence;
    }
    if (cursor !== null) {
      await endpointsOf(tx)
        .updateTable('webhook_endpoints')
        .set({ cursor_sequence: cursor.toString() })
        .where('organization_id', '=', organizationId)
        .where('id', '=', endpointId)
        .execute();
    }
    return rows.length;
  });
}

/** Why an attempt failed, short enough for the log. */
function errorOf(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return `No answer within ${timeoutMs} ms`;
  }
  const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error instanceof Error ? error.message : String(error)}${cause}`.slice(0, maxErrorLength);
}

/** The jobs of partner webhooks: the recurring fan-out and the attempt. */
export function webhookJobs(options: WebhookDeliveryOptions) {
  const retryDelaysMs = options.retryDelaysMs ?? webhookRetryDelaysMs;
  const timeoutMs = options.requestTimeoutMs ?? webhookRequestTimeoutMs;
  const fanOut = defineJob<Record<string, never>>({
    name: webhookFanOutJobName,
    maxAttempts: 5,
    backoff: { baseMs: 1_000, maxMs: 60_000 },
    visibilityTimeoutMs: 5 * 60 * 1000,
    recurring: { intervalMs: options.fanOutIntervalMs ?? webhookFanOutIntervalMs, payload: {} },
    run: async (context) => {
      const endpoints = await endpointsOf(context.db)
        .selectFrom('webhook_endpoints')
        .select(['organization_id', 'id'])
        .where('status', '=', 'enabled')
        .orderBy('id')
        .limit(maxWebhookEndpointsPerFanOut)
        .execute();
      for (const endpoint of endpoints) {
        if (context.signal.aborted) return;
        await fanOutEndpoint(context.db, endpoint.organization_id, endpoint.id, context.now);
      }
    },
  });
  const attempt = defineJob<AttemptPayload>({
    ...attemptJobShape,
    run: async (context, payload) => {
      const organizationId = context.job.organizationId;
      if (organizationId === null) return;
      await attemptDelivery(context.db, organizationId, payload, {
        encryptionKey: options.encryptionKey,
        retryDelaysMs,
        timeoutMs,
        now: context.now,
        signal: context.signal,
      });
    },
  });
  return [fanOut, attempt] as const;
}

/**
 * One attempt: send, then record the outcome fenced by the attempt number. A failure schedules the
 * next attempt, or ends the delivery as `failed` when the schedule is used up; an endpoint whose
 * attempts have all failed for `webhookDisableAfterFailingMs` is disabled.
 */
export async function attemptDelivery(
  db: Db,
  organizationId: string,
  payload: AttemptPayload,
  options: {
    encryptionKey: Buffer;
    retryDelaysMs: readonly number[];
    timeoutMs: number;
    now: Date;
    signal: AbortSignal;
  },
): Promise<void> {
  const { now } = options;
  const delivery = await deliveriesOf(db)
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('id', '=', payload.deliveryId)
    .executeTakeFirst();
  if (delivery === undefined || delivery.status !== 'pending' || delivery.attempts !== payload.attempt - 1) return;
  const endpoint: WebhookEndpointRow | undefined = await endpointsOf(db)
    .selectFrom('webhook_endpoints')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('id', '=', delivery.endpoint_id)
    .executeTakeFirst();
  if (endpoint === undefined) return;
  if (endpoint.status === 'disabled') {
    await deliveriesOf(db)
      .updateTable('webhook_deliveries')
      .set({ status: 'failed', next_attempt_at: null, last_error: 'The endpoint is disabled', updated_at: now })
      .where('organization_id', '=', organizationId)
      .where('id', '=', delivery.id)
      .where('attempts', '=', delivery.attempts)
      .where('status', '=', 'pending')
      .execute();
    return;
  }
  const event = await getEvent(db, organizationId, delivery.event_id);
  if (event === undefined) return;
  const body = JSON.stringify(presentEvent(event));
  const timestampSeconds = Math.floor(now.getTime() / 1000);
  const headers = signedHeaders(
    signingSecretsOf(options.encryptionKey, endpoint, now),
    event.id,
    timestampSeconds,
    body,
  );

  let statusCode: number | null = null;
  let error: string | null = null;
  try {
    const response = await fetch(endpoint.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'Tranche-Webhooks/1', ...headers },
      body,
      // A redirect is an answer, not a success: the endpoint URL should be the final one.
      redirect: 'manual',
      signal: AbortSignal.any([AbortSignal.timeout(options.timeoutMs), options.signal]),
    });
    statusCode = response.status;
    // The body is read (bounded by the timeout) only to free the connection; it is not kept.
    await response.arrayBuffer().catch(() => undefined);
    if (statusCode < 200 || statusCode > 299) error = `The receiver answered ${statusCode}`;
  } catch (caught) {
    error = errorOf(caught, options.timeoutMs);
  }
  await recordAttempt(db, organizationId, delivery, endpoint, { statusCode, error }, options);
}

async function recordAttempt(
  db: Db,
  organizationId: string,
  delivery: WebhookDeliveryRow,
  endpoint: WebhookEndpointRow,
  outcome: { statusCode: number | null; error: string | null },
  options: { retryDelaysMs: readonly number[]; now: Date },
): Promise<void> {
  const { now } = options;
  const attempts = delivery.attempts + 1;
  const succeeded = outcome.error === null;
  // The schedule is indexed by the attempt just made; a manual redelivery past its end is one attempt.
  const retryDelayMs = options.retryDelaysMs[attempts - 1];
  const nextAttemptAt = succeeded || retryDelayMs === undefined ? null : new Date(now.getTime() + retryDelayMs);
  await inTransaction(db, async (tx) => {
    const updated = await deliveriesOf(tx)
      .updateTable('webhook_deliveries')
      .set({
        attempts,
        status: succeeded ? 'succeeded' : nextAttemptAt === null ? 'failed' : 'pending',
        last_attempt_at: now,
        last_status_code: outcome.statusCode,
        last_error: outcome.error,
        succeeded_at: succeeded ? now : null,
        next_attempt_at: nextAttemptAt,
        updated_at: now,
      })
      .where('organization_id', '=', organizationId)
      .where('id', '=', delivery.id)
      .where('attempts', '=', delivery.attempts)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    // Another run recorded this attempt already (a lease that ran out): nothing more to do.
    if (Number(updated.numUpdatedRows) === 0) return;
    if (nextAttemptAt !== null) {
      await enqueueJobs(
        tx,
        [attemptRequest(organizationId, { deliveryId: delivery.id, attempt: attempts + 1 }, nextAttemptAt)],
        now,
      );
    }
    const endpoints = endpointsOf(tx);
    if (succeeded) {
      await endpoints
        .updateTable('webhook_endpoints')
        .set({ failing_since: null })
        .where('organization_id', '=', organizationId)
        .where('id', '=', endpoint.id)
        .where('failing_since', 'is not', null)
        .execute();
      return;
    }
    await endpoints
      .updateTable('webhook_endpoints')
      .set({ failing_since: now })
      .where('organization_id', '=', organizationId)
      .where('id', '=', endpoint.id)
      .where('failing_since', 'is', null)
      .execute();
    await endpoints
      .updateTable('webhook_endpoints')
      .set({ status: 'disabled', disabled_reason: webhookDisabledReason, updated_at: now })
      .where('organization_id', '=', organizationId)
      .where('id', '=', endpoint.id)
      .where('status', '=', 'enabled')
      .where('failing_since', '<=', new Date(now.getTime() - webhookDisableAfterFailingMs))
      .execute();
  });
}
