import { Type } from 'typebox';
import { accountKinds, transferCodes, transferKinds } from '../ledger/kinds.js';
import { transferOf } from '../ledger/ledger.js';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import { dollars } from '../platform/present.js';
import {
  BalanceDollars,
  errorResponses,
  Id,
  ListOf,
  ListQuery,
  Nullable,
  OneOf,
  Timestamp,
} from '../platform/schemas.js';
import { findProgram, ProgramSchema, presentProgram } from './program.js';

/** A program's books as the ledger keeps them: its accounts and its transfers. */

const ProgramParams = Type.Object({ id: Id('prg', 'Program id.') });

/** Ledger account ids in the examples: a program's pool, and its in_transit account the pool pays into. */
const poolAccountExample = 'acc_01jd8n3q7v0c4x2m5k9e6t1hzr';
const inTransitAccountExample = 'acc_01jd8n3q7w3b6y8r2p4f0s5kqa';

const TransferSchema = Type.Object({
  id: Id('trf', 'Transfer id.'),
  debitAccountId: Type.String({ description: 'Account debited.', examples: [poolAccountExample] }),
  creditAccountId: Type.String({ description: 'Account credited.', examples: [inTransitAccountExample] }),
  amount: BalanceDollars('Amount moved or reserved.', 500),
  kind: OneOf(transferKinds, {
    description: 'posted, a pending reservation, or the post or void that resolves one.',
    examples: ['pending'],
  }),
  pendingId: Nullable(
    Type.String({
      description: 'The reservation a post or void resolves.',
      examples: ['trf_01jd8n3q7v0c4x2m5k9e6t1hzr'],
    }),
  ),
  code: OneOf(transferCodes, { description: 'Why the money moved.', examples: ['reservation'] }),
  userTaskId: Nullable(
    Type.String({ description: 'The milestone behind the transfer.', examples: ['ut_01jd8n3q7v0c4x2m5k9e6t1hzr'] }),
  ),
  createdAt: Timestamp('Recorded.'),
});

const AccountSchema = Type.Object({
  id: Type.String({ description: 'Account id.', examples: [poolAccountExample] }),
  kind: OneOf(accountKinds, { description: 'pool, in_transit, disbursed or funding.', examples: ['pool'] }),
  debitsPending: BalanceDollars('Reserved debits.', 0),
  debitsPosted: BalanceDollars('Posted debits.', 500),
  creditsPending: BalanceDollars('Reserved credits.', 0),
  creditsPosted: BalanceDollars('Posted credits.', 50000),
});

export function programLedgerRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
  const auth = { auth: 'organization' as const };
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
            accounts: Type.Array(AccountSchema, {
              description:
                'The program’s pool, in_transit and disbursed accounts, and the organization’s funding account.',
            }),
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
