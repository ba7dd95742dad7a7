import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newOrganization, startTestServer, type TestServer } from './harness.js';

// Completion needs the consents the program requires: refused until both are accepted, accepted
// after, refused again once a new version asks for consent again — and a refusal changes nothing.

let server: TestServer;
let org: Awaited<ReturnType<typeof newOrganization>>;

beforeAll(async () => {
  server = await startTestServer();
  org = await newOrganization(server, 'Consent gate');
});

afterAll(async () => {
  await server?.close();
});

const browser = { ipAddress: '203.0.113.7', userAgent: 'Mozilla/5.0 (test)' };

async function agreement(type: string, title: string) {
  const created = await org.call('POST', '/v1/agreements', { type, title, body: `${title}, version 1.` });
  expect(created.status).toBe(201);
  return created.body.id as string;
}

async function accept(userId: string, agreementId: string, version: number) {
  const answer = await org.call('POST', `/v1/users/${userId}/agreements`, { agreementId, version, ...browser });
  expect(answer.status).toBe(201);
}

describe('completion and consent', () => {
  it('refuses completion until both agreements are accepted, and again after a new version that asks for it', async () => {
    const terms = await agreement('program_terms', 'Program terms');
    const cardholder = await agreement('cardholder_agreement', 'Cardholder agreement');
    const program = await org.call('POST', '/v1/programs', {
      name: 'Consent program',
      totalAwardPool: 1_000,
      maxParticipants: 10,
      requiredAgreements: [
        { agreementId: terms, reconsentOnNewVersion: true },
        { agreementId: cardholder, reconsentOnNewVersion: false },
      ],
    });
    expect(program.status).toBe(201);
    const user = await org.call('POST', '/v1/users', { firstName: 'Grace', lastName: 'Hopper' });
    const userId = user.body.id as string;
    const assign = async (value: number) => {
      const assigned = await org.call('POST', '/v1/usertasks', {
        programId: program.body.id,
        userId,
        monetaryValue: value,
      });
      expect(assigned.status).toBe(201);
      return assigned.body.id as string;
    };
    const balances = async () => (await org.call('GET', `/v1/programs/${program.body.id}`)).body.balances;

    const first = await assign(100);
    const before = await balances();
    const refused = await org.call('PUT', `/v1/usertasks/${first}/complete`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('consent_required');
    expect(refused.body.error.message).toContain(terms);
    expect(refused.body.error.message).toContain(cardholder);
    expect((await org.call('GET', `/v1/usertasks/${first}`)).body.status).toBe('assigned');
    expect(await balances()).toEqual(before);

    await accept(userId, terms, 1);
    const stillOne = await org.call('PUT', `/v1/usertasks/${first}/complete`);
    expect(stillOne.status).toBe(409);
    expect(stillOne.body.error.message).toContain(cardholder);
    expect(stillOne.body.error.message).not.toContain(terms);

    await accept(userId, cardholder, 1);
    const completed = await org.call('PUT', `/v1/usertasks/${first}/complete`);
    expect(completed.status).toBe(200);
    expect(completed.body.status).toBe('completed');
    // The record shows the consents that applied: which agreements, versions and hashes, from where.
    const record = await org.call('GET', `/v1/usertasks/${first}/record`);
    expect(record.status).toBe(200);
    expect(record.body.consents).toEqual([
      expect.objectContaining({
        agreementId: terms,
        version: 1,
        ipAddress: browser.ipAddress,
        userAgent: browser.userAgent,
      }),
      expect.objectContaining({ agreementId: cardholder, version: 1, ipAddress: browser.ipAddress }),
    ]);
    expect(record.body.consents[0].contentHash).toMatch(/^[0-9a-f]{64}$/);

    // A new version of the terms asks for consent again; one of the cardholder agreement does not.
    expect(
      (await org.call('POST', `/v1/agreements/${terms}/versions`, { body: 'Program terms, version 2.' })).status,
    ).toBe(201);
    expect(
      (await org.call('POST', `/v1/agreements/${cardholder}/versions`, { body: 'Cardholder agreement, version 2.' }))
        .status,
    ).toBe(201);
    const second = await assign(50);
    const stale = await org.call('PUT', `/v1/usertasks/${second}/complete`);
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe('consent_required');
    expect(stale.body.error.message).toContain(`${terms} version 2`);
    expect(stale.body.error.message).not.toContain(cardholder);
    await accept(userId, terms, 2);
    expect((await org.call('PUT', `/v1/usertasks/${second}/complete`)).status).toBe(200);

    // A withdrawal stops the next completion.
    const third = await assign(25);
    expect(
      (
        await org.call('POST', `/v1/users/${userId}/agreements`, {
          agreementId: cardholder,
          version: 1,
          action: 'withdraw',
          ...browser,
        })
      ).status,
    ).toBe(201);
    const withdrawn = await org.call('PUT', `/v1/usertasks/${third}/complete`);
    expect(withdrawn.status).toBe(409);
    expect(withdrawn.body.error.message).toContain('withdrawn');
  });

  it('completes a batch where one participant lacks consent: the others go through', async () => {
    const terms = await agreement('program_terms', 'Batch terms');
    const program = await org.call('POST', '/v1/programs', {
      name: 'Batch program',
      totalAwardPool: 1_000,
      maxParticipants: 10,
      requiredAgreements: [{ agreementId: terms, reconsentOnNewVersion: true }],
    });
    const userTasks: { id: string; consented: boolean }[] = [];
    for (let i = 0; i < 6; i++) {
      const user = await org.call('POST', '/v1/users', { firstName: `P${i}`, lastName: 'Batch' });
      const consented = i % 2 === 0;
      if (consented) await accept(user.body.id, terms, 1);
      const assigned = await org.call('POST', '/v1/usertasks', {
        programId: program.body.id,
        userId: user.body.id,
        monetaryValue: 10,
      });
      userTasks.push({ id: assigned.body.id, consented });
    }
    const answers = await Promise.all(userTasks.map(({ id }) => org.call('PUT', `/v1/usertasks/${id}/complete`)));
    answers.forEach((answer, index) => {
      expect(answer.status).toBe(userTasks[index]?.consented ? 200 : 409);
    });
    const balances = (await org.call('GET', `/v1/programs/${program.body.id}`)).body.balances;
    expect(balances).toMatchObject({ reserved: 30, disbursing: 30 });
  });
});
