import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import { errorResponses, Id, ListOf, ListQuery, Metadata } from '../platform/schemas.js';
import { mutate } from '../work/mutate.js';
import { createUser, getUser, listUsers, updateUser } from './service.js';
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
  metadata: Type.Optional(Metadata),
};

export function userRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
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
        body: Type.Object(
          { ...personFields, programId: Type.Optional(Id('prg', 'Enroll in this program at once.')) },
          { additionalProperties: false },
        ),
        response: { 201: UserRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      mutate(db, request, reply, 201, async (unit) => {
        const created = await createUser(unit, request.body);
        return created.ok ? { ok: true, value: presentUser(created.value) } : created;
      }),
  );

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
