import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { PostalAddressSchema } from '../cards/card.js';
import {
  type Issuers,
  issuerFailure,
  recalledIssuerRequest,
  rememberIssuerRequest,
} from '../configurations/service.js';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import { newId } from '../platform/ids.js';
import { errorResponses, Id, ListOf, ListQuery, Metadata } from '../platform/schemas.js';
import { mutate } from '../work/mutate.js';
import { createUser, externalIdTaken, getUser, listUsers, type UserFields, updateUser } from './service.js';
import { presentUser, UserSchema } from './user.js';

const personFields = {
  externalId: Type.Optional(
    Type.String({ minLength: 1, maxLength: 200, description: 'Your id for this person.', examples: ['emp-1842'] }),
  ),
  highnoteAccountHolderId: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'Existing Highnote account holder to link.',
      examples: ['ach_1842'],
    }),
  ),
  firstName: Type.Optional(
    Type.String({ minLength: 1, maxLength: 100, description: 'Given name.', examples: ['Ada'] }),
  ),
  lastName: Type.Optional(
    Type.String({ minLength: 1, maxLength: 100, description: 'Family name.', examples: ['Lovelace'] }),
  ),
  email: Type.Optional(
    Type.String({ format: 'email', maxLength: 320, description: 'Email address.', examples: ['ada@example.com'] }),
  ),
  phoneNumber: Type.Optional(
    Type.String({ pattern: '^\\+[1-9][0-9]{6,14}$', description: 'Phone number, E.164.', examples: ['+14155550100'] }),
  ),
  dateOfBirth: Type.Optional(
    Type.String({ format: 'date', description: 'Date of birth, YYYY-MM-DD.', examples: ['1990-12-10'] }),
  ),
  address: Type.Optional(PostalAddressSchema),
  metadata: Type.Optional(Metadata),
};

/**
 * A Social Security number: passed through to Highnote when the account holder is created, and
 * nowhere else — not stored, not logged, not returned, not in an event.
 */
const ssnField = Type.Optional(
  Type.String({
    pattern: '^[0-9]{3}-?[0-9]{2}-?[0-9]{4}$',
    description: 'Social Security number, passed to Highnote only; never stored or returned.',
    examples: ['123-45-6789'],
  }),
);

export function userRoutes(app: App, deps: { db: Db; issuers: Issuers }): void {
  const { db, issuers } = deps;
  app.addSchema(UserSchema);
  const config = { auth: 'organization' as const };
  const UserRef = Type.Ref('User');
  const UserParams = Type.Object({ id: Id('usr', 'User id.') });

  app.post(
    '/v1/users',
    {
      config,
      schema: {
        tags: ['users'],
        summary: 'Create a participant, optionally enrolling them in a program',
        description:
          'Link an existing Highnote account holder with highnoteAccountHolderId, or give person details (firstName, lastName, dateOfBirth, address, and optionally ssn, email, phoneNumber) and Tranche creates the account holder. The SSN goes to Highnote and is never stored, logged or returned.',
        body: Type.Object(
          {
            ...personFields,
            ssn: ssnField,
            programId: Type.Optional(Id('prg', 'Enroll in this program at once.')),
          },
          { additionalProperties: false },
        ),
        response: { 201: UserRef, ...errorResponses(409, 422, 502) },
      },
    },
    async (request, reply) => {
      const { ssn, ...fields } = request.body;
      const id = newId('user');
      let highnoteAccountHolderId = fields.highnoteAccountHolderId;
      let userId = id;
      if (highnoteAccountHolderId === undefined && (fields.address !== undefined || ssn !== undefined)) {
        const holder = await createAccountHolder(request, { ...fields, ssn }, id);
        highnoteAccountHolderId = holder.accountHolderId;
        userId = holder.userId;
      } else if (ssn !== undefined) {
        throw new ApiError('validation_error', 'ssn is only taken to create an account holder', 'ssn');
      }
      return mutate(db, request, reply, 201, async (unit) => {
        const created = await createUser(unit, { ...fields, highnoteAccountHolderId, id: userId });
        return created.ok ? { ok: true, value: presentUser(created.value) } : created;
      });
    },
  );

  /**
   * Creates the Highnote account holder of a new participant, before the participant is written.
   * Highnote takes no idempotency key here, so the account holder is recorded under the request's
   * Idempotency-Key, with the participant id it was made for: a retry reuses both.
   */
  async function createAccountHolder(
    request: FastifyRequest,
    person: Omit<UserFields, 'metadata'> & { ssn?: string | undefined },
    id: string,
  ): Promise<{ accountHolderId: string; userId: string }> {
    const { organizationId } = request;
    const missing = (['firstName', 'lastName', 'dateOfBirth', 'address'] as const).find(
      (field) => person[field] === undefined,
    );
    if (missing !== undefined) {
      throw new ApiError('validation_error', `${missing} is required to create a Highnote account holder`, missing);
    }
    const taken = await externalIdTaken(db, organizationId, person.externalId);
    if (taken !== undefined) {
      throw new ApiError('invalid_state', `User ${taken} already has externalId ${person.externalId}`, 'externalId');
    }
    const rawKey = request.headers['idempotency-key'];
    const requestKey = Array.isArray(rawKey) ? rawKey[0] : rawKey;
    const recalled = await recalledIssuerRequest(db, organizationId, 'account_holder', requestKey);
    if (recalled !== undefined) return { accountHolderId: recalled.issuerId, userId: recalled.localId ?? id };
    const issuer = await issuers.forOrganization(organizationId);
    if (!issuer.ok) throw ApiError.of(issuer.failure);
    const created = await issuer.value.highnote.createPersonAccountHolder({
      externalId: id,
      givenName: person.firstName as string,
      familyName: person.lastName as string,
      email: person.email,
      phoneNumber: person.phoneNumber,
      dateOfBirth: person.dateOfBirth as string,
      address: person.address as NonNullable<UserFields['address']>,
      ssn: person.ssn,
    });
    if (!created.ok) throw ApiError.of(issuerFailure(created.failure));
    await rememberIssuerRequest(db, organizationId, 'account_holder', requestKey, {
      issuerId: created.value.id,
      localId: id,
    });
    return { accountHolderId: created.value.id, userId: id };
  }

  app.get(
    '/v1/users',
    {
      config,
      schema: {
        tags: ['users'],
        summary: 'List participants, newest first',
        querystring: Type.Object({
          ...ListQuery,
          externalId: Type.Optional(
            Type.String({
              maxLength: 200,
              description: 'Only the participant with this externalId.',
              examples: ['emp-1842'],
            }),
          ),
        }),
        response: { 200: ListOf(UserRef, 'A page of users.'), ...errorResponses() },
      },
    },
    async (request) => {
      const rows = await listUsers(db, request.organizationId, {
        afterId: decodeCursor(request.query.cursor),
        limit: pageSize(request.query.limit),
        externalId: request.query.externalId,
      });
      return page(rows, request.query.limit, presentUser);
    },
  );

  app.get(
    '/v1/users/:id',
    {
      config,
      schema: {
        tags: ['users'],
        summary: 'Retrieve a participant',
        params: UserParams,
        response: { 200: UserRef, ...errorResponses() },
      },
    },
    async (request) => {
      const user = await getUser(db, request.organizationId, request.params.id);
      if (user === undefined) throw new ApiError('not_found', `No user ${request.params.id}`);
      return presentUser(user);
    },
  );

  app.patch(
    '/v1/users/:id',
    {
      config,
      schema: {
        tags: ['users'],
        summary: 'Update a participant',
        params: UserParams,
        body: Type.Object(personFields, { additionalProperties: false }),
        response: { 200: UserRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      mutate(db, request, reply, 200, async (unit) => {
        const updated = await updateUser(unit, request.params.id, request.body);
        return updated.ok ? { ok: true, value: presentUser(updated.value) } : updated;
      }),
  );
}
