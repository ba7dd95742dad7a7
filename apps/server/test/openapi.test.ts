import swagger from '@fastify/swagger';
import Fastify from 'fastify';
import { Type } from 'typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/platform/http.js';
import {
  installOperationIds,
  openApiOptions,
  operationIds,
  routeKey,
  tagDescriptions,
} from '../src/platform/openapi.js';
import { ErrorBody, errorResponses, Nullable } from '../src/platform/schemas.js';
import { client, startTestServer, type TestServer } from './harness.js';

// The document the server serves, as a reader and the SDK generator see it: every operation named,
// every response described, only the errors a route can answer.

type Json = Record<string, unknown>;
interface Operation {
  method: string;
  path: string;
  operation: Json & { operationId?: unknown; tags?: string[]; responses: Record<string, Json> };
}

const httpMethods = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

function operationsOf(document: Json): Operation[] {
  const found: Operation[] = [];
  for (const [path, item] of Object.entries(document.paths as Record<string, Json>)) {
    for (const method of httpMethods) {
      const operation = item[method];
      if (operation !== undefined) found.push({ method, path, operation: operation as Operation['operation'] });
    }
  }
  return found;
}

/** Every schema object in `value`, however deep, with where it is. */
function* schemasIn(value: unknown, where = '#'): Generator<[string, Json]> {
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) yield* schemasIn(item, `${where}/${index}`);
  } else if (typeof value === 'object' && value !== null) {
    yield [where, value as Json];
    for (const [key, item] of Object.entries(value)) yield* schemasIn(item, `${where}/${key}`);
  }
}

let server: TestServer;
let document: Json;
let operations: Operation[];

beforeAll(async () => {
  server = await startTestServer();
  const response = await client(server.baseUrl)('GET', '/openapi.json');
  expect(response.status).toBe(200);
  document = response.body;
  operations = operationsOf(document);
});

afterAll(async () => {
  await server.close();
});

describe('GET /openapi.json', () => {
  it('names every operation with a unique operationId, the one the central table gives its route', () => {
    expect(operations.length).toBeGreaterThan(0);
    const seen = new Map<string, string>();
    for (const { method, path, operation } of operations) {
      const where = `${method.toUpperCase()} ${path}`;
      expect(operation.operationId, `${where} has no operationId`).toMatch(/^[a-z]+[A-Z][A-Za-z]*$/);
      const operationId = operation.operationId as string;
      expect(seen.get(operationId), `${where} and ${seen.get(operationId)} share ${operationId}`).toBeUndefined();
      seen.set(operationId, where);
      const fastifyPath = path.replace(/\{(\w+)\}/g, ':$1');
      expect(operationIds[routeKey(method.toUpperCase(), fastifyPath)]).toBe(operationId);
    }
    expect(new Set(Object.values(operationIds)).size, 'the table names two routes alike').toBe(
      Object.values(operationIds).length,
    );
    // And no entry outlives its route: a renamed path leaves no stale id behind.
    const documented = new Set(operations.map(({ operation }) => operation.operationId));
    const stale = Object.entries(operationIds).filter(([, operationId]) => !documented.has(operationId));
    expect(stale, 'operationIds entries that name no documented route').toEqual([]);
  });

  it('describes every response, none as "Default Response"', () => {
    for (const { method, path, operation } of operations) {
      for (const [status, response] of Object.entries(operation.responses)) {
        const where = `${method.toUpperCase()} ${path} ${status}`;
        expect(typeof response.description, where).toBe('string');
        expect(response.description, where).not.toMatch(/^(Default Response)?$/);
      }
    }
    const created = document.paths as Record<string, Record<string, Operation['operation']>>;
    expect(created['/v1/programs']?.post?.responses['201']?.description).toBe('The program, created.');
    expect(created['/v1/programs/{id}']?.get?.responses['200']?.description).toBe('The program.');
    expect(created['/v1/programs/{id}/users']?.get?.responses['200']?.description).toBe('A page of enrollments.');
    expect(created['/v1/programs/{id}']?.get?.responses['409']).toBeUndefined();
    expect(created['/v1/usertasks/{id}/complete']?.put?.responses['409']?.description).toContain(
      '`insufficient_funds`',
    );
  });

  it('lists only the errors a route can answer: no 413 or 415 on a GET; 503 with Retry-After everywhere', () => {
    for (const { method, path, operation } of operations) {
      const statuses = Object.keys(operation.responses);
      const where = `${method.toUpperCase()} ${path}`;
      if (method === 'get') {
        expect(statuses, where).not.toContain('413');
        expect(statuses, where).not.toContain('415');
      } else {
        expect(statuses, where).toEqual(expect.arrayContaining(['413', '415']));
      }
      expect(statuses, where).toEqual(expect.arrayContaining(['400', '404', '500', '503']));
      expect(operation.responses['503']?.headers, where).toHaveProperty('Retry-After');
      expect(
        statuses.some((status) => status.startsWith('2')),
        `${where} declares no success response`,
      ).toBe(true);
    }
  });

  it('keeps the description and example of a nullable field on the field itself', () => {
    const schemas = (document.components as { schemas: Record<string, Json> }).schemas;
    const program = schemas.Program as { properties: Record<string, Json> };
    expect(program.properties.closedAt).toMatchObject({
      description: 'Closed. ISO 8601, UTC.',
      examples: ['2026-11-25T10:00:00.000Z'],
    });
    for (const [where, schema] of schemasIn(document)) {
      const branches = schema.anyOf;
      if (!Array.isArray(branches) || !branches.some((branch) => branch?.type === 'null')) continue;
      // Query-string filters are described by their parameter; everything else on the union itself.
      if (where.includes('/parameters/')) continue;
      expect(typeof schema.description, `${where} is nullable without a description`).toBe('string');
    }
  });

  it('declares servers, a licence and a description for each tag in use', () => {
    const info = document.info as Json;
    expect(info.license).toMatchObject({ name: expect.any(String), identifier: expect.any(String) });
    const servers = document.servers as { url: string; description: string }[];
    expect(servers.map((entry) => entry.url)).toEqual(['/', 'http://127.0.0.1:3000']);
    const tags = document.tags as { name: string; description: string }[];
    const used = new Set(operations.flatMap(({ operation }) => operation.tags ?? []));
    expect(tags.map((tag) => tag.name).sort()).toEqual([...used].sort());
    for (const tag of tags) expect(tag.description).toBe(tagDescriptions[tag.name]);
  });
});

/** A bare app with the document's conventions installed, as `buildApp` installs them. */
async function bareApp(): Promise<App> {
  const app = Fastify({ logger: false }) as unknown as App;
  app.addSchema(ErrorBody);
  installOperationIds(app);
  await app.register(swagger, openApiOptions('test'));
  return app;
}

const documented = {
  tags: ['events'],
  summary: 'List events, newest first',
  response: { 200: Type.Object({ id: Type.String({ description: 'Event id.' }) }), ...errorResponses() },
};
const answer = async () => ({ id: 'evt_1' });

describe('installOperationIds', () => {
  it('stops a documented route that is not in the table from registering', async () => {
    const app = await bareApp();
    expect(() => app.get('/v1/unlisted', { schema: documented }, answer)).toThrow(
      /GET \/v1\/unlisted has no operationId: add 'GET \/v1\/unlisted'/,
    );
    // A hidden route is not documented, so it needs no entry.
    app.get('/v1/unlisted-hidden', { schema: { hide: true } }, async () => ({}));
    await app.close();
  });

  it('stops a route without a summary, a success response or a tag, or with a tag that has no description', async () => {
    const app = await bareApp();
    expect(() => app.get('/v1/events', { schema: { ...documented, summary: undefined } }, answer)).toThrow(
      /no summary/,
    );
    expect(() => app.get('/v1/events', { schema: { ...documented, tags: [] } }, answer)).toThrow(/no tag/);
    expect(() => app.get('/v1/events', { schema: { ...documented, response: {} } }, async () => ({}))).toThrow(
      /no success response/,
    );
    expect(() => app.get('/v1/events', { schema: { ...documented, tags: ['misc'] } }, answer)).toThrow(
      /tag "misc", which has no description/,
    );
    expect(() => app.get('/v1/events', { schema: { ...documented, operationId: 'getEvents' } }, answer)).toThrow(
      /declares operationId getEvents/,
    );
    await app.close();
  });

  it('names the operation from the table and documents a public GET without 401, 413 or 415', async () => {
    const app = await bareApp();
    app.get(
      '/v1/events/:id',
      {
        config: { auth: 'public' },
        schema: {
          ...documented,
          summary: 'Retrieve an event',
          response: {
            200: Type.Object({ since: Nullable(Type.String({ description: 'Since when.', examples: ['x'] })) }),
            ...errorResponses(),
          },
        },
      },
      async () => ({ since: null }),
    );
    await app.ready();
    const operation = (
      app.swagger() as unknown as Json & { paths: Record<string, Record<string, Operation['operation']>> }
    ).paths['/v1/events/{id}']?.get;
    expect(operation?.operationId).toBe('retrieveEvent');
    expect(Object.keys(operation?.responses ?? {}).sort()).toEqual(['200', '400', '404', '500', '503']);
    expect(operation?.responses['200']?.description).toBe('Retrieve an event.');
    await app.close();
  });
});
