/**
 * The ledger's closed lists, declared once: the row types, the route schemas and a test that
 * holds the migrations' CHECK constraints to these values all read them from here.
 */
export const accountKinds = ['funding', 'pool', 'in_transit', 'disbursed'] as const;
export type AccountKind = (typeof accountKinds)[number];

/** posted, a pending reservation, or the post or void that resolves one. */
export const transferKinds = ['posted', 'pending', 'post_pending', 'void_pending'] as const;
export type TransferKind = (typeof transferKinds)[number];

/** Why money moved. */
export const transferCodes = [
  'program_funding',
  'reservation',
  'program_return',
  'settlement',
  'disbursement_return',
] as const;
export type TransferCode = (typeof transferCodes)[number];
