import type { JobRequest } from '../platform/jobs.js';

/**
 * What Tranche asks Highnote to notify it of, and the job that registers the notification target.
 * Kept free of imports from the rest of the app, so the configuration service can ask for a
 * registration without importing the notification module (which imports it).
 */

export const transferEventPrefix = 'INTERNAL_TRANSFER_FROM_FUNDING_FINANCIAL_ACCOUNT_TO_PAYMENT_CARD_FINANCIAL_ACCOUNT';
export const transferCompleted = `${transferEventPrefix}_COMPLETED`;
export const transferFailed = `${transferEventPrefix}_FAILED`;

export const applicationEvents = [
  'CARD_PRODUCT_APPLICATION_APPROVED',
  'CARD_PRODUCT_APPLICATION_DENIED',
  'CARD_PRODUCT_APPLICATION_MANUAL_REVIEW',
  'CARD_PRODUCT_APPLICATION_CLOSED',
] as const;

export const cardLifecycleEvents = [
  'PAYMENT_CARD_ACTIVATED',
  'PAYMENT_CARD_SUSPENDED',
  'PAYMENT_CARD_UNSUSPENDED',
  'PAYMENT_CARD_CLOSED',
] as const;

export const physicalOrderEvents = ['PHYSICAL_PAYMENT_CARD_SHIPPED', 'PHYSICAL_PAYMENT_CARD_SHIP_FAILED'] as const;

/** Card transactions: recorded as spend events and attributed to the milestones that paid for them. */
export const spendEvents = [
  'PAYMENT_CARD_AUTHORIZATION_APPROVED',
  'PAYMENT_CARD_AUTHORIZATION_DECLINED',
  'PAYMENT_CARD_AUTHORIZATION_REVERSED',
  'PAYMENT_CARD_CLEARED',
] as const;

/** Stored only: Tranche keeps no financial account state of its own (see the README). */
export const accountStatusEvents = [
  'ACCOUNT_STATUS_ACTIVE',
  'ACCOUNT_STATUS_SUSPENDED',
  'ACCOUNT_STATUS_UNDER_REVIEW',
  'ACCOUNT_STATUS_PENDING_CLOSURE',
  'ACCOUNT_STATUS_CLOSED',
] as const;

/** Every `NotificationEventName` the target subscribes to. `NOTIFICATION_ACTIVATION` is sent regardless. */
export const subscribedEvents: readonly string[] = [
  ...applicationEvents,
  'PAYMENT_CARD_ISSUED',
  ...cardLifecycleEvents,
  ...physicalOrderEvents,
  `${transferEventPrefix}_PENDING`,
  transferCompleted,
  transferFailed,
  ...spendEvents,
  ...accountStatusEvents,
];

export const activationEvent = 'NOTIFICATION_ACTIVATION';

export const registerTargetJobName = 'notifications.register_target';
/** Attempts of one registration: with the backoff below, about a day of trying. */
export const registerTargetMaxAttempts = 30;

export interface RegisterTargetPayload {
  organizationId: string;
}

/** Registers (or re-registers, after a new configuration) the organization's notification target. */
export function registerTargetRequest(organizationId: string): JobRequest {
  const payload: RegisterTargetPayload = { organizationId };
  return {
    name: registerTargetJobName,
    payload,
    organizationId,
    maxAttempts: registerTargetMaxAttempts,
    dedupeKey: `${registerTargetJobName}:${organizationId}`,
  };
}
