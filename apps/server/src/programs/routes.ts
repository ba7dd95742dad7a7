import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError, unwrap } from '../platform/errors.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import { centsOf } from '../platform/present.js';
import {
  Dollars,
  errorResponses,
  Id,
  ListOf,
  ListQuery,
  Metadata,
  Nullable,
  OneOf,
  Timestamp,
} from '../platform/schemas.js';
import { mutate, presented } from '../work/mutate.js';
import { programLedgerRoutes } from './ledger-routes.js';
import {
  getProgram,
  listPrograms,
  ProgramSchema,
  presentProgram,
  programDescriptionExample,
  programStatuses,
} from './program.js';
import { RequiredAgreementsBody } from './required-agreements.js';
import { closeProgram, createProgram, fundProgram, pauseProgram, resumeProgram, updateProgram } from './service.js';
import { parseSpendControls, type SpendControlsBody, spendControlsSchema } from './spend-controls.js';

const ProgramParams = Type.Object({ id: Id('prg', 'Program id.') });
const ProgramRef = Type.Ref('Program');

const CreateProgramBody = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'Program name.',
      examples: ['OSHA completion funding'],
    }),
    description: Type.Optional(
      Type.String({ maxLength: 2000, description: 'Longer description.', examples: [programDescriptionExample] }),
    ),
    programType: Type.Optional(
      Type.String({ maxLength: 100, description: 'Your own classification.', examples: ['workforce'] }),
    ),
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
    spendControls: Type.Optional(
      spendControlsSchema(
        'What the participants’ cards may be used for: amounts, merchant categories and MCCs, merchants, cash and terminal types. Omit or send `{}` for no controls.',
      ),
    ),
    requiredAgreements: Type.Optional(
      RequiredAgreementsBody(
        'The agreements (of your organization) the participants must accept before a milestone of theirs is completed or funded, each once. Omit for none.',
      ),
    ),
  },
  { additionalProperties: false },
);

const UpdateProgramBody = Type.Object(
  {
    name: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        description: 'Program name.',
        examples: ['OSHA completion funding'],
      }),
    ),
    description: Type.Optional(
      Nullable(
        Type.String({ maxLength: 2000, description: 'Longer description.', examples: [programDescriptionExample] }),
      ),
    ),
    maxParticipants: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10_000_000,
        description: 'Enrollment cap; not below the participants enrolled.',
        examples: [150],
      }),
    ),
    endsAt: Type.Optional(Nullable(Timestamp('When the program ends.'))),
    metadata: Type.Optional(Metadata),
    spendControls: Type.Optional(
      spendControlsSchema(
        'Replaces the program’s spend controls as a whole (`{}` removes them); the participants’ cards follow.',
      ),
    ),
    requiredAgreements: Type.Optional(
      RequiredAgreementsBody(
        'Replaces the program’s required agreements as a whole (`[]` removes them); consent is checked from the next completion on.',
      ),
    ),
  },
  { additionalProperties: false },
);

const FundProgramBody = Type.Object(
  { amount: Dollars('Dollars moved from your funding account into the pool.', 10000) },
  { additionalProperties: false },
);

/** A body's `spendControls`, parsed before the unit runs: bad controls are a 400 that writes nothing. */
function spendControlsOf(body: SpendControlsBody | undefined) {
  return body === undefined ? undefined : unwrap(parseSpendControls(body, 'spendControls'));
}

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
        body: CreateProgramBody,
        response: { 201: ProgramRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const total = body.totalAwardPool === 0 ? 0n : centsOf(body.totalAwardPool, 'totalAwardPool');
      const spendControls = spendControlsOf(body.spendControls);
      return mutate(db, request, reply, 201, async (unit) =>
        presented(await createProgram(unit, { ...body, totalAwardPoolCents: total, spendControls }), presentProgram),
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
          status: Type.Optional(
            OneOf(programStatuses, { description: 'Only programs in this status.', examples: ['active'] }),
          ),
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
        body: UpdateProgramBody,
        response: { 200: ProgramRef, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const spendControls = spendControlsOf(request.body.spendControls);
      return mutate(db, request, reply, 200, async (unit) =>
        presented(await updateProgram(unit, request.params.id, { ...request.body, spendControls }), presentProgram),
      );
    },
  );

  app.post(
    '/v1/programs/:id/fund',
    {
      config: auth,
      schema: {
        tags: ['programs'],
        summary: 'Add money to the award pool',
        params: ProgramParams,
        body: FundProgramBody,
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

  programLedgerRoutes(app, deps);
}
