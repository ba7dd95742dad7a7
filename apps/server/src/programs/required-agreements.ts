import { type RawBuilder, sql } from 'kysely';
import { Type } from 'typebox';
import { agreementsOf } from '../agreements/agreement.js';
import type { Db } from '../platform/db.js';
import { fail, ok, type Result } from '../platform/errors.js';
import { Id } from '../platform/schemas.js';
import type { UnitOfWork } from '../work/unit.js';

/**
 * The agreements a program's participants must accept (migration 0010, `program_agreements`), in
 * the order the program lists them, and whether a new version of one needs their consent again.
 * Completing or funding a user task checks them (`agreements/consent.ts`).
 */

/** Most agreements one program requires (CHECK on `position` in the migration). */
export const maxRequiredAgreements = 20;

export interface RequiredAgreement {
  agreementId: string;
  reconsentOnNewVersion: boolean;
}

export interface ProgramAgreementsTable {
  organization_id: string;
  program_id: string;
  agreement_id: string;
  position: number;
  reconsent_on_new_version: boolean;
}

export function programAgreementsOf(db: Db) {
  return db.withTables<{ program_agreements: ProgramAgreementsTable }>();
}

const RequiredAgreementItem = Type.Object(
  {
    agreementId: Id('agr', 'An agreement of your organization the participants must accept.'),
    reconsentOnNewVersion: Type.Boolean({
      description:
        'Whether a new version of the agreement needs the participants’ consent again (`true`), or an acceptance of an older version still counts (`false`).',
      examples: [true],
    }),
  },
  { additionalProperties: false, description: 'One agreement the participants must accept.' },
);

export const RequiredAgreementsSchema = Type.Array(RequiredAgreementItem, {
  maxItems: maxRequiredAgreements,
  description:
    'The agreements the participants must accept before a milestone of theirs is completed or funded, each once.',
});

/** The body field: the same, and on update it replaces the program's list as a whole (`[]` removes them). */
export const RequiredAgreementsBody = (description: string) =>
  Type.Array(RequiredAgreementItem, {
    maxItems: maxRequiredAgreements,
    description,
  });

/**
 * The program's list as a JSON array, for the program query: one index probe per program read.
 * `programAlias` names the `programs` row in the enclosing query.
 */
export function requiredAgreementsColumn(programAlias: string): RawBuilder<RequiredAgreement[]> {
  const program = sql.table(programAlias);
  return sql<RequiredAgreement[]>`(
    SELECT coalesce(
      json_agg(
        json_build_object('agreementId', pa.agreement_id, 'reconsentOnNewVersion', pa.reconsent_on_new_version)
        ORDER BY pa.position
      ),
      '[]'::json
    )
    FROM program_agreements AS pa
    WHERE pa.organization_id = ${program}.organization_id AND pa.program_id = ${program}.id)`;
}

/**
 * Checks a list before anything is written: each agreement named once and belonging to the
 * organization, otherwise a validation error naming the entry (`requiredAgreements.1.agreementId`).
 */
export async function validateRequiredAgreements(
  db: Db,
  organizationId: string,
  list: readonly RequiredAgreement[],
): Promise<Result<null>> {
  const seen = new Set<string>();
  for (const [index, item] of list.entries()) {
    if (seen.has(item.agreementId)) {
      return fail(
        'validation_error',
        `requiredAgreements names ${item.agreementId} twice`,
        `requiredAgreements.${index}.agreementId`,
      );
    }
    seen.add(item.agreementId);
  }
  if (list.length === 0) return ok(null);
  const found = await agreementsOf(db)
    .selectFrom('agreements')
    .select('id')
    .where('organization_id', '=', organizationId)
    .where('id', 'in', [...seen])
    .execute();
  const known = new Set(found.map((row) => row.id));
  for (const [index, item] of list.entries()) {
    if (!known.has(item.agreementId)) {
      return fail(
        'validation_error',
        `No agreement ${item.agreementId} in your organization`,
        `requiredAgreements.${index}.agreementId`,
      );
    }
  }
  return ok(null);
}

/** Replaces the program's list (validated by `validateRequiredAgreements`) inside the unit. */
export async function replaceRequiredAgreements(
  unit: UnitOfWork,
  programId: string,
  list: readonly RequiredAgreement[],
): Promise<void> {
  const table = programAgreementsOf(unit.tx);
  await table
    .deleteFrom('program_agreements')
    .where('organization_id', '=', unit.organizationId)
    .where('program_id', '=', programId)
    .execute();
  if (list.length === 0) return;
  await table
    .insertInto('program_agreements')
    .values(
      list.map((item, position) => ({
        organization_id: unit.organizationId,
        program_id: programId,
        agreement_id: item.agreementId,
        position,
        reconsent_on_new_version: item.reconsentOnNewVersion,
      })),
    )
    .execute();
}
