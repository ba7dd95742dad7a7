import { ApiError } from './errors.js';
import { centsToDollars, dollarsToCents } from './money.js';

export function iso(value: Date | null): string | null {
  return value === null ? null : value.toISOString();
}

export function isoRequired(value: Date): string {
  return value.toISOString();
}

export const dollars = centsToDollars;

/** Parses a dollar field of a validated body; a third decimal is a validation error naming the field. */
export function centsOf(value: number, param: string): bigint {
  const parsed = dollarsToCents(value);
  if (!parsed.ok) throw new ApiError('validation_error', `${param} ${parsed.message}`, param);
  if (parsed.cents <= 0n) throw new ApiError('validation_error', `${param} must be greater than 0`, param);
  return parsed.cents;
}

export function optionalCentsOf(value: number | undefined, param: string): bigint | undefined {
  return value === undefined ? undefined : centsOf(value, param);
}
