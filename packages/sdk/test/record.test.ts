import { Tranche, TrancheError } from '@tranche/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newOrganization, startTestServer, type TestServer } from '../../../apps/server/test/harness.js';

/** Agreements, consent, dual approval, the record and the audit log, through the SDK against the real server. */

let server: TestServer;
let tranche: Tranche;

beforeAll(async () => {
  server = await startTestServer();
  tranche = new Tranche({ apiKey: (await newOrganization(server)).apiKey, baseUrl: server.baseUrl });
});

afterAll(async () => {
  await server.close();
});

describe('the program record through the SDK', () => {
  it('consent, dual approval, record and audit log', async () => {
    const terms = await tranche.agreements.create({ type: 'program_terms', title: 'Terms', body: 'Terms, v1.' });
    expect(terms).toMatchObject({ object: 'agreement', version: 1 });
    expect((await tranche.agreements.retrieve(terms.id)).id).toBe(terms.id);
    expect((await tranche.agreements.list()).data.map((a) => a.id)).toContain(terms.id);

    const program = await tranche.programs.create({
      name: 'Forklift certification',
      totalAwardPool: 1000,
      maxParticipants: 5,
      requiredAgreements: [{ agreementId: terms.id, reconsentOnNewVersion: true }],
    });
    const task = await tranche.tasks.create({
      programId: program.id,
      name: 'Pass the practical exam',
      monetaryValue: 200,
      verification: { mode: 'dual_approval' },
    });
    const user = await tranche.users.create({ firstName: 'Ada', lastName: 'Lovelace' });
    const userTask = await tranche.tasks.assign({ taskId: task.id, userId: user.id });

    const refused = await tranche.userTasks.complete(userTask.id, { completedBy: 'instructor:1' }).catch((e) => e);
    expect(refused).toBeInstanceOf(TrancheError);
    expect((refused as TrancheError).code).toBe('consent_required');

    await tranche.users.recordConsent(user.id, {
      agreementId: terms.id,
      version: 1,
      ipAddress: '203.0.113.7',
      userAgent: 'Mozilla/5.0',
      method: 'click_through',
    });
    expect((await tranche.users.agreements(user.id)).data[0]).toMatchObject({ state: 'accepted' });

    const submitted = await tranche.userTasks.complete(userTask.id, { completedBy: 'instructor:1' });
    expect(submitted.status).toBe('pending_approval');
    const sameActor = await tranche.userTasks.approve(userTask.id, { approvedBy: 'instructor:1' }).catch((e) => e);
    expect((sameActor as TrancheError).status).toBe(403);
    const approved = await tranche.userTasks.approve(userTask.id, { approvedBy: 'supervisor:7' });
    expect(approved.status).toBe('completed');

    const record = await tranche.userTasks.record(userTask.id);
    expect(record.reservation.amount).toBe(200);
    expect(record.completion?.completedBy).toBe('instructor:1');
    expect(record.approvals.map((step) => step.type)).toEqual(['usertask.pending_approval', 'usertask.approved']);
    expect(record.consents).toEqual([expect.objectContaining({ agreementId: terms.id, version: 1 })]);
    expect(record.disbursement?.status).toBe('awaiting_card');
    const exported = await tranche.programs.record(program.id, { limit: 10 });
    expect(exported.records.map((r) => r.userTask.id)).toEqual([userTask.id]);

    const audit = await tranche.auditLog.list({ resourceId: userTask.id });
    expect(audit.data.map((entry) => entry.type)).toEqual([
      'usertask.assigned',
      'usertask.pending_approval',
      'usertask.approved',
      'usertask.completed',
    ]);

    await tranche.agreements.createVersion(terms.id, { body: 'Terms, v2.' });
    expect((await tranche.agreements.listVersions(terms.id)).data.map((v) => v.version)).toEqual([2, 1]);
    expect((await tranche.users.agreements(user.id)).data[0]).toMatchObject({ state: 'stale' });
  });
});
