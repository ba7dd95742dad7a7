import { constants, createPrivateKey, privateDecrypt } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { accessTokenSigningKey, signAccessToken } from '../src/credentials/tokens.js';
import {
  adminToken,
  type Client,
  client,
  newOrganization,
  startTestServer,
  type TestServer,
  testEncryptionKey,
} from './harness.js';

/** API keys, scopes, OAuth2 client credentials and tokens, and the rate limit, over HTTP. */

let server: TestServer;
let org: Awaited<ReturnType<typeof newOrganization>>;

beforeAll(async () => {
  server = await startTestServer();
  org = await newOrganization(server, 'Credentials');
});

afterAll(async () => {
  await server.close();
});

const basic = (clientId: string, secret: string) => ({
  authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`,
});

async function rows(query: ReturnType<typeof sql>) {
  return (await query.execute(server.database.db)).rows as Record<string, unknown>[];
}

/** Every stored idempotent response, as text: no secret may appear in it. */
async function storedResponses(): Promise<string> {
  const stored = await rows(sql`SELECT response_body FROM idempotency_keys WHERE response_body IS NOT NULL`);
  return JSON.stringify(stored);
}

async function newClient(call: Client, body: Record<string, unknown> = {}) {
  const created = await call('POST', '/v1/client-credentials', { clientPassword: 'correct horse battery', ...body });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body;
}

async function token(clientId: string, secret: string) {
  return client(server.baseUrl)(
    'POST',
    '/v1/oauth2/token?grant_type=client_credentials',
    undefined,
    basic(clientId, secret),
  );
}

describe('API keys', () => {
  it('the first key of an organization is a write key, stored hashed', async () => {
    const [first] = await rows(
      sql`SELECT scope, secret_hash, secret_last4 FROM api_keys WHERE organization_id = ${org.id}`,
    );
    expect(first).toMatchObject({ scope: 'write', secret_last4: org.apiKey.slice(-4) });
    expect(first?.secret_hash).not.toContain(org.apiKey);
  });

  it('creates a read key shown once, lists and retrieves it, and a read key cannot write', async () => {
    const created = await org.call(
      'POST',
      '/v1/api-keys',
      { name: 'Reporting', scope: 'read' },
      { 'Idempotency-Key': 'key-1' },
    );
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ object: 'api_key', name: 'Reporting', scope: 'read', revokedAt: null });
    expect(created.body.secret).toMatch(/^sk_[A-Za-z0-9_-]{43}$/);
    expect(created.body.last4).toBe(created.body.secret.slice(-4));

    const listed = await org.call('GET', '/v1/api-keys');
    expect(listed.body.data.map((key: { id: string }) => key.id)).toContain(created.body.id);
    expect(listed.body.data.every((key: Record<string, unknown>) => !('secret' in key))).toBe(true);
    const retrieved = await org.call('GET', `/v1/api-keys/${created.body.id}`);
    const { secret, ...withoutSecret } = created.body;
    expect(retrieved.body).toEqual(withoutSecret);

    const reader = client(server.baseUrl, secret);
    expect((await reader('GET', '/v1/programs')).status).toBe(200);
    const refused = await reader('POST', '/v1/programs', { name: 'x', totalAwardPool: 1, maxParticipants: 1 });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('forbidden');
    expect((await reader('POST', '/v1/api-keys', { scope: 'write' })).status).toBe(403);
    expect((await reader('DELETE', `/v1/api-keys/${created.body.id}`)).status).toBe(403);
    expect(await rows(sql`SELECT id FROM programs WHERE organization_id = ${org.id}`)).toHaveLength(0);

    // A replay answers without the secret: it was never stored.
    const replay = await org.call(
      'POST',
      '/v1/api-keys',
      { name: 'Reporting', scope: 'read' },
      { 'Idempotency-Key': 'key-1' },
    );
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual({ ...created.body, secret: `sk_…${created.body.last4}` });
    expect(await storedResponses()).not.toContain(secret);
    expect(await storedResponses()).not.toContain(org.apiKey);
  });

  it('revokes a key at once, keeps the row, and records both events', async () => {
    const created = await org.call('POST', '/v1/api-keys', { scope: 'write' });
    const holder = client(server.baseUrl, created.body.secret);
    expect((await holder('GET', '/v1/programs')).status).toBe(200); // now cached
    const revoked = await org.call('DELETE', `/v1/api-keys/${created.body.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    const refused = await holder('GET', '/v1/programs');
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe('unauthorized');
    expect((await org.call('DELETE', `/v1/api-keys/${created.body.id}`)).body).toEqual(revoked.body);
    // A key does not revoke itself: the organization would lock itself out.
    const [first] = await rows(sql`SELECT id FROM api_keys WHERE organization_id = ${org.id} ORDER BY id LIMIT 1`);
    const itself = await org.call('DELETE', `/v1/api-keys/${first?.id}`);
    expect(itself.status).toBe(409);
    expect(itself.body.error.code).toBe('invalid_state');
    expect((await org.call('GET', '/v1/programs')).status).toBe(200);
    expect(
      await rows(sql`SELECT id FROM api_keys WHERE id = ${created.body.id} AND revoked_at IS NOT NULL`),
    ).toHaveLength(1);
    const types = (
      await rows(
        sql`SELECT type FROM events WHERE organization_id = ${org.id} AND data::text LIKE ${`%${created.body.id}%`}`,
      )
    ).map((row) => row.type);
    expect(types.sort()).toEqual(['api_key.created', 'api_key.revoked']);
    await expect(sql`DELETE FROM api_keys WHERE id = ${created.body.id}`.execute(server.database.db)).rejects.toThrow(
      /never deleted/,
    );
    await expect(
      sql`UPDATE api_keys SET revoked_at = NULL WHERE id = ${created.body.id}`.execute(server.database.db),
    ).rejects.toThrow(/only by being revoked/);
  });

  it("another organization's key is 404, and bad input is 400", async () => {
    const other = await newOrganization(server, 'Other');
    const created = await org.call('POST', '/v1/api-keys', { scope: 'read' });
    expect((await other.call('GET', `/v1/api-keys/${created.body.id}`)).status).toBe(404);
    expect((await other.call('DELETE', `/v1/api-keys/${created.body.id}`)).status).toBe(404);
    expect((await org.call('POST', '/v1/api-keys', { scope: 'admin' })).status).toBe(400);
    expect((await org.call('POST', '/v1/api-keys', {})).body.error.param).toBe('scope');
  });
});

describe('OAuth2 client credentials', () => {
  it('creates a client whose encoded secret and key pair fit together, and stores no secret', async () => {
    const created = await org.call(
      'POST',
      '/v1/client-credentials',
      { clientPassword: 'correct horse battery' },
      { 'Idempotency-Key': 'client-1' },
    );
    expect(created.status).toBe(201);
    const body = created.body;
    expect(body).toMatchObject({ object: 'client_credential', scope: 'write', revokedAt: null });
    expect(body.clientId).toBe(body.id);
    expect(body.clientSecret).toMatch(/^cs_/);
    expect(Math.abs(body.creationTimestamp - Date.now())).toBeLessThan(60_000);
    const privateKey = createPrivateKey({
      key: Buffer.from(body.encodedPrivateKey, 'base64'),
      format: 'der',
      type: 'pkcs8',
      passphrase: 'correct horse battery',
    });
    const secret = privateDecrypt(
      { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      Buffer.from(body.encodedClientSecret, 'base64'),
    ).toString('utf8');
    expect(secret).toBe(body.clientSecret);

    const replay = await org.call(
      'POST',
      '/v1/client-credentials',
      { clientPassword: 'correct horse battery' },
      { 'Idempotency-Key': 'client-1' },
    );
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.clientId).toBe(body.clientId);
    expect(replay.body.clientSecret).toBe(`cs_…${body.last4}`);
    const stored = await storedResponses();
    for (const hidden of [body.clientSecret, body.encodedClientSecret, body.encodedPrivateKey, 'correct horse']) {
      expect(stored).not.toContain(hidden);
    }
    const listed = await org.call('GET', '/v1/client-credentials');
    expect(listed.body.data[0]).toEqual(
      Object.fromEntries(
        Object.entries(body).filter(
          ([key]) => !['clientSecret', 'encodedClientSecret', 'encodedPrivateKey'].includes(key),
        ),
      ),
    );
  });

  it('exchanges the secret for a bearer JWT that acts for the organization, and refreshes with rotation', async () => {
    const created = await newClient(org.call);
    const granted = await token(created.clientId, created.clientSecret);
    expect(granted.status).toBe(200);
    expect(granted.body).toMatchObject({ expiresIn: 3600, scope: 'write', tokenType: 'bearer' });
    expect(granted.body.accessToken.split('.')).toHaveLength(3);
    const bearer = client(server.baseUrl, granted.body.accessToken);
    const program = await bearer('POST', '/v1/programs', { name: 'Via OAuth', totalAwardPool: 10, maxParticipants: 1 });
    expect(program.status).toBe(201);
    expect((await org.call('GET', `/v1/programs/${program.body.id}`)).status).toBe(200);
    const [event] = await rows(
      sql`SELECT actor FROM events WHERE organization_id = ${org.id} AND type = 'program.created'`,
    );
    expect(String(event?.actor)).toContain(created.clientId);

    // The encoded secret works as the Basic password too (Stretch's clients send it).
    expect((await token(created.clientId, created.encodedClientSecret)).status).toBe(200);
    expect((await token(created.clientId, 'cs_wrong')).status).toBe(401);
    expect((await token('cli_unknown', created.clientSecret)).status).toBe(401);
    const noBasic = await client(server.baseUrl)('POST', '/v1/oauth2/token?grant_type=client_credentials');
    expect(noBasic.status).toBe(401);
    expect(noBasic.body.error.code).toBe('unauthorized');

    const refresh = (refreshToken: string) =>
      client(server.baseUrl)('POST', '/v1/oauth2/token?grant_type=refresh_token', undefined, {
        ...basic(created.clientId, created.clientSecret),
        'refresh-token': refreshToken,
      });
    const second = await refresh(granted.body.refreshToken);
    expect(second.status).toBe(200);
    expect(second.body.refreshToken).not.toBe(granted.body.refreshToken);
    expect((await client(server.baseUrl, second.body.accessToken)('GET', '/v1/programs')).status).toBe(200);
    // Reusing the spent refresh token revokes the whole family: the new tokens stop too.
    const reused = await refresh(granted.body.refreshToken);
    expect(reused.status).toBe(401);
    expect((await client(server.baseUrl, second.body.accessToken)('GET', '/v1/programs')).status).toBe(401);
    expect((await refresh(second.body.refreshToken)).status).toBe(401);
    expect((await refresh('rt_not_a_token')).status).toBe(401);
    // Another family of the same client is unaffected.
    const fresh = await token(created.clientId, created.clientSecret);
    expect((await client(server.baseUrl, fresh.body.accessToken)('GET', '/v1/programs')).status).toBe(200);
  });

  it('revoking a client stops its tokens and its secret at once', async () => {
    const created = await newClient(org.call);
    const granted = await token(created.clientId, created.clientSecret);
    const bearer = client(server.baseUrl, granted.body.accessToken);
    expect((await bearer('GET', '/v1/programs')).status).toBe(200);
    const revoked = await org.call('DELETE', `/v1/client-credentials/${created.clientId}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    expect((await bearer('GET', '/v1/programs')).status).toBe(401);
    expect((await token(created.clientId, created.clientSecret)).status).toBe(401);
    const refreshed = await client(server.baseUrl)('POST', '/v1/oauth2/token?grant_type=refresh_token', undefined, {
      ...basic(created.clientId, created.clientSecret),
      'refresh-token': granted.body.refreshToken,
    });
    expect(refreshed.status).toBe(401);
    const types = (
      await rows(
        sql`SELECT type FROM events WHERE organization_id = ${org.id} AND data::text LIKE ${`%${created.clientId}%`}`,
      )
    ).map((row) => row.type);
    expect(types.sort()).toEqual(['client_credential.created', 'client_credential.revoked']);
  });

  it('a read client gets read tokens; expired and forged tokens are 401', async () => {
    const created = await newClient(org.call, { scope: 'read' });
    const granted = await token(created.clientId, created.clientSecret);
    expect(granted.body.scope).toBe('read');
    const bearer = client(server.baseUrl, granted.body.accessToken);
    expect((await bearer('GET', '/v1/programs')).status).toBe(200);
    expect((await bearer('POST', '/v1/users', {})).status).toBe(403);

    const key = accessTokenSigningKey(testEncryptionKey);
    const familyId = JSON.parse(Buffer.from(granted.body.accessToken.split('.')[1], 'base64url').toString()).fam;
    const principal = { organizationId: org.id, credentialId: created.clientId, scope: 'write' as const, familyId };
    const expired = signAccessToken(key, principal, Date.now() - 2 * 3_600_000).token;
    expect((await client(server.baseUrl, expired)('GET', '/v1/programs')).status).toBe(401);
    const forged = signAccessToken(Buffer.alloc(32, 1), principal).token;
    expect((await client(server.baseUrl, forged)('GET', '/v1/programs')).status).toBe(401);
    const [head, , signature] = granted.body.accessToken.split('.');
    const escalated = Buffer.from(JSON.stringify({ ...principal, scope: 'write' })).toString('base64url');
    expect((await client(server.baseUrl, `${head}.${escalated}.${signature}`)('GET', '/v1/programs')).status).toBe(401);
  });

  it('the operator creates a client for a named organization; an API key only for its own', async () => {
    const operator = client(server.baseUrl, adminToken);
    const created = await newClient(operator, { organizationId: org.id });
    expect((await org.call('GET', `/v1/client-credentials/${created.clientId}`)).status).toBe(200);
    const unnamed = await operator('POST', '/v1/client-credentials', { clientPassword: 'correct horse battery' });
    expect(unnamed.status).toBe(400);
    expect(unnamed.body.error.param).toBe('organizationId');
    const unknown = await operator('POST', '/v1/client-credentials', {
      clientPassword: 'correct horse battery',
      organizationId: 'org_01jd8n3q7v0c4x2m5k9e6t1hzr',
    });
    expect(unknown.status).toBe(404);
    const other = await newOrganization(server, 'Another');
    const foreign = await other.call('POST', '/v1/client-credentials', {
      clientPassword: 'correct horse battery',
      organizationId: org.id,
    });
    expect(foreign.status).toBe(404);
    expect((await other.call('GET', `/v1/client-credentials/${created.clientId}`)).status).toBe(404);
  });
});

describe('rate limits', () => {
  it('answers 429 rate_limited with Retry-After per credential, in the error envelope', async () => {
    const limits = { adminToken, logLevel: 'silent', rateLimitPerSecond: 1, rateLimitBurst: 3 };
    const app = await buildApp(limits, server.database, { logger: false, encryptionKey: testEncryptionKey });
    try {
      const get = (key: string) =>
        app.inject({ method: 'GET', url: '/v1/programs', headers: { authorization: `Bearer ${key}` } });
      // At once, so that the bucket (one request a second) cannot refill in between on a slow machine.
      const burst = await Promise.all([get(org.apiKey), get(org.apiKey), get(org.apiKey)]);
      expect(burst.map((response) => response.statusCode)).toEqual([200, 200, 200]);
      const limited = await get(org.apiKey);
      expect(limited.statusCode).toBe(429);
      expect(limited.headers['retry-after']).toBe('1');
      expect(limited.json()).toEqual({
        error: { code: 'rate_limited', message: expect.any(String), requestId: limited.headers['x-request-id'] },
      });
      // Another credential has its own budget.
      const other = await newOrganization(server, 'Unthrottled');
      expect((await get(other.apiKey)).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
