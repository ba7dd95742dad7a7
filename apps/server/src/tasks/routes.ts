import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import { centsOf } from '../platform/present.js';
import { Dollars, errorResponses, Id, ListOf, ListQuery, Metadata, Nullable, Timestamp } from '../platform/schemas.js';
import { mutate, presented } from '../work/mutate.js';
import { createTask, getTask, listTasks, updateTask } from './service.js';
import { presentTask, TaskSchema, taskDescriptionExample } from './task.js';
import { VerificationBody, verificationFrom } from './verification.js';

export function taskRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
  app.addSchema(TaskSchema);
  const config = { auth: 'organization' as const };
  const TaskRef = Type.Ref('Task');
  const TaskParams = Type.Object({ id: Id('tsk', 'Task id.') });

  app.post(
    '/v1/tasks',
    {
      config,
      schema: {
        tags: ['tasks'],
        summary: 'Define a milestone of a program',
        body: Type.Object(
          {
            programId: Id('prg', 'Program the milestone belongs to.'),
            name: Type.String({
              minLength: 1,
              maxLength: 200,
              description: 'Milestone name.',
              examples: ['OSHA 10 certificate'],
            }),
            description: Type.Optional(
              Type.String({
                maxLength: 2000,
                description: 'What the participant must do.',
                examples: [taskDescriptionExample],
              }),
            ),
            monetaryValue: Dollars('Reserved for each assignment.', 500),
            startsAt: Type.Optional(Timestamp('Assignable from.')),
            endsAt: Type.Optional(Timestamp('Open reservations expire at this time.')),
            metadata: Type.Optional(Metadata),
            verification: Type.Optional(VerificationBody),
          },
          { additionalProperties: false },
        ),
        response: { 201: TaskRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const { verification, ...body } = request.body;
      const input = {
        ...body,
        monetaryValueCents: centsOf(body.monetaryValue, 'monetaryValue'),
        verification: verification === undefined ? undefined : verificationFrom(verification, 'verification'),
      };
      return mutate(db, request, reply, 201, async (unit) => presented(await createTask(unit, input), presentTask));
    },
  );

  app.get(
    '/v1/tasks',
    {
      config,
      schema: {
        tags: ['tasks'],
        summary: 'List tasks, newest first',
        querystring: Type.Object({ ...ListQuery, programId: Type.Optional(Id('prg', 'Only this program’s tasks.')) }),
        response: { 200: ListOf(TaskRef, 'A page of tasks.'), ...errorResponses() },
      },
    },
    async (request) => {
      const rows = await listTasks(db, request.organizationId, {
        afterId: decodeCursor(request.query.cursor),
        limit: pageSize(request.query.limit),
        programId: request.query.programId,
      });
      return page(rows, request.query.limit, presentTask);
    },
  );

  app.get(
    '/v1/tasks/:id',
    {
      config,
      schema: {
        tags: ['tasks'],
        summary: 'Retrieve a task',
        params: TaskParams,
        response: { 200: TaskRef, ...errorResponses() },
      },
    },
    async (request) => {
      const task = await getTask(db, request.organizationId, request.params.id);
      if (task === undefined) throw new ApiError('not_found', `No task ${request.params.id}`);
      return presentTask(task);
    },
  );

  app.patch(
    '/v1/tasks/:id',
    {
      config,
      schema: {
        tags: ['tasks'],
        summary: 'Update a task; assignments already made keep their reservation and verification policy',
        params: TaskParams,
        body: Type.Object(
          {
            name: Type.Optional(
              Type.String({
                minLength: 1,
                maxLength: 200,
                description: 'Milestone name.',
                examples: ['OSHA 30 certificate'],
              }),
            ),
            description: Type.Optional(
              Nullable(
                Type.String({
                  maxLength: 2000,
                  description: 'What the participant must do.',
                  examples: [taskDescriptionExample],
                }),
              ),
            ),
            endsAt: Type.Optional(Nullable(Timestamp('Assignments made from now on expire at this time.'))),
            metadata: Type.Optional(Metadata),
            verification: Type.Optional(VerificationBody),
          },
          { additionalProperties: false },
        ),
        response: { 200: TaskRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const { verification, ...body } = request.body;
      const input = {
        ...body,
        verification: verification === undefined ? undefined : verificationFrom(verification, 'verification'),
      };
      return mutate(db, request, reply, 200, async (unit) =>
        presented(await updateTask(unit, request.params.id, input), presentTask),
      );
    },
  );
}
