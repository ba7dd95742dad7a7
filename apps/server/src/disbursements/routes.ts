import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import { dollars, iso, isoRequired } from '../platform/present.js';
import {
  BalanceDollars,
  errorResponses,
  Id,
  ListOf,
  ListQuery,
  Nullable,
  NullableTimestamp,
  Timestamp,
} from '../platform/schemas.js';
import { type Disbursement, getDisbursement, listDisbursements } from './service.js';

const statuses = ['awaiting_card', 'pending', 'processing', 'settled', 'failed'] as const;

const DisbursementSchema = Type.Object(
  {
    id: Id('dsb', 'Disbursement id.'),
    object: Type.Literal('disbursement'),
    userTaskId: Id('ut', 'The verified milestone this pays for.'),
    programId: Id('prg', 'Program.'),
    userId: Id('usr', 'Participant.'),
    amount: BalanceDollars('Amount funded to the card.', 500),
    status: Type.Union(
      statuses.map((status) => Type.Literal(status)),
      { description: 'awaiting_card → pending → processing → settled | failed.' },
    ),
    failureReason: Nullable(Type.String({ description: 'Why the funding failed.' })),
    settledAt: NullableTimestamp('Settled on the card.'),
    createdAt: Timestamp('Opened at completion.'),
    updatedAt: Timestamp('Last changed.'),
  },
  { $id: 'Disbursement' },
);

function presentDisbursement(disbursement: Disbursement) {
  return {
    id: disbursement.id,
    object: 'disbursement' as const,
    userTaskId: disbursement.userTaskId,
    programId: disbursement.programId,
    userId: disbursement.userId,
    amount: dollars(disbursement.amountCents),
    status: disbursement.status,
    failureReason: disbursement.failureReason,
    settledAt: iso(disbursement.settledAt),
    createdAt: isoRequired(disbursement.createdAt),
    updatedAt: isoRequired(disbursement.updatedAt),
  };
}

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
          status: Type.Optional(Type.Union(statuses.map((status) => Type.Literal(status)))),
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
      return page(rows, limit, presentDisbursement);
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
      return presentDisbursement(disbursement);
    },
  );
}
