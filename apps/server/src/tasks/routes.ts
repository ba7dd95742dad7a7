import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import { type App, decodeCursor, mutate, page, pageSize, WithLedgerStep } from '../platform/http.js';
import { centsOf, dollars, iso, isoRequired, optionalCentsOf } from '../platform/present.js';
import {
  BalanceDollars,
  Dollars,
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
  assign,
  cancel,
  complete,
  createTask,
  getTask,
  getUserTask,
  listTasks,
  listUserTasks,
  type Task,
  type UserTask,
  updateTask,
} from './service.js';

const userTaskStatuses = [
  'assigned',
  'pending_approval',
  'completed',
  'funded',
  'cancelled',
  'expired',
  'funding_failed',
] as const;

const TaskSchema = Type.Object(
  {
    id: Id('tsk', 'Task id.'),
    object: Type.Literal('task'),
    programId: Id('prg', 'Program the milestone belongs to.'),
    name: Type.String({ description: 'Milestone name.', examples: ['OSHA 10 certificate'] }),
    description: Nullable(Type.String({ description: 'What the participant must do.' })),
    monetaryValue: BalanceDollars('Reserved for each assignment.', 500),
    startsAt: NullableTimestamp('Assignable from.'),
    endsAt: NullableTimestamp('Open reservations expire at this time.'),
    metadata: Metadata,
    createdAt: Timestamp('Created.'),
    updatedAt: Timestamp('Last changed.'),
  },
  { $id: 'Task' },
);

const UserTaskSchema = Type.Object(
  {
    id: Id('ut', 'User task id.'),
    object: Type.Literal('user_task'),
    programId: Id('prg', 'Program id.'),
    userId: Id('usr', 'Participant.'),
    taskId: Nullable(Id('tsk', 'The task assigned, or null for a one-off milestone.')),
    name: Nullable(Type.String({ description: 'Milestone name.' })),
    status: Type.Union(
      userTaskStatuses.map((status) => Type.Literal(status)),
      { description: 'assigned → completed → funded; cancelled, expired or funding_failed on the side.' },
    ),
    monetaryValue: BalanceDollars('Reserved from the pool at assignment.', 500),
    completedAmount: Nullable(BalanceDollars('Released at completion; the rest returned to the pool.', 500)),
    completedBy: Nullable(Type.String({ description: 'Who verified the milestone.', examples: ['instructor:42'] })),
    evidence: Nullable(Type.Record(Type.String(), Type.Unknown(), { description: 'What the verifier saw.' })),
    cancellationReason: Nullable(
      Type.String({ description: 'Why the reservation was released.', examples: ['cancelled_by_request'] }),
    ),
    disbursementId: Nullable(Id('dsb', 'The card funding opened at completion.')),
    expiresAt: NullableTimestamp('The reservation expires unless completed before.'),
    completedAt: NullableTimestamp('Verified.'),
    cancelledAt: NullableTimestamp('Cancelled.'),
    expiredAt: NullableTimestamp('Expired.'),
    createdAt: Timestamp('Assigned.'),
    updatedAt: Timestamp('Last changed.'),
  },
  { $id: 'UserTask' },
);

function presentTask(task: Task) {
  return {
    id: task.id,
    object: 'task' as const,
    programId: task.programId,
    name: task.name,
    description: task.description,
    monetaryValue: dollars(task.monetaryValueCents),
    startsAt: iso(task.startsAt),
    endsAt: iso(task.endsAt),
    metadata: task.metadata,
    createdAt: isoRequired(task.createdAt),
    updatedAt: isoRequired(task.updatedAt),
  };
}

export function presentUserTask(userTask: UserTask) {
  return {
    id: userTask.id,
    object: 'user_task' as const,
    programId: userTask.programId,
    userId: userTask.userId,
    taskId: userTask.taskId,
    name: userTask.name,
    status: userTask.status,
    monetaryValue: dollars(userTask.monetaryValueCents),
    completedAmount: userTask.completedAmountCents === null ? null : dollars(userTask.completedAmountCents),
    completedBy: userTask.completedBy,
    evidence: userTask.evidence,
    cancellationReason: userTask.cancellationReason,
    disbursementId: userTask.disbursementId,
    expiresAt: iso(userTask.expiresAt),
    completedAt: iso(userTask.completedAt),
    cancelledAt: iso(userTask.cancelledAt),
    expiredAt: iso(userTask.expiredAt),
    createdAt: isoRequired(userTask.createdAt),
    updatedAt: isoRequired(userTask.updatedAt),
  };
}

/** Largest evidence object accepted, in bytes of JSON. */
const maxEvidenceBytes = 16 * 1024;

export function taskRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
  app.addSchema(TaskSchema);
  app.addSchema(UserTaskSchema);
  const config = { auth: 'organization' as const };
  const TaskRef = Type.Ref('Task');
  const UserTaskRef = Type.Ref('UserTask');
  const TaskParams = Type.Object({ id: Id('tsk', 'Task id.') });
  const UserTaskParams = Type.Object({ id: Id('ut', 'User task id.') });

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
            description: Type.Optional(Type.String({ maxLength: 2000, description: 'What the participant must do.' })),
            monetaryValue: Dollars('Reserved for each assignment.', 500),
            startsAt: Type.Optional(Timestamp('Assignable from.')),
            endsAt: Type.Optional(Timestamp('Open reservations expire at this time.')),
            metadata: Type.Optional(Metadata),
          },
          { additionalProperties: false },
        ),
        response: { 201: TaskRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const monetaryValueCents = centsOf(request.body.monetaryValue, 'monetaryValue');
      return mutate(db, request, reply, 201, async (tx) => {
        const created = await createTask(tx, request.organizationId, { ...request.body, monetaryValueCents });
        return created.ok ? { ok: true, value: presentTask(created.value) } : created;
      });
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
        summary: 'Update a task; assignments already made keep their reservation',
        params: TaskParams,
        body: Type.Object(
          {
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Milestone name.' })),
            description: Type.Optional(
              Nullable(Type.String({ maxLength: 2000, description: 'What the participant must do.' })),
            ),
            endsAt: Type.Optional(Nullable(Timestamp('Assignments made from now on expire at this time.'))),
            metadata: Type.Optional(Metadata),
          },
          { additionalProperties: false },
        ),
        response: { 200: TaskRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      mutate(db, request, reply, 200, async (tx) => {
        const updated = await updateTask(tx, request.organizationId, request.params.id, request.body);
        return updated.ok ? { ok: true, value: presentTask(updated.value) } : updated;
      }),
  );

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
      mutate(db, request, reply, 201, async (tx) => {
        const assigned = await assign(tx, request.organizationId, {
          taskId: request.params.id,
          userId: request.params.userId,
        });
        return assigned.ok
          ? { ok: true, value: new WithLedgerStep(presentUserTask(assigned.value.value), assigned.value.ledger) }
          : assigned;
      }),
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
        body: Type.Object(
          {
            userId: Id('usr', 'Participant; enrolled now if not yet.'),
            programId: Type.Optional(Id('prg', 'Program whose pool is reserved from.')),
            taskId: Type.Optional(Id('tsk', 'Task to assign.')),
            monetaryValue: Type.Optional(Dollars('Amount to reserve; defaults to the task’s value.', 500)),
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Milestone name.' })),
          },
          { additionalProperties: false },
        ),
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
      return mutate(db, request, reply, 201, async (tx) => {
        const assigned = await assign(tx, request.organizationId, { ...body, monetaryValueCents });
        return assigned.ok
          ? { ok: true, value: new WithLedgerStep(presentUserTask(assigned.value.value), assigned.value.ledger) }
          : assigned;
      });
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
          status: Type.Optional(Type.Union(userTaskStatuses.map((status) => Type.Literal(status)))),
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
        body: Type.Object(
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
        ),
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
      return mutate(db, request, reply, 200, async (tx) => {
        const completed = await complete(tx, request.organizationId, request.params.id, {
          amountCents,
          completedBy: body.completedBy,
          evidence: body.evidence,
        });
        return completed.ok
          ? { ok: true, value: new WithLedgerStep(presentUserTask(completed.value.value), completed.value.ledger) }
          : completed;
      });
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
      mutate(db, request, reply, 200, async (tx) => {
        const cancelled = await cancel(tx, request.organizationId, request.params.id);
        return cancelled.ok ? { ok: true, value: presentUserTask(cancelled.value) } : cancelled;
      }),
  );
}
