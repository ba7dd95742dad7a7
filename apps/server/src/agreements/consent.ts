import { isIP } from 'node:net';
import { type ColumnType, sql } from 'kysely';
import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { assert, type Failure, fail, ok, type Result } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { Id, Nullable, NullableTimestamp, ObjectKind, OneOf, Timestamp } from '../platform/schemas.js';
import { programAgreementsOf } from '../programs/required-agreements.js';
import { actorName } from '../work/runner.js';
import type { UnitOfWork } from '../work/unit.js';
import {
  type Agreement,
  type AgreementType,
  agreementsOf,
  agreementTypes,
  getAgreement,
  getAgreements,
} from './agreement.js';

/**
 * Consent (migration 0010, `consents`): a participant's acceptance or withdrawal of one version
 * of an agreement — when (server time), from where (IP address, user agent) and how. Records are
 * only ever appended; a participant's state for an agreement is read from their latest record:
 *
 * - `accepted`: an acceptance of the current version, or of an older one when no program
 *   requiring the agreement asks for consent again on a new version;
 * - `stale`: an acceptance of an older version, and a requiring program asks for it again;
 * - `withdrawn`: a withdrawal;
 * - `missing`: no record.
 */

export const consentActions = ['accept', 'withdraw'] as const;
export type ConsentAction = (typeof consentActions)[number];
export const consentMethods = ['api', 'click_through', 'esign', 'written', 'other'] as const;
export type ConsentMethod = (typeof consentMethods)[number];
export const consentStates = ['accepted', 'stale', 'missing', 'withdrawn'] as const;
export type ConsentState = (typeof consentStates)[number];

/** Longest user agent kept (CHECK in the migration); longest IP address text (IPv6 with an IPv4 tail). */
export const maxUserAgentLength = 1000;
export const maxIpAddressLength = 45;

export interface ConsentsTable {
  organization_id: string;
  id: string;
  sequence: ColumnType<bigint, never, never>;
  user_id: string;
  agreement_id: string;
  version: number;
  action: ConsentAction;
  method: ConsentMethod;
  ip_address: string;
  user_agent: string;
  recorded_at: ColumnType<Date, Date, never>;
  request_id: string | null;
  actor: string;
}

function consentsOf(db: Db) {
  return db.withTables<{ consents: ConsentsTable }>();
}

export interface Consent {
  id: string;
  userId: string;
  agreementId: string;
  version: number;
  contentHash: string;
  action: ConsentAction;
  method: ConsentMethod;
  ipAddress: string;
  userAgent: string;
  recordedAt: Date;
}

export interface RecordConsentInput {
  agreementId: string;
  version: number;
  ipAddress: string;
  userAgent: string;
  method?: ConsentMethod | undefined;
  action?: ConsentAction | undefined;
}

/**
 * Appends a participant's acceptance (or withdrawal) of one version of an agreement. An unknown
 * participant or agreement is `not_found`; a version the agreement does not have, or an address
 * that is not one IP address, is a validation error naming the field.
 */
export async function recordConsent(
  unit: UnitOfWork,
  userId: string,
  input: RecordConsentInput,
): Promise<Result<Consent>> {
  const { tx, organizationId } = unit;
  const user = await tx
    .selectFrom('users')
    .select('id')
    .where('organization_id', '=', organizationId)
    .where('id', '=', userId)
    .executeTakeFirst();
  if (user === undefined) return fail('not_found', `No user ${userId}`);
  // A zone index (`fe80::1%eth0`) names an interface of the participant's machine, not an
  // address; PostgreSQL's inet refuses it, so it is refused here as bad input.
  if (isIP(input.ipAddress) === 0 || input.ipAddress.includes('%')) {
    return fail('validation_error', 'ipAddress must be one IPv4 or IPv6 address', 'ipAddress');
  }
  const agreement = await getAgreement(tx, organizationId, input.agreementId);
  if (agreement === undefined) return fail('not_found', `No agreement ${input.agreementId}`, 'agreementId');
  const version = await agreementsOf(tx)
    .selectFrom('agreement_versions')
    .select(['version', 'content_hash'])
    .where('organization_id', '=', organizationId)
    .where('agreement_id', '=', input.agreementId)
    .where('version', '=', input.version)
    .executeTakeFirst();
  if (version === undefined) {
    return fail(
      'validation_error',
      `Agreement ${input.agreementId} has no version ${input.version}; its current version is ${agreement.current.version}`,
      'version',
    );
  }
  const row = await consentsOf(tx)
    .insertInto('consents')
    .values({
      organization_id: organizationId,
      id: newId('consent'),
      user_id: userId,
      agreement_id: input.agreementId,
      version: input.version,
      action: input.action ?? 'accept',
      method: input.method ?? 'api',
      ip_address: input.ipAddress,
      user_agent: input.userAgent,
      recorded_at: unit.now,
      request_id: unit.requestId,
      actor: actorName(unit.actor),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  const consent: Consent = {
    id: row.id,
    userId: row.user_id,
    agreementId: row.agreement_id,
    version: row.version,
    contentHash: version.content_hash,
    action: row.action,
    method: row.method,
    ipAddress: row.ip_address,
    userAgent: row.user_agent,
    recordedAt: row.recorded_at,
  };
  unit.emit(consent.action === 'accept' ? 'consent.accepted' : 'consent.withdrawn', presentConsent(consent));
  return ok(consent);
}

/** The latest record of a participant for an agreement: what the state is read from. */
interface LatestRecord {
  userId: string;
  agreementId: string;
  consentId: string;
  version: number;
  action: ConsentAction;
  recordedAt: Date;
}

/** Latest record per (participant, agreement), for the given participants and agreements. */
async function latestRecords(
  db: Db,
  organizationId: string,
  userIds: readonly string[],
  agreementIds: readonly string[],
): Promise<LatestRecord[]> {
  if (userIds.length === 0 || agreementIds.length === 0) return [];
  const result = await sql<{
    user_id: string;
    agreement_id: string;
    id: string;
    version: number;
    action: ConsentAction;
    recorded_at: Date;
  }>`
    SELECT DISTINCT ON (user_id, agreement_id) user_id, agreement_id, id, version, action, recorded_at
    FROM consents
    WHERE organization_id = ${organizationId}
      AND user_id IN (${sql.join([...new Set(userIds)])})
      AND agreement_id IN (${sql.join([...new Set(agreementIds)])})
    ORDER BY user_id, agreement_id, sequence DESC`.execute(db);
  return result.rows.map((row) => ({
    userId: row.user_id,
    agreementId: row.agreement_id,
    consentId: row.id,
    version: row.version,
    action: row.action,
    recordedAt: row.recorded_at,
  }));
}

/** The state of one participant for one agreement, from their latest record. */
export function consentStateOf(
  latest: { action: ConsentAction; version: number } | undefined,
  currentVersion: number,
  reconsentOnNewVersion: boolean,
): ConsentState {
  if (latest === undefined) return 'missing';
  if (latest.action === 'withdraw') return 'withdrawn';
  return latest.version < currentVersion && reconsentOnNewVersion ? 'stale' : 'accepted';
}

/** A required agreement a participant has not (or no longer) accepted, with its current version. */
export interface MissingConsent {
  agreementId: string;
  version: number;
  state: Exclude<ConsentState, 'accepted'>;
}

interface Requirement {
  agreementId: string;
  reconsentOnNewVersion: boolean;
}

/** A program's required agreements, in the program's order: one index probe on `program_agreements`. */
async function requirementsOf(db: Db, organizationId: string, programId: string): Promise<Requirement[]> {
  const rows = await programAgreementsOf(db)
    .selectFrom('program_agreements')
    .select(['agreement_id', 'reconsent_on_new_version'])
    .where('organization_id', '=', organizationId)
    .where('program_id', '=', programId)
    .orderBy('position')
    .execute();
  return rows.map((row) => ({ agreementId: row.agreement_id, reconsentOnNewVersion: row.reconsent_on_new_version }));
}

/**
 * The current version of each agreement, and the latest record of each participant for it (none
 * for a participant without one), in one statement.
 */
async function currentVersionsAndLatestRecords(
  db: Db,
  organizationId: string,
  agreementIds: readonly string[],
  userIds: readonly string[],
): Promise<{ currentVersions: Map<string, number>; latest: Map<string, { version: number; action: ConsentAction }> }> {
  const result = await sql<{
    agreement_id: string;
    current_version: number;
    user_id: string | null;
    version: number | null;
    action: ConsentAction | null;
  }>`
    SELECT r.agreement_id, r.current_version, c.user_id, c.version, c.action
    FROM (
      SELECT agreement_id, max(version) AS current_version FROM agreement_versions
      WHERE organization_id = ${organizationId} AND agreement_id IN (${sql.join(agreementIds)})
      GROUP BY agreement_id
    ) AS r
    LEFT JOIN LATERAL (
      SELECT DISTINCT ON (user_id) user_id, version, action FROM consents
      WHERE organization_id = ${organizationId} AND agreement_id = r.agreement_id
        AND user_id IN (${sql.join(userIds)})
      ORDER BY user_id, sequence DESC
    ) AS c ON true`.execute(db);
  const currentVersions = new Map<string, number>();
  const latest = new Map<string, { version: number; action: ConsentAction }>();
  for (const row of result.rows) {
    currentVersions.set(row.agreement_id, Number(row.current_version));
    if (row.user_id !== null && row.version !== null && row.action !== null) {
      latest.set(`${row.user_id}\u0000${row.agreement_id}`, { version: row.version, action: row.action });
    }
  }
  return { currentVersions, latest };
}

/**
 * For a batch of participants of one program, the required agreements each has not accepted (by
 * the rules at the top of this file, with the program's own `reconsentOnNewVersion`). Only
 * participants with something missing are in the map. One query when the program requires no
 * agreement (an index probe that finds nothing); two otherwise, whatever the batch's size.
 *
 * Not cached: the requirements change through any API process, and a per-process cache would let
 * a completion in another process pass without a consent the program had just started to require.
 */
export async function missingConsents(
  db: Db,
  organizationId: string,
  programId: string,
  userIds: readonly string[],
): Promise<Map<string, MissingConsent[]>> {
  const missing = new Map<string, MissingConsent[]>();
  if (userIds.length === 0) return missing;
  const requirements = await requirementsOf(db, organizationId, programId);
  if (requirements.length === 0) return missing;
  const participants = [...new Set(userIds)];
  const { currentVersions, latest } = await currentVersionsAndLatestRecords(
    db,
    organizationId,
    requirements.map((requirement) => requirement.agreementId),
    participants,
  );
  for (const userId of participants) {
    const owed: MissingConsent[] = [];
    for (const requirement of requirements) {
      const currentVersion = currentVersions.get(requirement.agreementId);
      assert(currentVersion !== undefined, `required agreement ${requirement.agreementId} has no version`);
      const state = consentStateOf(
        latest.get(`${userId}\u0000${requirement.agreementId}`),
        currentVersion,
        requirement.reconsentOnNewVersion,
      );
      if (state !== 'accepted') owed.push({ agreementId: requirement.agreementId, version: currentVersion, state });
    }
    if (owed.length > 0) missing.set(userId, owed);
  }
  return missing;
}

/**
 * What each participant of a batch still owes, over however many programs the batch spans: one
 * index probe on `program_agreements` for the whole batch, and nothing more when none of its
 * programs requires an agreement (the hot path's case); otherwise `missingConsents` per program.
 * Keyed by `programId` then `userId`.
 */
export async function missingConsentsOfBatch(
  db: Db,
  organizationId: string,
  pairs: readonly { programId: string; userId: string }[],
): Promise<Map<string, Map<string, MissingConsent[]>>> {
  const owed = new Map<string, Map<string, MissingConsent[]>>();
  if (pairs.length === 0) return owed;
  const programs = [...new Set(pairs.map((pair) => pair.programId))];
  const requiring = await programAgreementsOf(db)
    .selectFrom('program_agreements')
    .select('program_id')
    .distinct()
    .where('organization_id', '=', organizationId)
    .where('program_id', 'in', programs)
    .execute();
  for (const { program_id: programId } of requiring) {
    const userIds = pairs.filter((pair) => pair.programId === programId).map((pair) => pair.userId);
    const missing = await missingConsents(db, organizationId, programId, userIds);
    if (missing.size > 0) owed.set(programId, missing);
  }
  return owed;
}

const stateWords: Record<MissingConsent['state'], string> = {
  missing: 'not accepted',
  stale: 'an older version accepted',
  withdrawn: 'withdrawn',
};

/** The `409 consent_required` failure naming what a participant must accept, and in which version. */
export function consentRequiredFailure(missing: readonly MissingConsent[]): Failure {
  const named = missing.map((item) => `${item.agreementId} version ${item.version} (${stateWords[item.state]})`);
  return {
    code: 'consent_required',
    message: `The participant must accept ${named.join(', ')} first`,
  };
}

/** A consent record that applied to a participant in a program: what the program record shows. */
export interface ConsentInForce {
  consentId: string;
  agreementId: string;
  agreementType: AgreementType;
  title: string;
  version: number;
  contentHash: string;
  acceptedAt: Date;
  ipAddress: string;
  userAgent: string;
  method: ConsentMethod;
}

/**
 * The acceptances that satisfy a program's requirements for one participant — as of `at` when
 * given (records made and versions published by then), now otherwise — in the program's order.
 * A requirement the participant had not accepted then is left out.
 */
export async function consentsInForce(
  db: Db,
  organizationId: string,
  programId: string,
  userId: string,
  at?: Date,
): Promise<ConsentInForce[]> {
  const requirements = await programAgreementsOf(db)
    .selectFrom('program_agreements')
    .select(['agreement_id', 'reconsent_on_new_version'])
    .where('organization_id', '=', organizationId)
    .where('program_id', '=', programId)
    .orderBy('position')
    .execute();
  if (requirements.length === 0) return [];
  const ids = requirements.map((requirement) => requirement.agreement_id);
  const atOrNow = at ?? null;
  const result = await sql<{
    agreement_id: string;
    type: AgreementType;
    current_version: number;
    id: string;
    version: number;
    action: ConsentAction;
    method: ConsentMethod;
    ip_address: string;
    user_agent: string;
    recorded_at: Date;
    title: string;
    content_hash: string;
  }>`
    SELECT a.id AS agreement_id, a.type, cur.version AS current_version,
      c.id, c.version, c.action, c.method, c.ip_address, c.user_agent, c.recorded_at, v.title, v.content_hash
    FROM agreements AS a
    CROSS JOIN LATERAL (
      SELECT max(version) AS version FROM agreement_versions
      WHERE organization_id = a.organization_id AND agreement_id = a.id
        AND (${atOrNow}::timestamptz IS NULL OR created_at <= ${atOrNow}::timestamptz)
    ) AS cur
    JOIN LATERAL (
      SELECT id, version, action, method, ip_address, user_agent, recorded_at FROM consents
      WHERE organization_id = a.organization_id AND user_id = ${userId} AND agreement_id = a.id
        AND (${atOrNow}::timestamptz IS NULL OR recorded_at <= ${atOrNow}::timestamptz)
      ORDER BY sequence DESC LIMIT 1
    ) AS c ON true
    JOIN agreement_versions AS v
      ON v.organization_id = a.organization_id AND v.agreement_id = a.id AND v.version = c.version
    WHERE a.organization_id = ${organizationId} AND a.id IN (${sql.join(ids)})`.execute(db);
  const byAgreement = new Map(result.rows.map((row) => [row.agreement_id, row]));
  const inForce: ConsentInForce[] = [];
  for (const requirement of requirements) {
    const row = byAgreement.get(requirement.agreement_id);
    if (row === undefined) continue;
    const state = consentStateOf(row, Number(row.current_version), requirement.reconsent_on_new_version);
    if (state !== 'accepted') continue;
    inForce.push({
      consentId: row.id,
      agreementId: row.agreement_id,
      agreementType: row.type,
      title: row.title,
      version: row.version,
      contentHash: row.content_hash,
      acceptedAt: row.recorded_at,
      ipAddress: row.ip_address,
      userAgent: row.user_agent,
      method: row.method,
    });
  }
  return inForce;
}

/** One agreement of a participant as `GET /v1/users/{id}/agreements` shows it. */
export interface UserAgreement {
  userId: string;
  agreement: Agreement;
  state: ConsentState;
  latest: LatestRecord | undefined;
  requiredBy: { programId: string; reconsentOnNewVersion: boolean }[];
}

/**
 * A page of a participant's agreements: every agreement a program they are enrolled in (active)
 * requires, and every agreement they have a record for, by agreement id, newest first.
 */
export async function listUserAgreements(
  db: Db,
  organizationId: string,
  userId: string,
  filter: { afterId: string | undefined; limit: number },
): Promise<UserAgreement[]> {
  const after = filter.afterId ?? null;
  const page = await sql<{ id: string }>`
    SELECT agreement_id AS id FROM (
      SELECT pa.agreement_id FROM program_agreements AS pa
      JOIN enrollments AS e ON e.organization_id = pa.organization_id AND e.program_id = pa.program_id
      WHERE pa.organization_id = ${organizationId} AND e.user_id = ${userId} AND e.status = 'active'
      UNION
      SELECT agreement_id FROM consents WHERE organization_id = ${organizationId} AND user_id = ${userId}
    ) AS relevant
    WHERE ${after}::text IS NULL OR agreement_id < ${after}::text
    ORDER BY agreement_id DESC
    LIMIT ${filter.limit}`.execute(db);
  const ids = page.rows.map((row) => row.id);
  if (ids.length === 0) return [];
  const [agreements, records, requiring] = await Promise.all([
    getAgreements(db, organizationId, ids),
    latestRecords(db, organizationId, [userId], ids),
    sql<{ agreement_id: string; program_id: string; reconsent_on_new_version: boolean }>`
      SELECT pa.agreement_id, pa.program_id, pa.reconsent_on_new_version FROM program_agreements AS pa
      JOIN enrollments AS e ON e.organization_id = pa.organization_id AND e.program_id = pa.program_id
      WHERE pa.organization_id = ${organizationId} AND e.user_id = ${userId} AND e.status = 'active'
        AND pa.agreement_id IN (${sql.join(ids)})
      ORDER BY pa.program_id`.execute(db),
  ]);
  const latestOf = new Map(records.map((record) => [record.agreementId, record]));
  return ids.map((id) => {
    const agreement = agreements.get(id);
    assert(agreement !== undefined, `agreement ${id} has no current version`);
    const requiredBy = requiring.rows
      .filter((row) => row.agreement_id === id)
      .map((row) => ({ programId: row.program_id, reconsentOnNewVersion: row.reconsent_on_new_version }));
    const latest = latestOf.get(id);
    const reconsent = requiredBy.some((program) => program.reconsentOnNewVersion);
    return {
      userId,
      agreement,
      state: consentStateOf(latest, agreement.current.version, reconsent),
      latest,
      requiredBy,
    };
  });
}

export const ConsentSchema = Type.Object(
  {
    id: Id('cns', 'Consent record id.'),
    object: ObjectKind('consent'),
    userId: Id('usr', 'The participant.'),
    agreementId: Id('agr', 'The agreement.'),
    version: Type.Integer({ minimum: 1, description: 'The version accepted or withdrawn.', examples: [2] }),
    contentHash: Type.String({
      description: 'SHA-256 (hex) of that version’s content.',
      examples: ['9f2c1a6e0b4d8e7f3a5c2b1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f'],
    }),
    action: OneOf(consentActions, {
      description: '`accept`, or `withdraw` (a new record; the acceptance stays as it was).',
      examples: ['accept'],
    }),
    method: OneOf(consentMethods, { description: 'How the participant gave it.', examples: ['click_through'] }),
    ipAddress: Type.String({ description: 'The participant’s IP address.', examples: ['203.0.113.24'] }),
    userAgent: Type.String({
      description: 'The participant’s user agent.',
      examples: ['Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)'],
    }),
    recordedAt: Timestamp('When Tranche recorded it (server time).'),
  },
  { $id: 'Consent' },
);

export function presentConsent(consent: Consent) {
  return {
    id: consent.id,
    object: 'consent' as const,
    userId: consent.userId,
    agreementId: consent.agreementId,
    version: consent.version,
    contentHash: consent.contentHash,
    action: consent.action,
    method: consent.method,
    ipAddress: consent.ipAddress,
    userAgent: consent.userAgent,
    recordedAt: consent.recordedAt.toISOString(),
  };
}

export const UserAgreementSchema = Type.Object(
  {
    object: ObjectKind('user_agreement'),
    userId: Id('usr', 'The participant.'),
    agreementId: Id('agr', 'The agreement.'),
    type: OneOf(agreementTypes, { description: 'What kind of document it is.', examples: ['cardholder_agreement'] }),
    title: Type.String({ description: 'Title of the current version.', examples: ['Cardholder Agreement'] }),
    currentVersion: Type.Integer({ minimum: 1, description: 'The agreement’s current version.', examples: [2] }),
    contentHash: Type.String({
      description: 'SHA-256 (hex) of the current version’s content.',
      examples: ['9f2c1a6e0b4d8e7f3a5c2b1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f'],
    }),
    state: OneOf(consentStates, {
      description:
        '`accepted` (the current version, or an older one no requiring program asks again for), `stale` (an older version, and a requiring program asks for consent again on a new one), `missing` (no record) or `withdrawn`.',
      examples: ['accepted'],
    }),
    acceptedVersion: Nullable(
      Type.Integer({
        description: 'The version the participant accepted; null unless accepted or stale.',
        examples: [2],
      }),
    ),
    acceptedAt: NullableTimestamp('When the participant accepted it; null unless accepted or stale.'),
    withdrawnAt: NullableTimestamp('When the participant withdrew; null unless withdrawn.'),
    consentId: Nullable(Id('cns', 'The latest consent record the state is read from; null when missing.')),
    requiredBy: Type.Array(
      Type.Object(
        {
          programId: Id('prg', 'A program the participant is enrolled in that requires the agreement.'),
          reconsentOnNewVersion: Type.Boolean({
            description: 'Whether that program asks for consent again on a new version.',
            examples: [true],
          }),
        },
        { description: 'A program requiring the agreement.' },
      ),
      { description: 'The programs the participant is enrolled in that require the agreement; empty if none does.' },
    ),
  },
  { $id: 'UserAgreement' },
);

export function presentUserAgreement(item: UserAgreement) {
  const accepted = item.latest?.action === 'accept' ? item.latest : undefined;
  const withdrawn = item.latest?.action === 'withdraw' ? item.latest : undefined;
  return {
    object: 'user_agreement' as const,
    userId: item.userId,
    agreementId: item.agreement.id,
    type: item.agreement.type,
    title: item.agreement.current.title,
    currentVersion: item.agreement.current.version,
    contentHash: item.agreement.current.contentHash,
    state: item.state,
    acceptedVersion: accepted?.version ?? null,
    acceptedAt: accepted?.recordedAt.toISOString() ?? null,
    withdrawnAt: withdrawn?.recordedAt.toISOString() ?? null,
    consentId: item.latest?.consentId ?? null,
    requiredBy: item.requiredBy,
  };
}
