import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import { type JobRecord, jobStatuses, listJobs, retryDeadJob } from '../platform/jobs.js';
import { iso, isoRequired } from '../platform/present.js';
import {
  errorResponses,
  Id,
  ListOf,
  ListQuery,
  Nullable,
  NullableTimestamp,
  ObjectKind,
  Timestamp,
} from '../platform/schemas.js';
import { mutate } from '../work/mutate.js';

/**
 * Operator routes over the job queue: what is dead (or waiting, or running), and a retry for a dead
 * job. The payload is not shown: it is the job's internal input, not a contract, and nothing but
 * a convention keeps a future job from carrying more than ids; the name, the tenant and the last
 * error are what an operator triages with, and the id leads to the row for anything deeper.
 */

const JobStatusSchema = Type.Union(
  jobStatuses.map((status) => Type.Literal(status)),
  {
    description: 'queued → running → succeeded, or back to queued after a failure, or dead after the last attempt.',
    examples: ['dead'],
  },
);

const JobSchema = Type.Object(
  {
    id: Id('job', 'Job id.'),
    object: ObjectKind('job'),
    name: Type.String({ description: 'What the job does.', examples: ['usertasks.expire_due'] }),
    status: JobStatusSchema,
    attempts: Type.Integer({ minimum: 0, description: 'Runs started so far.', examples: [5] }),
    maxAttempts: Type.Integer({ minimum: 1, description: 'Runs allowed before the job is dead.', examples: [5] }),
    runAt: Timestamp('Due at: the next run is not before this time.'),
    lastError: Nullable(
      Type.String({
        description: 'The message of the last failure, truncated; null if none failed.',
        examples: ['Error: issuer answered 503'],
      }),
    ),
    organizationId: Nullable(Id('org', 'The organization the job acts for; null for system-wide work.')),
    createdAt: Timestamp('Enqueued.'),
    updatedAt: Timestamp('Last changed.'),
    finishedAt: NullableTimestamp('Succeeded or went dead.'),
  },
  { $id: 'Job', description: 'A durable background job.' },
);

function presentJob(job: JobRecord) {
  return {
    id: job.id,
    object: 'job' as const,
    name: job.name,
    status: job.status,
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    runAt: isoRequired(job.runAt),
    lastError: job.lastError,
    organizationId: job.organizationId,
    createdAt: isoRequired(job.createdAt),
    updatedAt: isoRequired(job.updatedAt),
    finishedAt: iso(job.finishedAt),
  };
}

export function jobRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
  app.addSchema(JobSchema);
  const config = { auth: 'operator' as const };
  const security = [{ operatorToken: [] }];
  const JobRef = Type.Ref('Job');

  app.get(
    '/v1/jobs',
    {
      config,
      schema: {
        tags: ['operator'],
        summary: 'List jobs, newest first (operator token)',
        security,
        querystring: Type.Object({
          ...ListQuery,
          status: Type.Optional(JobStatusSchema),
        }),
        response: { 200: ListOf(JobRef, 'A page of jobs.'), ...errorResponses() },
      },
    },
    async (request) => {
      const { cursor, limit, status } = request.query;
      const rows = await listJobs(db, { status, afterId: decodeCursor(cursor), limit: pageSize(limit) });
      return page(rows, limit, presentJob);
    },
  );

  app.post(
    '/v1/jobs/:id/retry',
    {
      config,
      schema: {
        tags: ['operator'],
        summary: 'Retry a dead job now, with its attempts reset (operator token)',
        security,
        params: Type.Object({ id: Id('job', 'Job id.') }),
        response: { 200: JobRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      mutate(db, request, reply, 200, async (unit) => {
        const retried = await retryDeadJob(unit.tx, request.params.id, unit.now);
        return retried.ok ? { ok: true, value: presentJob(retried.value) } : retried;
      }),
  );
}
