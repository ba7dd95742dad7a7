/**
 * The seed quickstart, unchanged apart from building the client: a program with a $50,000 award
 * pool for 100 participants, one participant, a $500 milestone assigned (budget reserved) and
 * completed (milestone verified), then the program's balances.
 *
 *   TRANCHE_API_KEY=sk_… TRANCHE_BASE_URL=http://127.0.0.1:3000 npx tsx examples/quickstart.ts
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Tranche } from '@tranche/sdk';

/**
 * Runs the quickstart against the API `tranche` points at and returns every object it made.
 *
 * @example
 * ```ts
 * const { funded } = await quickstart(new Tranche({ apiKey: 'sk_…', baseUrl: 'http://127.0.0.1:3000' }));
 * console.log(funded.balances); // { available: 49500, reserved: 0, disbursing: 500, disbursed: 0, returned: 0 }
 * ```
 */
export async function quickstart(tranche: Tranche) {
  const program = await tranche.programs.create({
    cardProductId: 'cp_1234',
    name: 'OSHA completion funding',
    totalAwardPool: 50000,
    maxParticipants: 100,
  });

  const user = await tranche.users.create({
    highnoteAccountHolderId: 'ach_1842',
  });

  // Budget reserved: $500 of the pool is held for this participant's milestone.
  const userTask = await tranche.tasks.assign({
    programId: program.id,
    userId: user.id,
    monetaryValue: 500,
  });

  // Milestone verified: the reservation is released toward the participant's card.
  const completed = await tranche.userTasks.complete(userTask.id);

  const funded = await tranche.programs.retrieve(program.id);
  return { program, user, userTask, completed, funded };
}

const defaultBaseUrl = 'http://127.0.0.1:3000';

async function main(): Promise<void> {
  const apiKey = process.env.TRANCHE_API_KEY;
  if (apiKey === undefined || apiKey === '') {
    console.error(
      'Set TRANCHE_API_KEY to your organization’s API key (and TRANCHE_BASE_URL if not on 127.0.0.1:3000).',
    );
    process.exitCode = 2;
    return;
  }
  const tranche = new Tranche({ apiKey, baseUrl: process.env.TRANCHE_BASE_URL || defaultBaseUrl });
  const { program, user, userTask, completed, funded } = await quickstart(tranche);
  const { available, reserved, disbursing, disbursed, returned } = funded.balances;
  console.log(
    `Program ${program.id} “${program.name}”: $${program.totalAwardPool} pool, ${program.maxParticipants} seats`,
  );
  console.log(`1. Budget reserved     ${userTask.id} for ${user.id}: $${userTask.monetaryValue} (${userTask.status})`);
  console.log(
    `2. Milestone verified  ${completed.id}: $${completed.completedAmount} released (${completed.status}), disbursement ${completed.disbursementId}`,
  );
  console.log(
    `3. Balances            available $${available} · reserved $${reserved} · disbursing $${disbursing} · disbursed $${disbursed} · returned $${returned}`,
  );
}

// Run as a script only; tests import `quickstart` and bring their own client.
const invokedPath = process.argv[1];
if (invokedPath !== undefined && import.meta.url === pathToFileURL(resolve(invokedPath)).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
