import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Highnote's notification signature (`shared/reference/highnote.md` §8): `highnote-signature` is
 * a comma-separated list (one per valid signing key; several during a key rotation) of the
 * lowercase hex HMAC-SHA256 of the raw body. The body is verified byte for byte as it arrived,
 * never as re-serialized JSON.
 */

/** How far `extensions.signatureTimestamp` may be from now: the official SDK's default. */
export const signatureToleranceMs = 15 * 60 * 1000;
/** Most signatures one header may carry: Highnote keeps at most 5 keys valid at once. */
export const maxSignaturesPerHeader = 5;
/** Length of one signature: 32 bytes of HMAC-SHA256 as hex. */
const signatureHexLength = 64;

export function signatureOf(secret: string, body: Buffer): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** Whether any signature in the header is the body's HMAC under any of the secrets. */
export function signedByAny(header: string | undefined, body: Buffer, secrets: readonly string[]): boolean {
  if (header === undefined || secrets.length === 0) return false;
  const given = header
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length === signatureHexLength && /^[0-9a-f]+$/.test(part))
    .slice(0, maxSignaturesPerHeader)
    .map((part) => Buffer.from(part, 'hex'));
  let matched = false;
  // Every pair is compared (no early exit), so the time taken says nothing about which matched.
  for (const secret of secrets) {
    const expected = Buffer.from(signatureOf(secret, body), 'hex');
    for (const signature of given) {
      if (timingSafeEqual(expected, signature)) matched = true;
    }
  }
  return matched;
}

/** Whether the signed timestamp (ms since the epoch) is within the tolerance of now. */
export function timestampIsFresh(timestampMs: unknown, now: number): boolean {
  return (
    typeof timestampMs === 'number' &&
    Number.isFinite(timestampMs) &&
    Math.abs(now - timestampMs) <= signatureToleranceMs
  );
}
