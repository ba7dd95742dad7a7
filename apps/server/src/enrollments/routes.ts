import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import { errorResponses, Id, ListOf, ListQuery, OneOf } from '../platform/schemas.js';
import { mutate } from '../work/mutate.js';
import { EnrollmentSchema, enrollmentStatuses, presentEnrollment } from './enrollment.js';
import { dismiss, enroll, getEnrollment, listEnrollments } from './service.js';

export function enrollmentRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
  app.addSchema(EnrollmentSchema);
  const config = { auth: 'organization' as const };
  const EnrollmentRef = Type.Ref('Enrollment');
  const EnrollmentParams = Type.Object({ id: Id('prg', 'Program id.'), userId: Id('usr', 'User id.') });

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
          status: Type.Optional(
            OneOf(enrollmentStatuses, { description: 'Only enrollments in this status.', examples: ['active'] }),
          ),
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
      mutate(db, request, reply, 200, async (unit) => {
        const enrolled = await enroll(unit, request.params.id, request.params.userId);
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
      mutate(db, request, reply, 200, async (unit) => {
        const dismissed = await dismiss(unit, request.params.id, request.params.userId);
        return dismissed.ok ? { ok: true, value: presentEnrollment(dismissed.value) } : dismissed;
      }),
  );
}
