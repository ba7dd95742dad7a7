import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Call,
  type Client,
  client,
  listAll,
  newOrganization,
  type ServerProcess,
  startServerProcess,
  startTestServer,
  type TestServer,
  testDatabaseKind,
} from './harness.js';

// A bounded, seeded random mix of every write that touches a program's pool — assign, complete,
// cancel, fund, enroll, dismiss, pause, resume — sent to two server processes sharing one
// PostgreSQL database. Nothing may answer 5xx, every refusal is one of the documented 4xx, and
// afterwards every program's books add up and agree with its user tasks.

/** The plan is generated from this seed; a failure names it, so the same plan can run again. */
const seed = Number(process.env.MIXED_WORKLOAD_SEED ?? 20_261_125);
const requestCount = 600;
const concurrency = 32;
const programCount = 3;
const userCount = 40;
/** Below `userCount`, so enrollment races reach the cap; dismissals free seats again. */
const maxParticipants = 25;
/** Small beside the assignments (≈$125 each), so some of them find the pool empty. */
const initialPoolDollars = 1_000;
/** A bound on the whole run, so a stalled server fails the test instead of hanging it. */
const runTimeoutMs = 120_000;

/** mulberry32: a small, well-known 32-bit PRNG; the same seed gives the same plan. */
function prng(start: number) {
  let state = start >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

type Kind = 'assign' | 'complete' | 'cancel' | 'fund' | 'enroll' | 'dismiss' | 'pause' | 'resume';

interface Step {
  index: number;
  kind: Kind;
  /** Which server process receives the request. */
  via: number;
  program: number;
  user: number;
  /** Cents, for assign and fund. */
  amountCents: number;
  /** complete/cancel: the index of the earlier assign step whose user task they name. */
  target: number;
}

const weights: [Kind, number][] = [
  ['assign', 42],
  ['complete', 18],
  ['cancel', 10],
  ['fund', 8],
  ['enroll', 7],
  ['dismiss', 7],
  // Resuming more often than pausing keeps the programs mostly active, so most writes get through.
  ['pause', 2],
  ['resume', 6],
];

/** The whole plan up front, from the seed alone: the interleaving varies between runs, the requests do not. */
function plan(): Step[] {
  const random = prng(seed);
  const pick = (n: number) => Math.floor(random() * n);
  const total = weights.reduce((sum, [, weight]) => sum + weight, 0);
  const steps: Step[] = [];
  const assigns: number[] = [];
  const resolved: number[] = [];
  for (let index = 0; index < requestCount; index++) {
    let roll = pick(total);
    let kind: Kind = 'assign';
    for (const [candidate, weight] of weights) {
      if (roll < weight) {
        kind = candidate;
        break;
      }
      roll -= weight;
    }
    // A complete or cancel needs an earlier assignment to name; early on there is none.
    if ((kind === 'complete' || kind === 'cancel') && assigns.length === 0) kind = 'assign';
    let target = -1;
    if (kind === 'complete' || kind === 'cancel') {
      // One in four names a user task an earlier step already completed or cancelled.
      const again = resolved.length > 0 && random() < 0.25;
      target = again ? (resolved[pick(resolved.length)] as number) : (assigns[pick(assigns.length)] as number);
      resolved.push(target);
    }
    const step: Step = {
      index,
      kind,
      via: pick(2),
      program: pick(programCount),
      user: pick(userCount),
      // $1.00 to $250.00 for an assignment, $50.00 to $550.00 for funding, with cents.
      amountCents: kind === 'fund' ? 5_000 + pick(50_000) : 100 + pick(24_900),
      target,
    };
    if (kind === 'assign') assigns.push(index);
    steps.push(step);
  }
  return steps;
}

/** Statuses and codes a request of this mix may answer with; anything else is a failure. */
const allowed: Record<Kind, string[]> = {
  assign: ['201', '409 insufficient_funds', '409 participant_cap_reached', '409 invalid_state'],
  complete: ['200', '409 invalid_state', '404 not_found'],
  cancel: ['200', '409 invalid_state', '404 not_found'],
  fund: ['200'],
  enroll: ['200', '409 participant_cap_reached'],
  dismiss: ['200', '404 not_found', '409 invalid_state'],
  pause: ['200', '409 invalid_state'],
  resume: ['200', '409 invalid_state'],
};

function outcomeOf(response: Call): string {
  return response.status < 300 ? String(response.status) : `${response.status} ${response.body?.error?.code}`;
}

/** A user task id that was never issued, for a complete or cancel whose assignment was refused. */
const unknownUserTaskId = 'ut_00000000000000000000000000';

const cents = (dollars: number) => Math.round(dollars * 100);

/** Deadlocks PostgreSQL counted in one database, retried ones included. */
async function deadlocksIn(databaseUrl: string): Promise<number> {
  const connection = new pg.Client({ connectionString: databaseUrl });
  await connection.connect();
  try {
    const result = await connection.query<{ deadlocks: string }>(
      'SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()',
    );
    return Number(result.rows[0]?.deadlocks ?? 0);
  } finally {
    await connection.end();
  }
}

/**
 * The server's own log lines about deadlocks in one database, when this machine's PostgreSQL log
 * is readable (TRANCHE_TEST_POSTGRES_LOG_DIR, /var/log/postgresql by default): they name the
 * statements that waited on each other. Best effort; an unreadable log yields a note.
 */
async function deadlockReports(databaseName: string): Promise<string> {
  const directory = process.env.TRANCHE_TEST_POSTGRES_LOG_DIR ?? '/var/log/postgresql';
  try {
    const reports: string[] = [];
    for (const file of (await readdir(directory)).filter((name) => name.endsWith('.log'))) {
      const lines = (await readFile(`${directory}/${file}`, 'utf8')).split('\n');
      lines.forEach((line, index) => {
        if (line.includes(databaseName) && line.includes('deadlock detected')) {
          reports.push(lines.slice(index, index + 12).join('\n'));
        }
      });
    }
    return reports.join('\n---\n');
  } catch (error) {
    return `(PostgreSQL log not readable in ${directory}: ${(error as Error).message})`;
  }
}

describe.runIf(testDatabaseKind === 'postgres')('a mixed workload on two processes sharing one PostgreSQL', () => {
  let server: TestServer;
  const processes: ServerProcess[] = [];

  beforeAll(async () => {
    server = await startTestServer();
  });

  afterAll(async () => {
    for (const started of processes) started.child.kill('SIGTERM');
    await Promise.all(
      processes.map((started) => (started.child.exitCode === null ? once(started.child, 'exit') : undefined)),
    );
    await server.close();
  });

  it(`${requestCount} seeded random writes (seed ${seed}): no 5xx, only documented refusals, books that balance`, async () => {
    const databaseUrl = server.databaseUrl as string;
    expect(databaseUrl).toBeDefined();
    processes.push(...(await Promise.all([0, 1].map(() => startServerProcess(databaseUrl)))));
    const org = await newOrganization(server);
    const calls = processes.map((started) => client(started.baseUrl, org.apiKey));

    const programIds: string[] = [];
    for (let i = 0; i < programCount; i++) {
      const created = await org.call('POST', '/v1/programs', {
        name: `Mixed ${i}`,
        totalAwardPool: initialPoolDollars,
        maxParticipants,
      });
      expect(created.status).toBe(201);
      programIds.push(created.body.id);
    }
    const userIds: string[] = [];
    for (let i = 0; i < userCount; i++) {
      const created = await org.call('POST', '/v1/users', { externalId: `mixed-${i}` });
      expect(created.status).toBe(201);
      userIds.push(created.body.id);
    }
    const deadlocksBefore = await deadlocksIn(databaseUrl);

    const steps = plan();
    const responses: Promise<Call>[] = new Array(steps.length);
    const send = async (step: Step): Promise<Call> => {
      const call = calls[step.via] as Client;
      const programId = programIds[step.program] as string;
      const userId = userIds[step.user] as string;
      switch (step.kind) {
        case 'assign':
          return call('POST', '/v1/usertasks', { programId, userId, monetaryValue: step.amountCents / 100 });
        case 'fund':
          return call('POST', `/v1/programs/${programId}/fund`, { amount: step.amountCents / 100 });
        case 'enroll':
          return call('POST', `/v1/programs/${programId}/users/${userId}`);
        case 'dismiss':
          return call('DELETE', `/v1/programs/${programId}/users/${userId}`);
        case 'pause':
        case 'resume':
          return call('POST', `/v1/programs/${programId}/${step.kind}`);
        case 'complete':
        case 'cancel': {
          // The named assignment was sent earlier; wait for its answer to learn the id.
          const assigned = await (responses[step.target] as Promise<Call>);
          const id = assigned.status === 201 ? (assigned.body.id as string) : unknownUserTaskId;
          return call('PUT', `/v1/usertasks/${id}/${step.kind}`);
        }
      }
    };
    const startedAt = Date.now();
    let next = 0;
    const lanes = Array.from({ length: concurrency }, async () => {
      while (next < steps.length) {
        const step = steps[next++] as Step;
        const response = send(step);
        responses[step.index] = response;
        await response;
      }
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(lanes),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the mix did not finish in ${runTimeoutMs} ms`)), runTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    const answered = await Promise.all(responses);

    const tally: Record<string, number> = {};
    /** One message per refusal kind, to see why requests were refused. */
    const sampleMessages: Record<string, string> = {};
    const unexpected: string[] = [];
    answered.forEach((response, index) => {
      const step = steps[index] as Step;
      const outcome = outcomeOf(response);
      tally[`${step.kind} ${outcome}`] = (tally[`${step.kind} ${outcome}`] ?? 0) + 1;
      if (response.status >= 400) sampleMessages[`${step.kind} ${outcome}`] ??= response.body?.error?.message;
      if (!allowed[step.kind].includes(outcome)) {
        unexpected.push(
          `step ${index} ${step.kind} via process ${step.via}: ${outcome} ${JSON.stringify(response.body)}`,
        );
      }
    });
    console.log(`mixed workload (seed ${seed}), ${Date.now() - startedAt} ms:`, tally, sampleMessages);
    // Warnings and errors the processes logged (LOG_LEVEL=warn), shown whatever the outcome.
    processes.forEach((started, i) => {
      if (started.stderr.length > 0) console.warn(`process ${i} stderr:\n${started.stderr.join('')}`);
    });
    const serverErrors = answered.filter((response) => response.status >= 500);
    if (unexpected.length > 0) console.error(`unexpected answers:\n${unexpected.join('\n')}`);
    expect(serverErrors.map((response) => `${response.status} ${JSON.stringify(response.body)}`)).toEqual([]);
    expect(unexpected).toEqual([]);
    // The mix exercised what it is meant to: successes and each kind of refusal.
    expect(tally['assign 201']).toBeGreaterThan(0);
    expect(tally['complete 200']).toBeGreaterThan(0);
    expect(tally['cancel 200']).toBeGreaterThan(0);
    expect(tally['fund 200']).toBeGreaterThan(0);
    expect((tally['complete 409 invalid_state'] ?? 0) + (tally['cancel 409 invalid_state'] ?? 0)).toBeGreaterThan(0);

    // The books of each program, read back through the API.
    for (const [p, programId] of programIds.entries()) {
      const program = (await org.call('GET', `/v1/programs/${programId}`)).body;
      const b = program.balances;
      expect(cents(program.totalAwardPool), `program ${p} identity`).toBe(
        cents(b.available) + cents(b.reserved) + cents(b.disbursing) + cents(b.disbursed) + cents(b.returned),
      );
      // Every successful funding, and only those, is in the pool.
      const funded = steps
        .filter((step) => step.kind === 'fund' && step.program === p && answered[step.index]?.status === 200)
        .reduce((sum, step) => sum + step.amountCents, 0);
      expect(cents(program.totalAwardPool), `program ${p} pool`).toBe(initialPoolDollars * 100 + funded);
      // Reserved is exactly the open assignments, disbursing exactly the completed ones.
      const open = await listAll(org.call, `/v1/usertasks?programId=${programId}&status=assigned`);
      const reserved = open.reduce((sum, userTask) => sum + cents(userTask.monetaryValue), 0);
      expect(cents(b.reserved), `program ${p} reserved`).toBe(reserved);
      const completed = await listAll(org.call, `/v1/usertasks?programId=${programId}&status=completed`);
      const disbursing = completed.reduce((sum, userTask) => sum + cents(userTask.completedAmount), 0);
      expect(cents(b.disbursing), `program ${p} disbursing`).toBe(disbursing);
      expect(b.disbursed).toBe(0);
      expect(b.returned).toBe(0);
      // One user task per accepted assignment, no more and no fewer.
      const all = await listAll(org.call, `/v1/usertasks?programId=${programId}`);
      const accepted = steps.filter(
        (step) => step.kind === 'assign' && step.program === p && answered[step.index]?.status === 201,
      );
      expect(all.length, `program ${p} user tasks`).toBe(accepted.length);
      // Seats never pass the cap, and the count matches the active enrollments.
      const active = await listAll(org.call, `/v1/programs/${programId}/users?status=active`);
      expect(program.participantCount).toBe(active.length);
      expect(program.participantCount).toBeLessThanOrEqual(maxParticipants);
    }

    // Deadlocks the units retried on their own do not reach a client, but they are worth knowing.
    // The statistics are flushed by each backend within about a second of its transaction.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const deadlocks = (await deadlocksIn(databaseUrl)) - deadlocksBefore;
    console.log(`deadlocks detected by PostgreSQL during the mix (retried or not): ${deadlocks}`);
    if (deadlocks > 0) console.error(await deadlockReports(new URL(databaseUrl).pathname.slice(1)));
    // Units retry a lost deadlock, so one can hide behind a 200; the lock order (enrollment,
    // program FOR NO KEY UPDATE, user tasks, accounts by id) claims there are none to retry.
    expect(deadlocks).toBe(0);
  });
});
