import { type TSchema, Type } from 'typebox';
import { errorStatuses } from './errors.js';
import { maxIdLength } from './ids.js';
import { maxAmountDollars } from './money.js';

/** Shared pieces of the route schemas; every field carries a description and an example. */

export const Id = (prefix: string, description: string) =>
  Type.String({
    minLength: 1,
    maxLength: maxIdLength,
    description,
    examples: [`${prefix}_01jd8n3q7v0c4x2m5k9e6t1hzr`],
  });

export const Dollars = (description: string, example: number) =>
  Type.Number({
    exclusiveMinimum: 0,
    maximum: maxAmountDollars,
    description: `${description} Decimal dollars with at most two decimals.`,
    examples: [example],
  });

export const BalanceDollars = (description: string, example: number) =>
  Type.Number({ minimum: 0, description: `${description} Decimal dollars.`, examples: [example] });

export const Timestamp = (description: string) =>
  Type.String({
    format: 'date-time',
    description: `${description} ISO 8601, UTC.`,
    examples: ['2026-11-25T10:00:00.000Z'],
  });

/**
 * `schema` or `null`. The description and examples move from `schema` to the union itself: a
 * reader of the document (and openapi-typescript, which writes the SDK's types) looks for them on
 * the property, and an annotation inside one branch of an `anyOf` is lost there.
 */
export const Nullable = <T extends TSchema>(schema: T) => {
  const { description, examples, ...branch } = schema as T & { description?: string; examples?: unknown[] };
  return Type.Union([branch as T, Type.Null()], {
    ...(description === undefined ? {} : { description }),
    ...(examples === undefined ? {} : { examples }),
  });
};

/**
 * The `object` field of a resource: the literal kind, which is also its only example. The OpenAPI
 * document names each response by it (`platform/openapi.ts`).
 */
export const ObjectKind = <const K extends string>(kind: K) =>
  Type.Literal(kind, { description: `The kind of object: always \`${kind}\`.`, examples: [kind] });

export const NullableTimestamp = (description: string) => Nullable(Timestamp(description));

/** Free-form string pairs a partner keeps on an object; limited in size. */
export const Metadata = Type.Record(Type.String({ maxLength: 40 }), Type.String({ maxLength: 500 }), {
  maxProperties: 50,
  // The key schema above shapes the static type only; this is what validation checks.
  propertyNames: { maxLength: 40 },
  description: 'Up to 50 string pairs of your own.',
  examples: [{ cohort: 'spring-2027' }],
});

export const ErrorBody = Type.Object(
  {
    error: Type.Object(
      {
        code: Type.Union(
          Object.keys(errorStatuses).map((code) => Type.Literal(code)),
          { description: 'One of the closed list of error codes.', examples: ['validation_error'] },
        ),
        message: Type.String({
          description: 'What went wrong, for a person.',
          examples: ['monetaryValue must be greater than 0'],
        }),
        param: Type.Optional(Type.String({ description: 'The request field at fault.', examples: ['monetaryValue'] })),
        requestId: Type.String({ description: 'Quote it to support.', examples: ['req_01jd8n3q7v0c4x2m5k9e6t1hzr'] }),
      },
      { description: 'What went wrong, and the request it went wrong in.' },
    ),
  },
  { $id: 'Error', description: 'The error envelope every failed request answers with.' },
);

export const maxPageSize = 100;
export const defaultPageSize = 20;

const cursorExample = 'eyJhZnRlciI6InByZ18wMWpkOG4zcTd2MGM0eDJtNWs5ZTZ0MWh6ciJ9';

export const ListQuery = {
  limit: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: maxPageSize,
      default: defaultPageSize,
      description: 'Page size, 1–100.',
      examples: [defaultPageSize],
    }),
  ),
  cursor: Type.Optional(
    Type.String({ maxLength: 200, description: 'The `nextCursor` of the previous page.', examples: [cursorExample] }),
  ),
};

export const ListOf = <T extends TSchema>(item: T, description: string) =>
  Type.Object(
    {
      data: Type.Array(item, { description: 'This page’s items, newest first.' }),
      hasMore: Type.Boolean({ description: 'Whether another page follows.', examples: [true] }),
      nextCursor: Nullable(
        Type.String({
          description: 'Pass as `cursor` for the next page; null on the last page.',
          examples: [cursorExample],
        }),
      ),
    },
    { description },
  );

/**
 * The error statuses any route can answer: a bad request, a missing key, an unknown id or route, a
 * body too large or not JSON, a bug, and the database being unavailable (503 `service_unavailable`,
 * with `Retry-After`).
 */
const commonErrorStatuses = [400, 401, 404, 413, 415, 500, 503] as const;

/**
 * The error responses a route declares, by status, so the OpenAPI document lists them: the common
 * ones and the route's own (409, 422, 502…). The document leaves out what a route cannot answer —
 * 413 and 415 where the server never reads a body (GET), 401 on a public route — see
 * `platform/openapi.ts`; the response descriptions come from there too.
 */
export function errorResponses(...statuses: number[]): Record<number, typeof ErrorRef> {
  const responses: Record<number, typeof ErrorRef> = {};
  for (const status of [...commonErrorStatuses, ...statuses]) responses[status] = ErrorRef;
  return responses;
}

export const ErrorRef = Type.Ref('Error');

/** One of a closed list declared in code (statuses, kinds): the schema and the static type follow the list. */
export const OneOf = <const T extends string>(
  values: readonly T[],
  options: { description?: string; examples?: T[] } = {},
) =>
  Type.Unsafe<T>(
    Type.Union(
      values.map((value) => Type.Literal(value)),
      options,
    ),
  );
