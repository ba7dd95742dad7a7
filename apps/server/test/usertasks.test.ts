import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expireDueUserTasks } from '../src/usertasks/expiry.js';
import { countRows, newOrganization, programWithUser, startTestServer, type TestServer } from './harness.js';

let server: TestServer;
let org: Awaited<ReturnType<typeof newOrganization>>;

beforeAll(async () => {
  server = await startTestServer();
  org = await newOrganization(server);
});

afterAll(async () => {
  await server.close();
});

function balancesAddUp(program: { totalAwardPool: number; balances: Record<string, number> }) {
  const b = program.balances as {
    available: number;
    reserved: number;
    disbursing: number;
    disbursed: number;
    returned: number;
  };
  return (
    Math.round((b.available + b.reserved + b.disbursing + b.disbursed + b.returned) * 100) ===
    Math.round(program.totalAwardPool * 100)
  );
}

describe('the milestone lifecycle', () => {
  it('reserves on assignment, releases on completion, and opens a disbursement', async () => {
    const { programId, userId } = await programWithUser(org.call);
    const assigned = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 500 });
    expect(assigned.status).toBe(201);
    expect(assigned.body).toMatchObject({ status: 'assigned', monetaryValue: 500, programId, userId });
    expect(assigned.body.id).toMatch(/^ut_/);

    let program = (await org.call('GET', `/v1/programs/${programId}`)).body;
    expect(program.balances).toEqual({ available: 49500, reserved: 500, disbursing: 0, disbursed: 0, returned: 0 });
    expect(program.participantCount).toBe(1);

    const completed = await org.call('PUT', `/v1/usertasks/${assigned.body.id}/complete`, {
      completedBy: 'instructor:42',
      evidence: { certificateNumber: 'OSHA-10-88231' },
    });
    expect(completed.status).toBe(200);
    expect(completed.body).toMatchObject({
      status: 'completed',
      completedAmount: 500,
      completedBy: 'instructor:42',
      evidence: { certificateNumber: 'OSHA-10-88231' },
    });
    expect(completed.body.disbursementId).toMatch(/^dsb_/);

    program = (await org.call('GET', `/v1/programs/${programId}`)).body;
    expect(program.balances).toEqual({ available: 49500, reserved: 0, disbursing: 500, disbursed: 0, returned: 0 });
    expect(balancesAddUp(program)).toBe(true);

    const disbursement = await org.call('GET', `/v1/disbursements/${completed.body.disbursementId}`);
    expect(disbursement.body).toMatchObject({
      status: 'awaiting_card', // the participant has no card yet
      amount: 500,
      userTaskId: assigned.body.id,
      programId,
      userId,
    });
    const listed = await org.call('GET', `/v1/disbursements?userTaskId=${assigned.body.id}`);
    expect(listed.body.data).toHaveLength(1);

    const again = await org.call('PUT', `/v1/usertasks/${assigned.body.id}/complete`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('invalid_state');
    const cancelAfter = await org.call('PUT', `/v1/usertasks/${assigned.body.id}/cancel`);
    expect(cancelAfter.status).toBe(409);
  });

  it('a smaller completion amount releases the rest to the pool', async () => {
    const { programId, userId } = await programWithUser(org.call, 1000);
    const assigned = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 300.5 });
    const tooMuch = await org.call('PUT', `/v1/usertasks/${assigned.body.id}/complete`, { amount: 300.51 });
    expect(tooMuch.status).toBe(400);
    expect(tooMuch.body.error).toMatchObject({ code: 'validation_error', param: 'amount' });
    const completed = await org.call('PUT', `/v1/usertasks/${assigned.body.id}/complete`, { amount: 120.25 });
    expect(completed.status).toBe(200);
    expect(completed.body.completedAmount).toBe(120.25);
    const program = (await org.call('GET', `/v1/programs/${programId}`)).body;
    expect(program.balances).toEqual({ available: 879.75, reserved: 0, disbursing: 120.25, disbursed: 0, returned: 0 });
  });

  it('cancel releases the reservation', async () => {
    const { programId, userId } = await programWithUser(org.call, 1000);
    const assigned = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 400 });
    const cancelled = await org.call('PUT', `/v1/usertasks/${assigned.body.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ status: 'cancelled', cancellationReason: 'cancelled_by_request' });
    const program = (await org.call('GET', `/v1/programs/${programId}`)).body;
    expect(program.balances.available).toBe(1000);
    expect(program.balances.reserved).toBe(0);
    const completeAfter = await org.call('PUT', `/v1/usertasks/${assigned.body.id}/complete`);
    expect(completeAfter.body.error.code).toBe('invalid_state');
  });

  it('tasks carry the value; assigning a defined task reserves it, once per user', async () => {
    const { programId, userId } = await programWithUser(org.call, 2000);
    const task = await org.call('POST', '/v1/tasks', { programId, name: 'OSHA 10', monetaryValue: 750 });
    expect(task.status).toBe(201);
    expect(task.body).toMatchObject({ object: 'task', monetaryValue: 750, programId });
    const assigned = await org.call('POST', `/v1/tasks/${task.body.id}/users/${userId}`);
    expect(assigned.status).toBe(201);
    expect(assigned.body).toMatchObject({ taskId: task.body.id, monetaryValue: 750, name: 'OSHA 10' });
    const twice = await org.call('POST', '/v1/usertasks', { taskId: task.body.id, userId });
    expect(twice.status).toBe(409);
    expect(twice.body.error).toMatchObject({ code: 'invalid_state', param: 'taskId' });
    const listed = await org.call('GET', `/v1/usertasks?taskId=${task.body.id}&status=assigned`);
    expect(listed.body.data.map((ut: { id: string }) => ut.id)).toEqual([assigned.body.id]);
    const patched = await org.call('PATCH', `/v1/tasks/${task.body.id}`, { name: 'OSHA 10 (2027)' });
    expect(patched.body.name).toBe('OSHA 10 (2027)');
  });

  it('expired task windows release their reservations through the sweeper', async () => {
    const { programId, userId } = await programWithUser(org.call, 1000);
    const endsAt = new Date(Date.now() + 1500).toISOString();
    const task = await org.call('POST', '/v1/tasks', { programId, name: 'Short window', monetaryValue: 100, endsAt });
    const assigned = await org.call('POST', `/v1/tasks/${task.body.id}/users/${userId}`);
    expect(assigned.body.expiresAt).toBe(endsAt);
    await new Promise((resolve) => setTimeout(resolve, 1600));
    // Past the window a completion is refused even before the sweeper ran.
    const late = await org.call('PUT', `/v1/usertasks/${assigned.body.id}/complete`);
    expect(late.status).toBe(409);
    expect(late.body.error.message).toMatch(/expired/);
    const expired = await expireDueUserTasks(server.database.db, { now: new Date(), limit: 500 });
    expect(expired).toBeGreaterThanOrEqual(1);
    const after = await org.call('GET', `/v1/usertasks/${assigned.body.id}`);
    expect(after.body.status).toBe('expired');
    const program = (await org.call('GET', `/v1/programs/${programId}`)).body;
    expect(program.balances).toMatchObject({ available: 1000, reserved: 0 });
    const closedWindow = await org.call('POST', `/v1/tasks/${task.body.id}/users/${userId}`);
    expect(closedWindow.status).toBe(409);
  });
});

describe('enrollment', () => {
  it('assignment enrolls implicitly and the cap holds', async () => {
    const { programId, userId } = await programWithUser(org.call, 1000, 1);
    expect((await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 10 })).status).toBe(201);
    const second = await org.call('POST', '/v1/users', {});
    const refused = await org.call('POST', '/v1/usertasks', { programId, userId: second.body.id, monetaryValue: 10 });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('participant_cap_reached');
    // Nothing of the refused request stays: no user task, no enrollment, no reservation.
    const tasks = await org.call('GET', `/v1/usertasks?userId=${second.body.id}`);
    expect(tasks.body.data).toEqual([]);
    expect((await org.call('GET', `/v1/programs/${programId}/users/${second.body.id}`)).status).toBe(404);
    expect((await org.call('GET', `/v1/programs/${programId}`)).body.balances.reserved).toBe(10);
  });

  it('dismissal frees the seat and releases open reservations; completed ones stay', async () => {
    const { programId, userId } = await programWithUser(org.call, 1000, 5);
    const enrolled = await org.call('GET', `/v1/programs/${programId}/users/${userId}`);
    expect(enrolled.status).toBe(404);
    const enrolledNow = await org.call('POST', `/v1/programs/${programId}/users/${userId}`);
    expect(enrolledNow.body).toMatchObject({ status: 'active', programId, userId });
    const open = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 100 });
    const done = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 50 });
    await org.call('PUT', `/v1/usertasks/${done.body.id}/complete`);
    const dismissed = await org.call('DELETE', `/v1/programs/${programId}/users/${userId}`);
    expect(dismissed.status).toBe(200);
    expect(dismissed.body.status).toBe('dismissed');
    expect((await org.call('GET', `/v1/usertasks/${open.body.id}`)).body).toMatchObject({
      status: 'cancelled',
      cancellationReason: 'participant_dismissed',
    });
    const program = (await org.call('GET', `/v1/programs/${programId}`)).body;
    expect(program.participantCount).toBe(0);
    expect(program.balances).toMatchObject({ available: 950, reserved: 0, disbursing: 50 });
    expect((await org.call('DELETE', `/v1/programs/${programId}/users/${userId}`)).status).toBe(409);
    const list = await org.call('GET', `/v1/programs/${programId}/users?status=dismissed`);
    expect(list.body.data.map((e: { userId: string }) => e.userId)).toEqual([userId]);
  });

  it('users can be created enrolled, looked up by externalId, and updated', async () => {
    const program = await org.call('POST', '/v1/programs', { name: 'P', totalAwardPool: 10, maxParticipants: 3 });
    const created = await org.call('POST', '/v1/users', {
      externalId: 'emp-1',
      firstName: 'Ada',
      email: 'ada@example.com',
      dateOfBirth: '1990-12-10',
      programId: program.body.id,
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ externalId: 'emp-1', dateOfBirth: '1990-12-10' });
    const duplicate = await org.call('POST', '/v1/users', { externalId: 'emp-1' });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.error.param).toBe('externalId');
    const found = await org.call('GET', '/v1/users?externalId=emp-1');
    expect(found.body.data.map((u: { id: string }) => u.id)).toEqual([created.body.id]);
    const patched = await org.call('PATCH', `/v1/users/${created.body.id}`, { lastName: 'Lovelace' });
    expect(patched.body).toMatchObject({ firstName: 'Ada', lastName: 'Lovelace' });
    expect((await org.call('GET', `/v1/programs/${program.body.id}`)).body.participantCount).toBe(1);
  });
});

describe('program lifecycle', () => {
  it('pause stops reservations and releases but not cancels; resume reopens', async () => {
    const { programId, userId } = await programWithUser(org.call, 1000);
    const a = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 100 });
    const b = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 100 });
    const paused = await org.call('POST', `/v1/programs/${programId}/pause`);
    expect(paused.body.status).toBe('paused');
    const assignPaused = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 100 });
    expect(assignPaused.body.error.code).toBe('invalid_state');
    const completePaused = await org.call('PUT', `/v1/usertasks/${a.body.id}/complete`);
    expect(completePaused.status).toBe(409);
    expect((await org.call('GET', `/v1/usertasks/${a.body.id}`)).body.status).toBe('assigned');
    expect((await org.call('PUT', `/v1/usertasks/${b.body.id}/cancel`)).status).toBe(200);
    expect((await org.call('POST', `/v1/programs/${programId}/pause`)).status).toBe(409);
    const resumed = await org.call('POST', `/v1/programs/${programId}/resume`);
    expect(resumed.body.status).toBe('active');
    expect((await org.call('PUT', `/v1/usertasks/${a.body.id}/complete`)).status).toBe(200);
  });

  it('fund adds to the pool; close voids reservations and returns the available pool', async () => {
    const { programId, userId } = await programWithUser(org.call, 1000);
    const funded = await org.call('POST', `/v1/programs/${programId}/fund`, { amount: 250.5 });
    expect(funded.body.totalAwardPool).toBe(1250.5);
    const open = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 200 });
    const done = await org.call('POST', '/v1/usertasks', { programId, userId, monetaryValue: 300 });
    await org.call('PUT', `/v1/usertasks/${done.body.id}/complete`);
    await org.call('POST', `/v1/programs/${programId}/pause`);
    const closed = await org.call('POST', `/v1/programs/${programId}/close`);
    expect(closed.status).toBe(200);
    expect(closed.body.status).toBe('closed');
    expect(closed.body.closedAt).not.toBeNull();
    expect(closed.body.balances).toEqual({ available: 0, reserved: 0, disbursing: 300, disbursed: 0, returned: 950.5 });
    expect(balancesAddUp(closed.body)).toBe(true);
    expect((await org.call('GET', `/v1/usertasks/${open.body.id}`)).body.cancellationReason).toBe('program_closed');
    for (const [method, path, body] of [
      ['POST', `/v1/programs/${programId}/fund`, { amount: 1 }],
      ['POST', `/v1/programs/${programId}/close`, undefined],
      ['POST', `/v1/programs/${programId}/resume`, undefined],
      ['PATCH', `/v1/programs/${programId}`, { name: 'x' }],
      ['POST', '/v1/usertasks', { programId, userId, monetaryValue: 1 }],
    ] as const) {
      const refused = await org.call(method, path, body);
      expect(refused.status, `${method} ${path}`).toBe(409);
      expect(refused.body.error.code).toBe('invalid_state');
    }
    const ledger = await org.call('GET', `/v1/programs/${programId}/ledger?limit=100`);
    const codes = ledger.body.transfers.data.map((t: { code: string; kind: string }) => `${t.code}:${t.kind}`);
    expect(codes).toEqual(
      expect.arrayContaining([
        'program_funding:posted',
        'reservation:pending',
        'reservation:post_pending',
        'reservation:void_pending',
        'program_return:posted',
      ]),
    );
    expect(ledger.body.balances).toEqual(closed.body.balances);
  });

  it('patch changes the cap but never below the participants enrolled', async () => {
    const { programId, userId } = await programWithUser(org.call, 100, 5);
    await org.call('POST', `/v1/programs/${programId}/users/${userId}`);
    const lowered = await org.call('PATCH', `/v1/programs/${programId}`, {
      maxParticipants: 1,
      metadata: { cohort: 'a' },
    });
    expect(lowered.body).toMatchObject({ maxParticipants: 1, metadata: { cohort: 'a' } });
    const tooLow = await org.call('PATCH', `/v1/programs/${programId}`, { maxParticipants: 0 });
    expect(tooLow.status).toBe(400);
    const list = await org.call('GET', '/v1/programs?status=active&limit=100');
    expect(list.body.data.some((p: { id: string }) => p.id === programId)).toBe(true);
  });

  it('the database holds the identity for every program after all of the above', async () => {
    const rows = await sql<{ id: string }>`SELECT id FROM programs WHERE organization_id = ${org.id}`.execute(
      server.database.db,
    );
    expect(rows.rows.length).toBeGreaterThan(5);
    for (const { id } of rows.rows) {
      const program = (await org.call('GET', `/v1/programs/${id}`)).body;
      expect(balancesAddUp(program), id).toBe(true);
    }
    expect(await countRows(server, 'disbursements', org.id)).toBeGreaterThan(0);
  });
});
