import { Type } from 'typebox';
import { mutateRevealingOnce, redactedSecret } from '../credentials/reveal.js';
import type { Db } from '../platform/db.js';
import { ApiError, ok } from '../platform/errors.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import { errorResponses, Id, ListOf, ListQuery, OneOf } from '../platform/schemas.js';
import { mutate, presented } from '../work/mutate.js';
import { listWebhookDeliveries, presentWebhookDelivery, redeliver, WebhookDeliverySchema } from './delivery.js';
import {
  createWebhookEndpoint,
  deleteWebhookEndpoint,
  getWebhookEndpoint,
  listWebhookEndpoints,
  maxWebhookDescriptionLength,
  maxWebhookEventTypes,
  maxWebhookUrlLength,
  presentWebhookEndpoint,
  rotateWebhookSecret,
  subscribableEventTypes,
  updateWebhookEndpoint,
  WebhookEndpointSchema,
  WebhookEndpointWithSecretSchema,
  webhookEndpointStatuses,
} from './endpoint.js';

/**
 * Partner webhook endpoints: subscribe a URL to event types; Tranche POSTs each matching event,
 * signed per Standard Webhooks, and keeps a delivery log per endpoint. See `delivery.ts`.
 */

const Url = Type.String({
  minLength: 8,
  maxLength: maxWebhookUrlLength,
  pattern: '^https?://[^\\s]+$',
  description: 'Where events are POSTed: an http or https URL. Use https in production.',
  examples: ['https://partner.example.com/tranche/webhooks'],
});
const EventTypes = Type.Array(
  OneOf(subscribableEventTypes, { description: 'An event type, or `*`.', examples: ['usertask.completed'] }),
  {
    minItems: 1,
    maxItems: maxWebhookEventTypes,
    description: 'The event types to deliver, or `["*"]` for every type (including ones added later).',
    examples: [['usertask.completed', 'disbursement.settled']],
  },
);
const Description = Type.String({
  maxLength: maxWebhookDescriptionLength,
  description: 'Your note about the endpoint.',
  examples: ['Payroll sync, production'],
});

export function webhookEndpointRoutes(app: App, deps: { db: Db; encryptionKey: Buffer | undefined }): void {
  const { db, encryptionKey } = deps;
  app.addSchema(WebhookEndpointSchema);
  app.addSchema(WebhookEndpointWithSecretSchema);
  app.addSchema(WebhookDeliverySchema);
  const config = { auth: 'organization' as const };
  const tags = ['webhooks'];
  const EndpointRef = Type.Ref('WebhookEndpoint');
  const EndpointWithSecretRef = Type.Ref('WebhookEndpointWithSecret');
  const DeliveryRef = Type.Ref('WebhookDelivery');
  const EndpointParams = Type.Object({ id: Id('whe', 'Webhook endpoint id.') });
  const withSecret = ({ row, secret }: { row: Parameters<typeof presentWebhookEndpoint>[0]; secret: string }) => ({
    ...presentWebhookEndpoint(row),
    secret,
  });
  // The secret goes to the caller once; the copy kept to answer a replay of the same
  // Idempotency-Key shows its last four characters only.
  const secretRedacted = (body: ReturnType<typeof withSecret>) => ({ ...body, secret: redactedSecret(body.secret) });

  app.post(
    '/v1/webhook-endpoints',
    {
      config,
      schema: {
        tags,
        summary: 'Create a webhook endpoint (its signing secret is shown once)',
        description:
          'Events of the listed types that happen from now on are POSTed to `url`, signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`). Keep the `secret` from this answer: it is not shown again.',
        body: Type.Object(
          { url: Url, eventTypes: EventTypes, description: Type.Optional(Description) },
          { additionalProperties: false },
        ),
        response: { 201: EndpointWithSecretRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      mutateRevealingOnce(db, request, reply, 201, { redact: secretRedacted }, async (unit) => {
        const created = await createWebhookEndpoint(unit, encryptionKey, request.body);
        return created.ok ? ok(withSecret(created.value)) : created;
      }),
  );

  app.get(
    '/v1/webhook-endpoints',
    {
      config,
      schema: {
        tags,
        summary: 'List webhook endpoints, newest first',
        querystring: Type.Object(ListQuery),
        response: { 200: ListOf(EndpointRef, 'A page of webhook endpoints.'), ...errorResponses() },
      },
    },
    async (request) => {
      const rows = await listWebhookEndpoints(db, request.organizationId, {
        afterId: decodeCursor(request.query.cursor),
        limit: pageSize(request.query.limit),
      });
      return page(rows, request.query.limit, presentWebhookEndpoint);
    },
  );

  app.get(
    '/v1/webhook-endpoints/:id',
    {
      config,
      schema: {
        tags,
        summary: 'Retrieve a webhook endpoint',
        params: EndpointParams,
        response: { 200: EndpointRef, ...errorResponses() },
      },
    },
    async (request) => {
      const row = await getWebhookEndpoint(db, request.organizationId, request.params.id);
      if (row === undefined) throw new ApiError('not_found', `No webhook endpoint ${request.params.id}`);
      return presentWebhookEndpoint(row);
    },
  );

  app.patch(
    '/v1/webhook-endpoints/:id',
    {
      config,
      schema: {
        tags,
        summary: 'Update a webhook endpoint: URL, event types, description, or enable/disable it',
        description:
          'Enabling a disabled endpoint clears its failure record; it then receives the events that happened while it was disabled, from where its fan-out stopped.',
        params: EndpointParams,
        body: Type.Object(
          {
            url: Type.Optional(Url),
            eventTypes: Type.Optional(EventTypes),
            description: Type.Optional(
              Type.Union([Description, Type.Null()], {
                description: 'Your note about the endpoint; null removes it.',
                examples: ['Payroll sync, production'],
              }),
            ),
            status: Type.Optional(
              OneOf(webhookEndpointStatuses, { description: 'enabled or disabled.', examples: ['disabled'] }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: EndpointRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      mutate(db, request, reply, 200, async (unit) =>
        presented(await updateWebhookEndpoint(unit, request.params.id, request.body), presentWebhookEndpoint),
      ),
  );

  app.delete(
    '/v1/webhook-endpoints/:id',
    {
      config,
      schema: {
        tags,
        summary: 'Delete a webhook endpoint and its delivery log',
        params: EndpointParams,
        response: { 200: EndpointRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      mutate(db, request, reply, 200, async (unit) =>
        presented(await deleteWebhookEndpoint(unit, request.params.id), presentWebhookEndpoint),
      ),
  );

  app.post(
    '/v1/webhook-endpoints/:id/rotate-secret',
    {
      config,
      schema: {
        tags,
        summary: 'Rotate the signing secret (the new one is shown once)',
        description:
          'For 24 hours the previous secret keeps signing beside the new one: `webhook-signature` carries one `v1,` signature per secret, so receivers switch over without missing an event.',
        params: EndpointParams,
        response: { 200: EndpointWithSecretRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      mutateRevealingOnce(db, request, reply, 200, { redact: secretRedacted }, async (unit) => {
        const rotated = await rotateWebhookSecret(unit, encryptionKey, request.params.id);
        return rotated.ok ? ok(withSecret(rotated.value)) : rotated;
      }),
  );

  app.get(
    '/v1/webhook-endpoints/:id/deliveries',
    {
      config,
      schema: {
        tags,
        summary: 'List the delivery log of a webhook endpoint, newest first',
        params: EndpointParams,
        querystring: Type.Object({ ...ListQuery, eventId: Type.Optional(Id('evt', 'Only deliveries of this event.')) }),
        response: { 200: ListOf(DeliveryRef, 'A page of deliveries.'), ...errorResponses() },
      },
    },
    async (request) => {
      const { organizationId } = request;
      const endpoint = await getWebhookEndpoint(db, organizationId, request.params.id);
      if (endpoint === undefined) throw new ApiError('not_found', `No webhook endpoint ${request.params.id}`);
      const rows = await listWebhookDeliveries(db, organizationId, endpoint.id, {
        afterId: decodeCursor(request.query.cursor),
        limit: pageSize(request.query.limit),
        eventId: request.query.eventId,
      });
      return page(rows, request.query.limit, presentWebhookDelivery);
    },
  );

  app.post(
    '/v1/webhook-endpoints/:id/deliveries/:deliveryId/redeliver',
    {
      config,
      schema: {
        tags,
        summary: 'Deliver an event to the endpoint again, now',
        description:
          'A new attempt of a succeeded or failed delivery, with the same `webhook-id`; a pending delivery already has an attempt due (409).',
        params: Type.Object({
          id: Id('whe', 'Webhook endpoint id.'),
          deliveryId: Id('whd', 'Delivery id.'),
        }),
        response: { 202: DeliveryRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      mutate(db, request, reply, 202, async (unit) =>
        presented(await redeliver(unit, request.params.id, request.params.deliveryId), presentWebhookDelivery),
      ),
  );
}
