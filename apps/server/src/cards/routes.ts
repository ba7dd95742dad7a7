import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import {
  type Issuers,
  issuerFailure,
  recalledIssuerRequest,
  rememberIssuerRequest,
} from '../configurations/service.js';
import { fundRequest } from '../disbursements/funding.js';
import { shippingMethods } from '../issuer/highnote-cards.js';
import type { Db } from '../platform/db.js';
import { ApiError, fail } from '../platform/errors.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import { issuerIdempotencyKey } from '../platform/ids.js';
import { errorResponses, Id, ListOf, ListQuery, OneOf, Timestamp } from '../platform/schemas.js';
import { getUser } from '../users/service.js';
import { mutate, presented } from '../work/mutate.js';
import { ApplicationSchema, applicationStatuses, presentApplication } from './application.js';
import { CardSchema, cardFormFactors, cardStatusOf, PostalAddressSchema, presentCard, type Shipping } from './card.js';
import { syncCardControlsRequest } from './controls.js';
import { followApplicationRequest } from './jobs.js';
import {
  cardForFunding,
  getApplication,
  getCard,
  listApplications,
  listCards,
  openApplicationOf,
  recordApplication,
  recordCard,
  recordCardStatus,
  recordPhysicalOrder,
} from './service.js';

/**
 * Applications and cards, the Stretch workflow: account holder → application (KYC) → financial
 * account → virtual card → physical card. Each route calls Highnote first, outside any
 * transaction, and records what Highnote answered in one unit; a call that fails writes nothing.
 */

function requestKeyOf(request: FastifyRequest): string | undefined {
  const raw = request.headers['idempotency-key'];
  return Array.isArray(raw) ? raw[0] : raw;
}

export function cardRoutes(app: App, deps: { db: Db; issuers: Issuers }): void {
  const { db, issuers } = deps;
  app.addSchema(ApplicationSchema);
  app.addSchema(CardSchema);
  const config = { auth: 'organization' as const };
  const ApplicationRef = Type.Ref('Application');
  const CardRef = Type.Ref('Card');

  async function issuerOf(organizationId: string) {
    const issuer = await issuers.forOrganization(organizationId);
    if (!issuer.ok) throw ApiError.of(issuer.failure);
    return issuer.value;
  }

  app.post(
    '/v1/applications',
    {
      config,
      schema: {
        tags: ['cards'],
        summary: 'Apply for the configured card product (KYC) with the cardholder-agreement consent',
        description:
          'The participant needs a Highnote account holder (created from person details, or linked). Highnote decides asynchronously; the application moves to approved (its financial account issued) or denied, with events.',
        body: Type.Object(
          {
            userId: Id('usr', 'The applicant.'),
            consent: Type.Object(
              {
                acceptedAt: Timestamp('When the participant accepted the cardholder agreement.'),
                ipAddress: Type.Optional(
                  Type.String({
                    anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }],
                    description: 'From where (IPv4 or IPv6).',
                    examples: ['203.0.113.7'],
                  }),
                ),
              },
              { additionalProperties: false, description: 'The cardholder-agreement consent.' },
            ),
          },
          { additionalProperties: false },
        ),
        response: { 201: ApplicationRef, ...errorResponses(409, 422, 502) },
      },
    },
    async (request, reply) => {
      const { organizationId } = request;
      const { userId, consent } = request.body;
      const user = await getUser(db, organizationId, userId);
      if (user === undefined) throw new ApiError('not_found', `No user ${userId}`, 'userId');
      if (user.highnoteAccountHolderId === null) {
        throw new ApiError(
          'invalid_state',
          `User ${userId} has no Highnote account holder: create them with person details or link highnoteAccountHolderId`,
          'userId',
        );
      }
      const { configuration, highnote } = await issuerOf(organizationId);
      const open = await openApplicationOf(db, organizationId, userId, configuration.cardProductId);
      const requestKey = requestKeyOf(request);
      const recalled = await recalledIssuerRequest(db, organizationId, 'application', requestKey);
      if (open !== undefined && open.highnoteApplicationId !== recalled?.issuerId) {
        throw new ApiError(
          'invalid_state',
          `User ${userId} already has application ${open.id} (${open.status})`,
          'userId',
        );
      }
      let highnoteApplicationId = recalled?.issuerId;
      if (highnoteApplicationId === undefined) {
        const created = await highnote.createApplication({
          accountHolderId: user.highnoteAccountHolderId,
          cardProductId: configuration.cardProductId,
          consentAt: new Date(consent.acceptedAt),
          ipAddress: consent.ipAddress ?? null,
        });
        if (!created.ok) throw ApiError.of(issuerFailure(created.failure));
        highnoteApplicationId = created.value.id;
        await rememberIssuerRequest(db, organizationId, 'application', requestKey, {
          issuerId: highnoteApplicationId,
          localId: userId,
        });
      }
      const applicationId = highnoteApplicationId;
      return mutate(db, request, reply, 201, async (unit) => {
        const recorded = await recordApplication(unit, {
          userId,
          cardProductId: configuration.cardProductId,
          highnoteApplicationId: applicationId,
          consentAcceptedAt: new Date(consent.acceptedAt),
          consentIpAddress: consent.ipAddress ?? null,
        });
        if (recorded.ok) unit.enqueue(followApplicationRequest(recorded.value.id));
        return presented(recorded, presentApplication);
      });
    },
  );

  app.get(
    '/v1/applications',
    {
      config,
      schema: {
        tags: ['cards'],
        summary: 'List applications, newest first',
        querystring: Type.Object({
          ...ListQuery,
          userId: Type.Optional(Id('usr', 'Only this participant.')),
          status: Type.Optional(
            OneOf(applicationStatuses, { description: 'Only this status.', examples: ['approved'] }),
          ),
        }),
        response: { 200: ListOf(ApplicationRef, 'A page of applications.'), ...errorResponses() },
      },
    },
    async (request) => {
      const { cursor, limit, ...filter } = request.query;
      const rows = await listApplications(db, request.organizationId, {
        ...filter,
        afterId: decodeCursor(cursor),
        limit: pageSize(limit),
      });
      return page(rows, limit, presentApplication);
    },
  );

  app.get(
    '/v1/applications/:id',
    {
      config,
      schema: {
        tags: ['cards'],
        summary: 'Retrieve an application',
        params: Type.Object({ id: Id('app', 'Application id.') }),
        response: { 200: ApplicationRef, ...errorResponses() },
      },
    },
    async (request) => {
      const application = await getApplication(db, request.organizationId, request.params.id);
      if (application === undefined) throw new ApiError('not_found', `No application ${request.params.id}`);
      return presentApplication(application);
    },
  );

  const ShippingSchema = Type.Object(
    {
      address: Type.Optional(PostalAddressSchema),
      recipient: Type.Optional(
        Type.Object(
          {
            firstName: Type.String({ minLength: 1, maxLength: 100, description: 'Given name.', examples: ['Ada'] }),
            lastName: Type.String({
              minLength: 1,
              maxLength: 100,
              description: 'Family name.',
              examples: ['Lovelace'],
            }),
          },
          { additionalProperties: false, description: 'Who it is addressed to; the participant by default.' },
        ),
      ),
      method: Type.Optional(
        OneOf(shippingMethods, { description: 'Courier; USPS_EXPRESS by default.', examples: ['USPS_EXPRESS'] }),
      ),
      signatureRequired: Type.Optional(Type.Boolean({ description: 'Signature on delivery.', examples: [false] })),
    },
    { additionalProperties: false, description: 'Where the physical card goes; the participant’s address by default.' },
  );

  app.post(
    '/v1/cards',
    {
      config,
      schema: {
        tags: ['cards'],
        summary: 'Issue a virtual card at once, or order the physical one',
        description:
          'One card per participant per card product. A physical card is ordered for the participant’s card (issuing it first, not yet active, when there is none) and shipped USPS Express by default; activate it when it arrives.',
        body: Type.Object(
          {
            userId: Id('usr', 'Cardholder; needs an approved application.'),
            formFactor: OneOf(cardFormFactors, { description: 'virtual or physical.', examples: ['virtual'] }),
            shipping: Type.Optional(ShippingSchema),
          },
          { additionalProperties: false },
        ),
        response: { 201: CardRef, ...errorResponses(409, 422, 502) },
      },
    },
    async (request, reply) => {
      const { organizationId } = request;
      const { userId, formFactor } = request.body;
      const user = await getUser(db, organizationId, userId);
      if (user === undefined) throw new ApiError('not_found', `No user ${userId}`, 'userId');
      const { configuration, highnote } = await issuerOf(organizationId);
      const application = await openApplicationOf(db, organizationId, userId, configuration.cardProductId);
      if (
        application === undefined ||
        application.status !== 'approved' ||
        application.highnoteFinancialAccountId === null
      ) {
        throw new ApiError(
          'invalid_state',
          application === undefined
            ? `User ${userId} has no application: POST /v1/applications first`
            : `User ${userId}'s application ${application.id} is ${application.status}, not approved`,
          'userId',
        );
      }
      const existing = await cardForFunding(db, organizationId, userId, configuration.cardProductId);
      if (existing !== undefined && (formFactor === 'virtual' || existing.physicalOrderId !== null)) {
        throw new ApiError('invalid_state', `User ${userId} already has card ${existing.id}`, 'userId');
      }
      let shipping: Shipping | undefined;
      if (formFactor === 'physical') {
        const given = request.body.shipping;
        const address = given?.address ?? (user.address as Shipping['address'] | null);
        const recipient =
          given?.recipient ??
          (user.firstName !== null && user.lastName !== null
            ? { firstName: user.firstName, lastName: user.lastName }
            : undefined);
        if (address === null || address === undefined) {
          throw new ApiError(
            'validation_error',
            'shipping.address is required: the user has no address',
            'shipping.address',
          );
        }
        if (recipient === undefined) {
          throw new ApiError(
            'validation_error',
            'shipping.recipient is required: the user has no name',
            'shipping.recipient',
          );
        }
        shipping = {
          address,
          recipient,
          method: given?.method ?? 'USPS_EXPRESS',
          signatureRequired: given?.signatureRequired ?? false,
        };
      }

      let paymentCard = existing === undefined ? undefined : { id: existing.highnotePaymentCardId };
      let issued: Awaited<ReturnType<typeof highnote.issueCard>> | undefined;
      if (existing === undefined) {
        // The key names the application and how many of its cards were closed before, so a retry
        // gets the same card and a replacement for a closed card gets a new one.
        const closed = await db
          .selectFrom('cards')
          .select((eb) => eb.fn.countAll<string>().as('count'))
          .where('organization_id', '=', organizationId)
          .where('application_id', '=', application.id)
          .where('status', '=', 'closed')
          .executeTakeFirstOrThrow();
        issued = await highnote.issueCard({
          financialAccountId: application.highnoteFinancialAccountId,
          externalId: `${application.id}-${closed.count}`,
          // Never ship an active physical card: it is activated when it arrives.
          activateOnCreate: formFactor === 'virtual',
          idempotencyKey: issuerIdempotencyKey('card', organizationId, application.id, String(closed.count)),
          now: new Date(),
        });
        if (!issued.ok) throw ApiError.of(issuerFailure(issued.failure));
        paymentCard = { id: issued.value.id };
      }
      let order: { id: string; status: string; shipping: Shipping } | null = null;
      if (shipping !== undefined && paymentCard !== undefined) {
        const recalled = await recalledIssuerRequest(db, organizationId, 'physical_order', paymentCard.id);
        if (recalled !== undefined) {
          order = { id: recalled.issuerId, status: 'NEW', shipping };
        } else {
          const placed = await highnote.orderPhysicalCard({
            paymentCardId: paymentCard.id,
            recipient: { givenName: shipping.recipient.firstName, familyName: shipping.recipient.lastName },
            address: shipping.address,
            method: shipping.method as (typeof shippingMethods)[number],
            signatureRequired: shipping.signatureRequired,
          });
          if (!placed.ok) throw ApiError.of(issuerFailure(placed.failure, 'shipping'));
          // Keyed by the payment card: one physical order per card, whichever request asks.
          await rememberIssuerRequest(db, organizationId, 'physical_order', paymentCard.id, {
            issuerId: placed.value.id,
            localId: existing?.id ?? null,
          });
          order = { ...placed.value, shipping };
        }
      }
      return mutate(db, request, reply, 201, async (unit) => {
        if (existing !== undefined) {
          if (order === null) return fail('invalid_state', 'nothing to order');
          return presented(await recordPhysicalOrder(unit, existing.id, order), presentCard);
        }
        if (issued === undefined || !issued.ok) return fail('internal_error', 'no card was issued');
        const card = issued.value;
        const recorded = await recordCard(
          unit,
          {
            userId,
            application,
            highnotePaymentCardId: card.id,
            formFactor,
            status: cardStatusOf(card.status),
            last4: card.last4,
            network: card.network,
            expirationDate: card.expirationDate,
            physicalOrder: order,
          },
          (disbursementId) => unit.enqueue(fundRequest(disbursementId, { dedupe: true })),
        );
        if (recorded.ok) unit.enqueue(syncCardControlsRequest(recorded.value.id));
        return presented(recorded, presentCard);
      });
    },
  );

  app.get(
    '/v1/cards',
    {
      config,
      schema: {
        tags: ['cards'],
        summary: 'List cards, newest first',
        querystring: Type.Object({ ...ListQuery, userId: Type.Optional(Id('usr', 'Only this participant.')) }),
        response: { 200: ListOf(CardRef, 'A page of cards.'), ...errorResponses() },
      },
    },
    async (request) => {
      const { cursor, limit, userId } = request.query;
      const rows = await listCards(db, request.organizationId, {
        userId,
        afterId: decodeCursor(cursor),
        limit: pageSize(limit),
      });
      return page(rows, limit, presentCard);
    },
  );

  const CardParams = Type.Object({ id: Id('card', 'Card id.') });
  app.get(
    '/v1/cards/:id',
    {
      config,
      schema: {
        tags: ['cards'],
        summary: 'Retrieve a card: status, last four, form factor, order status; never the card number',
        params: CardParams,
        response: { 200: CardRef, ...errorResponses() },
      },
    },
    async (request) => {
      const card = await getCard(db, request.organizationId, request.params.id);
      if (card === undefined) throw new ApiError('not_found', `No card ${request.params.id}`);
      return presentCard(card);
    },
  );

  const lifecycle = {
    suspend: { summary: 'Suspend a card: authorizations decline until it is activated again', status: 'suspended' },
    activate: { summary: 'Activate a card, or lift its suspension', status: 'active' },
    close: { summary: 'Close a card for good; a new one can be issued', status: 'closed' },
  } as const;
  for (const [action, { summary, status }] of Object.entries(lifecycle)) {
    app.post(
      `/v1/cards/:id/${action}`,
      {
        config,
        schema: {
          tags: ['cards'],
          summary,
          params: CardParams,
          response: { 200: CardRef, ...errorResponses(409, 422, 502) },
        },
      },
      async (request, reply) => {
        const card = await getCard(db, request.organizationId, request.params.id);
        if (card === undefined) throw new ApiError('not_found', `No card ${request.params.id}`);
        if (card.status === 'closed') throw new ApiError('invalid_state', `Card ${card.id} is closed`);
        const { highnote } = await issuerOf(request.organizationId);
        const changed = await highnote.changeCardStatus(card.highnotePaymentCardId, action as keyof typeof lifecycle);
        if (!changed.ok) throw ApiError.of(issuerFailure(changed.failure));
        return mutate(db, request, reply, 200, async (unit) =>
          presented(await recordCardStatus(unit, card.id, status), presentCard),
        );
      },
    );
  }
}
