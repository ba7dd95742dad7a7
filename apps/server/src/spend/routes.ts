import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import { errorResponses, Id, ListOf, ListQuery } from '../platform/schemas.js';
import { getProgram } from '../programs/program.js';
import { getUser } from '../users/service.js';
import { accountsOfProgram, accountsOfUser, presentSpend, type Spend, SpendSchema, spendsOfAccounts } from './spend.js';

/** Newest first by id, after the cursor: the page of an attributed list computed whole. */
function pageOf(spends: Spend[], cursor: string | undefined, limit: number | undefined) {
  const after = decodeCursor(cursor);
  const ordered = spends
    .filter((spend) => after === undefined || spend.id < after)
    .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    .slice(0, pageSize(limit));
  return page(ordered, limit, presentSpend);
}

export function spendRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
  app.addSchema(SpendSchema);
  const config = { auth: 'organization' as const };
  const SpendRef = Type.Ref('Spend');

  app.get(
    '/v1/users/:id/spend',
    {
      config,
      schema: {
        tags: ['spend'],
        summary: 'List what a participant spent on their cards, and which milestones paid for it',
        description:
          'Each card transaction Highnote reported, newest first, with the disbursements (and so the milestones) it drew on. Spends on a card account draw on the disbursements settled into it, oldest first.',
        params: Type.Object({ id: Id('usr', 'Participant id.') }),
        querystring: Type.Object({
          ...ListQuery,
          cardId: Type.Optional(Id('card', 'Only spends on this card.')),
        }),
        response: { 200: ListOf(SpendRef, 'A page of spends.'), ...errorResponses() },
      },
    },
    async (request) => {
      const { organizationId } = request;
      const user = await getUser(db, organizationId, request.params.id);
      if (user === undefined) throw new ApiError('not_found', `No user ${request.params.id}`);
      const { spends } = await spendsOfAccounts(db, organizationId, await accountsOfUser(db, organizationId, user.id));
      const { cardId, cursor, limit } = request.query;
      const mine = spends.filter(
        (spend) => spend.userId === user.id && (cardId === undefined || spend.cardId === cardId),
      );
      return pageOf(mine, cursor, limit);
    },
  );

  app.get(
    '/v1/programs/:id/spend',
    {
      config,
      schema: {
        tags: ['spend'],
        summary: 'List the spends a program’s milestones paid for',
        description:
          'Every card transaction that drew on a disbursement of this program, newest first. Each lists all its attributions, including those to other programs.',
        params: Type.Object({ id: Id('prg', 'Program id.') }),
        querystring: Type.Object({ ...ListQuery }),
        response: { 200: ListOf(SpendRef, 'A page of spends.'), ...errorResponses() },
      },
    },
    async (request) => {
      const { organizationId } = request;
      const program = await getProgram(db, organizationId, request.params.id);
      if (program === undefined) throw new ApiError('not_found', `No program ${request.params.id}`);
      const accounts = await accountsOfProgram(db, organizationId, program.id);
      const { spends } = await spendsOfAccounts(db, organizationId, accounts);
      const drawn = spends.filter((spend) => spend.attributions.some((a) => a.programId === program.id));
      return pageOf(drawn, request.query.cursor, request.query.limit);
    },
  );
}
