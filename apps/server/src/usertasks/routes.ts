import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import { optionalCentsOf } from '../platform/present.js';
import { Dollars, errorResponses, Id, ListOf, ListQuery, OneOf } from '../platform/schemas.js';
import { VerificationBody, verificationFrom } from '../tasks/verification.js';
import { mutate, mutateInBatch, presented } from '../work/mutate.js';
import { userTaskBatchers } from './batchers.js';
import { checkEvidence, Evidence } from './evidence.js';
import { approve, cancel, reject } from './transitions.js';
import { getUserTask, listUserTasks, presentUserTask, UserTaskSchema, userTaskStatuses } from './usertask.js';

/** Longest actor name (`completedBy`, `approvedBy`, `rejectedBy`), and longest rejection reason. */
const maxActorLength = 200;
const maxRejectionReasonLength = 1000;

const Actor = (description: string, example: string) =>
  Type.String({ minLength: 1, maxLength: maxActorLength, description, examples: [example] });

const AssignBody = Type.Object(
  {
    userId: Id('usr', 'Participant; enrolled now if not yet.'),
    programId: Type.Optional(Id('prg', 'Program whose pool is reserved from.')),
    taskId: Type.Optional(Id('tsk', 'Task to assign.')),
    monetaryValue: Type.Optional(Dollars('Amount to reserve; defaults to the task’s value.', 500)),
    name: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'Milestone name.', examples: ['OSHA 10 certificate'] }),
    ),
    verification: Type.Optional(VerificationBody),
  },
  { additionalProperties: false },
);

const CompleteBody = Type.Object(
  {
    amount: Type.Optional(Dollars('Release less than reserved; the rest returns to the pool.', 250)),
    completedBy: Type.Optional(
      Actor('Who verified it; required where the task asks for dual approval.', 'instructor:42'),
    ),
    evidence: Type.Optional(Evidence),
  },
  { additionalProperties: false },
);

const ApproveBody = Type.Object(
  { approvedBy: Actor('Who approves: not the actor who completed the milestone.', 'supervisor:7') },
  { additionalProperties: false },
);

const RejectBody = Type.Object(
  {
    rejectedBy: Actor('Who rejects: not the actor who completed the milestone.', 'supervisor:7'),
    reason: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: maxRejectionReasonLength,
        description: 'Why, for whoever completes it again.',
        examples: ['Certificate number unreadable'],
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
          'Send `{taskId, userId}` to assign a defined task (its verification policy applies), or `{programId, userId, monetaryValue}` for a one-off milestone, with its own `verification` (attestation when not given).',
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
      const verification =
        body.verification === undefined ? undefined : verificationFrom(body.verification, 'verification');
      return mutateInBatch(
        assignments,
        request,
        reply,
        201,
        { ...body, monetaryValueCents, verification },
        presentUserTask,
      );
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
        description:
          'Under the task’s verification policy: `evidence` requires `evidence.references`; `dual_approval` (above its `amountThreshold`, if any) requires `completedBy` and leaves the user task `pending_approval`, its reservation held, until another actor approves or rejects it.',
        params: UserTaskParams,
        body: CompleteBody,
        response: { 200: UserTaskRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const amountCents = optionalCentsOf(body.amount, 'amount');
      const evidence = body.evidence as Record<string, unknown> | undefined;
      checkEvidence(evidence);
      return mutateInBatch(
        completions,
        request,
        reply,
        200,
        { id: request.params.id, amountCents, completedBy: body.completedBy, evidence },
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

  app.put(
    '/v1/usertasks/:id/approve',
    {
      config,
      schema: {
        tags: ['user tasks'],
        summary: 'Approve a completion awaiting approval: release the reservation toward the participant’s card',
        description:
          'Dual approval: releases the milestone exactly as completion does. The actor who completed it cannot approve it (`403`); a user task not `pending_approval` is `409 invalid_state`, as is approval in a paused program.',
        params: UserTaskParams,
        body: ApproveBody,
        response: { 200: UserTaskRef, ...errorResponses(403, 409, 422) },
      },
    },
    async (request, reply) =>
      mutate(db, request, reply, 200, async (unit) =>
        presented(await approve(unit, request.params.id, request.body.approvedBy), presentUserTask),
      ),
  );

  app.put(
    '/v1/usertasks/:id/reject',
    {
      config,
      schema: {
        tags: ['user tasks'],
        summary: 'Reject a completion awaiting approval: the milestone is assigned again, its reservation held',
        description:
          'Dual approval: records who rejected it and why, and returns the user task to `assigned` so it can be completed again. The actor who completed it cannot reject it (`403`).',
        params: UserTaskParams,
        body: RejectBody,
        response: { 200: UserTaskRef, ...errorResponses(403, 409, 422) },
      },
    },
    async (request, reply) =>
      mutate(db, request, reply, 200, async (unit) =>
        presented(await reject(unit, request.params.id, request.body), presentUserTask),
      ),
  );
}
