/**
 * Money is integer cents (`bigint`) inside. At the HTTP edge amounts are decimal dollars as JSON
 * numbers with at most two decimals; conversion is exact and a third decimal is rejected.
 */

/** The largest single amount the API accepts: one billion dollars. */
export const maxAmountCents = 100_000_000_000n;
export const maxAmountDollars = Number(maxAmountCents / 100n);

export type DollarsParse = { ok: true; cents: bigint } | { ok: false; message: string };

/**
 * Converts a dollar amount to cents. For |x| below 2^53/100 the double nearest a two-decimal
 * number is exactly `cents / 100`, so the round trip proves there was no third decimal.
 */
export function dollarsToCents(dollars: number): DollarsParse {
  if (!Number.isFinite(dollars)) return { ok: false, message: 'must be a finite number' };
  if (Math.abs(dollars) > maxAmountDollars) return { ok: false, message: `must be at most ${maxAmountDollars}` };
  const cents = Math.round(dollars * 100);
  if (cents / 100 !== dollars) return { ok: false, message: 'must have at most two decimal places' };
  return { ok: true, cents: BigInt(cents) };
}

/**
 * Cents to a JSON dollar number. `Number(cents)` is exact below 2^53 and one correctly rounded
 * division gives the double nearest the decimal, which JSON prints with at most two decimals.
 */
export function centsToDollars(cents: bigint): number {
  return Number(cents) / 100;
}
