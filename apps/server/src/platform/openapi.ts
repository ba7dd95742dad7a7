import { STATUS_CODES } from 'node:http';
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import type { FastifySchema, RouteOptions } from 'fastify';
import { defaultHost, defaultPort } from '../config.js';
import { errorStatuses, serviceUnavailableRetryAfterSeconds } from './errors.js';
import type { App } from './http.js';

/**
 * The API document, in one place. Routes declare their schemas; this module adds what the SDK and
 * a reader need on top of them and checks that no documented route goes without it:
 *
 * - a stable `operationId` per operation, from the one table below (the SDK's generated types are
 *   indexed by it, so an id never changes once shipped);
 * - a tag with a description for every tag a route uses;
 * - a description on every response, derived from the route (no "Default Response");
 * - only the errors a route can answer: no 413/415 where the server never reads a body, no 401 on
 *   a public route;
 * - `servers`, `info.license` and the top-level `tags` list.
 *
 * `npm run lint:openapi` lints the result with Redocly's recommended rules.
 */

/**
 * Every documented operation's id, by `METHOD /path` as the route registers it (Fastify syntax:
 * `:id`). Resource-verb camelCase (`createProgram`, `fundProgram`), so the SDK can name its methods
 * from them. A route that is documented and missing here stops the server at startup.
 */
export const operationIds: Readonly<Record<string, string>> = {
  'POST /v1/organizations': 'createOrganization',

  'POST /v1/programs': 'createProgram',
  'GET /v1/programs': 'listPrograms',
  'GET /v1/programs/:id': 'retrieveProgram',
  'PATCH /v1/programs/:id': 'updateProgram',
  'POST /v1/programs/:id/fund': 'fundProgram',
  'POST /v1/programs/:id/pause': 'pauseProgram',
  'POST /v1/programs/:id/resume': 'resumeProgram',
  'POST /v1/programs/:id/close': 'closeProgram',
  'GET /v1/programs/:id/ledger': 'retrieveProgramLedger',

  'GET /v1/programs/:id/users': 'listEnrollments',
  'GET /v1/programs/:id/users/:userId': 'retrieveEnrollment',
  'POST /v1/programs/:id/users/:userId': 'enrollUser',
  'DELETE /v1/programs/:id/users/:userId': 'dismissUser',

  'POST /v1/users': 'createUser',
  'GET /v1/users': 'listUsers',
  'GET /v1/users/:id': 'retrieveUser',
  'PATCH /v1/users/:id': 'updateUser',

  'POST /v1/tasks': 'createTask',
  'GET /v1/tasks': 'listTasks',
  'GET /v1/tasks/:id': 'retrieveTask',
  'PATCH /v1/tasks/:id': 'updateTask',
  'POST /v1/tasks/:id/users/:userId': 'assignTask',

  'POST /v1/usertasks': 'createUserTask',
  'GET /v1/usertasks': 'listUserTasks',
  'GET /v1/usertasks/:id': 'retrieveUserTask',
  'PUT /v1/usertasks/:id/complete': 'completeUserTask',
  'PUT /v1/usertasks/:id/cancel': 'cancelUserTask',

  'GET /v1/disbursements': 'listDisbursements',
  'GET /v1/disbursements/:id': 'retrieveDisbursement',
  'POST /v1/disbursements/:id/retry': 'retryDisbursement',
  'POST /v1/disbursements/:id/cancel': 'cancelDisbursement',

  'GET /v1/configurations': 'retrieveConfiguration',
  'PUT /v1/configurations': 'updateConfiguration',
  'GET /v1/configurations/notification-target': 'retrieveNotificationTarget',
  'POST /v1/configurations/notification-target/rotate-key': 'rotateNotificationSigningKey',

  'POST /v1/applications': 'createApplication',
  'GET /v1/applications': 'listApplications',
  'GET /v1/applications/:id': 'retrieveApplication',
  'POST /v1/cards': 'createCard',
  'GET /v1/cards': 'listCards',
  'GET /v1/cards/:id': 'retrieveCard',
  'POST /v1/cards/:id/suspend': 'suspendCard',
  'POST /v1/cards/:id/activate': 'activateCard',
  'POST /v1/cards/:id/close': 'closeCard',

  'GET /v1/events': 'listEvents',
  'GET /v1/events/:id': 'retrieveEvent',

  'GET /v1/jobs': 'listJobs',
  'POST /v1/jobs/:id/retry': 'retryJob',

  'POST /v1/webhook-endpoints': 'createWebhookEndpoint',
  'GET /v1/webhook-endpoints': 'listWebhookEndpoints',
  'GET /v1/webhook-endpoints/:id': 'retrieveWebhookEndpoint',
  'PATCH /v1/webhook-endpoints/:id': 'updateWebhookEndpoint',
  'DELETE /v1/webhook-endpoints/:id': 'deleteWebhookEndpoint',
  'POST /v1/webhook-endpoints/:id/rotate-secret': 'rotateWebhookEndpointSecret',
  'GET /v1/webhook-endpoints/:id/deliveries': 'listWebhookDeliveries',
  'POST /v1/webhook-endpoints/:id/deliveries/:deliveryId/redeliver': 'redeliverWebhookDelivery',

  'GET /v1/users/:id/spend': 'listUserSpend',
  'GET /v1/programs/:id/spend': 'listProgramSpend',

  'POST /v1/reconciliation/runs': 'createReconciliationRun',
  'GET /v1/reconciliation/runs': 'listReconciliationRuns',
  'GET /v1/reconciliation/runs/:id': 'retrieveReconciliationRun',

  'PUT /v1/usertasks/:id/approve': 'approveUserTask',
  'PUT /v1/usertasks/:id/reject': 'rejectUserTask',
  'GET /v1/usertasks/:id/record': 'retrieveUserTaskRecord',
  'GET /v1/programs/:id/record': 'exportProgramRecord',

  'GET /v1/audit-log': 'listAuditLog',

  'POST /v1/agreements': 'createAgreement',
  'GET /v1/agreements': 'listAgreements',
  'GET /v1/agreements/:id': 'retrieveAgreement',
  'POST /v1/agreements/:id/versions': 'createAgreementVersion',
  'GET /v1/agreements/:id/versions': 'listAgreementVersions',
  'POST /v1/users/:id/agreements': 'createConsent',
  'GET /v1/users/:id/agreements': 'listUserAgreements',
};

/**
 * The tags routes are grouped by, with their descriptions, in the order the reference shows them.
 * The document lists the ones in use; a route with a tag missing here stops the server at startup.
 */
export const tagDescriptions: Readonly<Record<string, string>> = {
  configuration:
    'Where the organization reaches Highnote: environment, API key (stored encrypted, never returned), card product and funding account.',
  operator:
    'For the operator of this Tranche installation, with the operator token: organizations and their first API key, and the job queue.',
  programs:
    'Award pools with a participant cap: fund, pause, resume and close them, and read the ledger behind their balances.',
  enrollment: 'Participants in a program; each active enrollment counts against the program’s `maxParticipants`.',
  users: 'Participants: the people who complete milestones and receive the money on a card.',
  tasks:
    'Milestones of a program with a dollar value; assigning one to a participant reserves that value from the pool.',
  'user tasks':
    'Milestones assigned to participants: `assigned` (reserved) → `completed` (verified, released toward the card) → `funded`; or `cancelled` or `expired`, which returns the reservation to the pool.',
  disbursements:
    'The funding of a participant’s card for a verified milestone, following the card platform’s transfer.',
  cards:
    'Card issuance through Highnote: the KYC application, then a virtual card at once or a physical card shipped; never a card number.',
  events: 'Every state change as an event (`usertask.completed`), carrying the resource as the API presents it.',
  agreements:
    'Versioned documents participants accept (e-sign consent, cardholder agreement, privacy notice, program terms), each version with a content hash, and each participant’s consent records and state.',
  spend:
    'What participants spent on their cards, as Highnote reported it, and the milestones that paid for each dollar (first-in-first-out over the disbursements that funded the card).',
  reconciliation:
    'Runs that compare Tranche’s disbursements and ledger with Highnote’s transfers and balances, report every mismatch and repair what is safe to repair.',
  record:
    'The program record, from stored facts only: why money was reserved, who completed and approved the milestone, what consent applied, and when the disbursement settled.',
  audit: 'Every state change, with actor, credential and request, hash-chained per organization.',
  webhooks:
    'Partner webhooks: endpoints that receive your events as signed POSTs (Standard Webhooks), retried on a published schedule, with a delivery log and manual redelivery.',
};

/** What each error status means to a caller; the codes come from the closed list in `errors.ts`. */
const errorWordings: Readonly<Record<number, string>> = {
  400: 'The request is not valid: a field, a parameter or the JSON body',
  401: 'No credential in `Authorization: Bearer …`, or not a valid one',
  403: 'The credential may not do this',
  404: 'No such object in your organization, or no such route',
  409: 'The request conflicts with the current state of the objects it names',
  413: 'The request body is larger than the server accepts',
  415: 'The request body is not JSON',
  422: 'The `Idempotency-Key` was used before with a different request',
  429: 'Too many requests',
  500: 'Something went wrong on our side; the request changed nothing',
  502: 'The card platform failed or refused the request',
  503: 'The database is unavailable; retry after `Retry-After` seconds with the same `Idempotency-Key`',
};

/** The tag @fastify/swagger hides a route by (its default), besides `schema.hide`. */
const hiddenTag = 'X-HIDDEN';

/** Methods whose request body the server never reads (Fastify parses none), so no 413 or 415. */
const bodylessMethods = new Set(['GET', 'HEAD']);

type RouteSchema = FastifySchema & {
  hide?: boolean;
  tags?: readonly string[];
  summary?: string;
  operationId?: string;
  response?: Record<string, unknown>;
};

function isDocumented(schema: RouteSchema | undefined): boolean {
  return schema?.hide !== true && !(schema?.tags ?? []).includes(hiddenTag);
}

function methodOf(route: Pick<RouteOptions, 'method' | 'url'>): string {
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  const [method] = methods;
  if (methods.length !== 1 || method === undefined) {
    throw new Error(
      `${methods.join(',')} ${route.url}: register one method per documented route, so each has its own operationId`,
    );
  }
  return method;
}

/** `POST /v1/programs/:id/fund`: the key of `operationIds`. */
export function routeKey(method: string, url: string): string {
  return `${method} ${url}`;
}

/**
 * Gives every documented route its `operationId` from the table and refuses, at startup, a route
 * the document could not describe well: no entry in the table, no summary, no tag, or a tag
 * without a description. Call it before any route is registered.
 */
export function installOperationIds(app: App): void {
  app.addHook('onRoute', (route) => {
    // The HEAD twin Fastify adds to each GET is not documented (@fastify/swagger leaves it out).
    if (route.method === 'HEAD') return;
    const schema = route.schema as RouteSchema | undefined;
    if (!isDocumented(schema)) return;
    const key = routeKey(methodOf(route), route.url);
    const where = 'apps/server/src/platform/openapi.ts';
    const operationId = operationIds[key];
    if (operationId === undefined) {
      throw new Error(
        `${key} has no operationId: add '${key}': '<verbResource>' to operationIds in ${where}, or hide the route with schema.hide`,
      );
    }
    if (schema?.operationId !== undefined && schema.operationId !== operationId) {
      throw new Error(
        `${key} declares operationId ${schema.operationId}; operationIds in ${where} says ${operationId}`,
      );
    }
    if (schema?.summary === undefined || schema.summary.trim() === '') {
      throw new Error(`${key} has no summary: the document and the SDK describe the operation by it`);
    }
    if (!Object.keys(schema.response ?? {}).some((status) => status.startsWith('2'))) {
      throw new Error(`${key} declares no success response: one endpoint, one contract`);
    }
    const tags = schema.tags ?? [];
    if (tags.length === 0) {
      throw new Error(`${key} has no tag: give it one of ${Object.keys(tagDescriptions).join(', ')}`);
    }
    for (const tag of tags) {
      if (tagDescriptions[tag] === undefined) {
        throw new Error(
          `${key} uses the tag "${tag}", which has no description: add it to tagDescriptions in ${where}`,
        );
      }
    }
    route.schema = { ...schema, operationId };
  });
}

function list(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

function errorDescription(status: number): string {
  const codes = Object.entries(errorStatuses)
    .filter(([, codeStatus]) => codeStatus === status)
    .map(([code]) => `\`${code}\``);
  const wording = errorWordings[status] ?? STATUS_CODES[status] ?? `HTTP ${status}`;
  return codes.length === 0 ? `${wording}.` : `${wording} (${list(codes)}).`;
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `program` from a schema whose `object` property is the literal "program" (`user_task` → `user task`). */
function nounOf(schema: unknown, components: JsonObject): string | undefined {
  const target = isObject(schema) && typeof schema.$ref === 'string' ? components[schema.$ref] : schema;
  if (!isObject(target) || !isObject(target.properties)) return undefined;
  const object = target.properties.object;
  if (!isObject(object)) return undefined;
  const literal = object.const ?? (Array.isArray(object.enum) && object.enum.length === 1 ? object.enum[0] : undefined);
  return typeof literal === 'string' ? literal.replaceAll('_', ' ') : undefined;
}

function sentence(text: string): string {
  const trimmed = text.trim();
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

function successDescription(status: number, method: string, summary: string, noun: string | undefined): string {
  if (noun === undefined) return sentence(method === 'GET' ? summary : `${STATUS_CODES[status]}: ${summary}`);
  if (status === 201) return `The ${noun}, created.`;
  if (method === 'GET') return `The ${noun}.`;
  // A replay of an Idempotency-Key answers with the stored body: the object as the first request left it.
  return `The ${noun} as the request left it.`;
}

/**
 * `schema` with `description` as its response's description. @fastify/swagger reads
 * `x-response-description` (kept out of the body's schema) on an inline schema, but drops it beside a
 * `$ref`, where it reads `description` instead (which the resolved reference then hides).
 */
function describedAs(schema: JsonObject, description: string): JsonObject {
  return typeof schema.$ref === 'string'
    ? { ...schema, description }
    : { ...schema, 'x-response-description': description };
}

function hasOwnDescription(schema: JsonObject): boolean {
  return typeof schema.description === 'string' || 'x-response-description' in schema;
}

/** What a 503 carries besides the error envelope. */
const retryAfterHeader = {
  'Retry-After': {
    type: 'integer',
    minimum: 0,
    description: 'Seconds to wait before sending the request again.',
    examples: [serviceUnavailableRetryAfterSeconds],
  },
};

/** One response as the document shows it; a description the route gave the response itself is kept. */
function documentedResponse(
  status: number,
  body: JsonObject,
  route: { method: string; summary: string; schemas: JsonObject },
): JsonObject {
  if (hasOwnDescription(body)) return body;
  if (status < 400) {
    return describedAs(body, successDescription(status, route.method, route.summary, nounOf(body, route.schemas)));
  }
  const described = describedAs(body, errorDescription(status));
  return status === 503 ? { ...described, headers: retryAfterHeader } : described;
}

/**
 * The `transform` of @fastify/swagger: the route's schema as the document shows it. It changes
 * nothing the server validates or serializes with.
 */
export const documentRoute: NonNullable<FastifyDynamicSwaggerOptions['transform']> = ({
  schema,
  url,
  route,
  ...document
}) => {
  const routeSchema = schema as RouteSchema | undefined;
  if (!isDocumented(routeSchema) || routeSchema?.response === undefined) return { schema, url };
  const method = methodOf(route);
  const openapiObject = 'openapiObject' in document ? (document.openapiObject as JsonObject) : {};
  const components = isObject(openapiObject.components) ? openapiObject.components : {};
  const schemas = isObject(components.schemas) ? components.schemas : {};
  const isPublic = (route.config?.auth ?? 'public') === 'public';
  const response: JsonObject = {};
  for (const [statusText, body] of Object.entries(routeSchema.response)) {
    const status = Number(statusText);
    if (bodylessMethods.has(method) && (status === 413 || status === 415)) continue;
    if (isPublic && status === 401) continue;
    response[statusText] = isObject(body)
      ? documentedResponse(status, body, { method, summary: routeSchema.summary ?? '', schemas })
      : body;
  }
  return { schema: { ...routeSchema, response }, url };
};

/**
 * The `transformObject` of @fastify/swagger: the top-level `tags`, the ones in use in the order of
 * `tagDescriptions`, placed after `info` and `servers` where a reader looks for them.
 */
export const documentObject: NonNullable<FastifyDynamicSwaggerOptions['transformObject']> = (documentObject) => {
  if (!('openapiObject' in documentObject)) return documentObject.swaggerObject;
  const document = documentObject.openapiObject;
  const used = new Set<string>();
  for (const pathItem of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(isObject(pathItem) ? pathItem : {})) {
      if (isObject(operation) && Array.isArray(operation.tags)) {
        for (const tag of operation.tags) used.add(String(tag));
      }
    }
  }
  const tags = Object.entries(tagDescriptions)
    .filter(([name]) => used.has(name))
    .map(([name, description]) => ({ name, description }));
  const { openapi, info, servers, ...rest } = document;
  return { openapi, info, servers, tags, ...rest } as typeof document;
};

/** The options @fastify/swagger is registered with: the document's header and the transforms above. */
export function openApiOptions(version: string): FastifyDynamicSwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Tranche API',
        version,
        description:
          'Milestone-based disbursements: fund a program’s award pool, reserve budget when a milestone is assigned, release it when the milestone is verified. Amounts are decimal dollars with at most two decimals.',
        // Tranche is not published under an open-source licence; an SPDX `LicenseRef-` names a
        // licence of one's own, which is what the OpenAPI 3.1 `identifier` expects.
        license: { name: 'Proprietary: all rights reserved', identifier: 'LicenseRef-Proprietary' },
      },
      servers: [
        // Relative: the server that served this document (GET /openapi.json), wherever it runs.
        { url: '/', description: 'The server this document was served from.' },
        {
          url: `http://${defaultHost}:${defaultPort}`,
          description: 'A local server started with `npm start` and the default HOST and PORT.',
        },
      ],
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'Your organization’s secret API key.' },
          operatorToken: { type: 'http', scheme: 'bearer', description: 'The operator token (TRANCHE_ADMIN_TOKEN).' },
        },
      },
      security: [{ apiKey: [] }],
    },
    hiddenTag,
    transform: documentRoute,
    transformObject: documentObject,
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  };
}
