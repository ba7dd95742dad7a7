import { randomBytes } from 'node:crypto';
import type { SandboxContext } from './context.js';
import { validSigningKeys } from './delivery.js';
import {
  type NotificationEventRecord,
  type NotificationTargetRecord,
  newId,
  nowIso,
  type SigningKeyRecord,
} from './store.js';
import {
  connection,
  type PageArguments,
  type TimestampFilter,
  userError,
  withinTimestampFilter,
} from './viewPrimitives.js';

/*
 * Webhook notification targets and the notification events they receive. Delivery itself (signing,
 * retries, test modes) is the Notifier's.
 */

const NAME_MAX_LENGTH = 255;
/** Highnote allows up to 50 active webhooks. */
const MAX_TARGETS = 50;
/** Highnote's limit on signing keys valid at once. */
const MAX_VALID_SIGNING_KEYS = 5;
/** A retired key keeps signing for 24 hours after a rotation. */
export const SIGNING_KEY_OVERLAP_MS = 24 * 60 * 60 * 1000;
const SIGNING_SECRET_BYTES = 32;

function newSigningKey(): SigningKeyRecord {
  return {
    id: newId('sk'),
    secret: randomBytes(SIGNING_SECRET_BYTES).toString('hex'),
    createdAt: nowIso(),
    expiresAt: null,
  };
}

export function notificationTargetView(target: NotificationTargetRecord) {
  return {
    __typename: 'WebhookNotificationTarget',
    id: target.id,
    name: () => target.name,
    uri: target.uri,
    email: target.email,
    subscriptions: () => target.subscriptions,
    status: () => target.status,
    signingKeys: () =>
      validSigningKeys(target.signingKeys)
        .reverse()
        .map((key) => ({ __typename: 'SigningKey', ...key })),
    createdAt: target.createdAt,
    updatedAt: () => target.updatedAt,
    deactivatedAt: () => target.deactivatedAt,
  };
}

export function notificationEventView(event: NotificationEventRecord) {
  return { __typename: 'NotificationEvent', ...event };
}

/** Highnote requires https; the sandbox also takes http, so a local receiver needs no certificate. */
function isWebhookUri(uri: string): boolean {
  try {
    const url = new URL(uri);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

interface AddWebhookNotificationTargetInput {
  name: string;
  uri: string;
  email?: string | null;
  subscriptions: string[];
}

function addWebhookNotificationTarget(input: AddWebhookNotificationTargetInput, context: SandboxContext) {
  const { state } = context;
  if (input.name.length < 1 || input.name.length > NAME_MAX_LENGTH) {
    return userError('INVALID_INPUT', `name must be 1-${NAME_MAX_LENGTH} characters`, ['name']);
  }
  if (!isWebhookUri(input.uri)) return userError('INVALID_INPUT', 'uri must be an https:// (or http://) URL', ['uri']);
  if (state.notificationTargets.size >= MAX_TARGETS) {
    return userError('LIMIT_EXCEEDED', `at most ${MAX_TARGETS} notification targets`, []);
  }
  const createdAt = nowIso();
  const target: NotificationTargetRecord = {
    id: newId('nt'),
    name: input.name,
    uri: input.uri,
    email: input.email ?? null,
    subscriptions: [...new Set(input.subscriptions)],
    status: 'PENDING_VERIFICATION',
    signingKeys: [newSigningKey()],
    createdAt,
    updatedAt: createdAt,
    deactivatedAt: null,
  };
  state.notificationTargets.set(target.id, target);
  context.notifier.sendActivation(target);
  return notificationTargetView(target);
}

function findTarget(context: SandboxContext, targetId: string) {
  return context.state.notificationTargets.get(targetId) ?? null;
}

const TARGET_NOT_FOUND = () => userError('NOT_FOUND', 'notification target not found', ['targetId']);

/** Sends the activation event again; the target turns ACTIVE when the receiver answers 2xx. */
function activateNotificationTarget(input: { targetId: string }, context: SandboxContext) {
  const target = findTarget(context, input.targetId);
  if (!target) return TARGET_NOT_FOUND();
  if (target.status !== 'ACTIVE') {
    target.status = 'PENDING_VERIFICATION';
    target.deactivatedAt = null;
    target.updatedAt = nowIso();
    context.notifier.sendActivation(target);
  }
  return notificationTargetView(target);
}

function deactivateNotificationTarget(input: { targetId: string }, context: SandboxContext) {
  const target = findTarget(context, input.targetId);
  if (!target) return TARGET_NOT_FOUND();
  if (target.status !== 'DEACTIVATED') {
    target.status = 'DEACTIVATED';
    target.deactivatedAt = nowIso();
    target.updatedAt = target.deactivatedAt;
  }
  return notificationTargetView(target);
}

function removeNotificationTarget(input: { targetId: string }, context: SandboxContext) {
  const target = findTarget(context, input.targetId);
  if (!target) return TARGET_NOT_FOUND();
  context.state.notificationTargets.delete(target.id);
  target.status = 'DEACTIVATED';
  target.deactivatedAt ??= nowIso();
  return notificationTargetView(target);
}

/** The newest key signs alone from now on, and the ones before it for another 24 hours. */
function rotateNotificationTargetSigningKey(input: { targetId: string }, context: SandboxContext) {
  const target = findTarget(context, input.targetId);
  if (!target) return TARGET_NOT_FOUND();
  const valid = validSigningKeys(target.signingKeys);
  if (valid.length >= MAX_VALID_SIGNING_KEYS) {
    return userError('LIMIT_EXCEEDED', `at most ${MAX_VALID_SIGNING_KEYS} signing keys may be valid at once`, [
      'targetId',
    ]);
  }
  const retiredUntil = new Date(Date.now() + SIGNING_KEY_OVERLAP_MS).toISOString();
  for (const key of valid) key.expiresAt ??= retiredUntil;
  target.signingKeys = [...valid.reverse(), newSigningKey()];
  target.updatedAt = nowIso();
  return notificationTargetView(target);
}

function replayNotificationEvent(
  input: { notificationEventId: string; targetIds?: string[] | null },
  context: SandboxContext,
) {
  const event = context.state.notificationEvents.get(input.notificationEventId);
  if (!event) return userError('NOT_FOUND', 'notification event not found', ['notificationEventId']);
  const unknown = (input.targetIds ?? []).find((id) => !context.state.notificationTargets.has(id));
  if (unknown !== undefined) return userError('NOT_FOUND', `notification target ${unknown} not found`, ['targetIds']);
  context.notifier.replay(event, input.targetIds ?? null);
  return notificationEventView(event);
}

interface NotificationEventsArguments extends PageArguments {
  filterBy?: { createdAt?: TimestampFilter | null; name?: string[] | null } | null;
}

/** Oldest first, so a reader can page forward from its last cursor. */
function notificationEvents(args: NotificationEventsArguments, context: SandboxContext) {
  const names = args.filterBy?.name ?? null;
  const events = [...context.state.notificationEvents.values()].filter(
    (event) =>
      (names === null || names.includes(event.name)) &&
      withinTimestampFilter(event.createdAt, args.filterBy?.createdAt),
  );
  return connection(events, args, (event) => event.id, notificationEventView);
}

export const notificationQueries = { notificationEvents };

export const notificationMutations = {
  addWebhookNotificationTarget,
  activateNotificationTarget,
  deactivateNotificationTarget,
  removeNotificationTarget,
  rotateNotificationTargetSigningKey,
  replayNotificationEvent,
};
