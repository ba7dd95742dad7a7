import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError, ok } from '../platform/errors.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import { errorResponses, Id, ListOf, ListQuery } from '../platform/schemas.js';
import { mutate } from '../work/mutate.js';
import { createRun, getRun, listRuns, presentRun, ReconciliationRunSchema } from './run.js';

export function reconciliationRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
  app.addSchema(ReconciliationRunSchema);
  const config = { auth: 'organization' as const };
  const tags = ['reconciliation'];
  const RunRef = Type.Ref('ReconciliationRun');

  app.post(
    '/v1/reconciliation/runs',
    {
      config,
      schema: {
        tags,
        summary: 'Start a reconciliation run against Highnote',
        description:
          'Queues a run that compares your disbursements, spend and ledger with Highnote’s transfers, transaction events and balances. Follow it with `GET /v1/reconciliation/runs/{id}`; a `reconciliation.completed` event announces its end. Runs also start daily on their own.',
        response: { 201: RunRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      mutate(db, request, reply, 201, async (unit) => ok(presentRun(await createRun(unit, 'manual')))),
  );

  app.get(
    '/v1/reconciliation/runs',
    {
      config,
      schema: {
        tags,
        summary: 'List reconciliation runs, newest first',
        querystring: Type.Object(ListQuery),
        response: { 200: ListOf(RunRef, 'A page of reconciliation runs.'), ...errorResponses() },
      },
    },
    async (request) => {
      const { cursor, limit } = request.query;
      const runs = await listRuns(db, request.organizationId, {
        afterId: decodeCursor(cursor),
        limit: pageSize(limit),
      });
      return page(runs, limit, (run) => presentRun(run));
    },
  );

  app.get(
    '/v1/reconciliation/runs/:id',
    {
      config,
      schema: {
        tags,
        summary: 'Retrieve a reconciliation run with every mismatch it found',
        params: Type.Object({ id: Id('rcn', 'Reconciliation run id.') }),
        response: { 200: RunRef, ...errorResponses() },
      },
    },
    async (request) => {
      const found = await getRun(db, request.organizationId, request.params.id);
      if (found === undefined) throw new ApiError('not_found', `No reconciliation run ${request.params.id}`);
      return presentRun(found.run, found.mismatches);
    },
  );
}
