import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, startTestServer, type TestServer } from './harness.js';

// "One endpoint, one contract": every field a caller sends or reads carries a description and an
// example in the document the server serves. The walk follows each operation's parameters, request
// body and responses into `components.schemas`, so a field added anywhere cannot skip it.

type Json = Record<string, unknown>;

const httpMethods = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function hasExamples(schema: Json): boolean {
  return Array.isArray(schema.examples) && schema.examples.length > 0;
}

function hasDescription(schema: Json): boolean {
  return typeof schema.description === 'string' && schema.description.trim() !== '';
}

/** What is missing from one field, or nothing. */
function missingOf(description: boolean, example: boolean): string[] {
  return [...(description ? [] : ['description']), ...(example ? [] : ['example'])];
}

/**
 * Every field without a description or an example, as `where: missing`. A field is a property of an
 * object schema or an operation parameter; a nullable field's union carries both for its branches.
 * The values of a free-form record (`additionalProperties`, `patternProperties`) are not fields.
 * A field made of fields (an object with declared properties, or a list of such objects) needs a
 * description; its example is the sum of its fields' examples, which the walk checks one by one,
 * so a second copy of them on the whole is not asked for and cannot drift from the parts.
 */
function undocumentedFields(document: Json): string[] {
  const components = (isObject(document.components) ? document.components.schemas : {}) as Record<string, Json>;
  const found: string[] = [];
  const walkedComponents = new Set<string>();

  function resolve(schema: Json): { schema: Json; component?: string } {
    if (typeof schema.$ref !== 'string') return { schema };
    const name = schema.$ref.replace(/^#\/components\/schemas\//, '');
    const target = components[name];
    if (target === undefined) throw new Error(`unresolved $ref ${schema.$ref}`);
    // Siblings of a $ref (an OpenAPI 3.1 description beside it) annotate the field that holds it.
    const { $ref: _ref, ...siblings } = schema;
    return { schema: { ...target, ...siblings }, component: name };
  }

  /** An object with declared properties, or a list of them: its fields carry the examples. */
  function isComposite(schema: Json): boolean {
    if (isObject(schema.properties) && Object.keys(schema.properties).length > 0) return true;
    return isObject(schema.items) && isComposite(resolve(schema.items).schema);
  }

  /** Looks inside `schema` for fields: its properties, array items and union branches. */
  function walk(schema: Json, where: string): void {
    const resolved = resolve(schema);
    if (resolved.component !== undefined) {
      // A component is walked once, under its own name, however many operations use it.
      if (walkedComponents.has(resolved.component)) return;
      walkedComponents.add(resolved.component);
      walk(components[resolved.component] as Json, resolved.component);
      return;
    }
    if (isObject(schema.properties)) {
      for (const [name, property] of Object.entries(schema.properties)) {
        if (!isObject(property)) continue;
        const field = resolve(property).schema;
        const missing = missingOf(hasDescription(field), hasExamples(field) || isComposite(field));
        if (missing.length > 0) found.push(`${where}.${name}: ${missing.join(', ')}`);
        walk(property, `${where}.${name}`);
      }
    }
    if (isObject(schema.items)) walk(schema.items, `${where}[]`);
    for (const keyword of ['anyOf', 'oneOf', 'allOf']) {
      const branches = schema[keyword];
      if (Array.isArray(branches)) {
        for (const branch of branches) if (isObject(branch)) walk(branch, where);
      }
    }
  }

  for (const [path, item] of Object.entries(document.paths as Record<string, Json>)) {
    for (const method of httpMethods) {
      const operation = item[method];
      if (!isObject(operation)) continue;
      const name = `${method.toUpperCase()} ${path}`;
      for (const parameter of (operation.parameters ?? []) as Json[]) {
        const schema = isObject(parameter.schema) ? parameter.schema : {};
        const missing = missingOf(
          hasDescription(parameter) || hasDescription(schema),
          parameter.example !== undefined || isObject(parameter.examples) || hasExamples(schema),
        );
        if (missing.length > 0) found.push(`${name} ${parameter.in} ${parameter.name}: ${missing.join(', ')}`);
        walk(schema, `${name} ${parameter.in} ${parameter.name}`);
      }
      const bodies: [string, unknown][] = [['body', operation.requestBody]];
      for (const [status, response] of Object.entries((operation.responses ?? {}) as Record<string, unknown>)) {
        bodies.push([status, response]);
      }
      for (const [label, body] of bodies) {
        if (!isObject(body) || !isObject(body.content)) continue;
        for (const media of Object.values(body.content)) {
          if (isObject(media) && isObject(media.schema)) walk(media.schema, `${name} ${label}`);
        }
      }
    }
  }
  return found;
}

let server: TestServer;
let document: Json;

beforeAll(async () => {
  server = await startTestServer();
  const response = await client(server.baseUrl)('GET', '/openapi.json');
  expect(response.status).toBe(200);
  document = response.body;
});

afterAll(async () => {
  await server.close();
});

describe('GET /openapi.json', () => {
  it('gives every parameter and every request and response field a description and an example', () => {
    expect(undocumentedFields(document)).toEqual([]);
  });

  it('finds a field without an example, in an operation or a component, and lets a free-form record be', () => {
    const field = { type: 'string', description: 'Given name.' };
    const free = { type: 'object', description: 'Pairs.', examples: [{}], additionalProperties: { type: 'string' } };
    const bare = { type: 'object', description: 'What the verifier saw.', additionalProperties: {} };
    const made = {
      type: 'object',
      description: 'Balances.',
      properties: { available: { type: 'number', description: 'Free.', examples: [1] } },
    };
    const tags = { type: 'array', description: 'Tags.', items: { type: 'string' } };
    const properties = { firstName: field, metadata: free, evidence: bare, balances: made, tags };
    const sample: Json = {
      components: { schemas: { User: { type: 'object', properties } } },
      paths: {
        '/v1/users/{id}': {
          patch: {
            parameters: [{ in: 'path', name: 'id', description: 'User id.', schema: { type: 'string' } }],
            requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/User' } } } },
            responses: {
              200: {
                content: {
                  'application/json': {
                    schema: { type: 'object', properties: { nick: { anyOf: [{ type: 'string' }, { type: 'null' }] } } },
                  },
                },
              },
            },
          },
        },
      },
    };
    expect(undocumentedFields(sample)).toEqual([
      'PATCH /v1/users/{id} path id: example',
      'User.firstName: example',
      'User.evidence: example',
      'User.tags: example',
      'PATCH /v1/users/{id} 200.nick: description, example',
    ]);
  });
});
