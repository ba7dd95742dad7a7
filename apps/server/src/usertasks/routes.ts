import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import { optionalCentsOf } from '../platform/present.js';
import { Dollars, errorResponses, Id, ListOf, ListQuery, OneOf } from '../platform/schemas.js';
import { mutate, mutateInBatch, presented } from '../work/mutate.js';
import { userTaskBatchers } from './batchers.js';
import { cancel } from './transitions.js';
import { getUserTask, listUserTasks, presentUserTask, UserTaskSchema, userTaskStatuses } from './usertask.js';

/** Largest evidence object accepted, in bytes of JSON. */
const maxEvidenceBytes = 16 * 1024;

const AssignBody = Type.Object(
  {
    userId: Id('usr', 'Participant; enrolled now if not yet.'),
    programId: Type.Optional(Id('prg', 'Program whose pool is reserved from.')),
    taskId: Type.Optional(Id('tsk', 'Task to assign.')),
    monetaryValue: Type.Optional(Dollars('Amount to reserve; defaults to the task’s value.', 500)),
    name: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'Milestone name.', examples: ['OSHA 10 certificate'] }),
    ),
  },
  { additionalProperties: false },
);

const CompleteBody = Type.Object(
  {
    amount: Type.Optional(Dollars('Release less than reserved; the rest returns to the pool.', 250)),
    completedBy: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        description: 'Who verified it.',
        examples: ['instructor:42'],
      }),
    ),
    evidence: Type.Optional(
      Type.Record(Type.String({ maxLength: 100 }), Type.Unknown(), {
        maxProperties: 50,
        description: 'What the verifier saw: certificate numbers, links, notes.',
        examples: [{ certificateNumber: 'OSHA-10-88231' }],
      }),
    ),
  },
  { additionalProperties: false },
);

export function userTaskRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
  app.addSchema(UserTaskSchema);
  const config = { auth: 'organization' as const };
  const UserTaskRef = Type.Ref('UserTask');
  const UserTaskParams = Type.Object({ id: Id('ut', 'User task id.') });
  // The hot path: assignments and completions of one organization commit in batches.
  const { assignments, completions } = userTaskBatchers(db);

  app.post(
    '/v1/tasks/:id/users/:userId',
    {
      config,
      schema: {
        tags: ['tasks'],
        summary: 'Assign a task to a participant, reserving its value from the pool',
        params: Type.Object({ id: Id('tsk', 'Task id.'), userId: Id('usr', 'Participant.') }),
        response: { 201: UserTaskRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      mutateInBatch(
        assignments,
        request,
        reply,
        201,
        { taskId: request.params.id, userId: request.params.userId },
        presentUserTask,
      ),
  );

  app.post(
    '/v1/usertasks',
    {
      config,
      schema: {
        tags: ['user tasks'],
        summary: 'Assign a milestone: a task, or a one-off amount in a program; reserves the amount',
        description:
          'Send `{taskId, userId}` to assign a defined task, or `{programId, userId, monetaryValue}` for a one-off milestone.',
        body: AssignBody,
        response: { 201: UserTaskRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (body.taskId === undefined && body.programId === undefined) {
        throw new ApiError('validation_error', 'Send taskId, or programId with monetaryValue', 'programId');
      }
      if (body.taskId === undefined && body.monetaryValue === undefined) {
        throw new ApiError('validation_error', 'monetaryValue is required without a taskId', 'monetaryValue');
      }
      const monetaryValueCents = optionalCentsOf(body.monetaryValue, 'monetaryValue');
      return mutateInBatch(assignments, request, reply, 201, { ...body, monetaryValueCents }, presentUserTask);
    },
  );

  app.get(
    '/v1/usertasks',
    {
      config,
      schema: {
        tags: ['user tasks'],
        summary: 'List user tasks, newest first',
        querystring: Type.Object({
          ...ListQuery,
          programId: Type.Optional(Id('prg', 'Only this program.')),
          userId: Type.Optional(Id('usr', 'Only this participant.')),
          taskId: Type.Optional(Id('tsk', 'Only this task.')),
          status: Type.Optional(
            OneOf(userTaskStatuses, { description: 'Only user tasks in this status.', examples: ['assigned'] }),
          ),
        }),
        response: { 200: ListOf(UserTaskRef, 'A page of user tasks.'), ...errorResponses() },
      },
    },
    async (request) => {
      const { cursor, limit, ...filter } = request.query;
      const rows = await listUserTasks(db, request.organizationId, {
        ...filter,
        afterId: decodeCursor(cursor),
        limit: pageSize(limit),
      });
      return page(rows, limit, presentUserTask);
    },
  );

  app.get(
    '/v1/usertasks/:id',
    {
      config,
      schema: {
        tags: ['user tasks'],
        summary: 'Retrieve a user task',
        params: UserTaskParams,
        response: { 200: UserTaskRef, ...errorResponses() },
      },
    },
    async (request) => {
      const userTask = await getUserTask(db, request.organizationId, request.params.id);
      if (userTask === undefined) throw new ApiError('not_found', `No user task ${request.params.id}`);
      return presentUserTask(userTask);
    },
  );

  app.put(
    '/v1/usertasks/:id/complete',
    {
      config,
      schema: {
        tags: ['user tasks'],
        summary: 'Verify the milestone: release the reservation toward the participant’s card',
        params: UserTaskParams,
        body: CompleteBody,
        response: { 200: UserTaskRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const amountCents = optionalCentsOf(body.amount, 'amount');
      if (body.evidence !== undefined && JSON.stringify(body.evidence).length > maxEvidenceBytes) {
        throw new ApiError(
          'validation_error',
          `evidence must be at most ${maxEvidenceBytes} bytes of JSON`,
          'evidence',
        );
      }
      return mutateInBatch(
        completions,
        request,
        reply,
        200,
        { id: request.params.id, amountCents, completedBy: body.completedBy, evidence: body.evidence },
        presentUserTask,
      );
    },
  );

  app.put(
    '/v1/usertasks/:id/cancel',
    {
      config,
      schema: {
        tags: ['user tasks'],
        summary: 'Cancel an open milestone and release its reservation',
        params: UserTaskParams,
        response: { 200: UserTaskRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      mutate(db, request, reply, 200, async (unit) =>
        presented(await cancel(unit, request.params.id), presentUserTask),
      ),
  );
}
