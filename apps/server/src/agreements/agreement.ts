import { createHash } from 'node:crypto';
import type { ColumnType } from 'kysely';
import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { assert, fail, ok, type Result } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { Id, Nullable, ObjectKind, OneOf, Timestamp } from '../platform/schemas.js';
import type { UnitOfWork } from '../work/unit.js';

/**
 * Agreements (migration 0010): a document participants accept, in immutable numbered versions,
 * each with the SHA-256 of its content. The agreement row holds only its type; the title and the
 * content belong to each version, and the current version is the highest. Nothing is ever
 * changed or deleted (triggers refuse it).
 */

export const agreementTypes = [
  'esign_consent',
  'cardholder_agreement',
  'privacy_notice',
  'program_terms',
  'other',
] as const;
export type AgreementType = (typeof agreementTypes)[number];

/** Longest title, text and URL of a version (CHECKs in the migration hold the same numbers). */
export const maxAgreementTitleLength = 200;
export const maxAgreementBodyLength = 60_000;
export const maxAgreementUrlLength = 2048;
/** Most versions of one agreement (CHECK in the migration). */
export const maxAgreementVersions = 100_000;

export interface AgreementsTable {
  organization_id: string;
  id: string;
  type: AgreementType;
  created_at: ColumnType<Date, Date, never>;
}

export interface AgreementVersionsTable {
  organization_id: string;
  agreement_id: string;
  version: number;
  previous_version: ColumnType<number | null, never, never>;
  title: string;
  body: string | null;
  url: string | null;
  content_hash: string;
  created_at: ColumnType<Date, Date, never>;
}

export type AgreementTables = {
  agreements: AgreementsTable;
  agreement_versions: AgreementVersionsTable;
};

/** The tables through their own row types, so that this module stays self-contained (as `jobs.ts` does). */
export function agreementsOf(db: Db) {
  return db.withTables<AgreementTables>();
}

export interface AgreementVersion {
  agreementId: string;
  version: number;
  title: string;
  body: string | null;
  url: string | null;
  contentHash: string;
  createdAt: Date;
}

export interface Agreement {
  id: string;
  type: AgreementType;
  createdAt: Date;
  current: AgreementVersion;
}

/**
 * The hash of a version's content: SHA-256 of the text's UTF-8 bytes, or of the URL as given
 * (Tranche does not fetch it). The `agreement_versions_content_hash` CHECK computes the same.
 */
export function contentHashOf(content: { body: string | null; url: string | null }): string {
  const text = content.body ?? content.url;
  assert(text !== null, 'a version has a body or a URL');
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function versionOf(row: {
  agreement_id: string;
  version: number;
  title: string;
  body: string | null;
  url: string | null;
  content_hash: string;
  created_at: Date;
}): AgreementVersion {
  return {
    agreementId: row.agreement_id,
    version: row.version,
    title: row.title,
    body: row.body,
    url: row.url,
    contentHash: row.content_hash,
    createdAt: row.created_at,
  };
}

/** Agreements with their current (highest) version, newest agreement first. */
function agreementQuery(db: Db, organizationId: string) {
  return agreementsOf(db)
    .selectFrom('agreements as a')
    .innerJoinLateral(
      (eb) =>
        eb
          .selectFrom('agreement_versions as v')
          .select(['v.agreement_id', 'v.version', 'v.title', 'v.body', 'v.url', 'v.content_hash', 'v.created_at'])
          .whereRef('v.organization_id', '=', 'a.organization_id')
          .whereRef('v.agreement_id', '=', 'a.id')
          .orderBy('v.version', 'desc')
          .limit(1)
          .as('v'),
      (join) => join.onTrue(),
    )
    .select([
      'a.id',
      'a.type',
      'a.created_at as agreement_created_at',
      'v.agreement_id',
      'v.version',
      'v.title',
      'v.body',
      'v.url',
      'v.content_hash',
      'v.created_at',
    ])
    .where('a.organization_id', '=', organizationId);
}

type AgreementRow = Awaited<ReturnType<ReturnType<typeof agreementQuery>['executeTakeFirstOrThrow']>>;

function agreementOf(row: AgreementRow): Agreement {
  return { id: row.id, type: row.type, createdAt: row.agreement_created_at, current: versionOf(row) };
}

export async function getAgreement(db: Db, organizationId: string, id: string): Promise<Agreement | undefined> {
  const row = await agreementQuery(db, organizationId).where('a.id', '=', id).executeTakeFirst();
  return row === undefined ? undefined : agreementOf(row);
}

/** Agreements with their current versions, by id; unknown ids are left out. */
export async function getAgreements(
  db: Db,
  organizationId: string,
  ids: readonly string[],
): Promise<Map<string, Agreement>> {
  if (ids.length === 0) return new Map();
  const rows = await agreementQuery(db, organizationId)
    .where('a.id', 'in', [...new Set(ids)])
    .execute();
  return new Map(rows.map((row) => [row.id, agreementOf(row)]));
}

export async function listAgreements(
  db: Db,
  organizationId: string,
  filter: { afterId: string | undefined; limit: number; type: AgreementType | undefined },
): Promise<Agreement[]> {
  let query = agreementQuery(db, organizationId).orderBy('a.id', 'desc').limit(filter.limit);
  if (filter.afterId !== undefined) query = query.where('a.id', '<', filter.afterId);
  if (filter.type !== undefined) query = query.where('a.type', '=', filter.type);
  return (await query.execute()).map(agreementOf);
}

/** An agreement's versions, highest first; `beforeVersion` continues a page. */
export async function listAgreementVersions(
  db: Db,
  organizationId: string,
  agreementId: string,
  filter: { beforeVersion: number | undefined; limit: number },
): Promise<AgreementVersion[]> {
  let query = agreementsOf(db)
    .selectFrom('agreement_versions')
    .select(['agreement_id', 'version', 'title', 'body', 'url', 'content_hash', 'created_at'])
    .where('organization_id', '=', organizationId)
    .where('agreement_id', '=', agreementId)
    .orderBy('version', 'desc')
    .limit(filter.limit);
  if (filter.beforeVersion !== undefined) query = query.where('version', '<', filter.beforeVersion);
  return (await query.execute()).map(versionOf);
}

export interface AgreementContent {
  body?: string | undefined;
  url?: string | undefined;
}

/** Exactly one of `body` and `url`, or the validation error naming the field. */
function contentOf(input: AgreementContent): Result<{ body: string | null; url: string | null }> {
  if (input.body !== undefined && input.url !== undefined) {
    return fail('validation_error', 'Send the agreement as body or as url, not both', 'url');
  }
  if (input.body === undefined && input.url === undefined) {
    return fail(
      'validation_error',
      'body or url is required: the text of the agreement, or where it is published',
      'body',
    );
  }
  return ok({ body: input.body ?? null, url: input.url ?? null });
}

async function insertVersion(
  unit: UnitOfWork,
  agreementId: string,
  version: number,
  title: string,
  content: { body: string | null; url: string | null },
): Promise<void> {
  await agreementsOf(unit.tx)
    .insertInto('agreement_versions')
    .values({
      organization_id: unit.organizationId,
      agreement_id: agreementId,
      version,
      title,
      body: content.body,
      url: content.url,
      content_hash: contentHashOf(content),
      created_at: unit.now,
    })
    .execute();
}

/** Reads the agreement a unit just wrote; it exists, since the unit wrote it or holds its lock. */
async function reread(unit: UnitOfWork, id: string): Promise<Agreement> {
  const agreement = await getAgreement(unit.tx, unit.organizationId, id);
  assert(agreement !== undefined, `agreement ${id} vanished inside its own transaction`);
  return agreement;
}

export interface CreateAgreementInput extends AgreementContent {
  type: AgreementType;
  title: string;
}

/** Creates an agreement and its version 1. */
export async function createAgreement(unit: UnitOfWork, input: CreateAgreementInput): Promise<Result<Agreement>> {
  const content = contentOf(input);
  if (!content.ok) return content;
  const id = newId('agreement');
  await agreementsOf(unit.tx)
    .insertInto('agreements')
    .values({ organization_id: unit.organizationId, id, type: input.type, created_at: unit.now })
    .execute();
  await insertVersion(unit, id, 1, input.title, content.value);
  const agreement = await reread(unit, id);
  unit.emit('agreement.created', presentAgreement(agreement));
  return ok(agreement);
}

export interface CreateVersionInput extends AgreementContent {
  title?: string | undefined;
}

/**
 * Adds version n+1 (the title stays unless given). The agreement row is locked first, so two
 * new versions of one agreement take turns instead of both claiming n+1; FOR NO KEY UPDATE lets
 * consent records (whose foreign keys take KEY SHARE locks) go on meanwhile.
 */
export async function createAgreementVersion(
  unit: UnitOfWork,
  agreementId: string,
  input: CreateVersionInput,
): Promise<Result<{ agreement: Agreement; version: AgreementVersion }>> {
  const locked = await agreementsOf(unit.tx)
    .selectFrom('agreements')
    .select('id')
    .where('organization_id', '=', unit.organizationId)
    .where('id', '=', agreementId)
    .forNoKeyUpdate()
    .executeTakeFirst();
  if (locked === undefined) return fail('not_found', `No agreement ${agreementId}`);
  const content = contentOf(input);
  if (!content.ok) return content;
  const before = await reread(unit, agreementId);
  if (before.current.version >= maxAgreementVersions) {
    return fail('invalid_state', `Agreement ${agreementId} has reached ${maxAgreementVersions} versions`);
  }
  const version = before.current.version + 1;
  await insertVersion(unit, agreementId, version, input.title ?? before.current.title, content.value);
  const agreement = await reread(unit, agreementId);
  assert(agreement.current.version === version, `agreement ${agreementId} version ${version} is not current`);
  unit.emit('agreement.version_created', presentAgreement(agreement));
  return ok({ agreement, version: agreement.current });
}

const hashExample = '9f2c1a6e0b4d8e7f3a5c2b1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f';

export const AgreementVersionSchema = Type.Object(
  {
    object: ObjectKind('agreement_version'),
    agreementId: Id('agr', 'The agreement this is a version of.'),
    version: Type.Integer({ minimum: 1, description: 'Version number: 1, 2, 3… without a gap.', examples: [2] }),
    title: Type.String({ description: 'Title of this version.', examples: ['Cardholder Agreement'] }),
    body: Nullable(
      Type.String({
        description: 'The text of this version; null when it is published at `url`.',
        examples: ['By accepting, you agree to receive your card and its disclosures electronically…'],
      }),
    ),
    url: Nullable(
      Type.String({
        description: 'Where this version is published; null when `body` holds its text.',
        examples: ['https://partner.example.com/legal/cardholder-agreement-v2.pdf'],
      }),
    ),
    contentHash: Type.String({
      description: 'SHA-256 (hex) of the content: the UTF-8 bytes of `body`, or of `url` as given.',
      examples: [hashExample],
    }),
    createdAt: Timestamp('When this version was created; it never changes after.'),
  },
  { $id: 'AgreementVersion' },
);

export const AgreementSchema = Type.Object(
  {
    id: Id('agr', 'Agreement id.'),
    object: ObjectKind('agreement'),
    type: OneOf(agreementTypes, { description: 'What kind of document it is.', examples: ['cardholder_agreement'] }),
    title: Type.String({ description: 'Title of the current version.', examples: ['Cardholder Agreement'] }),
    version: Type.Integer({ minimum: 1, description: 'Number of the current (highest) version.', examples: [1] }),
    contentHash: Type.String({
      description: 'SHA-256 (hex) of the current version’s content.',
      examples: [hashExample],
    }),
    // Inline rather than a $ref: the document keeps a description beside the field only this way.
    currentVersion: Type.Object(AgreementVersionSchema.properties, {
      description: 'The current version, with its content.',
    }),
    createdAt: Timestamp('When the agreement (its version 1) was created.'),
    updatedAt: Timestamp('When the current version was created.'),
  },
  { $id: 'Agreement' },
);

export function presentAgreementVersion(version: AgreementVersion) {
  return {
    object: 'agreement_version' as const,
    agreementId: version.agreementId,
    version: version.version,
    title: version.title,
    body: version.body,
    url: version.url,
    contentHash: version.contentHash,
    createdAt: version.createdAt.toISOString(),
  };
}

export function presentAgreement(agreement: Agreement) {
  return {
    id: agreement.id,
    object: 'agreement' as const,
    type: agreement.type,
    title: agreement.current.title,
    version: agreement.current.version,
    contentHash: agreement.current.contentHash,
    currentVersion: presentAgreementVersion(agreement.current),
    createdAt: agreement.createdAt.toISOString(),
    updatedAt: agreement.current.createdAt.toISOString(),
  };
}
