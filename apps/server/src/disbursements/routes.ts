import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import { errorResponses, Id, ListOf, ListQuery, OneOf } from '../platform/schemas.js';
import { spentOfDisbursements } from '../spend/spend.js';
import { mutate, presented } from '../work/mutate.js';
import { DisbursementSchema, disbursementStatuses, presentDisbursement } from './disbursement.js';
import { cancelDisbursement, retryDisbursement } from './funding.js';
import { getDisbursement, listDisbursements } from './service.js';

export function disbursementRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
  app.addSchema(DisbursementSchema);
  const config = { auth: 'organization' as const };
  const DisbursementRef = Type.Ref('Disbursement');

  app.get(
    '/v1/disbursements',
    {
      config,
      schema: {
        tags: ['disbursements'],
        summary: 'List disbursements, newest first',
        querystring: Type.Object({
          ...ListQuery,
          programId: Type.Optional(Id('prg', 'Only this program.')),
          userId: Type.Optional(Id('usr', 'Only this participant.')),
          userTaskId: Type.Optional(Id('ut', 'Only this milestone.')),
          status: Type.Optional(
            OneOf(disbursementStatuses, { description: 'Only disbursements in this status.', examples: ['pending'] }),
          ),
        }),
        response: { 200: ListOf(DisbursementRef, 'A page of disbursements.'), ...errorResponses() },
      },
    },
    async (request) => {
      const { cursor, limit, ...filter } = request.query;
      const rows = await listDisbursements(db, request.organizationId, {
        ...filter,
        afterId: decodeCursor(cursor),
        limit: pageSize(limit),
      });
      const spent = await spentOfDisbursements(db, request.organizationId, rows);
      return page(rows, limit, (row) => presentDisbursement(row, spent.get(row.id)));
    },
  );

  app.get(
    '/v1/disbursements/:id',
    {
      config,
      schema: {
        tags: ['disbursements'],
        summary: 'Retrieve a disbursement',
        params: Type.Object({ id: Id('dsb', 'Disbursement id.') }),
        response: { 200: DisbursementRef, ...errorResponses() },
      },
    },
    async (request) => {
      const disbursement = await getDisbursement(db, request.organizationId, request.params.id);
      if (disbursement === undefined) throw new ApiError('not_found', `No disbursement ${request.params.id}`);
      const spent = await spentOfDisbursements(db, request.organizationId, [disbursement]);
      return presentDisbursement(disbursement, spent.get(disbursement.id));
    },
  );

  const actions = {
    retry: {
      summary: 'Retry a failed funding: a new attempt, with a new transfer',
      run: retryDisbursement,
    },
    cancel: {
      summary: 'Cancel a funding that failed or has not started: its money returns to the program’s pool',
      run: cancelDisbursement,
    },
  } as const;
  for (const [action, { summary, run }] of Object.entries(actions)) {
    app.post(
      `/v1/disbursements/:id/${action}`,
      {
        config,
        schema: {
          tags: ['disbursements'],
          summary,
          params: Type.Object({ id: Id('dsb', 'Disbursement id.') }),
          response: { 200: DisbursementRef, ...errorResponses(409, 422) },
        },
      },
      async (request, reply) =>
        mutate(db, request, reply, 200, async (unit) =>
          presented(await run(unit, request.params.id), (disbursement) => presentDisbursement(disbursement)),
        ),
    );
  }
}
