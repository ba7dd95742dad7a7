import type { AccountHolderRecord, ApplicationStatus } from './store.js';

/*
 * Highnote's documented Test-environment magic values. Only these two steer the decision here; the
 * extra denial tags (date of birth, postal code, phone) are not simulated in this slice.
 */
export const FORCE_DECLINE_GIVEN_NAME = 'FORCE-DECLINE';
export const MANUAL_REVIEW_STREET_ADDRESS = '123 Manual Review St.';

/** The status an application starts in; PENDING is later approved by a timer. */
export function initialApplicationStatus(holder: AccountHolderRecord): ApplicationStatus {
  if (holder.name?.givenName === FORCE_DECLINE_GIVEN_NAME) return 'DENIED';
  if (holder.billingAddress?.streetAddress === MANUAL_REVIEW_STREET_ADDRESS) return 'IN_REVIEW';
  return 'PENDING';
}

export function isDecided(status: ApplicationStatus): boolean {
  return status === 'APPROVED' || status === 'DENIED' || status === 'CLOSED';
}
