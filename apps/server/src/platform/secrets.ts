import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Secrets at rest (an organization's Highnote API key): AES-256-GCM under the process's
 * encryption key (`TRANCHE_ENCRYPTION_KEY`). A sealed value is `v1.<iv>.<tag>.<ciphertext>`, each
 * base64url; the version lets a later key rotation tell old from new. The authentication tag
 * makes a tampered or wrongly keyed value fail to open instead of decrypting to garbage.
 */

const version = 'v1';
const ivBytes = 12;
export const encryptionKeyBytes = 32;

export function sealSecret(key: Buffer, plaintext: string): string {
  const iv = randomBytes(ivBytes);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [version, iv, cipher.getAuthTag(), ciphertext]
    .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
    .join('.');
}

/** The plaintext of a sealed value; throws when the key is wrong or the value was changed. */
export function openSecret(key: Buffer, sealed: string): string {
  const [tag, iv, authTag, ciphertext] = sealed.split('.');
  if (tag !== version || iv === undefined || authTag === undefined || ciphertext === undefined) {
    throw new Error('a sealed secret in an unknown format');
  }
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAuthTag(Buffer.from(authTag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
}

/** Parses `TRANCHE_ENCRYPTION_KEY`: 32 bytes as base64 (44 characters) or hex (64). */
export function parseEncryptionKey(raw: string): Buffer | undefined {
  const trimmed = raw.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  return key.length === encryptionKeyBytes ? key : undefined;
}

export function newEncryptionKey(): string {
  return randomBytes(encryptionKeyBytes).toString('base64');
}
