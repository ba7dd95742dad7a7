import { Tranche } from '@tranche/sdk';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { newOrganization, startTestServer, type TestServer } from '../../../apps/server/test/harness.js';
import { quickstart } from '../../../examples/quickstart.js';

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

it('runs the seed quickstart unchanged: budget reserved → milestone verified → balances', async () => {
  const { program, user, userTask, completed, funded } = await quickstart(tranche);

  expect(program).toMatchObject({ name: 'OSHA completion funding', totalAwardPool: 50000, maxParticipants: 100 });
  expect(program.balances).toEqual({ available: 50000, reserved: 0, disbursing: 0, disbursed: 0, returned: 0 });
  expect(user).toMatchObject({ highnoteAccountHolderId: 'ach_1842' });
  expect(userTask).toMatchObject({ status: 'assigned', monetaryValue: 500, programId: program.id, userId: user.id });
  expect(userTask.id).toMatch(/^ut_/);
  expect(completed).toMatchObject({ id: userTask.id, status: 'completed', completedAmount: 500 });
  expect(completed.disbursementId).toMatch(/^dsb_/);

  const { available, reserved, disbursing, disbursed, returned } = funded.balances;
  expect(available).toBe(49500);
  expect(reserved).toBe(0);
  expect(disbursing + disbursed).toBe(500);
  expect(funded.totalAwardPool).toBe(available + reserved + disbursing + disbursed + returned);
  expect(funded.participantCount).toBe(1);

  // Every dollar on its way to the card ties back to the milestone.
  const disbursement = await tranche.disbursements.retrieve(completed.disbursementId ?? '');
  expect(disbursement).toMatchObject({ userTaskId: userTask.id, programId: program.id, userId: user.id, amount: 500 });
});
