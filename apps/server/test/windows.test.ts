import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, newOrganization, startTestServer, type TestServer } from './harness.js';

// A program's window — startsAt and endsAt — through the HTTP app on the real database: outside
// it nothing is assigned and nothing is written; the instants are compared as instants whatever
// their UTC offsets; and an assignment expires when the first of its task's and program's windows ends.

let server: TestServer;
let org: Awaited<ReturnType<typeof newOrganization>>;

beforeAll(async () => {
  server = await startTestServer();
  org = await newOrganization(server, 'Window Works');
});

afterAll(async () => {
  await server.close();
});

/** Every table a refused request could have written to, counted for this organization. */
const organizationTables = [
  'programs',
  'ledger_accounts',
  'ledger_transfers',
  'enrollments',
  'tasks',
  'user_tasks',
  'disbursements',
  'events',
  'jobs',
] as const;

async function rowsLeft(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of organizationTables) counts[table] = await countRows(server, table, org.id);
  // Idempotency keys are scoped by organization id rather than owned by a column of that name.
  const keys = await sql<{ count: string | bigint }>`
    SELECT count(*) AS count FROM idempotency_keys WHERE scope = ${org.id}`.execute(server.database.db);
  counts.idempotency_keys = Number(keys.rows[0]?.count ?? 0);
  return counts;
}

async function newUser(): Promise<string> {
  const user = await org.call('POST', '/v1/users', {});
  expect(user.status).toBe(201);
  return user.body.id;
}

async function newProgram(window: { startsAt?: string; endsAt?: string }, pool = 1_000) {
  const program = await org.call('POST', '/v1/programs', {
    name: 'Windowed program',
    totalAwardPool: pool,
    maxParticipants: 10,
    ...window,
  });
  expect(program.status, JSON.stringify(program.body)).toBe(201);
  return program.body;
}

/** An idempotency key per request, so a refusal also shows that its key claim was rolled back. */
let keyCounter = 0;
const idempotent = () => ({ 'idempotency-key': `windows-${process.pid}-${++keyCounter}` });

describe('a program that has not started', () => {
  it('refuses a one-off assignment with 409 invalid_state on programId, and writes nothing', async () => {
    const program = await newProgram({ startsAt: '2099-01-01T00:00:00Z' });
    expect(program.startsAt).toBe('2099-01-01T00:00:00.000Z');
    const userId = await newUser();
    const before = await rowsLeft();

    const refused = await org.call(
      'POST',
      '/v1/usertasks',
      { programId: program.id, userId, monetaryValue: 25 },
      idempotent(),
    );
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'invalid_state', param: 'programId' });
    expect(refused.body.error.message).toContain('2099-01-01T00:00:00.000Z');

    expect(await rowsLeft()).toEqual(before);
    const after = (await org.call('GET', `/v1/programs/${program.id}`)).body;
    expect(after.participantCount).toBe(0);
    expect(after.balances).toEqual({ available: 1_000, reserved: 0, disbursing: 0, disbursed: 0, returned: 0 });
    const enrollment = await org.call('GET', `/v1/programs/${program.id}/users/${userId}`);
    expect(enrollment.status).toBe(404);
  });

  it('refuses assigning one of its tasks as well (the task has no window of its own)', async () => {
    const program = await newProgram({ startsAt: '2099-01-01T00:00:00Z' });
    const task = await org.call('POST', '/v1/tasks', { programId: program.id, name: 'Orientation', monetaryValue: 40 });
    expect(task.status).toBe(201);
    const userId = await newUser();
    const before = await rowsLeft();

    const refused = await org.call('POST', `/v1/tasks/${task.body.id}/users/${userId}`, undefined, idempotent());
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'invalid_state', param: 'programId' });
    const viaBody = await org.call('POST', '/v1/usertasks', { taskId: task.body.id, userId }, idempotent());
    expect(viaBody.status).toBe(409);
    expect(viaBody.body.error).toMatchObject({ code: 'invalid_state', param: 'programId' });

    expect(await rowsLeft()).toEqual(before);
  });
});

describe('a program whose endsAt has passed', () => {
  it('takes assignments until endsAt, expiring them then, and refuses them after', async () => {
    const endsAt = new Date(Date.now() + 1_000);
    const program = await newProgram({ endsAt: endsAt.toISOString() });
    const userId = await newUser();
    const other = await newUser();

    const inTime = await org.call('POST', '/v1/usertasks', { programId: program.id, userId, monetaryValue: 30 });
    expect(inTime.status).toBe(201);
    expect(inTime.body.expiresAt).toBe(endsAt.toISOString());

    // Wait until the window has closed, bounded.
    await sleep(Math.max(0, endsAt.getTime() - Date.now()) + 50);
    expect(Date.now()).toBeGreaterThan(endsAt.getTime());
    const before = await rowsLeft();

    const late = await org.call(
      'POST',
      '/v1/usertasks',
      { programId: program.id, userId, monetaryValue: 30 },
      idempotent(),
    );
    expect(late.status).toBe(409);
    expect(late.body.error).toMatchObject({ code: 'invalid_state', param: 'programId' });
    expect(late.body.error.message).toContain(endsAt.toISOString());
    // Another participant is refused the same way: the window, not the seat, decides.
    const lateOther = await org.call(
      'POST',
      '/v1/usertasks',
      { programId: program.id, userId: other, monetaryValue: 30 },
      idempotent(),
    );
    expect(lateOther.status).toBe(409);
    expect(lateOther.body.error).toMatchObject({ code: 'invalid_state', param: 'programId' });

    // The assignment made in time is past its expiry: it can no longer complete.
    const complete = await org.call('PUT', `/v1/usertasks/${inTime.body.id}/complete`, {}, idempotent());
    expect(complete.status).toBe(409);
    expect(complete.body.error.code).toBe('invalid_state');

    expect(await rowsLeft()).toEqual(before);
    const after = (await org.call('GET', `/v1/programs/${program.id}`)).body;
    expect(after.participantCount).toBe(1);
    expect(after.balances).toEqual({ available: 970, reserved: 30, disbursing: 0, disbursed: 0, returned: 0 });
  });
});

describe('startsAt and endsAt with different UTC offsets are compared as instants', () => {
  it('accepts startsAt 10:00+02:00 with endsAt 09:30Z (08:00Z < 09:30Z)', async () => {
    const before = await rowsLeft();
    const created = await org.call(
      'POST',
      '/v1/programs',
      {
        name: 'Offsets',
        totalAwardPool: 100,
        maxParticipants: 1,
        startsAt: '2030-01-01T10:00:00+02:00',
        endsAt: '2030-01-01T09:30:00Z',
      },
      idempotent(),
    );
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.startsAt).toBe('2030-01-01T08:00:00.000Z');
    expect(created.body.endsAt).toBe('2030-01-01T09:30:00.000Z');
    const after = await rowsLeft();
    expect(after.programs).toBe((before.programs ?? 0) + 1);
  });

  it('refuses endsAt 10:00+02:00 after startsAt 09:30Z (08:00Z is before 09:30Z) with 400 on endsAt, writing nothing', async () => {
    const before = await rowsLeft();
    const refused = await org.call(
      'POST',
      '/v1/programs',
      {
        name: 'Offsets reversed',
        totalAwardPool: 100,
        maxParticipants: 1,
        startsAt: '2030-01-01T09:30:00Z',
        // Later than startsAt as a string, earlier as an instant.
        endsAt: '2030-01-01T10:00:00+02:00',
      },
      idempotent(),
    );
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'validation_error', param: 'endsAt' });
    expect(await rowsLeft()).toEqual(before);
  });

  it('refuses an endsAt that is the same instant as startsAt written with another offset', async () => {
    const before = await rowsLeft();
    const refused = await org.call('POST', '/v1/programs', {
      name: 'Empty window',
      totalAwardPool: 100,
      maxParticipants: 1,
      startsAt: '2030-01-01T10:00:00+02:00',
      endsAt: '2030-01-01T08:00:00Z',
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'validation_error', param: 'endsAt' });
    expect(await rowsLeft()).toEqual(before);
  });

  it('compares a changed endsAt with startsAt as instants too', async () => {
    const program = await newProgram({ startsAt: '2030-01-01T10:00:00+02:00' });
    const before = await rowsLeft();
    // 09:00+02:00 is 07:00Z, before the 08:00Z start.
    const refused = await org.call('PATCH', `/v1/programs/${program.id}`, { endsAt: '2030-01-01T09:00:00+02:00' });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'validation_error', param: 'endsAt' });
    expect(await rowsLeft()).toEqual(before);
    // 08:30Z is after it, though "earlier" as a string than 10:00+02:00.
    const accepted = await org.call('PATCH', `/v1/programs/${program.id}`, { endsAt: '2030-01-01T08:30:00Z' });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(200);
    expect(accepted.body.endsAt).toBe('2030-01-01T08:30:00.000Z');
  });
});

describe('an assignment expires with the first of its windows to end', () => {
  // The program ends at 08:00Z, written with a +02:00 offset.
  const programEndsAt = '2031-01-01T10:00:00+02:00';
  const programEndsAtUtc = '2031-01-01T08:00:00.000Z';

  it('a one-off milestone expires when the program ends', async () => {
    const program = await newProgram({ endsAt: programEndsAt });
    const assigned = await org.call('POST', '/v1/usertasks', {
      programId: program.id,
      userId: await newUser(),
      monetaryValue: 10,
    });
    expect(assigned.status).toBe(201);
    expect(assigned.body.expiresAt).toBe(programEndsAtUtc);
  });

  it('a task ending earlier than the program sets the expiry', async () => {
    const program = await newProgram({ endsAt: programEndsAt });
    // 07:30Z is half an hour before the program's 08:00Z end.
    const task = await org.call('POST', '/v1/tasks', {
      programId: program.id,
      name: 'Early',
      monetaryValue: 10,
      endsAt: '2031-01-01T07:30:00Z',
    });
    expect(task.status).toBe(201);
    const assigned = await org.call('POST', '/v1/usertasks', { taskId: task.body.id, userId: await newUser() });
    expect(assigned.status).toBe(201);
    expect(assigned.body.expiresAt).toBe('2031-01-01T07:30:00.000Z');
  });

  it('a task ending after the program (as an instant, though "earlier" as a string) expires with the program', async () => {
    const program = await newProgram({ endsAt: programEndsAt });
    // "09:00Z" sorts before "10:00+02:00" as text, but 09:00Z is an hour after 08:00Z.
    const task = await org.call('POST', '/v1/tasks', {
      programId: program.id,
      name: 'Late',
      monetaryValue: 10,
      endsAt: '2031-01-01T09:00:00Z',
    });
    expect(task.status).toBe(201);
    const assigned = await org.call('POST', '/v1/usertasks', { taskId: task.body.id, userId: await newUser() });
    expect(assigned.status).toBe(201);
    expect(assigned.body.expiresAt).toBe(programEndsAtUtc);
  });

  it('a task with no end of its own expires with the program', async () => {
    const program = await newProgram({ endsAt: programEndsAt });
    const task = await org.call('POST', '/v1/tasks', { programId: program.id, name: 'Open', monetaryValue: 10 });
    expect(task.status).toBe(201);
    const assigned = await org.call('POST', '/v1/usertasks', { taskId: task.body.id, userId: await newUser() });
    expect(assigned.status).toBe(201);
    expect(assigned.body.expiresAt).toBe(programEndsAtUtc);
  });

  it('a program without an end leaves a one-off milestone without expiry', async () => {
    const program = await newProgram({});
    const assigned = await org.call('POST', '/v1/usertasks', {
      programId: program.id,
      userId: await newUser(),
      monetaryValue: 10,
    });
    expect(assigned.status).toBe(201);
    expect(assigned.body.expiresAt).toBeNull();
  });
});

describe('timestamps at the edges of what is accepted', () => {
  it('round-trip exactly for years 0001–0099 and 9999, on both databases', async () => {
    for (const [startsAt, endsAt] of [
      ['0001-01-01T00:00:00.000Z', '0050-06-15T12:30:00.000Z'],
      ['0099-12-31T23:59:59.999Z', '9999-12-31T23:59:59.999Z'],
    ] as const) {
      const created = await org.call('POST', '/v1/programs', {
        name: 'Edges',
        totalAwardPool: 1,
        maxParticipants: 1,
        startsAt,
        endsAt,
      });
      expect(created.status).toBe(201);
      expect([created.body.startsAt, created.body.endsAt]).toEqual([startsAt, endsAt]);
      const read = await org.call('GET', `/v1/programs/${created.body.id}`);
      expect([read.body.startsAt, read.body.endsAt]).toEqual([startsAt, endsAt]);
    }
  });
});
