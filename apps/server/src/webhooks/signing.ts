import { createHmac, randomBytes } from 'node:crypto';

/**
 * Standard Webhooks signing (symmetric, `v1`): the secret is `whsec_` and the base64 of random
 * bytes; the signature is `v1,` and the base64 of HMAC-SHA256 over `${id}.${timestamp}.${body}`
 * keyed with the decoded bytes. Several signatures are sent space-separated while a rotated
 * secret overlaps the new one, so a receiver holding either verifies.
 */

export const webhookSecretPrefix = 'whsec_';
/** Random bytes of a new secret; the spec asks for 24 to 64. */
export const webhookSecretBytes = 32;

export function newWebhookSecret(): string {
  return `${webhookSecretPrefix}${randomBytes(webhookSecretBytes).toString('base64')}`;
}

function secretBytesOf(secret: string): Buffer {
  const encoded = secret.startsWith(webhookSecretPrefix) ? secret.slice(webhookSecretPrefix.length) : secret;
  return Buffer.from(encoded, 'base64');
}

/** One `v1,<base64>` signature of a message under one secret. */
export function signatureOf(secret: string, id: string, timestampSeconds: number, body: string): string {
  const digest = createHmac('sha256', secretBytesOf(secret)).update(`${id}.${timestampSeconds}.${body}`).digest();
  return `v1,${digest.toString('base64')}`;
}

/** The three Standard Webhooks headers of one attempt, signed with every given secret. */
export function signedHeaders(
  secrets: readonly string[],
  id: string,
  timestampSeconds: number,
  body: string,
): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': secrets.map((secret) => signatureOf(secret, id, timestampSeconds, body)).join(' '),
  };
}
