import { Tranche, TrancheConnectionError, TrancheError } from '@tranche/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newOrganization, startTestServer, type TestServer } from '../../../apps/server/test/harness.js';

let server: TestServer;
let tranche: Tranche;

beforeAll(async () => {
  server = await startTestServer();
  const organization = await newOrganization(server);
  tranche = new Tranche({ apiKey: organization.apiKey, baseUrl: server.baseUrl });
});

afterAll(async () => {
  await server.close();
});

/** Runs `call`, expects it to fail, and returns the error. */
async function failure(call: () => Promise<unknown>): Promise<TrancheError> {
  try {
    await call();
  } catch (error) {
    expect(error).toBeInstanceOf(TrancheError);
    return error as TrancheError;
  }
  throw new Error('expected the call to fail');
}

async function programWithUser(totalAwardPool: number) {
  const program = await tranche.programs.create({ name: 'Small pool', totalAwardPool, maxParticipants: 10 });
  const user = await tranche.users.create({ externalId: `emp-${program.id}` });
  return { program, user };
}

describe('API errors surface as TrancheError', () => {
  it('insufficient_funds: 409, nothing reserved', async () => {
    const { program, user } = await programWithUser(100);
    const error = await failure(() =>
      tranche.tasks.assign({ programId: program.id, userId: user.id, monetaryValue: 500 }),
    );
    expect(error).toMatchObject({ status: 409, code: 'insufficient_funds', name: 'TrancheError' });
    expect(error.requestId).toMatch(/^req_/);
    expect(error.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
    expect(error.message.length).toBeGreaterThan(0);
    const after = await tranche.programs.retrieve(program.id);
    expect(after.balances).toEqual({ available: 100, reserved: 0, disbursing: 0, disbursed: 0, returned: 0 });
    expect((await tranche.userTasks.list({ programId: program.id })).data).toEqual([]);
  });

  it('validation_error names the field: a third decimal is rejected', async () => {
    const { program, user } = await programWithUser(1000);
    const error = await failure(() =>
      tranche.tasks.assign({ programId: program.id, userId: user.id, monetaryValue: 500.001 }),
    );
    expect(error).toMatchObject({ status: 400, code: 'validation_error', param: 'monetaryValue' });
    expect(error.requestId).toMatch(/^req_/);
    expect((await tranche.programs.retrieve(program.id)).balances.reserved).toBe(0);
  });

  it('validation_error from the schema names the field', async () => {
    const error = await failure(() =>
      tranche.programs.create({ name: 'No cap', totalAwardPool: 10 } as Parameters<typeof tranche.programs.create>[0]),
    );
    expect(error).toMatchObject({ status: 400, code: 'validation_error', param: 'maxParticipants' });
  });

  it('not_found: 404 with a request id', async () => {
    const error = await failure(() => tranche.programs.retrieve('prg_does_not_exist'));
    expect(error).toMatchObject({ status: 404, code: 'not_found', param: undefined, idempotencyKey: undefined });
    expect(error.requestId).toMatch(/^req_/);
  });

  it('an id cannot escape its path segment', async () => {
    const error = await failure(() => tranche.users.retrieve('../programs'));
    expect(error).toMatchObject({ status: 404, code: 'not_found' });
  });

  it('invalid_state: completing a cancelled milestone', async () => {
    const { program, user } = await programWithUser(1000);
    const userTask = await tranche.tasks.assign({ programId: program.id, userId: user.id, monetaryValue: 100 });
    await tranche.userTasks.cancel(userTask.id);
    const error = await failure(() => tranche.userTasks.complete(userTask.id));
    expect(error).toMatchObject({ status: 409, code: 'invalid_state' });
  });

  it('unauthorized: a wrong API key', async () => {
    const stranger = new Tranche({ apiKey: 'sk_not_a_key', baseUrl: server.baseUrl });
    const error = await failure(() => stranger.programs.list());
    expect(error).toMatchObject({ status: 401, code: 'unauthorized' });
  });

  it('another tenant’s object is not_found', async () => {
    const { program } = await programWithUser(10);
    const other = await newOrganization(server, 'Other Org');
    const outsider = new Tranche({ apiKey: other.apiKey, baseUrl: server.baseUrl });
    const error = await failure(() => outsider.programs.retrieve(program.id));
    expect(error).toMatchObject({ status: 404, code: 'not_found' });
  });

  it('network failure: TrancheConnectionError with code network_error', async () => {
    // A port nothing listens on: take one from a closed server.
    const { createServer } = await import('node:net');
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as import('node:net').AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const offline = new Tranche({ apiKey: 'sk_test', baseUrl: `http://127.0.0.1:${port}`, maxNetworkRetries: 0 });
    const error = await failure(() => offline.programs.create({ name: 'x', totalAwardPool: 1, maxParticipants: 1 }));
    expect(error).toBeInstanceOf(TrancheConnectionError);
    expect(error).toMatchObject({ code: 'network_error', status: undefined, timedOut: false });
    expect(error.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('client configuration', () => {
  it('rejects a missing key, a bad base URL and out-of-range limits', () => {
    expect(() => new Tranche({ apiKey: '', baseUrl: server.baseUrl })).toThrow(TypeError);
    expect(() => new Tranche({ apiKey: 'sk', baseUrl: 'not a url' })).toThrow(TypeError);
    expect(() => new Tranche({ apiKey: 'sk', baseUrl: 'ftp://example.com' })).toThrow(TypeError);
    expect(() => new Tranche({ apiKey: 'sk', baseUrl: server.baseUrl, maxNetworkRetries: 11 })).toThrow(TypeError);
    expect(() => new Tranche({ apiKey: 'sk', baseUrl: server.baseUrl, maxNetworkRetries: 1.5 })).toThrow(TypeError);
    expect(() => new Tranche({ apiKey: 'sk', baseUrl: server.baseUrl, timeoutMs: 0 })).toThrow(TypeError);
  });

  it('rejects an empty id before sending anything', async () => {
    await expect(tranche.programs.retrieve('')).rejects.toThrow(TypeError);
  });
});
