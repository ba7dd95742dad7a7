import { createHmac } from 'node:crypto';
import { type ClientRequest, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { JsonObject, NotificationEventRecord, SigningKeyRecord } from './store.js';

/*
 * One webhook POST, shaped as Highnote sends it: the documented envelope, its user agent, and an
 * HMAC-SHA256 of the exact body per valid signing key in `highnote-signature`.
 */

export const USER_AGENT = 'HighnotePlatform/1.0.0';

export function envelopeBody(event: Pick<NotificationEventRecord, 'id' | 'name' | 'createdAt' | 'node'>): string {
  const notificationEvent: JsonObject = {
    __typename: 'NotificationEvent',
    id: event.id,
    name: event.name,
    createdAt: event.createdAt,
    node: event.node,
  };
  return JSON.stringify({ data: { node: notificationEvent }, extensions: { signatureTimestamp: Date.now() } });
}

/** Keys that may sign now, newest first: the newest, plus retired ones until their expiry. */
export function validSigningKeys(keys: readonly SigningKeyRecord[], now = Date.now()): SigningKeyRecord[] {
  // Keys are kept in creation order, so the newest is last.
  return keys.filter((key) => key.expiresAt === null || Date.parse(key.expiresAt) > now).reverse();
}

/** Lowercase hex HMAC-SHA256 of the body, one per key, comma-separated. */
export function signatureHeader(body: string, keys: readonly SigningKeyRecord[]): string {
  return keys.map((key) => createHmac('sha256', key.secret).update(body, 'utf8').digest('hex')).join(',');
}

export interface PostOptions {
  body: string;
  signature: string;
  replay: boolean;
  timeoutMs: number;
  /** Open requests, so that reset and close can end them. */
  inFlight: Set<ClientRequest>;
}

/** Resolves to the HTTP status, or null when the request could not be made or got no answer in time. */
export function postNotification(uri: string, options: PostOptions): Promise<number | null> {
  return new Promise((resolve) => {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      resolve(null);
      return;
    }
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(options.body),
      'user-agent': USER_AGENT,
      'highnote-signature': options.signature,
    };
    if (options.replay) headers['highnote-replay'] = 'true';
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    // No shared agent: each delivery uses its own connection, so nothing lingers after close().
    const request = send(url, { method: 'POST', headers, agent: false, timeout: options.timeoutMs }, (response) => {
      options.inFlight.delete(request);
      response.resume();
      resolve(response.statusCode ?? null);
    });
    request.on('timeout', () => request.destroy(new Error('notification delivery timed out')));
    request.on('error', () => {
      options.inFlight.delete(request);
      resolve(null);
    });
    options.inFlight.add(request);
    request.end(options.body);
  });
}

export function isSuccess(status: number | null): boolean {
  return status !== null && status >= 200 && status < 300;
}
