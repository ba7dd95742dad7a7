import type { IncomingMessage, ServerResponse } from 'node:http';

/** Far above any query this subset needs; a bigger body is refused before it is buffered. */
export const MAX_REQUEST_BODY_BYTES = 1024 * 1024;
const MAX_API_KEY_LENGTH = 255;
const BASE64_PATTERN = /^[A-Za-z0-9+/]+={0,2}$/;

export type BodyResult = { ok: true; value: unknown } | { ok: false; status: 400 | 413; message: string };

export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

export async function readJsonBody(request: IncomingMessage): Promise<BodyResult> {
  const chunks: Buffer[] = [];
  let receivedBytes = 0;
  for await (const chunk of request) {
    const buffer = chunk as Buffer;
    receivedBytes += buffer.length;
    if (receivedBytes > MAX_REQUEST_BODY_BYTES) {
      return { ok: false, status: 413, message: `body exceeds ${MAX_REQUEST_BODY_BYTES} bytes` };
    }
    chunks.push(buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, status: 400, message: 'body is not valid JSON' };
  }
}

/**
 * Highnote's HTTP Basic scheme: the API key is the username and the password is empty. Clients
 * differ on whether they encode `key` or `key:`; both mean the same and both are accepted.
 * Returns the API key, or null when the header is missing or malformed.
 */
export function apiKeyFromAuthorization(header: string | undefined): string | null {
  const match = header?.match(/^Basic ([^\s]+)$/i);
  const encoded = match?.[1];
  if (!encoded || !BASE64_PATTERN.test(encoded)) return null;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const separator = decoded.indexOf(':');
  const username = separator === -1 ? decoded : decoded.slice(0, separator);
  const password = separator === -1 ? '' : decoded.slice(separator + 1);
  if (username === '' || password !== '' || username.length > MAX_API_KEY_LENGTH) return null;
  return username;
}
