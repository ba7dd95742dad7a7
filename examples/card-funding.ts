/**
 * Cards and funding, end to end, against a server in its default sandbox mode: a participant from
 * person details (Tranche creates their Highnote account holder), an application followed to
 * approval, a virtual card, then a program with a $50,000 pool and a $500 milestone assigned and
 * completed, followed until the transfer to the card settles.
 *
 *   TRANCHE_API_KEY=sk_… TRANCHE_BASE_URL=http://127.0.0.1:3000 npx tsx examples/card-funding.ts
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Tranche } from '@tranche/sdk';

/** How long Highnote may take to decide the application, in milliseconds. */
export const approvalTimeoutMs = 30_000;
/** How long the transfer to the card may take to settle, in milliseconds. */
export const fundingTimeoutMs = 30_000;
/** The pause between two reads while waiting, in milliseconds. */
export const pollIntervalMs = 250;

/**
 * Reads `read()` every `pollIntervalMs` until `settled` holds for what it returned, and returns
 * that; after `timeoutMs` it gives up with an error naming `what`. Highnote decides applications
 * and settles transfers on its own time, so the example waits for them rather than assuming; in
 * production, the `application.*` and `usertask.*` events say the same without polling.
 *
 * @example
 * ```ts
 * const application = await waitFor(
 *   () => tranche.applications.retrieve('app_123'),
 *   (read) => read.status === 'approved' || read.status === 'denied',
 *   { what: 'the application to be decided', timeoutMs: 30_000 },
 * );
 * ```
 */
export async function waitFor<Value>(
  read: () => Promise<Value>,
  settled: (value: Value) => boolean,
  options: { what: string; timeoutMs: number },
): Promise<Value> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await read();
    if (settled(value)) return value;
    if (Date.now() >= deadline) {
      throw new Error(`Timed out after ${options.timeoutMs} ms waiting for ${options.what}: ${JSON.stringify(value)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
  }
}

/**
 * Runs the card flow against the API `tranche` points at and returns every object it made. The
 * card carries its last four digits only; no call of the API returns a card number.
 *
 * @example
 * ```ts
 * const { userTask, disbursement, card } = await cardFunding(
 *   new Tranche({ apiKey: 'sk_…', baseUrl: 'http://127.0.0.1:3000' }),
 * );
 * console.log(userTask.status, disbursement.status, disbursement.amount, card.last4); // funded settled 500 '4242'
 * ```
 */
export async function cardFunding(tranche: Tranche) {
  // The participant, from person details: Tranche creates the Highnote account holder. The SSN
  // goes to Highnote only; Tranche never stores or returns it.
  const user = await tranche.users.create({
    firstName: 'Ada',
    lastName: 'Lovelace',
    email: 'ada@example.com',
    phoneNumber: '+14155550100',
    dateOfBirth: '1990-12-10',
    address: { line1: '123 Main St', city: 'San Francisco', state: 'CA', postalCode: '94105', country: 'USA' },
    ssn: '123-45-6789',
  });

  // The application (KYC), with the moment the participant accepted the cardholder agreement.
  const applied = await tranche.applications.create({
    userId: user.id,
    consent: { acceptedAt: new Date().toISOString() },
  });
  const application = await waitFor(
    () => tranche.applications.retrieve(applied.id),
    (read) => read.status === 'approved' || read.status === 'denied' || read.status === 'closed',
    { what: `application ${applied.id} to be decided`, timeoutMs: approvalTimeoutMs },
  );
  if (application.status !== 'approved') {
    throw new Error(`Application ${application.id} was ${application.status}: ${application.denialReason ?? ''}`);
  }

  // A virtual card, active at once, on the financial account the approval opened.
  const card = await tranche.cards.create({ userId: user.id, formFactor: 'virtual' });

  const { highnote } = await tranche.configurations.retrieve();
  const program = await tranche.programs.create({
    cardProductId: highnote.cardProductId,
    name: 'OSHA completion funding',
    totalAwardPool: 50000,
    maxParticipants: 100,
  });

  // Budget reserved, then milestone verified: the $500 is on its way to the card.
  const assigned = await tranche.tasks.assign({ programId: program.id, userId: user.id, monetaryValue: 500 });
  const completed = await tranche.userTasks.complete(assigned.id);

  const userTask = await waitFor(
    () => tranche.userTasks.retrieve(completed.id),
    (read) => read.status === 'funded' || read.status === 'funding_failed' || read.status === 'cancelled',
    { what: `user task ${completed.id} to be funded`, timeoutMs: fundingTimeoutMs },
  );
  if (userTask.disbursementId === null) throw new Error(`User task ${userTask.id} has no disbursement`);
  const disbursement = await tranche.disbursements.retrieve(userTask.disbursementId);
  if (userTask.status !== 'funded') {
    throw new Error(`User task ${userTask.id} is ${userTask.status}: ${disbursement.failureReason ?? ''}`);
  }
  return { user, application, card, program, userTask, disbursement };
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
  const { user, application, card, program, userTask, disbursement } = await cardFunding(tranche);
  console.log(`Participant ${user.id}: Highnote account holder ${user.highnoteAccountHolderId}`);
  console.log(
    `1. Application approved  ${application.id}: financial account ${application.highnoteFinancialAccountId}`,
  );
  console.log(`2. Virtual card issued   ${card.id}: ${card.network} •••• ${card.last4} (${card.status})`);
  console.log(`3. Milestone verified    ${userTask.id} in ${program.id}: $${userTask.completedAmount}`);
  console.log(
    `4. Card funded           ${disbursement.id}: $${disbursement.amount} ${disbursement.status} (transfer ${disbursement.highnoteTransferId}); user task ${userTask.status}`,
  );
}

// Run as a script only; tests import `cardFunding` and bring their own client.
const invokedPath = process.argv[1];
if (invokedPath !== undefined && import.meta.url === pathToFileURL(resolve(invokedPath)).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
