import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newOrganization, startTestServer, type TestServer } from '../../../apps/server/test/harness.js';
import { Tranche } from '../src/index.js';
import {
  type ClientCredentialWithSecret,
  createClientCredential,
  OAuthError,
  OAuthTokenProvider,
  refreshTokenLifetimeMs,
  requestToken,
} from '../src/oauth.js';

/** The OAuth2 flow from the SDK, against the real server. */

let server: TestServer;
let apiKey: string;
let credential: ClientCredentialWithSecret;

beforeAll(async () => {
  server = await startTestServer();
  apiKey = (await newOrganization(server)).apiKey;
  credential = await createClientCredential({
    baseUrl: server.baseUrl,
    apiKey,
    clientPassword: 'correct horse battery staple',
  });
});

afterAll(async () => {
  await server.close();
});

/** `fetch` that records the grant of every token request, and may rewrite a request once. */
function recordingFetch(rewrite?: (init: RequestInit) => RequestInit) {
  const grants: string[] = [];
  let pendingRewrite = rewrite;
  const wrapped: typeof fetch = async (input, init) => {
    const url = String(input);
    const grant = new URL(url).searchParams.get('grant_type');
    if (grant !== null) grants.push(grant);
    let sent = init ?? {};
    if (grant === 'refresh_token' && pendingRewrite !== undefined) {
      sent = pendingRewrite(sent);
      pendingRewrite = undefined;
    }
    return fetch(input, sent);
  };
  return { fetch: wrapped, grants };
}

async function programsWith(token: string): Promise<number> {
  return (await fetch(`${server.baseUrl}/v1/programs`, { headers: { authorization: `Bearer ${token}` } })).status;
}

describe('OAuth2 from the SDK', () => {
  it('drives the client: every call carries an access token, and a refused one is renewed once', async () => {
    const recorded = recordingFetch();
    const provider = new OAuthTokenProvider({ baseUrl: server.baseUrl, ...credential, fetch: recorded.fetch });
    const tranche = new Tranche({ baseUrl: server.baseUrl, oauth: provider });
    const program = await tranche.programs.create({ name: 'OAuth program', totalAwardPool: 100, maxParticipants: 2 });
    expect(program.object).toBe('program');
    expect((await tranche.programs.retrieve(program.id)).id).toBe(program.id);
    expect(recorded.grants).toEqual(['client_credentials']);
    // A token the API refuses (here: not a token at all) is dropped, and the call goes through with a new one.
    const stale = {
      getAccessToken: async () => (renewed ? provider.getAccessToken() : 'eyJ.not.valid'),
      invalidate: () => {
        renewed = true;
      },
    };
    let renewed = false;
    const flaky = new Tranche({ baseUrl: server.baseUrl, oauth: stale });
    expect((await flaky.programs.retrieve(program.id)).id).toBe(program.id);
    expect(renewed).toBe(true);
  });

  it('creates a client credential with the Stretch fields', () => {
    expect(credential.clientId).toMatch(/^cli_/);
    expect(credential.clientSecret).toMatch(/^cs_/);
    expect(credential.scope).toBe('write');
    for (const field of ['encodedClientSecret', 'encodedPrivateKey', 'encodedPublicKey'] as const) {
      expect(credential[field]).toMatch(/^[A-Za-z0-9+/]+=*$/);
    }
    expect(typeof credential.creationTimestamp).toBe('number');
  });

  it('gets a token once, shares it between concurrent callers, and the API accepts it', async () => {
    const recorded = recordingFetch();
    const provider = new OAuthTokenProvider({ baseUrl: server.baseUrl, ...credential, fetch: recorded.fetch });
    const [first, second] = await Promise.all([provider.getAccessToken(), provider.getAccessToken()]);
    expect(first).toBe(second);
    expect(await provider.getAccessToken()).toBe(first);
    expect(recorded.grants).toEqual(['client_credentials']);
    expect(await programsWith(first)).toBe(200);
  });

  it('refreshes shortly before expiry, and falls back to the client credentials when a refresh fails', async () => {
    let now = Date.now();
    const recorded = recordingFetch((init) => ({
      ...init,
      headers: { ...(init.headers as Record<string, string>), 'refresh-token': 'rt_spent_or_stolen' },
    }));
    const provider = new OAuthTokenProvider({
      baseUrl: server.baseUrl,
      ...credential,
      fetch: recorded.fetch,
      now: () => now,
    });
    const first = await provider.getAccessToken();
    now += 3_600_000 - 30_000; // inside the refresh margin
    const afterFailedRefresh = await provider.getAccessToken();
    expect(recorded.grants).toEqual(['client_credentials', 'refresh_token', 'client_credentials']);
    expect(afterFailedRefresh).not.toBe(first);

    now += 3_600_000;
    const refreshed = await provider.getAccessToken();
    expect(recorded.grants.slice(3)).toEqual(['refresh_token']);
    expect(await programsWith(refreshed)).toBe(200);

    // A refresh token past its 48 hours is not tried at all.
    now += refreshTokenLifetimeMs;
    await provider.getAccessToken();
    expect(recorded.grants.slice(4)).toEqual(['client_credentials']);

    provider.invalidate();
    await provider.getAccessToken();
    expect(recorded.grants.slice(5)).toEqual(['refresh_token']);
  });

  it('a wrong secret is an OAuthError with the API code', async () => {
    const error = await requestToken({
      baseUrl: server.baseUrl,
      clientId: credential.clientId,
      clientSecret: 'cs_wrong',
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OAuthError);
    expect(error).toMatchObject({ status: 401, code: 'unauthorized' });
    const provider = new OAuthTokenProvider({
      baseUrl: server.baseUrl,
      clientId: credential.clientId,
      clientSecret: 'cs_wrong',
    });
    await expect(provider.getAccessToken()).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
  });
});
