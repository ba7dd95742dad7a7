import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from '../../../packages/highnote-sandbox/src/index.js';
import { accessTokenSigningKey, signAccessToken } from '../src/credentials/tokens.js';
import {
  adminToken,
  type Call,
  client,
  countRows,
  newOrganization,
  pollUntil,
  programWithUser,
  startTestServer,
  type TestServer,
  testEncryptionKey,
} from './harness.js';

/**
 * The security matrix, generated from the API document (`GET /openapi.json`): every operation is
 * called with no credential, a wrong one, an expired and a forged access token, a revoked key, a
 * read-only key, the operator token, and another organization's key on the first organization's
 * ids, and must answer as its security says. An operation this file cannot build a call for (a
 * path parameter without an example id below, an unknown security) fails the suite: a new route
 * is covered by adding its ids here, never by being skipped.
 */

let sandbox: RunningSandbox;
let server: TestServer;
let owner: Awaited<ReturnType<typeof newOrganization>>;
let other: Awaited<ReturnType<typeof newOrganization>>;
let document: OpenApiDocument;
/** Credentials of the owner: a read key, a revoked key, an expired and a forged access token. */
let credentials: { read: string; revoked: string; expired: string; forged: string; access: string };
/**
 * Example ids by the path segment before the parameter (`/v1/programs/{id}` → `programs`), each of
 * a real object of the owner where one can be made; a well-formed id of nothing where not (a
 * delivery no worker made, a job the operator routes take).
 */
let exampleIds: Record<string, string>;

interface Operation {
  method: string;
  path: string;
  security?: Record<string, unknown>[];
  requestBody?: { content?: Record<string, { schema?: Schema }> };
}
type Schema = Record<string, unknown>;
interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema> };
}

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0, applicationApprovalDelayMs: 10, transferSettlementDelayMs: 10 });
  server = await startTestServer({ sandbox });
  owner = await newOrganization(server, 'Owner');
  other = await newOrganization(server, 'Other tenant');
  const call = owner.call;
  const { programId, userId } = await programWithUser(call);
  const task = await call('POST', '/v1/tasks', { programId, name: 'T', monetaryValue: 10 });
  const userTask = await call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 20 });
  const done = await call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 5 });
  const completed = await call('PUT', `/v1/usertasks/${done.body.id}/complete`);
  const holder = await call('POST', '/v1/users', {
    firstName: 'Ada',
    lastName: 'Lovelace',
    dateOfBirth: '1990-12-10',
    address: { line1: '1 Main St', city: 'Austin', state: 'TX', postalCode: '73301', country: 'USA' },
  });
  const application = await call('POST', '/v1/applications', {
    userId: holder.body.id,
    consent: { acceptedAt: '2026-11-25T10:00:00.000Z' },
  });
  await pollUntil(
    async () => (await call('GET', `/v1/applications/${application.body.id}`)).body.status,
    (status) => status === 'approved',
    { what: 'the application approved', deadlineMs: 10_000 },
  );
  const card = await call('POST', '/v1/cards', { userId: holder.body.id, formFactor: 'virtual' });
  const endpoint = await call('POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/hooks', eventTypes: ['*'] });
  const run = await call('POST', '/v1/reconciliation/runs');
  const readKey = await call('POST', '/v1/api-keys', { scope: 'read' });
  const revokedKey = await call('POST', '/v1/api-keys', { scope: 'write' });
  await call('DELETE', `/v1/api-keys/${revokedKey.body.id}`);
  const oauthClient = await call('POST', '/v1/client-credentials', { clientPassword: 'correct horse battery' });
  const granted = await client(server.baseUrl)('POST', '/v1/oauth2/token?grant_type=client_credentials', undefined, {
    authorization: `Basic ${Buffer.from(`${oauthClient.body.clientId}:${oauthClient.body.clientSecret}`).toString('base64')}`,
  });
  const familyId = JSON.parse(Buffer.from(granted.body.accessToken.split('.')[1], 'base64url').toString()).fam;
  const principal = {
    organizationId: owner.id,
    credentialId: oauthClient.body.clientId,
    scope: 'write' as const,
    familyId,
  };
  credentials = {
    read: readKey.body.secret,
    revoked: revokedKey.body.secret,
    access: granted.body.accessToken,
    // Signed with the server's own key, an hour and a minute ago: valid but for its age.
    expired: signAccessToken(accessTokenSigningKey(testEncryptionKey), principal, Date.now() - 3_660_000).token,
    forged: signAccessToken(Buffer.alloc(32, 1), principal).token,
  };
  document = (await client(server.baseUrl)('GET', '/openapi.json')).body;
  const agreement =
    document.paths['/v1/agreements'] === undefined
      ? undefined
      : await call('POST', '/v1/agreements', { type: 'esign_consent', title: 'E-sign consent', body: 'I agree.' });
  exampleIds = {
    ...(agreement === undefined ? {} : { agreements: agreement.body.id, versions: '1' }),
    programs: programId,
    users: userId,
    tasks: task.body.id,
    usertasks: userTask.body.id,
    disbursements: completed.body.disbursementId,
    events: (await call('GET', '/v1/events?limit=1')).body.data[0].id,
    applications: application.body.id,
    cards: card.body.id,
    'webhook-endpoints': endpoint.body.id,
    deliveries: 'whd_01jd8n3q7v0c4x2m5k9e6t1hzr',
    'api-keys': readKey.body.id,
    'client-credentials': oauthClient.body.clientId,
    jobs: 'job_01jd8n3q7v0c4x2m5k9e6t1hzr',
    runs: run.body.id,
  };
  for (const [name, id] of Object.entries(exampleIds)) {
    if (typeof id !== 'string') throw new Error(`no example id for ${name}`);
  }
}, 120_000);

afterAll(async () => {
  await server?.close();
  await sandbox?.close();
});

/** Every operation of the document. */
function operations(): Operation[] {
  return Object.entries(document.paths).flatMap(([path, byMethod]) =>
    Object.entries(byMethod).map(([method, operation]) => ({ ...operation, method: method.toUpperCase(), path })),
  );
}

/** Who may call an operation, from its `security` (the document's default is an organization credential). */
type Access = 'organization' | 'operator' | 'organization_or_operator' | 'client';
/** What each security scheme name stands for; a scheme not listed here fails the suite. */
const schemeKinds: Record<string, 'organization' | 'operator' | 'client'> = {
  apiKey: 'organization',
  accessToken: 'organization',
  oauth2: 'organization',
  operatorToken: 'operator',
  // HTTP Basic with an OAuth2 client's id and secret, checked by the token route itself.
  clientCredentials: 'client',
  clientBasic: 'client',
};
function accessOf(operation: Operation): Access {
  const where = `${operation.method} ${operation.path}`;
  const kinds = new Set<string>();
  for (const scheme of operation.security ?? [{ apiKey: [] }]) {
    for (const name of Object.keys(scheme)) {
      const kind = schemeKinds[name];
      if (kind === undefined) throw new Error(`${where}: unknown security scheme "${name}"; add it to schemeKinds`);
      kinds.add(kind);
    }
  }
  // No scheme at all (`security: []`): only the token endpoint, whose Basic credentials the route checks.
  if (kinds.size === 0 || (kinds.size === 1 && kinds.has('client'))) {
    if (operation.path !== '/v1/oauth2/token') throw new Error(`${where}: no credential; give it expectations here`);
    return 'client';
  }
  if (kinds.has('client')) throw new Error(`${where}: client credentials beside others; give it expectations here`);
  if (kinds.has('organization') && kinds.has('operator')) return 'organization_or_operator';
  return kinds.has('operator') ? 'operator' : 'organization';
}

/** The operation's path with example ids; throws for a parameter with none. */
function pathOf(operation: Operation, ids: Record<string, string> = exampleIds): string {
  const segments = operation.path.split('/');
  return segments
    .map((segment, index) => {
      if (!/^\{[^}]+\}$/.test(segment)) return segment;
      const resource = segments[index - 1] ?? '';
      const id = ids[resource];
      if (id === undefined) {
        throw new Error(
          `${operation.method} ${operation.path}: no example id for ${segment} after /${resource}; add a real ${resource} object to exampleIds in security-matrix.test.ts`,
        );
      }
      return id;
    })
    .join('/');
}

function hasPathId(operation: Operation): boolean {
  return operation.path.includes('{');
}

/** A body the operation would accept from its schema: required fields from their examples. */
function bodyOf(operation: Operation): unknown {
  const schema = operation.requestBody?.content?.['application/json']?.schema;
  return schema === undefined ? undefined : sample(schema, 0);
}

function resolve(schema: Schema): Schema {
  const ref = schema.$ref;
  if (typeof ref !== 'string') return schema;
  const name = ref.split('/').pop() ?? '';
  const target = document.components?.schemas?.[name];
  if (target === undefined) throw new Error(`unresolved ${ref}`);
  return resolve(target);
}

function sample(raw: Schema, depth: number): unknown {
  if (depth > 8) throw new Error('schema nests too deep to sample');
  const schema = resolve(raw);
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0];
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  const branches = (schema.anyOf ?? schema.oneOf) as Schema[] | undefined;
  if (branches !== undefined && branches[0] !== undefined) return sample(branches[0], depth + 1);
  switch (schema.type) {
    case 'object': {
      const properties = (schema.properties ?? {}) as Record<string, Schema>;
      const required = (schema.required ?? []) as string[];
      return Object.fromEntries(required.map((name) => [name, sample(properties[name] ?? {}, depth + 1)]));
    }
    case 'array':
      return [sample((schema.items ?? {}) as Schema, depth + 1)];
    case 'string':
      return 'x';
    case 'integer':
    case 'number':
      return 1;
    case 'boolean':
      return true;
    default:
      return {};
  }
}

/** Calls an operation as `credential` (a bearer token, or headers of its own). */
async function callAs(operation: Operation, credential: string | Record<string, string> | undefined, path?: string) {
  const headers = typeof credential === 'object' ? credential : {};
  const bearer = typeof credential === 'string' ? credential : undefined;
  const query = operation.path === '/v1/oauth2/token' ? '?grant_type=client_credentials' : '';
  return client(server.baseUrl, bearer)(
    operation.method,
    `${path ?? pathOf(operation)}${query}`,
    bodyOf(operation),
    headers,
  );
}

function expectError(response: Call, status: number, code: string, where: string) {
  expect(response.status, `${where}: ${JSON.stringify(response.body)}`).toBe(status);
  expect(response.body.error.code, where).toBe(code);
}

/** Rows the owner has: a refused call must leave them as they were. */
async function snapshot() {
  const tables = [
    'programs',
    'users',
    'tasks',
    'user_tasks',
    'ledger_transfers',
    'events',
    'api_keys',
    'webhook_endpoints',
  ];
  const counts: Record<string, number> = {};
  for (const table of tables) counts[table] = await countRows(server, table, owner.id);
  counts.idempotency_keys = (await server.database.db.selectFrom('idempotency_keys').select('key').execute()).length;
  return counts;
}

describe('security matrix, from /openapi.json', () => {
  it('builds a call for every operation of the document', () => {
    const list = operations();
    expect(list.length).toBeGreaterThan(40);
    for (const operation of list) {
      accessOf(operation);
      pathOf(operation);
      bodyOf(operation);
    }
  });

  it('no credential, a wrong one, a forged, expired or revoked one: 401, and nothing changes', async () => {
    const before = await snapshot();
    for (const operation of operations()) {
      const where = `${operation.method} ${operation.path}`;
      const access = accessOf(operation);
      if (access === 'client') {
        expectError(await callAs(operation, undefined), 401, 'unauthorized', `${where} without Basic`);
        const wrong = { authorization: `Basic ${Buffer.from('cli_nobody:cs_wrong').toString('base64')}` };
        expectError(await callAs(operation, wrong), 401, 'unauthorized', `${where} with a wrong client`);
        expectError(await callAs(operation, owner.apiKey), 401, 'unauthorized', `${where} with an API key`);
        continue;
      }
      expectError(await callAs(operation, undefined), 401, 'unauthorized', `${where} without a credential`);
      for (const [name, credential] of [
        ['a wrong key', 'sk_not_a_key'],
        ['a forged access token', credentials.forged],
        ['an expired access token', credentials.expired],
        ['a revoked key', credentials.revoked],
      ] as const) {
        expectError(await callAs(operation, credential), 401, 'unauthorized', `${where} with ${name}`);
      }
      if (access === 'organization') {
        expectError(await callAs(operation, adminToken), 401, 'unauthorized', `${where} with the operator token`);
      }
      if (access === 'operator') {
        for (const credential of [owner.apiKey, credentials.read, credentials.access]) {
          expectError(
            await callAs(operation, credential),
            401,
            'unauthorized',
            `${where} with an organization credential`,
          );
        }
      }
    }
    expect(await snapshot()).toEqual(before);
  });

  it('a read-only key: 403 on every write operation, allowed on every read', async () => {
    const before = await snapshot();
    let writes = 0;
    for (const operation of operations()) {
      const access = accessOf(operation);
      if (access !== 'organization' && access !== 'organization_or_operator') continue;
      const where = `${operation.method} ${operation.path}`;
      const response = await callAs(operation, credentials.read);
      if (operation.method === 'GET') {
        expect([401, 403], `${where}: ${JSON.stringify(response.body)}`).not.toContain(response.status);
      } else {
        expectError(response, 403, 'forbidden', `${where} with a read key`);
        writes++;
      }
    }
    expect(writes).toBeGreaterThan(30);
    expect(await snapshot()).toEqual(before);
  });

  it("another organization's ids: 404 on every operation that names one, and nothing changes", async () => {
    const before = await snapshot();
    let checked = 0;
    for (const operation of operations()) {
      const access = accessOf(operation);
      if ((access !== 'organization' && access !== 'organization_or_operator') || !hasPathId(operation)) continue;
      const where = `${operation.method} ${operation.path}`;
      expectError(await callAs(operation, other.apiKey), 404, 'not_found', `${where} with another organization's key`);
      checked++;
    }
    // Most of the API names an object in its path; a matrix that checked few would prove little.
    expect(checked).toBeGreaterThan(30);
    expect(await snapshot()).toEqual(before);
  });

  it('the owner reaches every object in the table (the 404s above are about the tenant, not the id)', async () => {
    for (const operation of operations()) {
      if (operation.method !== 'GET' || !hasPathId(operation) || accessOf(operation) !== 'organization') continue;
      if (operation.path.includes('{deliveryId}')) continue;
      const response = await callAs(operation, owner.apiKey);
      expect(response.status, `${operation.method} ${operation.path}: ${JSON.stringify(response.body)}`).toBe(200);
    }
  });

  it('an access token acts like a write key of its organization', async () => {
    const read = await client(server.baseUrl, credentials.access)('GET', `/v1/programs/${exampleIds.programs}`);
    expect(read.status).toBe(200);
    const foreign = await client(server.baseUrl, credentials.access)('GET', '/v1/programs');
    expect(foreign.body.data.every((program: { id: string }) => program.id !== undefined)).toBe(true);
    expectError(
      await client(server.baseUrl, (await newOrganization(server, 'Third')).apiKey)(
        'GET',
        `/v1/programs/${exampleIds.programs}`,
      ),
      404,
      'not_found',
      'a third organization',
    );
  });
});
