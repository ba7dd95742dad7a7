import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import { type App, decodeCursor, mutate, page, pageSize } from '../platform/http.js';
import { iso, isoRequired } from '../platform/present.js';
import {
  errorResponses,
  Id,
  ListOf,
  ListQuery,
  Metadata,
  Nullable,
  NullableTimestamp,
  Timestamp,
} from '../platform/schemas.js';
import {
  createUser,
  dismiss,
  type Enrollment,
  enroll,
  getEnrollment,
  getUser,
  listEnrollments,
  listUsers,
  type User,
  updateUser,
} from './service.js';

const UserSchema = Type.Object(
  {
    id: Id('usr', 'User id.'),
    object: Type.Literal('user'),
    externalId: Nullable(
      Type.String({ description: 'Your id for this person; unique in your organization.', examples: ['emp-1842'] }),
    ),
    highnoteAccountHolderId: Nullable(
      Type.String({ description: 'Linked Highnote account holder.', examples: ['ach_1842'] }),
    ),
    firstName: Nullable(Type.String({ description: 'Given name.', examples: ['Ada'] })),
    lastName: Nullable(Type.String({ description: 'Family name.', examples: ['Lovelace'] })),
    email: Nullable(Type.String({ description: 'Email address.', examples: ['ada@example.com'] })),
    phoneNumber: Nullable(Type.String({ description: 'Phone number, E.164.', examples: ['+14155550100'] })),
    dateOfBirth: Nullable(Type.String({ description: 'Date of birth, YYYY-MM-DD.', examples: ['1990-12-10'] })),
    metadata: Metadata,
    createdAt: Timestamp('Created.'),
    updatedAt: Timestamp('Last changed.'),
  },
  { $id: 'User' },
);

const EnrollmentSchema = Type.Object(
  {
    object: Type.Literal('enrollment'),
    programId: Id('prg', 'Program id.'),
    userId: Id('usr', 'User id.'),
    status: Type.Union([Type.Literal('active'), Type.Literal('dismissed')], { description: 'Enrollment status.' }),
    enrolledAt: Timestamp('Enrolled (or enrolled again).'),
    dismissedAt: NullableTimestamp('Dismissed.'),
  },
  { $id: 'Enrollment' },
);

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
  firstName: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Given name.' })),
  lastName: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Family name.' })),
  email: Type.Optional(Type.String({ format: 'email', maxLength: 320, description: 'Email address.' })),
  phoneNumber: Type.Optional(Type.String({ pattern: '^\\+[1-9][0-9]{6,14}$', description: 'Phone number, E.164.' })),
  dateOfBirth: Type.Optional(Type.String({ format: 'date', description: 'Date of birth, YYYY-MM-DD.' })),
  metadata: Type.Optional(Metadata),
};

export function presentUser(user: User) {
  return {
    id: user.id,
    object: 'user' as const,
    externalId: user.externalId,
    highnoteAccountHolderId: user.highnoteAccountHolderId,
    firstName: user.firstName,
    lastName: user.lastName,
    email: user.email,
    phoneNumber: user.phoneNumber,
    dateOfBirth: user.dateOfBirth,
    metadata: user.metadata,
    createdAt: isoRequired(user.createdAt),
    updatedAt: isoRequired(user.updatedAt),
  };
}

function presentEnrollment(enrollment: Enrollment) {
  return {
    object: 'enrollment' as const,
    programId: enrollment.programId,
    userId: enrollment.userId,
    status: enrollment.status,
    enrolledAt: isoRequired(enrollment.enrolledAt),
    dismissedAt: iso(enrollment.dismissedAt),
  };
}

export function userRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
  app.addSchema(UserSchema);
  app.addSchema(EnrollmentSchema);
  const config = { auth: 'organization' as const };
  const UserRef = Type.Ref('User');
  const EnrollmentRef = Type.Ref('Enrollment');
  const UserParams = Type.Object({ id: Id('usr', 'User id.') });
  const EnrollmentParams = Type.Object({ id: Id('prg', 'Program id.'), userId: Id('usr', 'User id.') });

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
      mutate(db, request, reply, 201, async (tx) => {
        const created = await createUser(tx, request.organizationId, request.body);
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
        querystring: Type.Object({ ...ListQuery, externalId: Type.Optional(Type.String({ maxLength: 200 })) }),
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
      mutate(db, request, reply, 200, async (tx) => {
        const updated = await updateUser(tx, request.organizationId, request.params.id, request.body);
        return updated.ok ? { ok: true, value: presentUser(updated.value) } : updated;
      }),
  );

  app.get(
    '/v1/programs/:id/users',
    {
      config,
      schema: {
        tags: ['enrollment'],
        summary: 'List a program’s enrollments',
        params: Type.Object({ id: Id('prg', 'Program id.') }),
        querystring: Type.Object({
          ...ListQuery,
          status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('dismissed')])),
        }),
        response: { 200: ListOf(EnrollmentRef, 'A page of enrollments.'), ...errorResponses() },
      },
    },
    async (request) => {
      const program = await db
        .selectFrom('programs')
        .select('id')
        .where('organization_id', '=', request.organizationId)
        .where('id', '=', request.params.id)
        .executeTakeFirst();
      if (program === undefined) throw new ApiError('not_found', `No program ${request.params.id}`);
      const rows = await listEnrollments(db, request.organizationId, request.params.id, {
        afterId: decodeCursor(request.query.cursor),
        limit: pageSize(request.query.limit),
        status: request.query.status,
      });
      return page(rows, request.query.limit, presentEnrollment);
    },
  );

  app.get(
    '/v1/programs/:id/users/:userId',
    {
      config,
      schema: {
        tags: ['enrollment'],
        summary: 'Retrieve one enrollment',
        params: EnrollmentParams,
        response: { 200: EnrollmentRef, ...errorResponses() },
      },
    },
    async (request) => {
      const enrollment = await getEnrollment(db, request.organizationId, request.params.id, request.params.userId);
      if (enrollment === undefined) {
        throw new ApiError(
          'not_found',
          `User ${request.params.userId} is not enrolled in program ${request.params.id}`,
        );
      }
      return presentEnrollment(enrollment);
    },
  );

  app.post(
    '/v1/programs/:id/users/:userId',
    {
      config,
      schema: {
        tags: ['enrollment'],
        summary: 'Enroll a participant; counts against maxParticipants',
        params: EnrollmentParams,
        response: { 200: EnrollmentRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      mutate(db, request, reply, 200, async (tx) => {
        const enrolled = await enroll(tx, request.organizationId, request.params.id, request.params.userId);
        return enrolled.ok ? { ok: true, value: presentEnrollment(enrolled.value) } : enrolled;
      }),
  );

  app.delete(
    '/v1/programs/:id/users/:userId',
    {
      config,
      schema: {
        tags: ['enrollment'],
        summary: 'Dismiss a participant and release their open reservations',
        params: EnrollmentParams,
        response: { 200: EnrollmentRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      mutate(db, request, reply, 200, async (tx) => {
        const dismissed = await dismiss(tx, request.organizationId, request.params.id, request.params.userId);
        return dismissed.ok ? { ok: true, value: presentEnrollment(dismissed.value) } : dismissed;
      }),
  );
}
