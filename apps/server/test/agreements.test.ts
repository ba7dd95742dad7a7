import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agreementTypes } from '../src/agreements/agreement.js';
import {
  consentActions,
  consentMethods,
  consentRequiredFailure,
  consentsInForce,
  missingConsents,
} from '../src/agreements/consent.js';
import { errorStatuses } from '../src/platform/errors.js';
import { type Client, countRows, newOrganization, startTestServer, type TestServer } from './harness.js';

/**
 * Agreements, their immutable versions, and participants' consent, through the real HTTP server;
 * `missingConsents` and `consentsInForce` against the state the API left in the database.
 */

let server: TestServer;
let org: Awaited<ReturnType<typeof newOrganization>>;
let other: Awaited<ReturnType<typeof newOrganization>>;

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const browser = { ipAddress: '203.0.113.24', userAgent: 'Mozilla/5.0 (X11; Linux x86_64)' };

beforeAll(async () => {
  server = await startTestServer();
  org = await newOrganization(server, 'Acme');
  other = await newOrganization(server, 'Other tenant');
});

afterAll(async () => {
  await server.close();
});

async function createAgreement(call: Client, body: Record<string, unknown>) {
  const created = await call('POST', '/v1/agreements', body);
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body;
}

async function newProgram(call: Client, requiredAgreements?: unknown) {
  const program = await call('POST', '/v1/programs', {
    name: 'OSHA completion funding',
    totalAwardPool: 1000,
    maxParticipants: 10,
    ...(requiredAgreements === undefined ? {} : { requiredAgreements }),
  });
  expect(program.status, JSON.stringify(program.body)).toBe(201);
  return program.body;
}

async function newUser(call: Client) {
  const user = await call('POST', '/v1/users', {});
  expect(user.status).toBe(201);
  return user.body.id as string;
}

async function enroll(call: Client, programId: string, userId: string) {
  const enrolled = await call('POST', `/v1/programs/${programId}/users/${userId}`);
  expect(enrolled.status, JSON.stringify(enrolled.body)).toBeLessThan(300);
}

async function consent(call: Client, userId: string, body: Record<string, unknown>) {
  return call('POST', `/v1/users/${userId}/agreements`, { ...browser, ...body });
}

/** The user's agreements as the API shows them, by agreement id. */
async function statesOf(call: Client, userId: string) {
  const listed = await call('GET', `/v1/users/${userId}/agreements?limit=100`);
  expect(listed.status, JSON.stringify(listed.body)).toBe(200);
  // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies of every shape
  return new Map<string, any>(listed.body.data.map((item: { agreementId: string }) => [item.agreementId, item]));
}

async function agreementRows() {
  return {
    agreements: await countRows(server, 'agreements', org.id),
    versions: await countRows(server, 'agreement_versions', org.id),
    consents: await countRows(server, 'consents', org.id),
    requirements: await countRows(server, 'program_agreements', org.id),
    programs: await countRows(server, 'programs', org.id),
    events: await countRows(server, 'events', org.id),
  };
}

describe('agreements', () => {
  it('creates version 1 with the hash of its content, and emits agreement.created', async () => {
    const body = 'I agree to receive disclosures electronically. — ✓';
    const created = await createAgreement(org.call, { type: 'esign_consent', title: 'E-sign consent', body });
    expect(created).toMatchObject({
      object: 'agreement',
      type: 'esign_consent',
      title: 'E-sign consent',
      version: 1,
      contentHash: sha256(body),
      currentVersion: { object: 'agreement_version', agreementId: created.id, version: 1, body, url: null },
    });
    expect(created.id).toMatch(/^agr_[0-9a-z]{26}$/);
    expect(created.createdAt).toBe(created.updatedAt);

    const byUrl = await createAgreement(org.call, {
      type: 'cardholder_agreement',
      title: 'Cardholder Agreement',
      url: 'https://partner.example.com/legal/cha-v1.pdf',
    });
    expect(byUrl.contentHash).toBe(sha256('https://partner.example.com/legal/cha-v1.pdf'));
    expect(byUrl.currentVersion).toMatchObject({ body: null, url: 'https://partner.example.com/legal/cha-v1.pdf' });

    expect((await org.call('GET', `/v1/agreements/${created.id}`)).body).toEqual(created);
    const events = await org.call('GET', '/v1/events?type=agreement.created&limit=100');
    expect(events.body.data.map((event: { data: { object: { id: string } } }) => event.data.object.id)).toContain(
      created.id,
    );
  });

  it('refuses bad input with 400 naming the field, and writes nothing', async () => {
    const before = await agreementRows();
    const cases: [Record<string, unknown>, string | undefined][] = [
      [{ type: 'esign_consent', title: 'x' }, 'body'],
      [{ type: 'esign_consent', title: 'x', body: 'a', url: 'https://example.com/a' }, 'url'],
      [{ type: 'nda', title: 'x', body: 'a' }, 'type'],
      [{ type: 'other', title: '', body: 'a' }, 'title'],
      [{ type: 'other', title: 'x', url: 'ftp://example.com/a' }, 'url'],
      [{ type: 'other', title: 'x', body: 'a', extra: 1 }, 'extra'],
    ];
    for (const [body, param] of cases) {
      const refused = await org.call('POST', '/v1/agreements', body, { 'idempotency-key': `bad-${param}` });
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.body.error.code).toBe('validation_error');
      expect(refused.body.error.param).toBe(param);
    }
    expect(await agreementRows()).toEqual(before);
  });

  it('publishes immutable versions n+1 with their own hashes; the database refuses changes', async () => {
    const created = await createAgreement(org.call, { type: 'privacy_notice', title: 'Privacy', body: 'v1 text' });
    const second = await org.call('POST', `/v1/agreements/${created.id}/versions`, { body: 'v2 text' });
    expect(second.status).toBe(201);
    expect(second.body).toMatchObject({
      object: 'agreement_version',
      agreementId: created.id,
      version: 2,
      title: 'Privacy',
      contentHash: sha256('v2 text'),
    });
    const third = await org.call('POST', `/v1/agreements/${created.id}/versions`, {
      title: 'Privacy notice',
      url: 'https://example.com/privacy-v3',
    });
    expect(third.body).toMatchObject({ version: 3, title: 'Privacy notice', body: null });

    const current = (await org.call('GET', `/v1/agreements/${created.id}`)).body;
    expect(current).toMatchObject({
      version: 3,
      title: 'Privacy notice',
      contentHash: sha256('https://example.com/privacy-v3'),
    });
    expect(current.createdAt).toBe(created.createdAt);

    const versions = await org.call('GET', `/v1/agreements/${created.id}/versions?limit=2`);
    expect(versions.body.data.map((version: { version: number }) => version.version)).toEqual([3, 2]);
    expect(versions.body.hasMore).toBe(true);
    const rest = await org.call(
      'GET',
      `/v1/agreements/${created.id}/versions?limit=2&cursor=${encodeURIComponent(versions.body.nextCursor)}`,
    );
    expect(rest.body).toMatchObject({ hasMore: false, nextCursor: null });
    expect(rest.body.data).toEqual([{ ...created.currentVersion }]);
    expect(versions.body.data[1]).toEqual(second.body);

    const db = server.database.db;
    await expect(
      sql`UPDATE agreement_versions SET body = 'changed' WHERE agreement_id = ${created.id}`.execute(db),
    ).rejects.toThrow(/never changed or deleted/);
    await expect(sql`DELETE FROM agreement_versions WHERE agreement_id = ${created.id}`.execute(db)).rejects.toThrow(
      /never changed or deleted/,
    );
    await expect(sql`DELETE FROM agreements WHERE id = ${created.id}`.execute(db)).rejects.toThrow(
      /never changed or deleted/,
    );
    // The constraints behind the code: a hash that is not of the content, a gap in the numbering.
    await expect(
      sql`INSERT INTO agreement_versions (organization_id, agreement_id, version, title, body, content_hash, created_at)
        VALUES (${org.id}, ${created.id}, 4, 'x', 'text', ${sha256('other text')}, now())`.execute(db),
    ).rejects.toThrow(/agreement_versions_content_hash/);
    await expect(
      sql`INSERT INTO agreement_versions (organization_id, agreement_id, version, title, body, content_hash, created_at)
        VALUES (${org.id}, ${created.id}, 5, 'x', 'text', ${sha256('text')}, now())`.execute(db),
    ).rejects.toThrow(/foreign key/);
  });

  it('replays a version with the same Idempotency-Key instead of publishing another', async () => {
    const created = await createAgreement(org.call, { type: 'other', title: 'Terms', body: 'one' });
    const headers = { 'idempotency-key': `version-${created.id}` };
    const first = await org.call('POST', `/v1/agreements/${created.id}/versions`, { body: 'two' }, headers);
    const replay = await org.call('POST', `/v1/agreements/${created.id}/versions`, { body: 'two' }, headers);
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(first.body);
    const reused = await org.call('POST', `/v1/agreements/${created.id}/versions`, { body: 'three' }, headers);
    expect(reused.status).toBe(422);
    expect((await org.call('GET', `/v1/agreements/${created.id}`)).body.version).toBe(2);
  });

  it('concurrent new versions of one agreement take turns: n+1, n+2… without a gap or a failure', async () => {
    const created = await createAgreement(org.call, { type: 'other', title: 'Busy', body: 'v1' });
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, index) =>
        org.call('POST', `/v1/agreements/${created.id}/versions`, { body: `concurrent ${index}` }),
      ),
    );
    expect(answers.map((answer) => answer.status)).toEqual(Array(6).fill(201));
    expect(answers.map((answer) => answer.body.version).sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7]);
    expect((await org.call('GET', `/v1/agreements/${created.id}`)).body.version).toBe(7);
  });

  it('lists agreements newest first, by type, a page at a time', async () => {
    const all = await org.call('GET', '/v1/agreements?limit=100');
    expect(all.status).toBe(200);
    const ids = all.body.data.map((agreement: { id: string }) => agreement.id);
    expect(ids).toEqual([...ids].sort().reverse());
    const first = await org.call('GET', '/v1/agreements?limit=1');
    const second = await org.call('GET', `/v1/agreements?limit=1&cursor=${encodeURIComponent(first.body.nextCursor)}`);
    expect([first.body.data[0].id, second.body.data[0].id]).toEqual(ids.slice(0, 2));
    const notices = await org.call('GET', '/v1/agreements?type=privacy_notice');
    expect(notices.body.data.every((agreement: { type: string }) => agreement.type === 'privacy_notice')).toBe(true);
    expect(notices.body.data.length).toBeGreaterThan(0);
  });

  it('keeps tenants apart: another organization’s agreement is 404 everywhere', async () => {
    const mine = await createAgreement(org.call, { type: 'other', title: 'Mine', body: 'mine' });
    const theirUser = await newUser(other.call);
    const myUser = await newUser(org.call);
    const before = await agreementRows();
    expect((await other.call('GET', `/v1/agreements/${mine.id}`)).status).toBe(404);
    expect((await other.call('GET', `/v1/agreements/${mine.id}/versions`)).status).toBe(404);
    expect((await other.call('POST', `/v1/agreements/${mine.id}/versions`, { body: 'theirs' })).status).toBe(404);
    const accepted = await consent(other.call, theirUser, { agreementId: mine.id, version: 1 });
    expect(accepted.status).toBe(404);
    expect(accepted.body.error).toMatchObject({ code: 'not_found', param: 'agreementId' });
    expect((await consent(other.call, myUser, { agreementId: mine.id, version: 1 })).status).toBe(404);
    expect((await other.call('GET', `/v1/users/${myUser}/agreements`)).status).toBe(404);
    expect((await other.call('GET', '/v1/agreements')).body.data.map((a: { id: string }) => a.id)).not.toContain(
      mine.id,
    );
    // A program of the other organization cannot require it.
    const program = await other.call('POST', '/v1/programs', {
      name: 'x',
      totalAwardPool: 1,
      maxParticipants: 1,
      requiredAgreements: [{ agreementId: mine.id, reconsentOnNewVersion: true }],
    });
    expect(program.status).toBe(400);
    expect(program.body.error).toMatchObject({ code: 'validation_error', param: 'requiredAgreements.0.agreementId' });
    expect(await agreementRows()).toEqual(before);
  });
});

describe('programs name their required agreements', () => {
  it('on create, read and update; unknown or repeated agreements are 400 and write nothing', async () => {
    const terms = await createAgreement(org.call, { type: 'program_terms', title: 'Terms', body: 'terms' });
    const cha = await createAgreement(org.call, { type: 'cardholder_agreement', title: 'CHA', body: 'cha' });
    const required = [
      { agreementId: terms.id, reconsentOnNewVersion: true },
      { agreementId: cha.id, reconsentOnNewVersion: false },
    ];
    const program = await newProgram(org.call, required);
    expect(program.requiredAgreements).toEqual(required);
    expect((await org.call('GET', `/v1/programs/${program.id}`)).body.requiredAgreements).toEqual(required);
    expect((await newProgram(org.call)).requiredAgreements).toEqual([]);

    const before = await agreementRows();
    const unknown = await org.call('POST', '/v1/programs', {
      name: 'x',
      totalAwardPool: 10,
      maxParticipants: 1,
      requiredAgreements: [required[0], { agreementId: 'agr_01jd8n3q7v0c4x2m5k9e6t1hzr', reconsentOnNewVersion: true }],
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: 'validation_error', param: 'requiredAgreements.1.agreementId' });
    const twice = await org.call('PATCH', `/v1/programs/${program.id}`, {
      name: 'renamed',
      requiredAgreements: [required[0], required[0]],
    });
    expect(twice.status).toBe(400);
    expect(twice.body.error.param).toBe('requiredAgreements.1.agreementId');
    const missingFlag = await org.call('PATCH', `/v1/programs/${program.id}`, {
      requiredAgreements: [{ agreementId: terms.id }],
    });
    expect(missingFlag.status).toBe(400);
    expect(missingFlag.body.error.param).toBe('requiredAgreements.0.reconsentOnNewVersion');
    expect(await agreementRows()).toEqual(before);
    expect((await org.call('GET', `/v1/programs/${program.id}`)).body.name).toBe('OSHA completion funding');

    const updated = await org.call('PATCH', `/v1/programs/${program.id}`, { requiredAgreements: [required[1]] });
    expect(updated.status).toBe(200);
    expect(updated.body.requiredAgreements).toEqual([required[1]]);
    const cleared = await org.call('PATCH', `/v1/programs/${program.id}`, { requiredAgreements: [] });
    expect(cleared.body.requiredAgreements).toEqual([]);
  });
});

describe('consent', () => {
  it('records acceptance and withdrawal as new records; states follow the latest record', async () => {
    const esign = await createAgreement(org.call, { type: 'esign_consent', title: 'E-sign', body: 'esign v1' });
    const cha = await createAgreement(org.call, { type: 'cardholder_agreement', title: 'CHA', body: 'cha v1' });
    const privacy = await createAgreement(org.call, { type: 'privacy_notice', title: 'Privacy', body: 'p v1' });
    const strict = await newProgram(org.call, [
      { agreementId: esign.id, reconsentOnNewVersion: true },
      { agreementId: cha.id, reconsentOnNewVersion: true },
    ]);
    const lenient = await newProgram(org.call, [{ agreementId: privacy.id, reconsentOnNewVersion: false }]);
    const userId = await newUser(org.call);
    // Nothing required before enrollment, and no records yet.
    expect((await statesOf(org.call, userId)).size).toBe(0);
    await enroll(org.call, strict.id, userId);
    await enroll(org.call, lenient.id, userId);

    let states = await statesOf(org.call, userId);
    expect([...states.keys()].sort()).toEqual([esign.id, cha.id, privacy.id].sort());
    expect(states.get(esign.id)).toMatchObject({
      object: 'user_agreement',
      userId,
      state: 'missing',
      currentVersion: 1,
      contentHash: sha256('esign v1'),
      acceptedVersion: null,
      acceptedAt: null,
      consentId: null,
      requiredBy: [{ programId: strict.id, reconsentOnNewVersion: true }],
    });

    const accepted = await consent(org.call, userId, { agreementId: esign.id, version: 1, method: 'click_through' });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(201);
    expect(accepted.body).toMatchObject({
      object: 'consent',
      userId,
      agreementId: esign.id,
      version: 1,
      contentHash: sha256('esign v1'),
      action: 'accept',
      method: 'click_through',
      ...browser,
    });
    expect(accepted.body.id).toMatch(/^cns_/);
    expect(Math.abs(Date.parse(accepted.body.recordedAt) - Date.now())).toBeLessThan(60_000);
    const defaults = await consent(org.call, userId, { agreementId: cha.id, version: 1 });
    expect(defaults.body).toMatchObject({ method: 'api', action: 'accept' });
    await consent(org.call, userId, { agreementId: privacy.id, version: 1 });

    states = await statesOf(org.call, userId);
    expect(states.get(esign.id)).toMatchObject({
      state: 'accepted',
      acceptedVersion: 1,
      acceptedAt: accepted.body.recordedAt,
      consentId: accepted.body.id,
    });
    expect(states.get(cha.id)?.state).toBe('accepted');
    expect(states.get(privacy.id)?.state).toBe('accepted');
    expect(await missingConsents(server.database.db, org.id, strict.id, [userId])).toEqual(new Map());

    // New versions: the strict program asks again (stale); the lenient one keeps version 1 valid.
    await org.call('POST', `/v1/agreements/${cha.id}/versions`, { body: 'cha v2' });
    await org.call('POST', `/v1/agreements/${privacy.id}/versions`, { body: 'p v2' });
    states = await statesOf(org.call, userId);
    expect(states.get(cha.id)).toMatchObject({ state: 'stale', currentVersion: 2, acceptedVersion: 1 });
    expect(states.get(privacy.id)).toMatchObject({ state: 'accepted', currentVersion: 2, acceptedVersion: 1 });
    expect(await missingConsents(server.database.db, org.id, strict.id, [userId])).toEqual(
      new Map([[userId, [{ agreementId: cha.id, version: 2, state: 'stale' }]]]),
    );
    expect(await missingConsents(server.database.db, org.id, lenient.id, [userId])).toEqual(new Map());

    // Withdrawal is a new record: the acceptance stays in the table as it was.
    const withdrawn = await consent(org.call, userId, { agreementId: esign.id, version: 1, action: 'withdraw' });
    expect(withdrawn.status).toBe(201);
    expect(withdrawn.body.action).toBe('withdraw');
    states = await statesOf(org.call, userId);
    expect(states.get(esign.id)).toMatchObject({
      state: 'withdrawn',
      acceptedVersion: null,
      withdrawnAt: withdrawn.body.recordedAt,
      consentId: withdrawn.body.id,
    });
    const rows = await sql<{ action: string }>`
      SELECT action FROM consents WHERE user_id = ${userId} AND agreement_id = ${esign.id} ORDER BY sequence`.execute(
      server.database.db,
    );
    expect(rows.rows.map((row) => row.action)).toEqual(['accept', 'withdraw']);
    await expect(
      sql`UPDATE consents SET action = 'accept' WHERE id = ${withdrawn.body.id}`.execute(server.database.db),
    ).rejects.toThrow(/never changed or deleted/);

    const missing = await missingConsents(server.database.db, org.id, strict.id, [userId]);
    expect(missing.get(userId)).toEqual([
      { agreementId: esign.id, version: 1, state: 'withdrawn' },
      { agreementId: cha.id, version: 2, state: 'stale' },
    ]);
    const failure = consentRequiredFailure(missing.get(userId) ?? []);
    expect(failure.code).toBe('consent_required');
    expect(errorStatuses[failure.code]).toBe(409);
    expect(failure.message).toContain(`${esign.id} version 1`);
    expect(failure.message).toContain(`${cha.id} version 2`);

    // Accepting again brings both back; consentsInForce names what applied, with its hash and origin.
    await consent(org.call, userId, { agreementId: esign.id, version: 1 });
    await consent(org.call, userId, { agreementId: cha.id, version: 2, method: 'esign' });
    expect(await missingConsents(server.database.db, org.id, strict.id, [userId])).toEqual(new Map());
    const inForce = await consentsInForce(server.database.db, org.id, strict.id, userId);
    expect(
      inForce.map(({ agreementId, version, contentHash, method }) => ({ agreementId, version, contentHash, method })),
    ).toEqual([
      { agreementId: esign.id, version: 1, contentHash: sha256('esign v1'), method: 'api' },
      { agreementId: cha.id, version: 2, contentHash: sha256('cha v2'), method: 'esign' },
    ]);
    expect(inForce[0]).toMatchObject({ ...browser, agreementType: 'esign_consent', title: 'E-sign' });
    // As of before the cha acceptance of version 2, the version-1 acceptance was in force.
    const earlier = await consentsInForce(
      server.database.db,
      org.id,
      strict.id,
      userId,
      new Date(accepted.body.recordedAt),
    );
    expect(earlier.map((item) => [item.agreementId, item.version])).toEqual([[esign.id, 1]]);

    // Events: one per record, in the transaction of the record.
    const events = await org.call('GET', '/v1/events?type=consent.withdrawn&limit=100');
    expect(events.body.data.map((event: { data: { object: { id: string } } }) => event.data.object.id)).toContain(
      withdrawn.body.id,
    );
  });

  it('a version that does not exist is 400, an unknown user or agreement 404, and nothing is written', async () => {
    const agreement = await createAgreement(org.call, { type: 'other', title: 'x', body: 'x' });
    const userId = await newUser(org.call);
    const before = await agreementRows();
    const noVersion = await consent(org.call, userId, { agreementId: agreement.id, version: 2 });
    expect(noVersion.status).toBe(400);
    expect(noVersion.body.error).toMatchObject({ code: 'validation_error', param: 'version' });
    const noUser = await consent(org.call, 'usr_01jd8n3q7v0c4x2m5k9e6t1hzr', { agreementId: agreement.id, version: 1 });
    expect(noUser.status).toBe(404);
    const noAgreement = await consent(org.call, userId, { agreementId: 'agr_01jd8n3q7v0c4x2m5k9e6t1hzr', version: 1 });
    expect(noAgreement.status).toBe(404);
    expect(noAgreement.body.error.param).toBe('agreementId');
    const badAddress = await consent(org.call, userId, {
      agreementId: agreement.id,
      version: 1,
      ipAddress: '10.0.0.0/8',
    });
    expect(badAddress.status).toBe(400);
    expect(badAddress.body.error.param).toBe('ipAddress');
    const zoned = await consent(org.call, userId, { agreementId: agreement.id, version: 1, ipAddress: 'fe80::1%eth0' });
    expect(zoned.status).toBe(400);
    expect(zoned.body.error.param).toBe('ipAddress');
    const mapped = await consent(org.call, userId, {
      agreementId: agreement.id,
      version: 1,
      ipAddress: '::ffff:1.2.3.4',
    });
    expect(mapped.status).toBe(201);
    expect(mapped.body.ipAddress).toBe('::ffff:1.2.3.4');
    const badMethod = await consent(org.call, userId, { agreementId: agreement.id, version: 1, method: 'telepathy' });
    expect(badMethod.status).toBe(400);
    expect(badMethod.body.error.param).toBe('method');
    const noAgent = await org.call('POST', `/v1/users/${userId}/agreements`, {
      agreementId: agreement.id,
      version: 1,
      ipAddress: '::1',
    });
    expect(noAgent.status).toBe(400);
    expect(noAgent.body.error.param).toBe('userAgent');
    // Only the one valid acceptance (and its event) was written.
    expect(await agreementRows()).toEqual({ ...before, consents: before.consents + 1, events: before.events + 1 });
    expect((await org.call('GET', '/v1/users/usr_01jd8n3q7v0c4x2m5k9e6t1hzr/agreements')).status).toBe(404);
  });

  it('missingConsents answers a batch, and nothing for a program without requirements', async () => {
    const terms = await createAgreement(org.call, { type: 'program_terms', title: 'Terms', body: 'batch terms' });
    const program = await newProgram(org.call, [{ agreementId: terms.id, reconsentOnNewVersion: true }]);
    const free = await newProgram(org.call);
    const users = [await newUser(org.call), await newUser(org.call), await newUser(org.call)];
    await consent(org.call, users[1] as string, { agreementId: terms.id, version: 1 });
    const db = server.database.db;
    expect(await missingConsents(db, org.id, free.id, users)).toEqual(new Map());
    expect(await missingConsents(db, org.id, program.id, [])).toEqual(new Map());
    const missing = await missingConsents(db, org.id, program.id, users);
    expect([...missing.keys()].sort()).toEqual([users[0], users[2]].sort());
    expect(missing.get(users[0] as string)).toEqual([{ agreementId: terms.id, version: 1, state: 'missing' }]);
    // Another organization's view of the same program id finds no requirement.
    expect(await missingConsents(db, other.id, program.id, users)).toEqual(new Map());
    // A program whose participants accepted under no requirements owes nothing it did not name.
    expect(await consentsInForce(db, org.id, free.id, users[1] as string)).toEqual([]);
  });

  it('pages a participant’s agreements by agreement id', async () => {
    const userId = await newUser(org.call);
    const made = [];
    for (let index = 0; index < 3; index++) {
      const agreement = await createAgreement(org.call, { type: 'other', title: `A${index}`, body: `page ${index}` });
      await consent(org.call, userId, { agreementId: agreement.id, version: 1 });
      made.push(agreement.id as string);
    }
    const first = await org.call('GET', `/v1/users/${userId}/agreements?limit=2`);
    expect(first.body.data.map((item: { agreementId: string }) => item.agreementId)).toEqual([made[2], made[1]]);
    expect(first.body.data[0]).toMatchObject({ state: 'accepted', requiredBy: [] });
    const second = await org.call(
      'GET',
      `/v1/users/${userId}/agreements?limit=2&cursor=${encodeURIComponent(first.body.nextCursor)}`,
    );
    expect(second.body).toMatchObject({ hasMore: false, nextCursor: null });
    expect(second.body.data.map((item: { agreementId: string }) => item.agreementId)).toEqual([made[0]]);
  });
});

describe('closed lists and the CHECK constraints behind them', () => {
  it.each([
    ['agreements', 'type', agreementTypes],
    ['consents', 'action', consentActions],
    ['consents', 'method', consentMethods],
  ] as const)('%s.%s', async (table, column, values) => {
    const result = await sql<{ definition: string }>`
      SELECT pg_get_constraintdef(c.oid) AS definition FROM pg_constraint c
      JOIN pg_class t ON t.oid = c.conrelid
      WHERE c.contype = 'c' AND t.relname = ${table}`.execute(server.database.db);
    const definition = result.rows
      .map((row) => row.definition)
      .find((text) => text.startsWith(`CHECK ((${column} = ANY`));
    expect(definition).toBeDefined();
    const listed = [...(definition as string).matchAll(/'([a-z_]+)'::text/g)].map((match) => match[1]);
    expect(listed.sort()).toEqual([...values].sort());
  });
});
