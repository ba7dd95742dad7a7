import { Type } from 'typebox';
import { transferOf } from '../ledger/ledger.js';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import { centsOf, dollars } from '../platform/present.js';
import {
  BalanceDollars,
  Dollars,
  errorResponses,
  Id,
  ListOf,
  ListQuery,
  Metadata,
  Nullable,
  Timestamp,
} from '../platform/schemas.js';
import { mutate, presented } from '../work/mutate.js';
import { findProgram, getProgram, listPrograms, ProgramSchema, presentProgram, programStatuses } from './program.js';
import { closeProgram, createProgram, fundProgram, pauseProgram, resumeProgram, updateProgram } from './service.js';

const ProgramParams = Type.Object({ id: Id('prg', 'Program id.') });
const ProgramRef = Type.Ref('Program');

const TransferSchema = Type.Object({
  id: Id('trf', 'Transfer id.'),
  debitAccountId: Type.String({ description: 'Account debited.' }),
  creditAccountId: Type.String({ description: 'Account credited.' }),
  amount: BalanceDollars('Amount moved or reserved.', 500),
  kind: Type.Union(
    [Type.Literal('posted'), Type.Literal('pending'), Type.Literal('post_pending'), Type.Literal('void_pending')],
    { description: 'posted, a pending reservation, or the post or void that resolves one.' },
  ),
  pendingId: Nullable(Type.String({ description: 'The reservation a post or void resolves.' })),
  code: Type.String({ description: 'Why the money moved.', examples: ['reservation'] }),
  userTaskId: Nullable(Type.String({ description: 'The milestone behind the transfer.' })),
  createdAt: Timestamp('Recorded.'),
});

const AccountSchema = Type.Object({
  id: Type.String({ description: 'Account id.' }),
  kind: Type.String({ description: 'pool, in_transit, disbursed or funding.', examples: ['pool'] }),
  debitsPending: BalanceDollars('Reserved debits.', 0),
  debitsPosted: BalanceDollars('Posted debits.', 500),
  creditsPending: BalanceDollars('Reserved credits.', 0),
  creditsPosted: BalanceDollars('Posted credits.', 50000),
});

export function programRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
  app.addSchema(ProgramSchema);
  const auth = { auth: 'organization' as const };

  app.post(
    '/v1/programs',
    {
      config: auth,
      schema: {
        tags: ['programs'],
        summary: 'Create a program and fund its award pool',
        body: Type.Object(
          {
            name: Type.String({
              minLength: 1,
              maxLength: 200,
              description: 'Program name.',
              examples: ['OSHA completion funding'],
            }),
            description: Type.Optional(Type.String({ maxLength: 2000, description: 'Longer description.' })),
            programType: Type.Optional(Type.String({ maxLength: 100, description: 'Your own classification.' })),
            cardProductId: Type.Optional(
              Type.String({ maxLength: 200, description: 'Highnote card product id.', examples: ['cp_1234'] }),
            ),
            totalAwardPool: Type.Number({
              minimum: 0,
              maximum: 1e9,
              description: 'Dollars moved from your funding account into the pool now; at most two decimals.',
              examples: [50000],
            }),
            maxParticipants: Type.Integer({
              minimum: 1,
              maximum: 10_000_000,
              description: 'Enrollment cap.',
              examples: [100],
            }),
            startsAt: Type.Optional(Timestamp('When the program opens.')),
            endsAt: Type.Optional(Timestamp('When the program ends.')),
            metadata: Type.Optional(Metadata),
          },
          { additionalProperties: false },
        ),
        response: { 201: ProgramRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const total = body.totalAwardPool === 0 ? 0n : centsOf(body.totalAwardPool, 'totalAwardPool');
      return mutate(db, request, reply, 201, async (unit) =>
        presented(await createProgram(unit, { ...body, totalAwardPoolCents: total }), presentProgram),
      );
    },
  );

  app.get(
    '/v1/programs',
    {
      config: auth,
      schema: {
        tags: ['programs'],
        summary: 'List programs, newest first',
        querystring: Type.Object({
          ...ListQuery,
          status: Type.Optional(Type.Union(programStatuses.map((status) => Type.Literal(status)))),
        }),
        response: { 200: ListOf(ProgramRef, 'A page of programs.'), ...errorResponses() },
      },
    },
    async (request) => {
      const rows = await listPrograms(db, request.organizationId, {
        afterId: decodeCursor(request.query.cursor),
        limit: pageSize(request.query.limit),
        status: request.query.status,
      });
      return page(rows, request.query.limit, presentProgram);
    },
  );

  app.get(
    '/v1/programs/:id',
    {
      config: auth,
      schema: {
        tags: ['programs'],
        summary: 'Retrieve a program with its balances',
        params: ProgramParams,
        response: { 200: ProgramRef, ...errorResponses() },
      },
    },
    async (request) => {
      const program = await getProgram(db, request.organizationId, request.params.id);
      if (program === undefined) throw new ApiError('not_found', `No program ${request.params.id}`);
      return presentProgram(program);
    },
  );

  app.patch(
    '/v1/programs/:id',
    {
      config: auth,
      schema: {
        tags: ['programs'],
        summary: 'Update a program',
        params: ProgramParams,
        body: Type.Object(
          {
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Program name.' })),
            description: Type.Optional(Nullable(Type.String({ maxLength: 2000, description: 'Longer description.' }))),
            maxParticipants: Type.Optional(
              Type.Integer({
                minimum: 1,
                maximum: 10_000_000,
                description: 'Enrollment cap; not below the participants enrolled.',
              }),
            ),
            endsAt: Type.Optional(Nullable(Timestamp('When the program ends.'))),
            metadata: Type.Optional(Metadata),
          },
          { additionalProperties: false },
        ),
        response: { 200: ProgramRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) =>
      mutate(db, request, reply, 200, async (unit) =>
        presented(await updateProgram(unit, request.params.id, request.body), presentProgram),
      ),
  );

  app.post(
    '/v1/programs/:id/fund',
    {
      config: auth,
      schema: {
        tags: ['programs'],
        summary: 'Add money to the award pool',
        params: ProgramParams,
        body: Type.Object(
          { amount: Dollars('Dollars moved from your funding account into the pool.', 10000) },
          { additionalProperties: false },
        ),
        response: { 200: ProgramRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const amountCents = centsOf(request.body.amount, 'amount');
      return mutate(db, request, reply, 200, async (unit) =>
        presented(await fundProgram(unit, request.params.id, amountCents), presentProgram),
      );
    },
  );

  for (const [action, summary, run] of [
    ['pause', 'Pause: nothing new is reserved or released; cancels still work', pauseProgram],
    ['resume', 'Resume a paused program', resumeProgram],
    ['close', 'Close: void open reservations and return the available pool', closeProgram],
  ] as const) {
    app.post(
      `/v1/programs/:id/${action}`,
      {
        config: auth,
        schema: {
          tags: ['programs'],
          summary,
          params: ProgramParams,
          response: { 200: ProgramRef, ...errorResponses(409, 422) },
        },
      },
      async (request, reply) =>
        mutate(db, request, reply, 200, async (unit) => presented(await run(unit, request.params.id), presentProgram)),
    );
  }

  app.get(
    '/v1/programs/:id/ledger',
    {
      config: auth,
      schema: {
        tags: ['programs'],
        summary: 'The program’s balances, accounts and transfers, newest first',
        params: ProgramParams,
        querystring: Type.Object(ListQuery),
        response: {
          200: Type.Object({
            programId: Id('prg', 'Program id.'),
            totalAwardPool: BalanceDollars('Everything ever funded into the pool.', 50000),
            balances: ProgramSchema.properties.balances,
            accounts: Type.Array(AccountSchema),
            transfers: ListOf(TransferSchema, 'A page of transfers.'),
          }),
          ...errorResponses(),
        },
      },
    },
    async (request) => {
      const found = await findProgram(db, request.organizationId, request.params.id);
      if (!found.ok) throw ApiError.of(found.failure);
      const program = found.value;
      const accountIds = [
        program.poolAccountId,
        program.inTransitAccountId,
        program.disbursedAccountId,
        program.fundingAccountId,
      ];
      const accounts = await db
        .selectFrom('ledger_accounts')
        .selectAll()
        .where('organization_id', '=', request.organizationId)
        .where('id', 'in', accountIds)
        .orderBy('id')
        .execute();
      let transfers = db
        .selectFrom('ledger_transfers')
        .selectAll()
        .where('organization_id', '=', request.organizationId)
        .where('program_id', '=', program.id)
        .orderBy('id', 'desc')
        .limit(pageSize(request.query.limit));
      const after = decodeCursor(request.query.cursor);
      if (after !== undefined) transfers = transfers.where('id', '<', after);
      const presented = presentProgram(program);
      return {
        programId: program.id,
        totalAwardPool: presented.totalAwardPool,
        balances: presented.balances,
        accounts: accounts.map((account) => ({
          id: account.id,
          kind: account.kind,
          debitsPending: dollars(account.debits_pending_cents),
          debitsPosted: dollars(account.debits_posted_cents),
          creditsPending: dollars(account.credits_pending_cents),
          creditsPosted: dollars(account.credits_posted_cents),
        })),
        transfers: page((await transfers.execute()).map(transferOf), request.query.limit, (transfer) => ({
          id: transfer.id,
          debitAccountId: transfer.debitAccountId,
          creditAccountId: transfer.creditAccountId,
          amount: dollars(transfer.amountCents),
          kind: transfer.kind,
          pendingId: transfer.pendingId,
          code: transfer.code,
          userTaskId: transfer.userTaskId,
          createdAt: transfer.createdAt.toISOString(),
        })),
      };
    },
  );
}
