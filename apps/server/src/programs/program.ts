import { Type } from 'typebox';
import { type Db, dateOf } from '../platform/db.js';
import { assert, fail, ok, type Result } from '../platform/errors.js';
import { dollars, iso, isoRequired } from '../platform/present.js';
import {
  BalanceDollars,
  Id,
  Metadata,
  Nullable,
  NullableTimestamp,
  ObjectKind,
  OneOf,
  Timestamp,
} from '../platform/schemas.js';
import { type RequiredAgreement, RequiredAgreementsSchema, requiredAgreementsColumn } from './required-agreements.js';
import {
  presentSpendControls,
  type SpendControls,
  spendControlsFromStorage,
  spendControlsSchema,
} from './spend-controls.js';

/** A program, its balances, how the API presents it, and how it is read. */

export const programStatuses = ['active', 'paused', 'closed'] as const;
export type ProgramStatus = (typeof programStatuses)[number];

export interface ProgramBalances {
  availableCents: bigint;
  reservedCents: bigint;
  disbursingCents: bigint;
  disbursedCents: bigint;
  returnedCents: bigint;
}

export interface Program {
  id: string;
  name: string;
  description: string | null;
  programType: string | null;
  cardProductId: string | null;
  status: ProgramStatus;
  totalAwardPoolCents: bigint;
  maxParticipants: number;
  participantCount: number;
  startsAt: Date | null;
  endsAt: Date | null;
  metadata: Record<string, string>;
  spendControls: SpendControls;
  requiredAgreements: RequiredAgreement[];
  balances: ProgramBalances;
  poolAccountId: string;
  inTransitAccountId: string;
  disbursedAccountId: string;
  fundingAccountId: string;
  createdAt: Date;
  updatedAt: Date;
  closedAt: Date | null;
}

function programQuery(db: Db, organizationId: string) {
  return db
    .selectFrom('programs as p')
    .innerJoin('ledger_accounts as pool', (join) =>
      join.onRef('pool.organization_id', '=', 'p.organization_id').onRef('pool.id', '=', 'p.pool_account_id'),
    )
    .innerJoin('ledger_accounts as transit', (join) =>
      join
        .onRef('transit.organization_id', '=', 'p.organization_id')
        .onRef('transit.id', '=', 'p.in_transit_account_id'),
    )
    .innerJoin('ledger_accounts as settled', (join) =>
      join
        .onRef('settled.organization_id', '=', 'p.organization_id')
        .onRef('settled.id', '=', 'p.disbursed_account_id'),
    )
    .selectAll('p')
    .select([
      'pool.credits_posted_cents as pool_credits_posted',
      'pool.debits_posted_cents as pool_debits_posted',
      'pool.debits_pending_cents as pool_debits_pending',
      'transit.credits_posted_cents as transit_credits_posted',
      'transit.debits_posted_cents as transit_debits_posted',
      'settled.credits_posted_cents as settled_credits_posted',
      'settled.debits_posted_cents as settled_debits_posted',
      requiredAgreementsColumn('p').as('required_agreements'),
    ])
    .where('p.organization_id', '=', organizationId);
}

type ProgramRow = Awaited<ReturnType<ReturnType<typeof programQuery>['executeTakeFirstOrThrow']>>;

/**
 * Balances from the program's accounts. The pool's posted debits go either to in_transit
 * (completed milestones) or back to funding (returned), which gives `returned`; in_transit's
 * debits go to disbursed (settled) or back to the pool (a cancelled funding); the identity
 * `total = available + reserved + disbursing + disbursed + returned` is asserted here and held
 * at commit by the `ledger_program_identity` constraint trigger.
 */
function programOf(row: ProgramRow): Program {
  const balances: ProgramBalances = {
    availableCents: row.pool_credits_posted - row.pool_debits_posted - row.pool_debits_pending,
    reservedCents: row.pool_debits_pending,
    disbursingCents: row.transit_credits_posted - row.transit_debits_posted,
    disbursedCents: row.settled_credits_posted - row.settled_debits_posted,
    returnedCents: row.pool_debits_posted - row.transit_credits_posted,
  };
  const sum =
    balances.availableCents +
    balances.reservedCents +
    balances.disbursingCents +
    balances.disbursedCents +
    balances.returnedCents;
  assert(
    sum === row.total_award_pool_cents &&
      // The pool's posted credits are its funding plus the fundings cancelled back to it, which are
      // in_transit's debits that did not settle.
      row.pool_credits_posted - (row.transit_debits_posted - row.settled_credits_posted) === row.total_award_pool_cents,
    `program ${row.id} breaks totalAwardPool = available + reserved + disbursing + disbursed + returned`,
  );
  for (const [name, value] of Object.entries(balances)) {
    assert(value >= 0n, `program ${row.id} has a negative ${name}`);
  }
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    programType: row.program_type,
    cardProductId: row.card_product_id,
    status: row.status,
    totalAwardPoolCents: row.total_award_pool_cents,
    maxParticipants: row.max_participants,
    participantCount: row.participant_count,
    startsAt: dateOf(row.starts_at),
    endsAt: dateOf(row.ends_at),
    metadata: row.metadata as Record<string, string>,
    spendControls: spendControlsFromStorage(row.spend_controls, `program ${row.id} spend_controls`),
    requiredAgreements: row.required_agreements,
    balances,
    poolAccountId: row.pool_account_id,
    inTransitAccountId: row.in_transit_account_id,
    disbursedAccountId: row.disbursed_account_id,
    fundingAccountId: row.funding_account_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    closedAt: dateOf(row.closed_at),
  };
}

export async function getProgram(db: Db, organizationId: string, id: string): Promise<Program | undefined> {
  const row = await programQuery(db, organizationId).where('p.id', '=', id).executeTakeFirst();
  return row === undefined ? undefined : programOf(row);
}

export async function findProgram(db: Db, organizationId: string, id: string): Promise<Result<Program>> {
  const program = await getProgram(db, organizationId, id);
  return program === undefined ? fail('not_found', `No program ${id}`, 'programId') : ok(program);
}

export async function listPrograms(
  db: Db,
  organizationId: string,
  options: { afterId: string | undefined; limit: number; status: ProgramStatus | undefined },
): Promise<Program[]> {
  let query = programQuery(db, organizationId).orderBy('p.id', 'desc').limit(options.limit);
  if (options.afterId !== undefined) query = query.where('p.id', '<', options.afterId);
  if (options.status !== undefined) query = query.where('p.status', '=', options.status);
  return (await query.execute()).map(programOf);
}

/** The example of a program's `description`, in the response and in the bodies that set it. */
export const programDescriptionExample = 'Pays for OSHA 10 and OSHA 30 certificates earned by the spring cohort.';

export const ProgramSchema = Type.Object(
  {
    id: Id('prg', 'Program id.'),
    object: ObjectKind('program'),
    name: Type.String({ description: 'Name shown to operators.', examples: ['OSHA completion funding'] }),
    description: Nullable(Type.String({ description: 'Longer description.', examples: [programDescriptionExample] })),
    programType: Nullable(Type.String({ description: 'Your own classification.', examples: ['workforce'] })),
    cardProductId: Nullable(
      Type.String({ description: 'Highnote card product the cards are issued from.', examples: ['cp_1234'] }),
    ),
    status: OneOf(programStatuses, {
      description: 'active ⇄ paused → closed.',
      examples: ['active'],
    }),
    totalAwardPool: BalanceDollars('Everything ever funded into the pool.', 50000),
    maxParticipants: Type.Integer({ description: 'Enrollment cap.', examples: [100] }),
    participantCount: Type.Integer({ description: 'Participants enrolled now.', examples: [1] }),
    balances: Type.Object(
      {
        available: BalanceDollars('Free to reserve.', 49500),
        reserved: BalanceDollars('Held for assigned milestones.', 0),
        disbursing: BalanceDollars('Verified milestones whose card funding has not settled.', 500),
        disbursed: BalanceDollars('Settled on participants’ cards.', 0),
        returned: BalanceDollars('Given back to the funding account when the program closed.', 0),
      },
      { description: 'totalAwardPool = available + reserved + disbursing + disbursed + returned, always.' },
    ),
    startsAt: NullableTimestamp('When the program opens.'),
    endsAt: NullableTimestamp('When the program ends.'),
    metadata: Metadata,
    spendControls: spendControlsSchema(
      'What the participants’ cards may be used for; `{}` for no controls. A card serving several programs carries the most restrictive combination of theirs.',
    ),
    requiredAgreements: RequiredAgreementsSchema,
    createdAt: Timestamp('Created.'),
    updatedAt: Timestamp('Last changed.'),
    closedAt: NullableTimestamp('Closed.'),
  },
  { $id: 'Program' },
);

export function presentProgram(program: Program) {
  const b = program.balances;
  return {
    id: program.id,
    object: 'program' as const,
    name: program.name,
    description: program.description,
    programType: program.programType,
    cardProductId: program.cardProductId,
    status: program.status,
    totalAwardPool: dollars(program.totalAwardPoolCents),
    maxParticipants: program.maxParticipants,
    participantCount: program.participantCount,
    balances: {
      available: dollars(b.availableCents),
      reserved: dollars(b.reservedCents),
      disbursing: dollars(b.disbursingCents),
      disbursed: dollars(b.disbursedCents),
      returned: dollars(b.returnedCents),
    },
    startsAt: iso(program.startsAt),
    endsAt: iso(program.endsAt),
    metadata: program.metadata,
    spendControls: presentSpendControls(program.spendControls),
    requiredAgreements: program.requiredAgreements.map((item) => ({
      agreementId: item.agreementId,
      reconsentOnNewVersion: item.reconsentOnNewVersion,
    })),
    createdAt: isoRequired(program.createdAt),
    updatedAt: isoRequired(program.updatedAt),
    closedAt: iso(program.closedAt),
  };
}
