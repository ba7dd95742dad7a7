import type { ColumnType } from 'kysely';
import type { Db } from '../platform/db.js';
import type { JobRequest } from '../platform/jobs.js';
import type { UnitOfWork } from '../work/unit.js';

/**
 * Highnote notifications as Tranche received them: append-only (a trigger refuses changes), one
 * row per notification event id, whatever its name. Storing one enqueues its apply job in the
 * same transaction; a second arrival of the same id stores nothing and enqueues nothing.
 */

export interface ReceivedNotification {
  /** `data.node.id`: the notification event's id, the same on every retry and replay. */
  id: string;
  /** `data.node.name`: a `NotificationEventName`. */
  name: string;
  /** The whole envelope as it arrived (parsed once, after its signature was verified). */
  payload: unknown;
  /** `highnote-replay: true`: re-delivered on request. */
  replay: boolean;
}

type HighnoteNotificationsTable = {
  organization_id: string;
  id: string;
  name: string;
  payload: ColumnType<unknown, string, never>;
  replay: boolean;
  received_at: ColumnType<Date, Date | string, never>;
};

export function notificationsOf(db: Db) {
  return db.withTables<{ highnote_notifications: HighnoteNotificationsTable }>();
}

/** Stores a notification unless its id was stored before; answers whether it was new. */
export async function storeNotification(unit: UnitOfWork, notification: ReceivedNotification): Promise<boolean> {
  const inserted = await notificationsOf(unit.tx)
    .insertInto('highnote_notifications')
    .values({
      organization_id: unit.organizationId,
      id: notification.id,
      name: notification.name,
      payload: JSON.stringify(notification.payload),
      replay: notification.replay,
      received_at: unit.now,
    })
    .onConflict((conflict) => conflict.columns(['organization_id', 'id']).doNothing())
    .returning('id')
    .executeTakeFirst();
  return inserted !== undefined;
}

export async function readNotification(db: Db, organizationId: string, id: string) {
  return notificationsOf(db)
    .selectFrom('highnote_notifications')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
}

export const applyNotificationJobName = 'notifications.apply';
/** Attempts of one apply: Highnote unreachable (an approval issues an account) is retried with backoff. */
export const applyNotificationMaxAttempts = 20;

export interface ApplyNotificationPayload {
  notificationId: string;
}

export function applyNotificationRequest(notificationId: string): JobRequest {
  const payload: ApplyNotificationPayload = { notificationId };
  return { name: applyNotificationJobName, payload, maxAttempts: applyNotificationMaxAttempts };
}
