import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import { errorResponses, Id, ListOf, ListQuery, OneOf } from '../platform/schemas.js';
import { mutate, presented } from '../work/mutate.js';
import {
  AgreementSchema,
  AgreementVersionSchema,
  agreementTypes,
  createAgreement,
  createAgreementVersion,
  getAgreement,
  listAgreements,
  listAgreementVersions,
  maxAgreementBodyLength,
  maxAgreementTitleLength,
  maxAgreementUrlLength,
  maxAgreementVersions,
  presentAgreement,
  presentAgreementVersion,
} from './agreement.js';
import {
  ConsentSchema,
  consentActions,
  consentMethods,
  listUserAgreements,
  maxIpAddressLength,
  maxUserAgentLength,
  presentConsent,
  presentUserAgreement,
  recordConsent,
  UserAgreementSchema,
} from './consent.js';

/**
 * Agreements and their immutable versions, and participants' consent to them: records are only
 * appended (a withdrawal is a new record), and `GET /v1/users/{id}/agreements` reads each
 * participant's state from them. See `agreement.ts` and `consent.ts`.
 */

const Title = Type.String({
  minLength: 1,
  maxLength: maxAgreementTitleLength,
  description: 'Title of the document.',
  examples: ['Cardholder Agreement'],
});
const Body = Type.String({
  minLength: 1,
  maxLength: maxAgreementBodyLength,
  description: 'The text of the document. Send `body` or `url`, not both.',
  examples: ['By accepting, you agree to receive your card and its disclosures electronically…'],
});
const Url = Type.String({
  minLength: 8,
  maxLength: maxAgreementUrlLength,
  pattern: '^https?://[^\\s]+$',
  description:
    'Where the document is published (its hash is of the URL; Tranche does not fetch it). Send `body` or `url`, not both.',
  examples: ['https://partner.example.com/legal/cardholder-agreement-v1.pdf'],
});
const VersionNumber = (description: string) =>
  Type.Integer({ minimum: 1, maximum: maxAgreementVersions, description, examples: [1] });

export function agreementRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
  app.addSchema(AgreementVersionSchema);
  app.addSchema(AgreementSchema);
  app.addSchema(ConsentSchema);
  app.addSchema(UserAgreementSchema);
  const config = { auth: 'organization' as const };
  const tags = ['agreements'];
  const AgreementRef = Type.Ref('Agreement');
  const VersionRef = Type.Ref('AgreementVersion');
  const AgreementParams = Type.Object({ id: Id('agr', 'Agreement id.') });

  app.post(
    '/v1/agreements',
    {
      config,
      schema: {
        tags,
        summary: 'Create an agreement (its version 1)',
        description:
          'A document participants accept: its text (`body`) or where it is published (`url`). The version gets `contentHash`, the SHA-256 of that content; versions never change.',
        body: Type.Object(
          {
            type: OneOf(agreementTypes, {
              description: 'What kind of document it is.',
              examples: ['cardholder_agreement'],
            }),
            title: Title,
            body: Type.Optional(Body),
            url: Type.Optional(Url),
          },
          { additionalProperties: false },
        ),
        response: { 201: AgreementRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      mutate(db, request, reply, 201, async (unit) =>
        presented(await createAgreement(unit, request.body), presentAgreement),
      ),
  );

  app.get(
    '/v1/agreements',
    {
      config,
      schema: {
        tags,
        summary: 'List agreements, newest first',
        querystring: Type.Object({
          ...ListQuery,
          type: Type.Optional(
            OneOf(agreementTypes, { description: 'Only agreements of this type.', examples: ['esign_consent'] }),
          ),
        }),
        response: { 200: ListOf(AgreementRef, 'A page of agreements.'), ...errorResponses() },
      },
    },
    async (request) => {
      const rows = await listAgreements(db, request.organizationId, {
        afterId: decodeCursor(request.query.cursor),
        limit: pageSize(request.query.limit),
        type: request.query.type,
      });
      return page(rows, request.query.limit, presentAgreement);
    },
  );

  app.get(
    '/v1/agreements/:id',
    {
      config,
      schema: {
        tags,
        summary: 'Retrieve an agreement with its current version',
        params: AgreementParams,
        response: { 200: AgreementRef, ...errorResponses() },
      },
    },
    async (request) => {
      const agreement = await getAgreement(db, request.organizationId, request.params.id);
      if (agreement === undefined) throw new ApiError('not_found', `No agreement ${request.params.id}`);
      return presentAgreement(agreement);
    },
  );

  app.post(
    '/v1/agreements/:id/versions',
    {
      config,
      schema: {
        tags,
        summary: 'Publish a new version of an agreement',
        description:
          'Version n+1 becomes the current version; earlier versions and the consents given to them stay as they are. Participants of a program that asks for consent again on a new version (`reconsentOnNewVersion`) become `stale` until they accept it.',
        params: AgreementParams,
        body: Type.Object(
          {
            title: Type.Optional({
              ...Title,
              description: 'Title of the new version; the current title when omitted.',
            }),
            body: Type.Optional(Body),
            url: Type.Optional(Url),
          },
          { additionalProperties: false },
        ),
        response: { 201: VersionRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      mutate(db, request, reply, 201, async (unit) =>
        presented(await createAgreementVersion(unit, request.params.id, request.body), ({ version }) =>
          presentAgreementVersion(version),
        ),
      ),
  );

  app.get(
    '/v1/agreements/:id/versions',
    {
      config,
      schema: {
        tags,
        summary: 'List the versions of an agreement, highest first',
        params: AgreementParams,
        querystring: Type.Object(ListQuery),
        response: { 200: ListOf(VersionRef, 'A page of versions.'), ...errorResponses() },
      },
    },
    async (request) => {
      const { organizationId } = request;
      const agreement = await getAgreement(db, organizationId, request.params.id);
      if (agreement === undefined) throw new ApiError('not_found', `No agreement ${request.params.id}`);
      const after = decodeCursor(request.query.cursor);
      const beforeVersion = after === undefined ? undefined : Number.parseInt(after, 10);
      // Versions are integers in the database: anything past its range was never a cursor here.
      if (beforeVersion !== undefined && !(beforeVersion >= 1 && beforeVersion <= 2_147_483_647)) {
        throw new ApiError('validation_error', 'cursor is not one this API returned', 'cursor');
      }
      const versions = await listAgreementVersions(db, organizationId, agreement.id, {
        beforeVersion,
        limit: pageSize(request.query.limit),
      });
      // The cursor of this list is the last version number shown.
      return page(
        versions.map((version) => ({ id: String(version.version), version })),
        request.query.limit,
        ({ version }) => presentAgreementVersion(version),
      );
    },
  );

  userConsentRoutes(app, deps);
}

function userConsentRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
  const config = { auth: 'organization' as const };
  const tags = ['agreements'];
  const UserParams = Type.Object({ id: Id('usr', 'User id.') });

  app.post(
    '/v1/users/:id/agreements',
    {
      config,
      schema: {
        tags,
        summary: 'Record a participant’s acceptance (or withdrawal) of an agreement version',
        description:
          'Appends a consent record: which version, when (server time), from which IP address and user agent, and how. Records never change: a withdrawal (`action: "withdraw"`) is a new record.',
        params: UserParams,
        body: Type.Object(
          {
            agreementId: Id('agr', 'The agreement.'),
            version: VersionNumber('The version the participant accepted (or withdraws); it must exist.'),
            ipAddress: Type.String({
              minLength: 2,
              maxLength: maxIpAddressLength,
              description: 'The participant’s IP address (IPv4 or IPv6) when they accepted.',
              examples: ['203.0.113.24'],
            }),
            userAgent: Type.String({
              minLength: 1,
              maxLength: maxUserAgentLength,
              description: 'The participant’s user agent when they accepted.',
              examples: ['Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)'],
            }),
            method: Type.Optional(
              OneOf(consentMethods, {
                description: 'How the participant gave it; `api` when omitted.',
                examples: ['click_through'],
              }),
            ),
            action: Type.Optional(
              OneOf(consentActions, { description: '`accept` (the default) or `withdraw`.', examples: ['accept'] }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Ref('Consent'), ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      mutate(db, request, reply, 201, async (unit) =>
        presented(await recordConsent(unit, request.params.id, request.body), presentConsent),
      ),
  );

  app.get(
    '/v1/users/:id/agreements',
    {
      config,
      schema: {
        tags,
        summary: 'List a participant’s agreements with their consent state',
        description:
          'Every agreement a program the participant is enrolled in requires, and every agreement they have a consent record for, by agreement id, newest first: its current version and the participant’s state (`accepted`, `stale`, `missing`, `withdrawn`).',
        params: UserParams,
        querystring: Type.Object(ListQuery),
        response: {
          200: ListOf(Type.Ref('UserAgreement'), 'A page of the participant’s agreements.'),
          ...errorResponses(),
        },
      },
    },
    async (request) => {
      const { organizationId } = request;
      const user = await db
        .selectFrom('users')
        .select('id')
        .where('organization_id', '=', organizationId)
        .where('id', '=', request.params.id)
        .executeTakeFirst();
      if (user === undefined) throw new ApiError('not_found', `No user ${request.params.id}`);
      const items = await listUserAgreements(db, organizationId, user.id, {
        afterId: decodeCursor(request.query.cursor),
        limit: pageSize(request.query.limit),
      });
      return page(
        items.map((item) => ({ id: item.agreement.id, item })),
        request.query.limit,
        ({ item }) => presentUserAgreement(item),
      );
    },
  );
}
