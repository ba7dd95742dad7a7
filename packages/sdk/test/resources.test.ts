import { autoPaginate, maxAutoPaginationPages, Tranche } from '@tranche/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newOrganization, startTestServer, type TestServer } from '../../../apps/server/test/harness.js';

/** Every resource method once, against the real server, to hold the paths and types to it. */

let server: TestServer;
let tranche: Tranche;

beforeAll(async () => {
  server = await startTestServer();
  tranche = new Tranche({ apiKey: (await newOrganization(server)).apiKey, baseUrl: server.baseUrl });
});

afterAll(async () => {
  await server.close();
});

describe('programs', () => {
  it('create, update, fund, pause, resume, ledger, close', async () => {
    const program = await tranche.programs.create({ name: 'Welding', totalAwardPool: 1000, maxParticipants: 2 });
    expect(program).toMatchObject({ object: 'program', status: 'active', totalAwardPool: 1000 });
    expect(await tranche.programs.retrieve(program.id)).toEqual(program);

    const updated = await tranche.programs.update(program.id, { name: 'Welding II', metadata: { cohort: 'fall' } });
    expect(updated).toMatchObject({ name: 'Welding II', metadata: { cohort: 'fall' } });

    const funded = await tranche.programs.fund(program.id, { amount: 250.5 });
    expect(funded.totalAwardPool).toBe(1250.5);
    expect((await tranche.programs.pause(program.id)).status).toBe('paused');
    expect((await tranche.programs.list({ status: 'paused' })).data.map((p) => p.id)).toContain(program.id);
    expect((await tranche.programs.resume(program.id)).status).toBe('active');

    const ledger = await tranche.programs.ledger(program.id, { limit: 1 });
    expect(ledger.programId).toBe(program.id);
    expect(ledger.balances.available).toBe(1250.5);
    expect(ledger.transfers.data).toHaveLength(1);
    expect(ledger.transfers.hasMore).toBe(true);
    const older = await tranche.programs.ledger(program.id, { limit: 1, cursor: ledger.transfers.nextCursor ?? '' });
    expect(older.transfers.data[0]?.id).not.toBe(ledger.transfers.data[0]?.id);

    const closed = await tranche.programs.close(program.id);
    expect(closed).toMatchObject({ status: 'closed' });
    expect(closed.balances.returned).toBe(1250.5);
    expect(closed.totalAwardPool).toBe(
      closed.balances.available +
        closed.balances.reserved +
        closed.balances.disbursing +
        closed.balances.disbursed +
        closed.balances.returned,
    );
  });

  it('enroll, listUsers, retrieveEnrollment, dismiss', async () => {
    const program = await tranche.programs.create({ name: 'Enrollments', totalAwardPool: 100, maxParticipants: 5 });
    const user = await tranche.users.create({ firstName: 'Ada', lastName: 'Lovelace' });
    const enrollment = await tranche.programs.enroll(program.id, user.id);
    expect(enrollment).toMatchObject({
      object: 'enrollment',
      programId: program.id,
      userId: user.id,
      status: 'active',
    });
    expect((await tranche.programs.listUsers(program.id)).data).toEqual([enrollment]);
    expect(await tranche.programs.retrieveEnrollment(program.id, user.id)).toEqual(enrollment);
    const dismissed = await tranche.programs.dismiss(program.id, user.id);
    expect(dismissed.status).toBe('dismissed');
    expect((await tranche.programs.listUsers(program.id, { status: 'dismissed' })).data).toHaveLength(1);
  });
});

describe('users', () => {
  it('create, retrieve, update, list', async () => {
    const user = await tranche.users.create({ externalId: 'emp-7', email: 'grace@example.com' });
    expect(user).toMatchObject({ object: 'user', externalId: 'emp-7', email: 'grace@example.com' });
    expect(await tranche.users.retrieve(user.id)).toEqual(user);
    const updated = await tranche.users.update(user.id, { firstName: 'Grace' });
    expect(updated.firstName).toBe('Grace');
    expect((await tranche.users.list({ externalId: 'emp-7' })).data.map((u) => u.id)).toEqual([user.id]);
  });
});

describe('tasks and user tasks', () => {
  it('a defined task assigned through tasks.assign and userTasks.create, then cancelled', async () => {
    const program = await tranche.programs.create({ name: 'Tasks', totalAwardPool: 1000, maxParticipants: 10 });
    const [ada, grace] = [await tranche.users.create({}), await tranche.users.create({})];
    const task = await tranche.tasks.create({ programId: program.id, name: 'OSHA 10', monetaryValue: 300 });
    expect(task).toMatchObject({ object: 'task', monetaryValue: 300 });
    expect(await tranche.tasks.retrieve(task.id)).toEqual(task);
    expect((await tranche.tasks.update(task.id, { name: 'OSHA 10 certificate' })).name).toBe('OSHA 10 certificate');
    expect((await tranche.tasks.list({ programId: program.id })).data.map((t) => t.id)).toEqual([task.id]);

    const first = await tranche.tasks.assign({ taskId: task.id, userId: ada.id });
    expect(first).toMatchObject({ taskId: task.id, userId: ada.id, monetaryValue: 300, status: 'assigned' });
    const second = await tranche.userTasks.create({ taskId: task.id, userId: grace.id });
    expect(second).toMatchObject({ taskId: task.id, userId: grace.id, status: 'assigned' });
    expect((await tranche.programs.retrieve(program.id)).balances.reserved).toBe(600);

    expect((await tranche.userTasks.cancel(second.id)).status).toBe('cancelled');
    expect((await tranche.userTasks.retrieve(second.id)).status).toBe('cancelled');
    const partial = await tranche.userTasks.complete(first.id, {
      amount: 120.25,
      completedBy: 'instructor:42',
      evidence: { certificateNumber: 'OSHA-10-88231' },
    });
    expect(partial).toMatchObject({ status: 'completed', completedAmount: 120.25, completedBy: 'instructor:42' });
    expect((await tranche.programs.retrieve(program.id)).balances).toEqual({
      available: 879.75,
      reserved: 0,
      disbursing: 120.25,
      disbursed: 0,
      returned: 0,
    });
    expect((await tranche.userTasks.list({ programId: program.id, status: 'cancelled' })).data).toHaveLength(1);
    const [disbursement] = (await tranche.disbursements.list({ userTaskId: first.id })).data;
    expect(disbursement).toMatchObject({ userTaskId: first.id, amount: 120.25 });

    const [completedEvent] = (await tranche.events.list({ type: 'usertask.completed', limit: 1 })).data;
    expect(completedEvent).toMatchObject({ object: 'event', type: 'usertask.completed', data: { object: partial } });
    expect(await tranche.events.retrieve(completedEvent?.id ?? '')).toEqual(completedEvent);
    const cancellations: string[] = [];
    for await (const event of tranche.events.listAll({ type: 'usertask.cancelled', limit: 1 })) {
      cancellations.push((event.data.object as { id: string }).id);
    }
    expect(cancellations).toContain(second.id);
  });
});

describe('pagination', () => {
  it('listAll walks every page; autoPaginate stops at maxPages', async () => {
    const program = await tranche.programs.create({ name: 'Pages', totalAwardPool: 100, maxParticipants: 10 });
    const user = await tranche.users.create({});
    const created: string[] = [];
    for (let i = 0; i < 5; i++) {
      created.push((await tranche.tasks.assign({ programId: program.id, userId: user.id, monetaryValue: 1 })).id);
    }

    const firstPage = await tranche.userTasks.list({ programId: program.id, limit: 2 });
    expect(firstPage).toMatchObject({ hasMore: true });
    expect(firstPage.data).toHaveLength(2);

    const seen: string[] = [];
    for await (const userTask of tranche.userTasks.listAll({ programId: program.id, limit: 2 })) seen.push(userTask.id);
    expect([...seen].sort()).toEqual([...created].sort());
    expect(new Set(seen).size).toBe(5);

    const all: string[] = [];
    for await (const d of tranche.disbursements.listAll({ programId: program.id })) all.push(d.id);
    expect(all).toEqual([]);

    const bounded = async () => {
      for await (const _ of tranche.userTasks.listAll({ programId: program.id, limit: 2 }, { maxPages: 2 })) {
        // drain
      }
    };
    await expect(bounded()).rejects.toThrow(RangeError);

    const generic: string[] = [];
    for await (const userTask of autoPaginate((params) => tranche.userTasks.list(params), {
      programId: program.id,
      limit: 3,
    })) {
      generic.push(userTask.id);
    }
    expect(generic).toHaveLength(5);
    expect(maxAutoPaginationPages).toBeGreaterThan(0);
  });
});
