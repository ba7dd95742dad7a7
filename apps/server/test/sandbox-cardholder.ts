import { randomUUID } from 'node:crypto';
import type { HighnoteAdapter } from '../src/issuer/highnote.js';

/**
 * Test setup through our own adapter against the sandbox: a card product whose funding account
 * holds `depositCents`, and an approved cardholder's financial account (and, when asked, an active
 * virtual card on it). Tests that exercise the adapter build on it instead of writing the
 * onboarding GraphQL again.
 */
export async function sandboxCardholder(
  sandboxUrl: string,
  adapter: HighnoteAdapter,
  options: { cardProductId: string; depositCents: bigint; withCard?: boolean },
): Promise<{ funding: string; card: string; paymentCardId: string | null }> {
  const response = await fetch(`${sandboxUrl}/_sandbox/card-products`, {
    method: 'POST',
    body: JSON.stringify({ cardProductId: options.cardProductId }),
  });
  const { fundingFinancialAccountId: funding } = (await response.json()) as { fundingFinancialAccountId: string };
  unwrap(await adapter.simulateDeposit({ toFinancialAccountId: funding, amountCents: options.depositCents }));
  const holder = unwrap(
    await adapter.createPersonAccountHolder({
      externalId: `test-${randomUUID()}`,
      givenName: 'Grace',
      familyName: 'Hopper',
      email: 'grace@example.com',
      dateOfBirth: '1985-12-09',
      address: { line1: '1 Main St', city: 'New York', state: 'NY', postalCode: '10001', country: 'USA' },
    }),
  );
  const applied = unwrap(
    await adapter.createApplication({
      accountHolderId: holder.id,
      cardProductId: options.cardProductId,
      consentAt: new Date(),
      ipAddress: null,
    }),
  );
  const deadline = Date.now() + 5_000;
  while (unwrap(await adapter.application(applied.id)).status !== 'APPROVED') {
    if (Date.now() > deadline) throw new Error(`application ${applied.id} was not approved`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const account = unwrap(
    await adapter.issueFinancialAccount({
      applicationId: applied.id,
      name: 'Grace',
      externalId: `fa-${randomUUID()}`,
      idempotencyKey: randomUUID(),
    }),
  );
  if (options.withCard !== true) return { funding, card: account.id, paymentCardId: null };
  const card = unwrap(
    await adapter.issueCard({
      financialAccountId: account.id,
      externalId: `card-${randomUUID()}`,
      activateOnCreate: true,
      idempotencyKey: randomUUID(),
      now: new Date(),
    }),
  );
  return { funding, card: account.id, paymentCardId: card.id };
}

function unwrap<T>(result: { ok: true; value: T } | { ok: false; failure: { message: string } }): T {
  if (!result.ok) throw new Error(result.failure.message);
  return result.value;
}
