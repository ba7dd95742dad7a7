import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventTypes } from '../src/platform/events.js';
import { countRows, newOrganization, startTestServer, type TestServer } from './harness.js';

// Every state change appends an event in its own transaction; GET /v1/events lists them, newest
// first, each carrying the resource as the API presents it.

let server: TestServer;
let org: Awaited<ReturnType<typeof newOrganization>>;
let other: Awaited<ReturnType<typeof newOrganization>>;

beforeAll(async () => {
  server = await startTestServer();
  org = await newOrganization(server, 'Acme');
  other = await newOrganization(server, 'Other tenant');
});

afterAll(async () => {
  await server.close();
});

/** An event as the API lists it; `data.object` is whatever resource it carries. */
interface ListedEvent {
  id: string;
  type: string;
  createdAt: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read the resources of every shape an event carries
  data: { object: any };
}

async function allEvents(call: typeof org.call, query = ''): Promise<ListedEvent[]> {
  const events: ListedEvent[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const separator = query === '' ? '?' : `?${query}&`;
    const listed = await call('GET', `/v1/events${separator}limit=3${cursor === null ? '' : `&cursor=${cursor}`}`);
    expect(listed.status).toBe(200);
    events.push(...listed.body.data);
    if (!listed.body.hasMore) return events;
    cursor = listed.body.nextCursor;
  }
  throw new Error('more than 100 pages of events');
}

describe('events', () => {
  it('create program → assign → complete → cancel another: the matching events, in order, with each resource as presented', async () => {
    const program = await org.call('POST', '/v1/programs', {
      name: 'Events',
      totalAwardPool: 1000,
      maxParticipants: 5,
    });
    const user = await org.call('POST', '/v1/users', { externalId: 'evt-1' });
    const first = await org.call('POST', '/v1/usertasks', {
      programId: program.body.id,
      userId: user.body.id,
      monetaryValue: 100,
    });
    const second = await org.call('POST', '/v1/usertasks', {
      programId: program.body.id,
      userId: user.body.id,
      monetaryValue: 50,
    });
    const completed = await org.call('PUT', `/v1/usertasks/${first.body.id}/complete`, { completedBy: 'coach:7' });
    const cancelled = await org.call('PUT', `/v1/usertasks/${second.body.id}/cancel`);
    expect([program.status, user.status, first.status, second.status]).toEqual([201, 201, 201, 201]);
    expect([completed.status, cancelled.status]).toEqual([200, 200]);
    const disbursement = await org.call('GET', `/v1/disbursements/${completed.body.disbursementId}`);

    const events = (await allEvents(org.call)).reverse();
    expect(events.map((event) => event.type)).toEqual([
      'program.created',
      'user.created',
      'enrollment.created',
      'usertask.assigned',
      'usertask.assigned',
      'usertask.completed',
      'disbursement.created',
      'usertask.cancelled',
    ]);
    const [created, userCreated, enrolled, assigned, , completedEvent, disbursed, cancelledEvent] = events;
    for (const event of events) {
      expect(event).toMatchObject({ object: 'event', id: expect.stringMatching(/^evt_/) });
      expect(new Date(event.createdAt).toISOString()).toBe(event.createdAt);
    }
    // The resource keeps the field order the API presents it in, not the database's.
    for (const [event, body] of [
      [created, program.body],
      [assigned, first.body],
      [completedEvent, completed.body],
      [disbursed, disbursement.body],
    ] as const) {
      expect(Object.keys(event?.data.object ?? {})).toEqual(Object.keys(body));
    }
    expect(created?.data.object).toEqual(program.body);
    expect(userCreated?.data.object).toEqual(user.body);
    expect(enrolled?.data.object).toMatchObject({ object: 'enrollment', userId: user.body.id, status: 'active' });
    expect(assigned?.data.object).toEqual(first.body);
    expect(completedEvent?.data.object).toEqual(completed.body);
    expect(disbursed?.data.object).toEqual(disbursement.body);
    expect(cancelledEvent?.data.object).toEqual(cancelled.body);

    const retrieved = await org.call('GET', `/v1/events/${completedEvent?.id}`);
    expect(retrieved.status).toBe(200);
    expect(retrieved.body).toEqual(completedEvent);
  });

  it('filters by type and createdAfter; another tenant sees none of them', async () => {
    const before = new Date(Date.now() - 1).toISOString();
    const program = await org.call('POST', '/v1/programs', { name: 'Filters', totalAwardPool: 10, maxParticipants: 1 });
    await org.call('POST', `/v1/programs/${program.body.id}/fund`, { amount: 5 });
    await org.call('POST', `/v1/programs/${program.body.id}/pause`);
    await org.call('POST', `/v1/programs/${program.body.id}/resume`);
    await org.call('PATCH', `/v1/programs/${program.body.id}`, { name: 'Filters 2' });
    await org.call('POST', `/v1/programs/${program.body.id}/close`);

    const recent = await allEvents(org.call, `createdAfter=${encodeURIComponent(before)}`);
    expect(recent.map((event) => event.type).reverse()).toEqual([
      'program.created',
      'program.funded',
      'program.paused',
      'program.resumed',
      'program.updated',
      'program.closed',
    ]);
    const closed = recent[0];
    expect(closed?.data.object).toMatchObject({
      id: program.body.id,
      status: 'closed',
      balances: { available: 0, returned: 15 },
    });
    const funded = await allEvents(org.call, 'type=program.funded');
    expect(funded.every((event) => event.type === 'program.funded')).toBe(true);
    expect(funded.some((event) => event.data.object.id === program.body.id)).toBe(true);

    expect((await other.call('GET', '/v1/events')).body.data).toEqual([]);
    expect((await other.call('GET', `/v1/events/${closed?.id}`)).status).toBe(404);
    const unknownType = await org.call('GET', '/v1/events?type=program.exploded');
    expect(unknownType.status).toBe(400);
    expect(unknownType.body.error).toMatchObject({ code: 'validation_error', param: 'type' });
  });

  it('a failed request appends no event', async () => {
    const events = await countRows(server, 'events', org.id);
    const refused = await org.call('POST', '/v1/usertasks', {
      programId: 'prg_missing',
      userId: 'usr_missing',
      monetaryValue: 5,
    });
    expect(refused.status).toBe(404);
    const program = await org.call('POST', '/v1/programs', { name: 'Small', totalAwardPool: 1, maxParticipants: 1 });
    const user = await org.call('POST', '/v1/users', {});
    const afterSetup = await countRows(server, 'events', org.id);
    expect(afterSetup).toBe(events + 2);
    const tooMuch = await org.call('POST', '/v1/usertasks', {
      programId: program.body.id,
      userId: user.body.id,
      monetaryValue: 2,
    });
    expect(tooMuch.body.error?.code).toBe('insufficient_funds');
    expect(await countRows(server, 'events', org.id)).toBe(afterSetup);
  });

  it('events are never changed or deleted', async () => {
    const [event] = (await org.call('GET', '/v1/events?limit=1')).body.data;
    const db = server.database.db;
    await expect(sql`UPDATE events SET type = 'program.hacked' WHERE id = ${event.id}`.execute(db)).rejects.toThrow(
      /never updated or deleted/,
    );
    await expect(sql`DELETE FROM events WHERE id = ${event.id}`.execute(db)).rejects.toThrow(
      /never updated or deleted/,
    );
    await expect(sql`TRUNCATE events`.execute(db)).rejects.toThrow(/never updated or deleted/);
  });

  it('the catalog names each type once, as resource.verb', () => {
    expect(new Set(eventTypes).size).toBe(eventTypes.length);
    for (const type of eventTypes) expect(type).toMatch(/^[a-z_]+\.[a-z_]+$/);
  });
});
