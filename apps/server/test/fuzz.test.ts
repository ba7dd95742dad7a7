import { connect } from 'node:net';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorStatuses } from '../src/platform/errors.js';
import { maxBodyBytes } from '../src/platform/http.js';
import { maxJsonDepth } from '../src/platform/input.js';
import {
  adminToken,
  type Client,
  client,
  newOrganization,
  programWithUser,
  startTestServer,
  type TestServer,
  testDatabaseKind,
} from './harness.js';

// Every operation of the OpenAPI document the server serves, fuzzed with generated requests: valid
// values from the schemas mixed with wrong types, boundaries, odd Unicode, huge and deeply nested
// values, bad JSON, wrong content types, forged cursors, bad Idempotency-Keys, random auth and
// bytes Node's HTTP parser refuses. Every answer must be a 2xx the operation documents or a 4xx
// whose status and `error.code` are a pair of the closed list; never a 5xx. Routes are read from
// the document, so a new route is fuzzed without touching this file.

/** Requests the fuzzer sends at the least, over all operations. */
const fuzzRequests = 10_000;
/** Requests in flight at once: one fast-check runner each, every runner sequential. */
const concurrentRunners = 8;
/** Longest wait for one answer before the request counts as hung. */
const answerTimeoutMs = 15_000;
/** Longest the whole fuzz run may take, in milliseconds; on two cores it takes 15–60 s on either database. */
const fuzzTimeoutMs = 300_000;
/** Ids remembered per prefix and tenant, and cursors remembered; the oldest go first. */
const idsKeptPerPrefix = 64;
const cursorsKept = 64;
/** How many of the newest ids of a kind half the requests aim at. */
const newestIdsPreferred = 4;
/** Requests of the "refused input writes nothing" property; each is followed by a row count. */
const refusedInputRuns = 300;
/** Characters of a request or answer printed with a failure. */
const previewCharacters = 600;
/**
 * By default every run explores new input; `TRANCHE_FUZZ_SEED=<the seed a run printed>` generates
 * the same requests again (the ids they aim at still depend on which requests finished first).
 */
const seed = Number(process.env.TRANCHE_FUZZ_SEED ?? Date.now() % 2 ** 31);

// ---------------------------------------------------------------------------------------------
// The document, as operations

interface Schema {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  maxProperties?: number;
  examples?: unknown[];
  example?: unknown;
}

interface Parameter {
  name: string;
  location: 'path' | 'query';
  schema: Schema;
  /** The prefix of the ids the parameter takes (`prg`), read from its example. */
  idPrefix: string | undefined;
}

interface Operation {
  method: string;
  /** The path as the document writes it: `/v1/programs/{id}`. */
  path: string;
  label: string;
  pathParameters: Parameter[];
  queryParameters: Parameter[];
  body: Schema | undefined;
  auth: 'organization' | 'operator' | 'public';
  successStatuses: Set<number>;
}

type Json = Record<string, unknown>;
const httpMethods = ['get', 'put', 'post', 'delete', 'patch'];
const idPattern = /^([a-z]+)_[0-9a-z]{26}$/;

let components: Record<string, Schema> = {};

function deref(schema: Schema): Schema {
  if (schema.$ref === undefined) return schema;
  const name = schema.$ref.split('/').pop() ?? '';
  const target = components[name];
  if (target === undefined) throw new Error(`the document has no schema ${schema.$ref}`);
  return deref(target);
}

function idPrefixOf(...examples: unknown[]): string | undefined {
  for (const example of examples) {
    const match = typeof example === 'string' ? idPattern.exec(example) : null;
    if (match !== null) return match[1];
  }
  return undefined;
}

function authOf(security: Json[]): Operation['auth'] {
  if (security.length === 0) return 'public';
  const schemes = security.flatMap((requirement) => Object.keys(requirement));
  if (schemes.includes('operatorToken')) return 'operator';
  if (schemes.includes('apiKey')) return 'organization';
  throw new Error(`teach the fuzzer the security scheme ${schemes.join(', ')}`);
}

function operationsOf(document: Json): Operation[] {
  components = ((document.components as Json | undefined)?.schemas ?? {}) as Record<string, Schema>;
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries(document.paths as Record<string, Json>)) {
    for (const method of httpMethods) {
      const operation = item[method] as Json | undefined;
      if (operation === undefined) continue;
      const parameters = ((operation.parameters ?? []) as Json[]).map(
        (parameter): Parameter => ({
          name: parameter.name as string,
          location: parameter.in as Parameter['location'],
          schema: parameter.schema as Schema,
          idPrefix: idPrefixOf(parameter.example, (parameter.schema as Schema).examples?.[0]),
        }),
      );
      const content = (operation.requestBody as Json | undefined)?.content as Json | undefined;
      const bodySchema = (content?.['application/json'] as Json | undefined)?.schema as Schema | undefined;
      operations.push({
        method: method.toUpperCase(),
        path,
        label: `${method.toUpperCase()} ${path}`,
        pathParameters: parameters.filter((parameter) => parameter.location === 'path'),
        queryParameters: parameters.filter((parameter) => parameter.location === 'query'),
        body: bodySchema === undefined ? undefined : deref(bodySchema),
        auth: authOf((operation.security ?? document.security ?? []) as Json[]),
        successStatuses: new Set(
          Object.keys(operation.responses as Json)
            .map(Number)
            .filter((status) => status >= 200 && status < 300),
        ),
      });
    }
  }
  return operations;
}

// ---------------------------------------------------------------------------------------------
// Values that are resolved or written only when the request is sent

/** An id from the pools, picked when the request is sent, so that ids made during the run get used. */
class IdRef {
  constructor(
    readonly prefix: string,
    readonly tenant: 'own' | 'other',
    readonly pick: number,
  ) {}
  [fc.toStringMethod]() {
    return `id(${this.tenant} ${this.prefix} #${this.pick})`;
  }
}

/** A `nextCursor` the server answered with, picked when the request is sent. */
class CursorRef {
  constructor(readonly pick: number) {}
  [fc.toStringMethod]() {
    return `cursor(#${this.pick})`;
  }
}

/** JSON text sent as written: what `JSON.stringify` cannot write (`-0`, `1e400`, 20,000 levels). */
class RawJson {
  constructor(readonly text: string) {}
  [fc.toStringMethod]() {
    return `json(${preview(this.text)})`;
  }
}

/** URL text sent as written, not percent-encoded (`%`, `%zz`, `%ED%A0%80`). */
class RawUrl {
  constructor(readonly text: string) {}
  [fc.toStringMethod]() {
    return `url(${JSON.stringify(this.text)})`;
  }
}

/** A long string, kept short in a printed counterexample. */
class Repeated {
  constructor(
    readonly unit: string,
    readonly count: number,
  ) {}
  [fc.toStringMethod]() {
    return `${JSON.stringify(this.unit)}×${this.count}`;
  }
}

function preview(text: string): string {
  const shown = text.length > previewCharacters ? `${text.slice(0, previewCharacters)}… (${text.length} chars)` : text;
  return JSON.stringify(shown);
}

// ---------------------------------------------------------------------------------------------
// Hostile values, for any field

const oddCharacters = [
  '\u0000',
  '\ud800',
  '\udfff',
  '\udc00\ud800',
  '\u202e',
  '\u200f',
  'e\u0301\u0301\u0301',
  '\u200b',
  '\ufeff',
  '\u2028',
  '\u0085',
  '\u001b',
  '\u007f',
  '\uffff',
  '\u{10ffff}',
  '😀',
  '👩‍👩‍👧‍👦',
  '𝕏',
  'ﷺ',
  'İ',
  'ß',
  '\\',
  '"',
  "'",
  '%',
  '%00',
  '/',
  '..',
  '?',
  '#',
  '&',
  '=',
  ' ',
  '\t',
  '\n',
  '\r\n',
  '<script>',
  "'; DROP TABLE programs; --",
];

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => String.fromCharCode(unit));

const oddText = fc
  .array(
    fc.oneof(
      fc.constantFrom(...oddCharacters),
      fc.string({ unit: 'binary', maxLength: 4 }),
      fc.string({ unit: loneSurrogate, maxLength: 2 }),
      fc.string({ maxLength: 4 }),
    ),
    { minLength: 1, maxLength: 6 },
  )
  .map((parts) => parts.join(''));

const longText = fc
  .tuple(fc.constantFrom('x', 'é', '😀', '\u0000', '\u202e'), fc.constantFrom(65, 201, 2_001, 20_000, maxBodyBytes + 1))
  .map(([unit, count]) => new Repeated(unit, count));

const deepJson = fc
  .tuple(fc.constantFrom(maxJsonDepth - 1, maxJsonDepth, maxJsonDepth + 1, 1_000, 20_000), fc.boolean())
  .map(([depth, arrays]) =>
    arrays
      ? new RawJson('['.repeat(depth) + ']'.repeat(depth))
      : new RawJson(`${'{"a":'.repeat(depth)}0${'}'.repeat(depth)}`),
  );

const hugeJson = fc.constantFrom(
  new RawJson(`[${Array(10_000).fill('0').join(',')}]`),
  new RawJson(`{${Array.from({ length: 3_000 }, (_, index) => `"k${index}":${index}`).join(',')}}`),
  new RawJson(`[${Array(2_000).fill('"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"').join(',')}]`),
);

const oddNumbers = fc.constantFrom<unknown>(
  0,
  -1,
  0.001,
  1.005,
  0.1 + 0.2,
  1e308,
  -1e308,
  5e-324,
  2 ** 31,
  2 ** 53,
  2 ** 53 + 2,
  1e21,
  new RawJson('-0'),
  new RawJson('1e400'),
  new RawJson('-1e400'),
  new RawJson('1E2'),
  new RawJson('1e-400'),
  new RawJson(`1${'0'.repeat(400)}`),
  new RawJson('0.0000000000000000000000000001'),
);

const nanLikeText = fc.constantFrom(
  'NaN',
  'Infinity',
  '-Infinity',
  '-0',
  '1e308',
  '0x10',
  '1_000',
  ' 1',
  '1 ',
  '١٢',
  '+1',
);

const wrongTypes = fc.constantFrom<unknown>(null, true, false, [], {}, [1, 'a'], { a: 1 }, '', 'true', '0', 'null');

const hostile: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: wrongTypes },
  { weight: 3, arbitrary: oddNumbers },
  { weight: 2, arbitrary: nanLikeText },
  { weight: 5, arbitrary: oddText },
  { weight: 1, arbitrary: longText },
  { weight: 1, arbitrary: deepJson },
  { weight: 1, arbitrary: hugeJson },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

const oddKey = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    '',
    'toString',
    '$ref',
    'a\u0000',
    '\ud800',
    'x'.repeat(1_000),
  ),
  oddText,
);

// ---------------------------------------------------------------------------------------------
// Values from a schema: valid ones, and ones on or just past a boundary

const earliest = new Date('0001-01-01T00:00:00.000Z');
const latest = new Date('9999-12-31T23:59:59.999Z');
const aroundNow = { min: new Date(Date.now() - 400 * 86_400_000), max: new Date(Date.now() + 800 * 86_400_000) };

const validDateTime = fc
  .tuple(
    fc.oneof(
      { weight: 4, arbitrary: fc.date({ ...aroundNow, noInvalidDate: true }) },
      { weight: 1, arbitrary: fc.date({ min: earliest, max: latest, noInvalidDate: true }) },
    ),
    fc.constantFrom('iso', 'seconds', 'offset', 'lowercase'),
  )
  .map(([date, style]) => {
    const text = date.toISOString();
    if (style === 'seconds') return text.replace(/\.\d{3}Z$/, 'Z');
    if (style === 'offset') return text.replace(/Z$/, '+00:00');
    return style === 'lowercase' ? text.replace('T', 't').replace('Z', 'z') : text;
  });

const validDate = fc
  .date({ min: earliest, max: latest, noInvalidDate: true })
  .map((date) => date.toISOString().slice(0, 10));

/** Timestamps PostgreSQL cannot hold, or that it and JavaScript read differently. */
const unstorableDateTimes = [
  '0000-01-01T00:00:00Z',
  '10000-01-01T00:00:00Z',
  '0001-01-01T00:00:00+01:00',
  '9999-12-31T23:59:59-01:00',
  '9999-12-31T23:59:59.9999999Z',
  '2023-02-29T00:00:00Z',
  '2026-12-31T23:59:60Z',
  '2026-01-01T00:00:00+23:59',
  '0050-01-01 00:00:00Z',
];
const unstorableDates = ['0000-01-01', '10000-01-01', '2023-02-29'];

const edgeDateTimes = [
  ...unstorableDateTimes,
  '0001-01-01T00:00:00Z',
  '9999-12-31T23:59:59.999Z',
  '+010000-01-01T00:00:00Z',
  '-000001-01-01T00:00:00Z',
  '2024-02-29T00:00:00Z',
  '2026-04-31T00:00:00Z',
  '2026-01-01T24:00:00Z',
  '2026-01-01 00:00:00Z',
  '2026-01-01T00:00:00+01',
  '2026-01-01T00:00:00+0100',
  '2026-01-01T00:00:00+14:00',
  '2026-01-01T00:00:00+15:00',
  `2026-01-01T00:00:00.${'9'.repeat(10)}Z`,
  '2026-01-01T00:00:00',
  '2026-01-01',
  '2026-13-01T00:00:00Z',
];
const edgeDates = [...unstorableDates, '0001-01-01', '9999-12-31', '2024-02-29', '2026-00-10', '26-01-01'];

function typeOf(schema: Schema): string | undefined {
  if (Array.isArray(schema.type)) return schema.type[0];
  if (schema.type !== undefined) return schema.type;
  return schema.properties === undefined ? undefined : 'object';
}

function variantsOf(schema: Schema): Schema[] | undefined {
  if (schema.anyOf !== undefined || schema.oneOf !== undefined) return schema.anyOf ?? schema.oneOf;
  if (Array.isArray(schema.type)) return schema.type.map((type) => ({ ...schema, type }));
  return undefined;
}

function validString(schema: Schema): fc.Arbitrary<unknown> {
  const minLength = schema.minLength ?? 0;
  const maxLength = Math.min(schema.maxLength ?? 40, 40);
  if (schema.format === 'date-time') return validDateTime;
  if (schema.format === 'date') return validDate;
  if (schema.format === 'email') return fc.emailAddress().filter((email) => email.length <= (schema.maxLength ?? 320));
  if (schema.pattern !== undefined) return fc.stringMatching(new RegExp(schema.pattern));
  return fc.oneof(
    { weight: 3, arbitrary: fc.string({ minLength, maxLength, unit: 'grapheme-ascii' }) },
    { weight: 1, arbitrary: fc.string({ minLength, maxLength: Math.max(minLength, maxLength / 2), unit: 'grapheme' }) },
  );
}

function validNumber(schema: Schema, integer: boolean): fc.Arbitrary<unknown> {
  const lowest = schema.minimum ?? (schema.exclusiveMinimum === undefined ? -1e6 : schema.exclusiveMinimum);
  const highest = schema.maximum ?? (schema.exclusiveMaximum === undefined ? 1e6 : schema.exclusiveMaximum);
  // Integers as they are; other numbers as cents, since every decimal field of ours is dollars.
  const scale = integer ? 1 : 100;
  const min = Math.ceil(lowest * scale) + (schema.exclusiveMinimum === undefined ? 0 : 1);
  const max = Math.floor(highest * scale) - (schema.exclusiveMaximum === undefined ? 0 : 1);
  return fc
    .oneof(
      { weight: 3, arbitrary: fc.integer({ min, max: Math.min(max, min + 100_000) }) },
      { weight: 1, arbitrary: fc.integer({ min, max }) },
    )
    .map((units) => units / scale);
}

function validFor(input: Schema): fc.Arbitrary<unknown> {
  const schema = deref(input);
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum !== undefined) return fc.constantFrom(...schema.enum);
  const variants = variantsOf(schema);
  if (variants !== undefined) return fc.oneof(...variants.map(validFor));
  const prefix = idPrefixOf(schema.examples?.[0], schema.example);
  if (prefix !== undefined) return fc.nat().map((pick) => new IdRef(prefix, 'own', pick));
  switch (typeOf(schema)) {
    case 'string':
      return validString(schema);
    case 'integer':
      return validNumber(schema, true);
    case 'number':
      return validNumber(schema, false);
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(validFor(schema.items ?? {}), { maxLength: 3 });
    case 'object':
      return objectFor(schema, 'valid');
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

function boundaryFor(input: Schema): fc.Arbitrary<unknown> {
  const schema = deref(input);
  const variants = variantsOf(schema);
  if (variants !== undefined) return fc.oneof(...variants.map(boundaryFor));
  const candidates: unknown[] = [null];
  const type = typeOf(schema);
  if (type === 'string') {
    if (schema.format === 'date-time') candidates.push(...edgeDateTimes);
    if (schema.format === 'date') candidates.push(...edgeDates);
    if (schema.format === 'email') candidates.push('a@b', '@', 'a@', `${'a'.repeat(320)}@example.com`);
    if (schema.pattern !== undefined) candidates.push('+', '+0123456', '+1234567', `+1${'2'.repeat(14)}`, '+1 234 567');
    for (const length of [schema.minLength, schema.maxLength]) {
      if (length === undefined) continue;
      for (const near of [length - 1, length, length + 1].filter((count) => count >= 0)) {
        candidates.push(new Repeated('x', near), new Repeated('é', near), new Repeated('😀', near));
      }
    }
    candidates.push('', ' ');
  }
  if (type === 'number' || type === 'integer') {
    const bounds = [schema.minimum, schema.maximum, schema.exclusiveMinimum, schema.exclusiveMaximum];
    for (const bound of bounds.filter((value): value is number => value !== undefined)) {
      candidates.push(bound, bound - 1, bound + 1, bound - 0.01, bound + 0.01, bound + 0.001, String(bound));
    }
    candidates.push(0, new RawJson('-0'), 0.5, 1.5, 12.345);
  }
  if (type === 'object') {
    candidates.push(
      {},
      Object.fromEntries(Array.from({ length: (schema.maxProperties ?? 50) + 1 }, (_, i) => [`k${i}`, 'v'])),
    );
  }
  return fc.constantFrom(...candidates);
}

/** `value` once in `every` draws, `otherwise` the other times. */
function rarely<T, U>(value: fc.Arbitrary<T>, otherwise: U, every = 10): fc.Arbitrary<T | U> {
  return fc.oneof({ weight: every - 1, arbitrary: fc.constant(otherwise) }, { weight: 1, arbitrary: value });
}

/** A field's value when fuzzing: mostly valid, sometimes on a boundary, sometimes anything. */
function fieldFor(schema: Schema): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 20, arbitrary: validFor(schema) },
    { weight: 2, arbitrary: boundaryFor(schema) },
    { weight: 1, arbitrary: hostile },
  );
}

/** An object without a prototype, so that a `__proto__` key is a field like any other. */
function objectOf(entries: [string, unknown][]): Json {
  const object: Json = Object.create(null);
  for (const [key, value] of entries) Object.defineProperty(object, key, { value, enumerable: true, writable: true });
  return object;
}

function objectFor(schema: Schema, mode: 'valid' | 'fuzz'): fc.Arbitrary<Json> {
  const required = new Set(schema.required ?? []);
  const declared = Object.entries(schema.properties ?? {}).map(([name, property]) => {
    const entry = (mode === 'valid' ? validFor(property) : fieldFor(property)).map((value): [string, unknown] => [
      name,
      value,
    ]);
    // A required field is missing now and then when fuzzing; an optional one half of the time.
    if (required.has(name) && mode === 'valid') return entry;
    return fc.option(entry, { freq: required.has(name) ? 20 : 2, nil: undefined });
  });
  const additional = typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined;
  const extra =
    additional === undefined
      ? fc.constant<[string, unknown][]>([])
      : fc.array(
          fc.tuple(
            fc.string({ minLength: 1, maxLength: 12 }),
            mode === 'valid' ? validFor(additional) : fieldFor(additional),
          ),
          {
            maxLength: Math.min(schema.maxProperties ?? 4, 4),
          },
        );
  const stray =
    mode === 'valid'
      ? fc.constant<[string, unknown][]>([])
      : rarely(fc.array(fc.tuple(oddKey, hostile), { minLength: 1, maxLength: 2 }), []);
  return fc
    .tuple(fc.tuple(...declared), extra, stray)
    .map(([fields, extras, strays]) =>
      objectOf([...fields.filter((field) => field !== undefined), ...extras, ...strays]),
    );
}

// ---------------------------------------------------------------------------------------------
// Whole requests

type BodyPlan = { kind: 'none' } | { kind: 'json'; value: unknown } | { kind: 'text'; text: string };
const authChoices = [
  'none',
  'wrong',
  'otherTenant',
  'operator',
  'organization',
  'lowercaseScheme',
  'noScheme',
  'basic',
  'emptyBearer',
  'trailingWord',
  'long',
  'latin1',
] as const;
type AuthPlan = 'expected' | (typeof authChoices)[number];
/** Requests Node's HTTP parser should refuse, or that only a hand-written request can carry. */
const rawInjections = [
  'nulInIdempotencyKey',
  'controlInIdempotencyKey',
  'badHeaderName',
  'headerOverflow',
  'spaceInTarget',
  'nulInTarget',
  'utf8InTarget',
  'badVersion',
  'badMethod',
  'shortContentLength',
  'letterContentLength',
  'twoContentLengths',
  'badChunk',
  'bareLineFeeds',
  'foldedHeader',
] as const;
type RawInjection = (typeof rawInjections)[number];

interface Plan {
  operation: Operation;
  method: string;
  pathStyle: 'asIs' | 'trailingSlash' | 'doubleSlash' | 'upperCase' | 'dotSegment';
  pathValues: Record<string, unknown>;
  query: [string, unknown][];
  body: BodyPlan;
  contentType: string | undefined;
  auth: AuthPlan;
  idempotencyKey: string | undefined;
  raw: RawInjection | undefined;
}

const rawUrlText = fc
  .constantFrom('%', '%zz', '%00', 'a%00b', '%ED%A0%80', '%C0%AF', '%FF', '%2F', ';x=1', '%u0000')
  .map((text) => new RawUrl(text));

let knownPrefixes: string[] = [];

function pathValueFor(parameter: Parameter): fc.Arbitrary<unknown> {
  const prefix = parameter.idPrefix;
  const own =
    prefix === undefined ? validFor(parameter.schema) : fc.nat().map((pick) => new IdRef(prefix, 'own', pick));
  const other = prefix === undefined ? own : fc.nat().map((pick) => new IdRef(prefix, 'other', pick));
  const forged = fc
    .tuple(fc.constantFrom(...knownPrefixes, 'xyz'), fc.ulid())
    .map(([forgedPrefix, ulid]) => `${forgedPrefix}_${ulid.toLowerCase()}`);
  return fc.oneof(
    { weight: 24, arbitrary: own },
    { weight: 1, arbitrary: other },
    { weight: 1, arbitrary: forged },
    { weight: 1, arbitrary: boundaryFor(parameter.schema) },
    { weight: 1, arbitrary: hostile },
    { weight: 1, arbitrary: rawUrlText },
  );
}

function base64url(text: string): string {
  return Buffer.from(text).toString('base64url');
}

const cursorPlan: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.nat().map((pick) => new CursorRef(pick)) },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        oddText,
        fc.ulid().map((ulid) => `usr_${ulid.toLowerCase()}`),
        fc.constantFrom('9'.repeat(19), '9'.repeat(20), '-1', '0', '', 'x'.repeat(65)),
      )
      .map((after) => base64url(JSON.stringify({ after }))),
  },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.base64String({ maxLength: 40 }),
      oddText,
      fc.constantFrom(
        base64url('null'),
        base64url('"x"'),
        base64url('[]'),
        base64url('{"after":1}'),
        base64url('{"after":null}'),
        base64url('{"after":"a\\u0000"}'),
        base64url('{"after":"\\ud800"}'),
        '====',
        '!!!',
      ),
    ),
  },
);

function queryFor(operation: Operation): fc.Arbitrary<[string, unknown][]> {
  const declared = operation.queryParameters.map((parameter) => {
    const own =
      parameter.idPrefix === undefined
        ? undefined
        : fc.nat().map((pick) => new IdRef(parameter.idPrefix as string, 'own', pick));
    const value =
      parameter.name === 'cursor'
        ? cursorPlan
        : own === undefined
          ? fieldFor(parameter.schema)
          : fc.oneof({ weight: 6, arbitrary: own }, { weight: 2, arbitrary: fieldFor(parameter.schema) });
    return fc.option(
      fc
        .oneof({ weight: 12, arbitrary: value }, { weight: 1, arbitrary: rawUrlText })
        .map((v): [string, unknown] => [parameter.name, v]),
      { freq: 2, nil: undefined },
    );
  });
  const stray = rarely(fc.tuple(fc.oneof(oddText, fc.constantFrom('__proto__', 'constructor')), hostile), undefined);
  return fc
    .tuple(fc.tuple(...declared), stray)
    .map(([fields, extra]) => [...fields, extra].filter((entry): entry is [string, unknown] => entry !== undefined));
}

const badJsonText = fc.oneof(
  fc.constantFrom(
    '',
    '{',
    '{"a":}',
    'nul',
    '[1,]',
    '{"a":1}}',
    '\ufeff{}',
    '{"name":"a","name":"b"}',
    '{"__proto__":{"x":1}}',
    '{"constructor":{"prototype":{"x":1}}}',
    "{'a':1}",
    'NaN',
    '{"a":NaN}',
    '{"a":Infinity}',
    '"\\ud800"',
    '"\\u0000"',
    '{"a":"\\x00"}',
    '\u0000',
    '{"a":"\t"}',
    ' '.repeat(100),
  ),
  fc.string({ maxLength: 30 }),
);

const wrongContentTypes = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'application/JSON',
  'application/vnd.api+json',
  'application/json-patch+json',
  '*/*',
  'application/json, text/plain',
  ';;;',
];

function bodyFor(operation: Operation): fc.Arbitrary<BodyPlan> {
  const schemaBody =
    operation.body === undefined
      ? fc.constant<BodyPlan>({ kind: 'none' })
      : objectFor(operation.body, 'fuzz').map((value): BodyPlan => ({ kind: 'json', value }));
  return fc.oneof(
    { weight: 24, arbitrary: schemaBody },
    { weight: 2, arbitrary: fc.constant<BodyPlan>({ kind: 'none' }) },
    { weight: 1, arbitrary: hostile.map((value): BodyPlan => ({ kind: 'json', value })) },
    { weight: 1, arbitrary: badJsonText.map((text): BodyPlan => ({ kind: 'text', text })) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(maxBodyBytes - 1, maxBodyBytes + 1)
        .map((bytes): BodyPlan => ({ kind: 'text', text: `{"name":"${'x'.repeat(bytes - 11)}"}` })),
    },
  );
}

const idempotencyKeyPlan = fc.oneof(
  { weight: 10, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.uuid() },
  { weight: 2, arbitrary: fc.constantFrom('fuzz-shared-1', 'fuzz-shared-2') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      'x'.repeat(255),
      'x'.repeat(256),
      'x'.repeat(8_000),
      'ÿþ',
      'a\tb',
      'é',
      '😀',
      '\ud800',
      '\u0000',
      'a\u0000b',
    ),
  },
);

function requestFor(operation: Operation): fc.Arbitrary<Plan> {
  const pathValues = Object.fromEntries(
    operation.pathParameters.map((parameter) => [parameter.name, pathValueFor(parameter)]),
  );
  return fc.record({
    operation: fc.constant(operation),
    method: fc.oneof(
      { weight: 30, arbitrary: fc.constant(operation.method) },
      { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS') },
    ),
    pathStyle: fc.oneof(
      { weight: 40, arbitrary: fc.constant<Plan['pathStyle']>('asIs') },
      {
        weight: 1,
        arbitrary: fc.constantFrom<Plan['pathStyle']>('trailingSlash', 'doubleSlash', 'upperCase', 'dotSegment'),
      },
    ),
    pathValues: fc.record(pathValues),
    query: queryFor(operation),
    body: bodyFor(operation),
    contentType: fc.oneof(
      { weight: 20, arbitrary: fc.constant(operation.body === undefined ? undefined : 'application/json') },
      { weight: 2, arbitrary: fc.constant(operation.body === undefined ? 'application/json' : undefined) },
      { weight: 2, arbitrary: fc.constantFrom(...wrongContentTypes) },
    ),
    auth: fc.oneof(
      { weight: 30, arbitrary: fc.constant<AuthPlan>('expected') },
      { weight: 4, arbitrary: fc.constantFrom<AuthPlan>(...authChoices) },
    ),
    idempotencyKey: idempotencyKeyPlan,
    raw: rarely(fc.constantFrom(...rawInjections), undefined, 40),
  });
}

/** A request whose every part is valid, for the properties that change one part only. */
function validRequestFor(operation: Operation): fc.Arbitrary<Plan> {
  const pathValues = Object.fromEntries(
    operation.pathParameters.map((parameter) => [
      parameter.name,
      parameter.idPrefix === undefined
        ? validFor(parameter.schema)
        : fc.nat().map((pick) => new IdRef(parameter.idPrefix as string, 'own', pick)),
    ]),
  );
  const body =
    operation.body === undefined
      ? fc.constant<BodyPlan>({ kind: 'none' })
      : objectFor(operation.body, 'valid').map((value): BodyPlan => ({ kind: 'json', value }));
  const query = operation.queryParameters.map((parameter) => {
    const prefix = parameter.idPrefix;
    const value =
      parameter.name === 'cursor'
        ? fc.nat().map((pick) => new CursorRef(pick))
        : prefix === undefined
          ? validFor(parameter.schema)
          : fc.nat().map((pick) => new IdRef(prefix, 'own', pick));
    return fc.option(
      value.map((v): [string, unknown] => [parameter.name, v]),
      { freq: 3, nil: undefined },
    );
  });
  return fc.record({
    operation: fc.constant(operation),
    method: fc.constant(operation.method),
    pathStyle: fc.constant<Plan['pathStyle']>('asIs'),
    pathValues: fc.record(pathValues),
    query: fc
      .tuple(...query)
      .map((fields) => fields.filter((field): field is [string, unknown] => field !== undefined)),
    body,
    contentType: fc.constant(operation.body === undefined ? undefined : 'application/json'),
    auth: fc.constant<AuthPlan>('expected'),
    idempotencyKey: fc.constant(undefined),
    raw: fc.constant(undefined),
  });
}

// ---------------------------------------------------------------------------------------------
// Ids and cursors the server answered with, to aim requests at objects that exist

class Pools {
  private readonly ids = new Map<string, string[]>();
  private readonly cursors: string[] = [];
  apiKeys = { own: '', other: '' };

  harvest(value: unknown, tenant: 'own' | 'other', depth = 0): void {
    if (depth > maxJsonDepth) return;
    if (typeof value === 'string') {
      const prefix = idPattern.exec(value)?.[1];
      if (prefix !== undefined) this.remember(`${tenant} ${prefix}`, value, idsKeptPerPrefix);
    } else if (Array.isArray(value)) {
      for (const item of value) this.harvest(item, tenant, depth + 1);
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        if (key === 'nextCursor' && typeof item === 'string') this.remember('cursor', item, cursorsKept);
        else this.harvest(item, tenant, depth + 1);
      }
    }
  }

  private remember(kind: string, value: string, kept: number): void {
    const list = kind === 'cursor' ? this.cursors : (this.ids.get(kind) ?? []);
    if (!list.includes(value)) list.push(value);
    if (list.length > kept) list.shift();
    if (kind !== 'cursor') this.ids.set(kind, list);
  }

  /** Half the picks among the newest few ids, which are likelier to be in a state that accepts the request. */
  id(reference: IdRef): string {
    const list = this.ids.get(`${reference.tenant} ${reference.prefix}`) ?? [];
    const index =
      reference.pick % 2 === 0
        ? list.length - 1 - ((reference.pick / 2) % Math.min(list.length, newestIdsPreferred))
        : reference.pick % list.length;
    return list[index] ?? `${reference.prefix}_${'0'.repeat(26)}`;
  }

  cursor(reference: CursorRef): string {
    return this.cursors[reference.pick % Math.max(this.cursors.length, 1)] ?? base64url('{"after":"usr_0"}');
  }
}

// ---------------------------------------------------------------------------------------------
// Plans become bytes

interface Outgoing {
  plan: Plan;
  method: string;
  target: string;
  headers: [string, string][];
  body: Buffer | undefined;
  /** Sent by hand over a socket: the plan asks for it, or `fetch` would refuse the request. */
  raw: RawInjection | 'unfetchable' | undefined;
  tenant: 'own' | 'other';
}

function resolved(value: unknown, pools: Pools): unknown {
  if (value instanceof IdRef) return pools.id(value);
  if (value instanceof CursorRef) return pools.cursor(value);
  if (value instanceof Repeated) return value.unit.repeat(value.count);
  return value;
}

function jsonText(input: unknown, pools: Pools): string {
  const value = resolved(input, pools);
  if (value instanceof RawJson) return value.text;
  if (value instanceof RawUrl) return JSON.stringify(value.text);
  if (Array.isArray(value)) return `[${value.map((item) => jsonText(item, pools)).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const fields = Object.entries(value).map(([key, item]) => `${JSON.stringify(key)}:${jsonText(item, pools)}`);
    return `{${fields.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Percent-encodes text; a lone surrogate becomes the three bytes a careless encoder writes for it. */
function percentEncoded(text: string): string {
  return Array.from(text, (character) => {
    const unit = character.charCodeAt(0);
    if (character.length === 1 && unit >= 0xd800 && unit <= 0xdfff) {
      return [0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)]
        .map((byte) => `%${byte.toString(16).toUpperCase()}`)
        .join('');
    }
    return encodeURIComponent(character);
  }).join('');
}

function urlText(input: unknown, pools: Pools): string {
  const value = resolved(input, pools);
  if (value instanceof RawUrl) return value.text;
  if (typeof value === 'string') return percentEncoded(value);
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (value instanceof RawJson) return percentEncoded(value.text.slice(0, 30_000));
  return percentEncoded(jsonText(value, pools));
}

function targetOf(plan: Plan, pools: Pools): string {
  let path = plan.operation.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const segment = urlText(plan.pathValues[name], pools);
    // A parameter of "." or ".." is a dot segment, which every URL client resolves away before
    // sending, escaped (%2E) or not (PATCH /v1/programs/../users/x is PATCH /v1/users/x): no
    // request can carry it to this route. Three dots is the nearest value that can.
    return /^(?:\.|%2e){1,2}$/i.test(segment) ? '...' : segment;
  });
  if (plan.pathStyle === 'trailingSlash') path = `${path}/`;
  if (plan.pathStyle === 'doubleSlash') path = path.replace('/v1/', '/v1//');
  if (plan.pathStyle === 'upperCase') path = path.toUpperCase();
  if (plan.pathStyle === 'dotSegment') path = path.replace('/v1/', '/v1/x/../');
  const query = plan.query.flatMap(([name, value]) =>
    (Array.isArray(value) ? value : [value]).map((item) => `${percentEncoded(name)}=${urlText(item, pools)}`),
  );
  return query.length === 0 ? path : `${path}?${query.join('&')}`;
}

function authorizationOf(plan: Plan, pools: Pools): string | undefined {
  const expected =
    plan.operation.auth === 'operator'
      ? adminToken
      : plan.operation.auth === 'organization'
        ? pools.apiKeys.own
        : undefined;
  const key = expected ?? pools.apiKeys.own;
  switch (plan.auth) {
    case 'expected':
      return expected === undefined ? undefined : `Bearer ${expected}`;
    case 'none':
      return undefined;
    case 'wrong':
      return 'Bearer sk_not_a_key_at_all';
    case 'otherTenant':
      return `Bearer ${pools.apiKeys.other}`;
    case 'operator':
      return `Bearer ${adminToken}`;
    case 'organization':
      return `Bearer ${pools.apiKeys.own}`;
    case 'lowercaseScheme':
      return `bearer ${key}`;
    case 'noScheme':
      return key;
    case 'basic':
      return `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
    case 'emptyBearer':
      return 'Bearer ';
    case 'trailingWord':
      return `Bearer ${key} extra`;
    case 'long':
      return `Bearer ${'k'.repeat(10_000)}`;
    case 'latin1':
      return 'Bearer ÿþýü';
  }
}

function bodyBytes(plan: Plan, pools: Pools): Buffer | undefined {
  if (plan.body.kind === 'none') return undefined;
  return Buffer.from(plan.body.kind === 'text' ? plan.body.text : jsonText(plan.body.value, pools));
}

/** What `fetch` sends unchanged: a header value of Latin-1 without control characters but tab. */
function fetchable(value: string): boolean {
  return /^[\t\u0020-\u007e\u0080-\u00ff]*$/.test(value) && value.trim() === value;
}

function outgoingOf(plan: Plan, pools: Pools): Outgoing {
  const headers: [string, string][] = [];
  const authorization = authorizationOf(plan, pools);
  if (authorization !== undefined) headers.push(['authorization', authorization]);
  const body = bodyBytes(plan, pools);
  if (plan.contentType !== undefined) headers.push(['content-type', plan.contentType]);
  // Last, so that a header it cuts short cannot swallow the ones after it.
  if (plan.idempotencyKey !== undefined) headers.push(['idempotency-key', plan.idempotencyKey]);
  const unfetchable =
    headers.some(([, value]) => !fetchable(value)) ||
    (body !== undefined && (plan.method === 'GET' || plan.method === 'HEAD'));
  return {
    plan,
    method: plan.method,
    target: targetOf(plan, pools),
    headers,
    body,
    raw: plan.raw ?? (unfetchable ? 'unfetchable' : undefined),
    tenant: plan.auth === 'otherTenant' ? 'other' : 'own',
  };
}

// ---------------------------------------------------------------------------------------------
// Sending

interface Answer {
  status: number;
  text: string;
  json: unknown;
}

function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function sendWithFetch(baseUrl: string, outgoing: Outgoing): Promise<Answer> {
  const response = await fetch(`${baseUrl}${outgoing.target}`, {
    method: outgoing.method,
    headers: outgoing.headers,
    body: outgoing.body,
    redirect: 'manual',
    signal: AbortSignal.timeout(answerTimeoutMs),
  });
  const text = await response.text();
  return { status: response.status, text, json: parsed(text) };
}

/** The request line and headers, then the body, with the plan's injection applied. */
function rawRequestOf(outgoing: Outgoing, host: string): Buffer {
  const injection = outgoing.raw;
  let method = injection === 'badMethod' ? 'G@T' : outgoing.method;
  let target = outgoing.target;
  if (injection === 'spaceInTarget') target = `${target}/a b`;
  if (injection === 'nulInTarget') target = `${target}\u0000`;
  if (injection === 'utf8InTarget') target = `${target}é😀`;
  if (method === 'G@T' && target === '') method = 'GET';
  const version = injection === 'badVersion' ? 'HTTP/9.9' : 'HTTP/1.1';
  const body = outgoing.body ?? Buffer.alloc(0);
  const lines = [`${method} ${target} ${version}`, `Host: ${host}`, 'Connection: close'];
  for (const [name, value] of outgoing.headers) lines.push(`${name}: ${value}`);
  if (injection === 'nulInIdempotencyKey') lines.push('Idempotency-Key: key\u0000key');
  if (injection === 'controlInIdempotencyKey') lines.push('Idempotency-Key: key\u0001\u007f');
  if (injection === 'badHeaderName') lines.push('Bad Header(): x');
  if (injection === 'headerOverflow') lines.push(`X-Padding: ${'p'.repeat(20_000)}`);
  if (injection === 'foldedHeader') lines.push('X-Folded: a', ' b');
  if (injection === 'letterContentLength') lines.push('Content-Length: 1x');
  else if (injection === 'twoContentLengths')
    lines.push(`Content-Length: ${body.length}`, `Content-Length: ${body.length + 1}`);
  else if (injection === 'badChunk') lines.push('Transfer-Encoding: chunked');
  else lines.push(`Content-Length: ${injection === 'shortContentLength' ? Math.floor(body.length / 2) : body.length}`);
  const head = `${lines.join(injection === 'bareLineFeeds' ? '\n' : '\r\n')}\r\n\r\n`;
  const payload = injection === 'badChunk' ? Buffer.from('zz\r\nnot a chunk\r\n0\r\n\r\n') : body;
  return Buffer.concat([Buffer.from(head, 'utf8'), payload]);
}

/** The first HTTP response in `bytes`, or undefined while it is incomplete. */
function firstResponse(bytes: Buffer, method: string): Answer | undefined {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const head = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1]);
  const header = (name: string) =>
    head
      .find((line) => line.toLowerCase().startsWith(`${name}:`))
      ?.slice(name.length + 1)
      .trim();
  let body = bytes.subarray(end + 4);
  const length = header('content-length');
  // An answer to HEAD announces the length of a body it does not send.
  if (method === 'HEAD') {
    body = Buffer.alloc(0);
  } else if (length !== undefined) {
    if (body.length < Number(length)) return undefined;
    body = body.subarray(0, Number(length));
  } else if (header('transfer-encoding')?.toLowerCase() === 'chunked') {
    const chunks: Buffer[] = [];
    for (let at = 0; ; ) {
      const lineEnd = body.indexOf('\r\n', at);
      if (lineEnd < 0) return undefined;
      const size = Number.parseInt(body.subarray(at, lineEnd).toString('latin1'), 16);
      if (size === 0) break;
      if (body.length < lineEnd + 2 + size) return undefined;
      chunks.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 4 + size;
    }
    body = Buffer.concat(chunks);
  } else {
    return undefined;
  }
  const text = body.toString('utf8');
  return { status, text, json: parsed(text) };
}

function sendRaw(baseUrl: string, outgoing: Outgoing): Promise<Answer> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`no answer within ${answerTimeoutMs} ms`)), answerTimeoutMs);
    const finish = (outcome: Answer | Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    socket.on('connect', () => socket.write(rawRequestOf(outgoing, `${hostname}:${port}`)));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const answer = firstResponse(received, outgoing.method);
      if (answer !== undefined) finish(answer);
    });
    socket.on('error', (error) => finish(firstResponse(received, outgoing.method) ?? error));
    socket.on('close', () =>
      finish(firstResponse(received, outgoing.method) ?? new Error('connection closed without an answer')),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Judging answers

type ClosedCode = keyof typeof errorStatuses;

/** Why an answer breaks the contract, or undefined when it keeps it. */
function verdict(outgoing: Outgoing, answer: Answer, operations: Operation[]): string | undefined {
  const { plan } = outgoing;
  const method = outgoing.method === 'HEAD' ? 'GET' : outgoing.method;
  const documented = operations.find(
    (operation) => operation.method === method && operation.path === plan.operation.path,
  );
  if (answer.status >= 200 && answer.status < 300) {
    if (plan.pathStyle !== 'asIs' || outgoing.raw === 'spaceInTarget') return undefined;
    if (documented?.successStatuses.has(answer.status)) return undefined;
    return `${answer.status} is not a success ${method} ${plan.operation.path} documents`;
  }
  if (answer.status >= 400 && answer.status < 500) {
    // An answer to HEAD has no body to carry the code: its status must be one the list uses.
    if (outgoing.method === 'HEAD' && Object.values(errorStatuses).includes(answer.status as never)) return undefined;
    const code = (answer.json as { error?: { code?: unknown } } | undefined)?.error?.code;
    if (typeof code === 'string' && code in errorStatuses && errorStatuses[code as ClosedCode] === answer.status) {
      return undefined;
    }
    return `${answer.status} with error.code ${JSON.stringify(code)} is not a pair of the closed list`;
  }
  return `answered ${answer.status}`;
}

function describeRequest(outgoing: Outgoing): string {
  const headers = outgoing.headers.map(([name, value]) => `${name}: ${preview(value)}`).join('; ');
  return [
    `${outgoing.method} ${preview(outgoing.target)}${outgoing.raw === undefined ? '' : ` (by hand: ${outgoing.raw})`}`,
    `headers: ${headers || '(none)'}`,
    `body: ${outgoing.body === undefined ? '(none)' : preview(outgoing.body.toString('utf8'))}`,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------

let server: TestServer;
let operations: Operation[];
const pools = new Pools();
let tables: string[] = [];

async function expectCreated(call: Client, path: string, body: unknown): Promise<Json> {
  const answer = await call('POST', path, body);
  if (answer.status !== 201) throw new Error(`${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body as Json;
}

/** Programs, users, tasks and user tasks in both tenants, some completed and some cancelled. */
async function seedObjects(call: Client, tenant: 'own' | 'other'): Promise<void> {
  const made: unknown[] = [];
  for (const pool of [50_000, 1_000_000]) {
    const { programId, userId } = await programWithUser(call, pool);
    const secondUser = await expectCreated(call, '/v1/users', { externalId: `emp-${tenant}-${pool}` });
    const task = await expectCreated(call, '/v1/tasks', { programId, name: 'OSHA 10', monetaryValue: 25 });
    const userTasks = [];
    for (const monetaryValue of [10, 20, 30, 40]) {
      userTasks.push(await expectCreated(call, '/v1/usertasks', { programId, userId, monetaryValue }));
    }
    userTasks.push(await expectCreated(call, '/v1/usertasks', { taskId: task.id, userId: secondUser.id }));
    await call('PUT', `/v1/usertasks/${userTasks[0]?.id}/complete`, { completedBy: 'fuzz' });
    await call('PUT', `/v1/usertasks/${userTasks[1]?.id}/cancel`);
    made.push(programId, userId, secondUser, task, userTasks);
  }
  pools.harvest(made, tenant);
}

/** Every list and object the document names, read once, so the pools hold ids of every kind. */
async function harvestEverything(): Promise<void> {
  for (const tenant of ['own', 'other'] as const) {
    for (const operation of operations.filter((each) => each.method === 'GET')) {
      const key = operation.auth === 'operator' ? adminToken : pools.apiKeys[tenant];
      for (let round = 0; round < 3; round++) {
        const plan = fc.sample(validRequestFor(operation), { numRuns: 1, seed: seed + round })[0] as Plan;
        const limit = operation.queryParameters.some((parameter) => parameter.name === 'limit') ? '?limit=2' : '';
        const answer = await client(server.baseUrl, key)('GET', `${targetOf(plan, pools)}${limit}`);
        if (answer.status === 200) pools.harvest(answer.body, tenant);
      }
    }
  }
}

beforeAll(async () => {
  server = await startTestServer();
  const document = await client(server.baseUrl)('GET', '/openapi.json');
  expect(document.status).toBe(200);
  operations = operationsOf(document.body as Json);
  const parameters = operations.flatMap((operation) => [...operation.pathParameters, ...operation.queryParameters]);
  knownPrefixes = [...new Set(parameters.flatMap((parameter) => parameter.idPrefix ?? []))];
  const own = await newOrganization(server, 'Fuzzed Workforce');
  const other = await newOrganization(server, 'Other tenant');
  pools.apiKeys = { own: own.apiKey, other: other.apiKey };
  await seedObjects(own.call, 'own');
  await seedObjects(other.call, 'other');
  await harvestEverything();
  const listed = await sql<{ table_name: string }>`
    SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
  `.execute(server.database.db);
  tables = listed.rows.map((row) => row.table_name).sort();
}, 120_000);

afterAll(async () => {
  await server?.close();
});

/** Rows in every table, to show that a refused request left nothing behind. */
async function rowCounts(): Promise<Record<string, number>> {
  const counts = sql.join(tables.map((table) => sql`(SELECT count(*) FROM ${sql.table(table)}) AS ${sql.ref(table)}`));
  const result = await sql<Record<string, string | bigint>>`SELECT ${counts}`.execute(server.database.db);
  return Object.fromEntries(Object.entries(result.rows[0] ?? {}).map(([table, count]) => [table, Number(count)]));
}

/** What a fuzz run sent and got, per operation, and which fields it reached. */
class Tally {
  readonly operations = new Map<string, { requests: number; successes: number; answers: Map<string, number> }>();
  readonly covered = new Set<string>();

  count(plan: Plan, answer: Answer | Error): void {
    const { label } = plan.operation;
    const tally = this.operations.get(label) ?? { requests: 0, successes: 0, answers: new Map() };
    this.operations.set(label, tally);
    tally.requests++;
    for (const [name] of plan.query) this.covered.add(`${label} query ${name}`);
    for (const name of Object.keys(plan.pathValues)) this.covered.add(`${label} path ${name}`);
    if (plan.body.kind === 'json' && typeof plan.body.value === 'object' && plan.body.value !== null) {
      for (const name of Object.keys(plan.body.value)) this.covered.add(`${label} body ${name}`);
    }
    if (answer instanceof Error) return;
    if (answer.status < 300) tally.successes++;
    const error = (answer.json as { error?: { code?: string; param?: string } } | undefined)?.error;
    const kind = [answer.status, error?.code, error?.param].filter((part) => part !== undefined).join(' ');
    tally.answers.set(kind, (tally.answers.get(kind) ?? 0) + 1);
  }

  total(field: 'requests' | 'successes'): number {
    return [...this.operations.values()].reduce((sum, tally) => sum + tally[field], 0);
  }

  /** Every operation, path and query parameter and top-level body field the document names that no request carried. */
  missed(operations: Operation[]): string[] {
    const everyField = operations.flatMap((operation) => [
      operation.label,
      ...operation.pathParameters.map((parameter) => `${operation.label} path ${parameter.name}`),
      ...operation.queryParameters.map((parameter) => `${operation.label} query ${parameter.name}`),
      ...Object.keys(operation.body?.properties ?? {}).map((name) => `${operation.label} body ${name}`),
    ]);
    return everyField.filter((field) => !this.covered.has(field) && !this.operations.has(field));
  }

  print(started: number): void {
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.info(
      `fuzz (${testDatabaseKind}, seed ${seed}): ${this.total('requests')} requests over ` +
        `${this.operations.size} operations in ${seconds} s, ${this.total('successes')} answered 2xx`,
    );
    if (process.env.TRANCHE_FUZZ_VERBOSE === undefined) return;
    for (const [label, tally] of [...this.operations.entries()].sort()) {
      const answers = [...tally.answers.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12);
      console.info(`${label}: ${answers.map(([kind, count]) => `${count}× ${kind}`).join(', ')}`);
    }
  }
}

function send(outgoing: Outgoing): Promise<Answer> {
  return (outgoing.raw === undefined ? sendWithFetch : sendRaw)(server.baseUrl, outgoing);
}

/** Sends one planned request and throws, with the request and the answer, when the answer breaks the contract. */
async function sendAndJudge(plan: Plan, tally: Tally): Promise<void> {
  const outgoing = outgoingOf(plan, pools);
  const answer = await send(outgoing).catch((error: Error) => error);
  tally.count(plan, answer);
  if (answer instanceof Error) {
    throw new Error(`no HTTP answer: ${answer.message}\n${describeRequest(outgoing)}`);
  }
  const problem = verdict(outgoing, answer, operations);
  if (problem !== undefined) {
    throw new Error(`${problem}\n${describeRequest(outgoing)}\nanswer: ${answer.status} ${preview(answer.text)}`);
  }
  if (answer.status < 300) pools.harvest(answer.json, outgoing.tenant);
}

/**
 * Runs a property and answers its shrunk counterexample as the request that was sent and the
 * answer it got (the property's own error), or undefined when it held.
 */
async function counterexampleOf<T>(
  property: fc.IAsyncPropertyWithHooks<[T]>,
  parameters: fc.Parameters<[T]>,
): Promise<string | undefined> {
  const run = await fc.check(property, parameters);
  if (!run.failed) return undefined;
  const error = run.errorInstance instanceof Error ? run.errorInstance.message : String(run.errorInstance);
  return `seed ${run.seed}, path ${run.counterexamplePath}, shrunk ${run.numShrinks} times:\n${error}`;
}

interface Slot {
  operation: Operation;
  location: 'path' | 'query' | 'body';
  name: string;
  schema: Schema;
}

/** Every place of every operation a value goes: path and query parameters, top-level body fields. */
function slotsOf(operation: Operation): Slot[] {
  return [
    ...[...operation.pathParameters, ...operation.queryParameters].map((parameter) => ({
      operation,
      location: parameter.location,
      name: parameter.name,
      schema: parameter.schema,
    })),
    ...Object.entries(operation.body?.properties ?? {}).map(([name, schema]) => ({
      operation,
      location: 'body' as const,
      name,
      schema,
    })),
  ];
}

/** A value the database cannot hold for `slot`, with the `param` the refusal must name. */
function unstorableFor(slot: Slot): fc.Arbitrary<{ value: unknown; param: string }> {
  const formats = [slot.schema, ...(variantsOf(slot.schema) ?? [])].map((schema) => deref(schema).format);
  const named = (value: unknown) => ({ value, param: slot.name });
  // A URL cannot carry a lone surrogate (it decodes to U+FFFD or not at all): only NUL there.
  const texts =
    slot.location === 'body' ? ['a\u0000b', '\u0000', '\ud800', 'x\udfff', '\udc00\ud800'] : ['a\u0000b', '\u0000'];
  const values = [fc.constantFrom(...texts).map(named)];
  if (formats.includes('date-time')) values.push(fc.constantFrom(...unstorableDateTimes).map(named));
  if (formats.includes('date')) values.push(fc.constantFrom(...unstorableDates).map(named));
  if (slot.location === 'body') {
    // The body is level 1: a field holding `maxJsonDepth` levels goes one past the limit.
    values.push(
      fc.constant(named(new RawJson('['.repeat(maxJsonDepth) + ']'.repeat(maxJsonDepth)))),
      fc.constant({ value: objectOf([['k\u0000', 'v']]), param: `${slot.name}.k\\u0000` }),
    );
  }
  return fc.oneof(...values);
}

/** A request valid in every part but `slot`, which holds a value the database cannot hold. */
function refusedRequestFor(slot: Slot): fc.Arbitrary<{ plan: Plan; param: string }> {
  // Generated values are shared with the shrinker: build a new plan rather than change this one.
  return fc.tuple(validRequestFor(slot.operation), unstorableFor(slot)).map(([valid, refused]) => {
    const plan: Plan = { ...valid, pathValues: { ...valid.pathValues } };
    if (slot.location === 'path') plan.pathValues[slot.name] = refused.value;
    if (slot.location === 'query') plan.query = [[slot.name, refused.value]];
    if (slot.location === 'body') {
      const fields = valid.body.kind === 'json' ? Object.entries(valid.body.value as Json) : [];
      const others = fields.filter(([name]) => name !== slot.name);
      plan.body = { kind: 'json', value: objectOf([...others, [slot.name, refused.value]]) };
      plan.contentType = 'application/json';
    }
    return { plan, param: refused.param };
  });
}

describe('fuzzing every operation of /openapi.json', () => {
  it(
    `answers ${fuzzRequests} generated requests with a documented 2xx or a closed-list 4xx, never a 5xx`,
    async () => {
      const started = Date.now();
      const tally = new Tally();
      // A third of the requests valid in every part, so that most of them reach the domain code.
      const anyRequest = fc.oneof(
        ...operations.map((operation) =>
          fc.oneof(
            { weight: 2, arbitrary: requestFor(operation) },
            { weight: 1, arbitrary: validRequestFor(operation) },
          ),
        ),
      );
      const perRunner = Math.ceil(fuzzRequests / concurrentRunners);
      const failures = await Promise.all(
        Array.from({ length: concurrentRunners }, (_, runner) =>
          counterexampleOf(
            fc.asyncProperty(anyRequest, (plan) => sendAndJudge(plan, tally)),
            { numRuns: perRunner, seed: seed + runner },
          ),
        ),
      );
      tally.print(started);
      const failed = failures.filter((failure) => failure !== undefined);
      if (failed.length > 0)
        expect.fail(`${failed.length} of ${concurrentRunners} runners failed:\n\n${failed.join('\n\n')}`);
      expect(tally.total('requests')).toBeGreaterThanOrEqual(fuzzRequests);
      expect(tally.missed(operations)).toEqual([]);
      expect(tally.total('successes')).toBeGreaterThan(0);
    },
    fuzzTimeoutMs,
  );

  it('refuses input the database cannot hold with 400 validation_error naming the field, and writes nothing', async () => {
    const refused = fc.oneof(...operations.flatMap(slotsOf).map(refusedRequestFor));
    const failure = await counterexampleOf(
      fc.asyncProperty(refused, async ({ plan, param }) => {
        const before = await rowCounts();
        const outgoing = outgoingOf(plan, pools);
        const answer = await send(outgoing);
        const shown = `${describeRequest(outgoing)}\nanswer: ${answer.status} ${preview(answer.text)}`;
        expect(answer.status, shown).toBe(400);
        expect(answer.json, shown).toMatchObject({ error: { code: 'validation_error', param } });
        expect(await rowCounts(), `rows changed after ${shown}`).toEqual(before);
      }),
      { numRuns: refusedInputRuns, seed },
    );
    if (failure !== undefined) expect.fail(failure);
  }, 120_000);
});
