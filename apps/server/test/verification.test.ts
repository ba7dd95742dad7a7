import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Client,
  countRows,
  newOrganization,
  programWithUser,
  startTestServer,
  type TestServer,
} from './harness.js';

let server: TestServer;
let org: Awaited<ReturnType<typeof newOrganization>>;

beforeAll(async () => {
  server = await startTestServer();
  org = await newOrganization(server);
});

afterAll(async () => {
  await server.close();
});

const sha256 = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';

/** A program, a participant, a task with this policy and its assignment. */
async function assigned(call: Client, verification: unknown, monetaryValue = 500) {
  const { programId, userId } = await programWithUser(call);
  const task = await call('POST', '/v1/tasks', { programId, name: 'OSHA 10', monetaryValue, verification });
  expect(task.status, JSON.stringify(task.body)).toBe(201);
  const userTask = await call('POST', `/v1/tasks/${task.body.id}/users/${userId}`);
  expect(userTask.status, JSON.stringify(userTask.body)).toBe(201);
  return { programId, userId, taskId: task.body.id as string, userTaskId: userTask.body.id as string };
}

async function balances(call: Client, programId: string) {
  return (await call('GET', `/v1/programs/${programId}`)).body.balances;
}

/** What a refused request must leave as it was: the user task's row, the ledger, the events, the disbursements. */
async function snapshot(userTaskId: string) {
  const row = await sql`SELECT * FROM user_tasks WHERE organization_id = ${org.id} AND id = ${userTaskId}`.execute(
    server.database.db,
  );
  return {
    row: row.rows[0],
    transfers: await countRows(server, 'ledger_transfers', org.id),
    events: await countRows(server, 'events', org.id),
    disbursements: await countRows(server, 'disbursements', org.id),
  };
}

async function eventsOf(userTaskId: string): Promise<string[]> {
  const rows = await sql<{ type: string }>`SELECT type FROM events
    WHERE organization_id = ${org.id} AND data -> 'object' ->> 'id' = ${userTaskId} ORDER BY sequence`.execute(
    server.database.db,
  );
  return rows.rows.map((row) => row.type);
}

describe('verification policies on tasks', () => {
  it('defaults to attestation, and a task keeps and updates its policy', async () => {
    const { programId } = await programWithUser(org.call);
    const plain = await org.call('POST', '/v1/tasks', { programId, name: 'x', monetaryValue: 10 });
    expect(plain.body.verification).toEqual({ mode: 'attestation', amountThreshold: null });
    const dual = await org.call('POST', '/v1/tasks', {
      programId,
      name: 'y',
      monetaryValue: 10,
      verification: { mode: 'dual_approval', amountThreshold: 1000.5 },
    });
    expect(dual.status).toBe(201);
    expect(dual.body.verification).toEqual({ mode: 'dual_approval', amountThreshold: 1000.5 });
    const read = await org.call('GET', `/v1/tasks/${dual.body.id}`);
    expect(read.body.verification).toEqual({ mode: 'dual_approval', amountThreshold: 1000.5 });
    const patched = await org.call('PATCH', `/v1/tasks/${dual.body.id}`, { verification: { mode: 'evidence' } });
    expect(patched.status).toBe(200);
    expect(patched.body.verification).toEqual({ mode: 'evidence', amountThreshold: null });
  });

  it('refuses a threshold outside dual approval, an unknown mode and a third decimal', async () => {
    const { programId } = await programWithUser(org.call);
    const before = await countRows(server, 'tasks', org.id);
    for (const [verification, param] of [
      [{ mode: 'evidence', amountThreshold: 10 }, 'verification.amountThreshold'],
      [{ mode: 'notarized' }, 'verification.mode'],
      [{ mode: 'dual_approval', amountThreshold: 1.001 }, 'verification.amountThreshold'],
    ] as const) {
      const refused = await org.call('POST', '/v1/tasks', { programId, name: 'x', monetaryValue: 10, verification });
      expect(refused.status, JSON.stringify(verification)).toBe(400);
      expect(refused.body.error).toMatchObject({ code: 'validation_error', param });
    }
    expect(await countRows(server, 'tasks', org.id)).toBe(before);
  });

  it('a user task keeps the policy it was assigned under; a one-off milestone can carry its own', async () => {
    const { programId, userId, taskId, userTaskId } = await assigned(org.call, { mode: 'dual_approval' });
    expect((await org.call('GET', `/v1/usertasks/${userTaskId}`)).body.verification).toEqual({
      mode: 'dual_approval',
      amountThreshold: null,
    });
    // A later change of the task applies to assignments made from then on.
    await org.call('PATCH', `/v1/tasks/${taskId}`, { verification: { mode: 'attestation' } });
    expect((await org.call('GET', `/v1/usertasks/${userTaskId}`)).body.verification.mode).toBe('dual_approval');

    const oneOff = await org.call('POST', '/v1/usertasks', {
      programId,
      userId,
      monetaryValue: 20,
      verification: { mode: 'evidence' },
    });
    expect(oneOff.status).toBe(201);
    expect(oneOff.body.verification).toEqual({ mode: 'evidence', amountThreshold: null });
    const plain = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 20 });
    expect(plain.body.verification).toEqual({ mode: 'attestation', amountThreshold: null });
    // With a task, the task's policy applies: a second one in the body is refused.
    const other = await org.call('POST', '/v1/tasks', { programId, name: 'z', monetaryValue: 5 });
    const both = await org.call('POST', '/v1/usertasks', {
      taskId: other.body.id,
      userId,
      verification: { mode: 'attestation' },
    });
    expect(both.status).toBe(400);
    expect(both.body.error).toMatchObject({ code: 'validation_error', param: 'verification' });
  });
});

describe('attestation', () => {
  it('completes at once, as before, and checks the shape of references when they are sent', async () => {
    const { programId, userTaskId } = await assigned(org.call, undefined);
    const before = await snapshot(userTaskId);
    const bad = await org.call('PUT', `/v1/usertasks/${userTaskId}/complete`, {
      evidence: { references: [{ type: 'url', url: 'ftp://files.example.org/x' }] },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'validation_error', param: 'evidence.references.0.url' });
    expect(await snapshot(userTaskId)).toEqual(before);

    const completed = await org.call('PUT', `/v1/usertasks/${userTaskId}/complete`, {
      evidence: { certificateNumber: 'OSHA-10-88231' },
    });
    expect(completed.status).toBe(200);
    expect(completed.body).toMatchObject({ status: 'completed', approvedBy: null, completedAmount: 500 });
    expect(completed.body.disbursementId).toMatch(/^dsb_/);
    expect(await balances(org.call, programId)).toMatchObject({ reserved: 0, disbursing: 500 });
    expect(await eventsOf(userTaskId)).toEqual(['usertask.assigned', 'usertask.completed']);
  });
});

describe('evidence required', () => {
  it('refuses a completion without a valid typed reference, writing nothing, and takes a valid one', async () => {
    const { programId, userTaskId } = await assigned(org.call, { mode: 'evidence' });
    const before = await snapshot(userTaskId);
    const refusals: [unknown, string][] = [
      [undefined, 'evidence.references'],
      [{ evidence: { certificateNumber: 'OSHA-10-88231' } }, 'evidence.references'],
      [{ evidence: { references: [] } }, 'evidence.references'],
      [{ evidence: { references: [{ type: 'url', url: 'not a url' }] } }, 'evidence.references.0.url'],
      [{ evidence: { references: [{ type: 'url', url: 'javascript:alert(1)' }] } }, 'evidence.references.0.url'],
      [{ evidence: { references: [{ type: 'url' }] } }, 'evidence.references.0.url'],
      [
        { evidence: { references: [{ type: 'document_hash', algorithm: 'sha256', value: 'abc' }] } },
        'evidence.references.0.value',
      ],
      [{ evidence: { references: [{ type: 'document_hash', value: sha256 }] } }, 'evidence.references.0.algorithm'],
      [
        { evidence: { references: [{ type: 'document_hash', algorithm: 'md5', value: sha256 }] } },
        'evidence.references.0.algorithm',
      ],
      [{ evidence: { references: [{ type: 'note', text: '' }] } }, 'evidence.references.0.text'],
      [
        { evidence: { references: [{ type: 'note', text: 'ok', url: 'https://x.example' }] } },
        'evidence.references.0.url',
      ],
      [{ evidence: { references: [{ type: 'photo', url: 'https://x.example' }] } }, 'evidence.references.0.type'],
      [{ evidence: { references: 'https://x.example' } }, 'evidence.references'],
    ];
    for (const [body, param] of refusals) {
      const refused = await org.call('PUT', `/v1/usertasks/${userTaskId}/complete`, body);
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.body.error, JSON.stringify(body)).toMatchObject({ code: 'validation_error', param });
    }
    expect(await snapshot(userTaskId)).toEqual(before);
    expect(await balances(org.call, programId)).toMatchObject({ reserved: 500, disbursing: 0 });

    const evidence = {
      certificateNumber: 'OSHA-10-88231',
      references: [
        { type: 'url', url: 'https://lms.example.org/certificates/OSHA-10-88231', description: 'LMS record' },
        { type: 'document_hash', algorithm: 'sha256', value: sha256 },
        { type: 'note', text: 'Card checked in person.' },
      ],
    };
    const completed = await org.call('PUT', `/v1/usertasks/${userTaskId}/complete`, {
      completedBy: 'instructor:42',
      evidence,
    });
    expect(completed.status).toBe(200);
    expect(completed.body).toMatchObject({ status: 'completed', evidence });
    expect(await balances(org.call, programId)).toMatchObject({ reserved: 0, disbursing: 500 });
  });

  it('the table refuses an evidence-mode completion without references, whatever the code does', async () => {
    const { userTaskId } = await assigned(org.call, { mode: 'evidence' });
    await expect(
      sql`UPDATE user_tasks SET status = 'completed', completed_amount_cents = 100, completed_at = now(),
            resolution_transfer_id = 'trf_' || id, evidence = '{"references": []}'
          WHERE organization_id = ${org.id} AND id = ${userTaskId}`.execute(server.database.db),
    ).rejects.toThrow(/user_tasks_evidence_referenced/);
  });
});

describe('dual approval', () => {
  it('complete waits for approval with the money reserved; the completer cannot approve; another actor releases it', async () => {
    const { programId, userTaskId } = await assigned(org.call, { mode: 'dual_approval' });
    const noActor = await org.call('PUT', `/v1/usertasks/${userTaskId}/complete`, {});
    expect(noActor.status).toBe(400);
    expect(noActor.body.error).toMatchObject({ code: 'validation_error', param: 'completedBy' });

    const submitted = await org.call('PUT', `/v1/usertasks/${userTaskId}/complete`, {
      completedBy: 'instructor:42',
      evidence: { references: [{ type: 'note', text: 'Passed the practical.' }] },
      amount: 400,
    });
    expect(submitted.status).toBe(200);
    expect(submitted.body).toMatchObject({
      status: 'pending_approval',
      completedBy: 'instructor:42',
      completedAmount: 400,
      disbursementId: null,
      approvedBy: null,
    });
    expect(await balances(org.call, programId)).toMatchObject({ available: 49500, reserved: 500, disbursing: 0 });
    const noDisbursement = await org.call('GET', `/v1/disbursements?userTaskId=${userTaskId}`);
    expect(noDisbursement.body.data).toHaveLength(0);

    // Completing again while it waits is a state error.
    const again = await org.call('PUT', `/v1/usertasks/${userTaskId}/complete`, { completedBy: 'instructor:43' });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('invalid_state');

    const before = await snapshot(userTaskId);
    const self = await org.call('PUT', `/v1/usertasks/${userTaskId}/approve`, { approvedBy: 'instructor:42' });
    expect(self.status).toBe(403);
    expect(self.body.error).toMatchObject({ code: 'forbidden', param: 'approvedBy' });
    const selfReject = await org.call('PUT', `/v1/usertasks/${userTaskId}/reject`, { rejectedBy: 'instructor:42' });
    expect(selfReject.status).toBe(403);
    expect(await snapshot(userTaskId)).toEqual(before);

    const approved = await org.call('PUT', `/v1/usertasks/${userTaskId}/approve`, { approvedBy: 'supervisor:7' });
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({
      status: 'completed',
      completedBy: 'instructor:42',
      completedAmount: 400,
      approvedBy: 'supervisor:7',
    });
    expect(approved.body.approvedAt).toEqual(expect.any(String));
    expect(approved.body.disbursementId).toMatch(/^dsb_/);
    // The post released 400 toward the card and returned the other 100 to the pool.
    expect(await balances(org.call, programId)).toMatchObject({ available: 49600, reserved: 0, disbursing: 400 });
    const disbursement = await org.call('GET', `/v1/disbursements/${approved.body.disbursementId}`);
    expect(disbursement.body).toMatchObject({ amount: 400, userTaskId, status: 'awaiting_card' });
    expect(await eventsOf(userTaskId)).toEqual([
      'usertask.assigned',
      'usertask.pending_approval',
      'usertask.approved',
      'usertask.completed',
    ]);
    const approvedEvent = (await org.call('GET', '/v1/events?type=usertask.approved&limit=1')).body.data[0];
    expect(approvedEvent.data.object).toMatchObject({ id: userTaskId, approvedBy: 'supervisor:7' });

    const twice = await org.call('PUT', `/v1/usertasks/${userTaskId}/approve`, { approvedBy: 'supervisor:8' });
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe('invalid_state');
    const late = await org.call('PUT', `/v1/usertasks/${userTaskId}/reject`, { rejectedBy: 'supervisor:8' });
    expect(late.status).toBe(409);
  });

  it('approving a user task that is not pending approval is invalid_state; a missing one is 404', async () => {
    const { userTaskId } = await assigned(org.call, { mode: 'dual_approval' });
    const early = await org.call('PUT', `/v1/usertasks/${userTaskId}/approve`, { approvedBy: 'supervisor:7' });
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe('invalid_state');
    const missing = await org.call('PUT', '/v1/usertasks/ut_01jd8n3q7v0c4x2m5k9e6t1hzr/approve', {
      approvedBy: 'supervisor:7',
    });
    expect(missing.status).toBe(404);
    const noBody = await org.call('PUT', `/v1/usertasks/${userTaskId}/approve`, {});
    expect(noBody.status).toBe(400);
    expect(noBody.body.error).toMatchObject({ code: 'validation_error', param: 'approvedBy' });
  });

  it('reject returns it to assigned with the reservation held, recorded; it can be completed again', async () => {
    const { programId, userTaskId } = await assigned(org.call, { mode: 'dual_approval' });
    await org.call('PUT', `/v1/usertasks/${userTaskId}/complete`, {
      completedBy: 'instructor:42',
      evidence: { certificateNumber: 'blurry' },
    });
    const rejected = await org.call('PUT', `/v1/usertasks/${userTaskId}/reject`, {
      rejectedBy: 'supervisor:7',
      reason: 'Certificate number unreadable',
    });
    expect(rejected.status).toBe(200);
    expect(rejected.body).toMatchObject({
      status: 'assigned',
      completedBy: null,
      completedAmount: null,
      evidence: null,
      rejectedBy: 'supervisor:7',
      rejectionReason: 'Certificate number unreadable',
      disbursementId: null,
    });
    expect(rejected.body.rejectedAt).toEqual(expect.any(String));
    expect(await balances(org.call, programId)).toMatchObject({ reserved: 500, disbursing: 0 });
    const rejectedEvent = (await org.call('GET', '/v1/events?type=usertask.rejected&limit=1')).body.data[0];
    expect(rejectedEvent.data.object).toMatchObject({ id: userTaskId, rejectedBy: 'supervisor:7' });

    const resubmitted = await org.call('PUT', `/v1/usertasks/${userTaskId}/complete`, {
      completedBy: 'instructor:42',
      evidence: { certificateNumber: 'OSHA-10-88231' },
    });
    expect(resubmitted.body.status).toBe('pending_approval');
    const approved = await org.call('PUT', `/v1/usertasks/${userTaskId}/approve`, { approvedBy: 'supervisor:7' });
    expect(approved.status).toBe(200);
    // The last rejection stays on the record beside the approval.
    expect(approved.body).toMatchObject({
      status: 'completed',
      approvedBy: 'supervisor:7',
      rejectedBy: 'supervisor:7',
    });
    expect(await balances(org.call, programId)).toMatchObject({ reserved: 0, disbursing: 500 });
    expect(await eventsOf(userTaskId)).toEqual([
      'usertask.assigned',
      'usertask.pending_approval',
      'usertask.rejected',
      'usertask.pending_approval',
      'usertask.approved',
      'usertask.completed',
    ]);
  });

  it('a threshold: at or below it completes at once, above it waits for approval', async () => {
    const verification = { mode: 'dual_approval', amountThreshold: 300 };
    const below = await assigned(org.call, verification);
    const atThreshold = await org.call('PUT', `/v1/usertasks/${below.userTaskId}/complete`, { amount: 300 });
    expect(atThreshold.status).toBe(200);
    expect(atThreshold.body).toMatchObject({ status: 'completed', completedAmount: 300, approvedBy: null });
    expect(atThreshold.body.disbursementId).toMatch(/^dsb_/);

    const above = await assigned(org.call, verification);
    const waits = await org.call('PUT', `/v1/usertasks/${above.userTaskId}/complete`, {
      completedBy: 'instructor:42',
      amount: 300.01,
    });
    expect(waits.body).toMatchObject({ status: 'pending_approval', completedAmount: 300.01 });
    // The full value (500) is above the threshold too.
    const full = await assigned(org.call, verification);
    const refused = await org.call('PUT', `/v1/usertasks/${full.userTaskId}/complete`, {});
    expect(refused.status).toBe(400);
    expect(refused.body.error.param).toBe('completedBy');
  });

  it('an approval replayed with its Idempotency-Key answers the same, and moves money once', async () => {
    const { programId, userTaskId } = await assigned(org.call, { mode: 'dual_approval' });
    await org.call('PUT', `/v1/usertasks/${userTaskId}/complete`, { completedBy: 'instructor:42' });
    const key = { 'idempotency-key': `approve-${userTaskId}` };
    const first = await org.call('PUT', `/v1/usertasks/${userTaskId}/approve`, { approvedBy: 'supervisor:7' }, key);
    expect(first.status).toBe(200);
    const transfers = await countRows(server, 'ledger_transfers', org.id);
    const replay = await org.call('PUT', `/v1/usertasks/${userTaskId}/approve`, { approvedBy: 'supervisor:7' }, key);
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(first.body);
    expect(await countRows(server, 'ledger_transfers', org.id)).toBe(transfers);
    expect(await balances(org.call, programId)).toMatchObject({ reserved: 0, disbursing: 500 });
    const reused = await org.call('PUT', `/v1/usertasks/${userTaskId}/approve`, { approvedBy: 'supervisor:8' }, key);
    expect(reused.status).toBe(422);
  });

  it('in a paused program: submitting and rejecting move no money and go on; approval waits, like completion', async () => {
    const { programId, userTaskId } = await assigned(org.call, { mode: 'dual_approval' });
    const attested = await org.call('POST', '/v1/usertasks', {
      programId,
      userId: (await org.call('GET', `/v1/usertasks/${userTaskId}`)).body.userId,
      monetaryValue: 10,
    });
    expect((await org.call('POST', `/v1/programs/${programId}/pause`)).status).toBe(200);

    // Completion of an attestation milestone releases money: a paused program refuses it.
    const completion = await org.call('PUT', `/v1/usertasks/${attested.body.id}/complete`, {});
    expect(completion.status).toBe(409);
    expect(completion.body.error.code).toBe('invalid_state');

    const submitted = await org.call('PUT', `/v1/usertasks/${userTaskId}/complete`, { completedBy: 'instructor:42' });
    expect(submitted.status).toBe(200);
    expect(submitted.body.status).toBe('pending_approval');

    const before = await snapshot(userTaskId);
    const approval = await org.call('PUT', `/v1/usertasks/${userTaskId}/approve`, { approvedBy: 'supervisor:7' });
    expect(approval.status).toBe(409);
    expect(approval.body.error.code).toBe('invalid_state');
    expect(await snapshot(userTaskId)).toEqual(before);

    const rejected = await org.call('PUT', `/v1/usertasks/${userTaskId}/reject`, { rejectedBy: 'supervisor:7' });
    expect(rejected.status).toBe(200);
    expect(rejected.body).toMatchObject({ status: 'assigned', rejectedBy: 'supervisor:7', rejectionReason: null });
    const resubmitted = await org.call('PUT', `/v1/usertasks/${userTaskId}/complete`, { completedBy: 'instructor:42' });
    expect(resubmitted.body.status).toBe('pending_approval');

    expect((await org.call('POST', `/v1/programs/${programId}/resume`)).status).toBe(200);
    const approved = await org.call('PUT', `/v1/usertasks/${userTaskId}/approve`, { approvedBy: 'supervisor:7' });
    expect(approved.status).toBe(200);
    expect(approved.body.status).toBe('completed');
  });

  it('cancelling a completion awaiting approval voids the reservation and clears the claim', async () => {
    const { programId, userTaskId } = await assigned(org.call, { mode: 'dual_approval' });
    await org.call('PUT', `/v1/usertasks/${userTaskId}/complete`, { completedBy: 'instructor:42' });
    const cancelled = await org.call('PUT', `/v1/usertasks/${userTaskId}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ status: 'cancelled', completedAmount: null, completedBy: null });
    expect(await balances(org.call, programId)).toMatchObject({ available: 50000, reserved: 0 });
  });

  it('the table refuses approval by the completer and a release without approval', async () => {
    const { userTaskId } = await assigned(org.call, { mode: 'dual_approval' });
    await org.call('PUT', `/v1/usertasks/${userTaskId}/complete`, { completedBy: 'instructor:42' });
    await expect(
      sql`UPDATE user_tasks SET status = 'completed', resolution_transfer_id = 'trf_' || id,
            approved_by = 'instructor:42', approved_at = now()
          WHERE organization_id = ${org.id} AND id = ${userTaskId}`.execute(server.database.db),
    ).rejects.toThrow(/user_tasks_approved/);
    await expect(
      sql`UPDATE user_tasks SET status = 'completed', resolution_transfer_id = 'trf_' || id
          WHERE organization_id = ${org.id} AND id = ${userTaskId}`.execute(server.database.db),
    ).rejects.toThrow(/user_tasks_dual_approval/);
  });
});

describe('completions of mixed policies arriving together', () => {
  it('each follows its own policy, whether or not they share a batch', async () => {
    const { programId, userId } = await programWithUser(org.call);
    const policies = [
      { mode: 'attestation' },
      { mode: 'evidence' },
      { mode: 'dual_approval' },
      { mode: 'dual_approval', amountThreshold: 100 },
    ];
    const userTaskIds: string[] = [];
    for (const [index, verification] of [...policies, ...policies].entries()) {
      const created = await org.call('POST', '/v1/usertasks', {
        programId,
        userId,
        monetaryValue: 100,
        name: `milestone ${index}`,
        verification,
      });
      expect(created.status).toBe(201);
      userTaskIds.push(created.body.id);
    }
    const note = { references: [{ type: 'note', text: 'Seen.' }] };
    // The first four complete with what their policy needs; the last four without evidence or actor.
    const answers = await Promise.all(
      userTaskIds.map((id, index) =>
        org.call(
          'PUT',
          `/v1/usertasks/${id}/complete`,
          index < 4 ? { completedBy: 'instructor:42', evidence: note } : {},
        ),
      ),
    );
    expect(answers.map((answer) => answer.body.status ?? answer.body.error.param)).toEqual([
      'completed',
      'completed',
      'pending_approval',
      'completed',
      'completed',
      'evidence.references',
      'completedBy',
      'completed',
    ]);
    expect(await balances(org.call, programId)).toMatchObject({ reserved: 300, disbursing: 500 });
  });
});
