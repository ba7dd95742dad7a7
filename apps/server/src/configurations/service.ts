import { sql } from 'kysely';
import type { IssuerConnection, IssuerFailure } from '../issuer/graphql.js';
import { highnoteAdapter } from '../issuer/highnote.js';
import { registerTargetRequest } from '../notifications/subscriptions.js';
import type { Db } from '../platform/db.js';
import { type Failure, fail, ok, type Result } from '../platform/errors.js';
import { enqueueJobs } from '../platform/jobs.js';
import { dollars } from '../platform/present.js';
import { openSecret, sealSecret } from '../platform/secrets.js';
import type { UnitOfWork } from '../work/unit.js';
import { type Configuration, type Coverage, configurationOf, type IssuerEnvironment } from './configuration.js';

/**
 * Where each organization reaches its card platform. In the default `sandbox` mode an
 * organization with no configuration is configured on first need against the local sandbox: its
 * own card product, and a funding account funded by a simulated deposit. With
 * `TRANCHE_ISSUER=highnote` an organization must `PUT /v1/configurations` first.
 */

/** What the process knows about issuers, from its configuration. */
export interface IssuerSetup {
  /** The local sandbox's origin (its GraphQL endpoint is `/graphql`), in sandbox mode. */
  sandboxUrl?: string | undefined;
  encryptionKey?: Buffer | undefined;
  /** Overrides of the transport's limits (tests that must not wait seconds). */
  limits?: Omit<IssuerConnection, 'graphqlUrl' | 'apiKey'>;
  /**
   * Where Highnote reaches this service (TRANCHE_PUBLIC_URL): notifications are registered at
   * `<publicUrl>/v1/webhooks`. Without it no notification target is registered.
   */
  publicUrl?: string | undefined;
}

/** Any key opens the local sandbox; this one says where a request came from in its logs. */
export const sandboxApiKey = 'sk_test_tranche_local_sandbox';
/** What a sandbox organization's funding account starts with: $1,000,000. */
export const sandboxInitialDepositCents = 100_000_000n;

export type HighnoteClient = ReturnType<typeof highnoteAdapter>;

/** An organization's configuration with a client for it. */
export interface OrganizationIssuer {
  configuration: Configuration;
  highnote: HighnoteClient;
  connection: IssuerConnection;
}

export async function readConfiguration(db: Db, organizationId: string): Promise<Configuration | undefined> {
  const row = await db
    .selectFrom('issuer_configurations')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .executeTakeFirst();
  return row === undefined ? undefined : configurationOf(row);
}

/** A failed issuer call in the API's words: Highnote refusing the input is the caller's to fix. */
export function issuerFailure(failure: IssuerFailure, param?: string): Failure {
  switch (failure.kind) {
    case 'rejected': {
      const first = failure.errors[0];
      return {
        code: 'validation_error',
        message: `Highnote refused the request: ${first?.description ?? failure.message}`,
        ...(param === undefined ? {} : { param }),
      };
    }
    case 'unauthorized':
      return { code: 'issuer_error', message: 'Highnote refused the configured API key' };
    case 'access_denied':
      return { code: 'issuer_error', message: `Highnote denied access: ${failure.message}` };
    default:
      return { code: 'issuer_error', message: `Highnote could not be reached: ${failure.message}` };
  }
}

export class Issuers {
  #publicUrl: string | undefined;

  constructor(
    private readonly db: Db,
    private readonly setup: IssuerSetup,
  ) {
    this.#publicUrl = setup.publicUrl;
  }

  /** Sets where Highnote reaches this service, once it is known (a server listening on port 0). */
  usePublicUrl(publicUrl: string): void {
    this.#publicUrl = publicUrl.replace(/\/+$/, '');
  }

  /** The URL an organization's notification target posts to; undefined when none is known. */
  notificationUri(organizationId: string): string | undefined {
    if (this.#publicUrl === undefined) return undefined;
    return `${this.#publicUrl}/v1/webhooks?organizationId=${encodeURIComponent(organizationId)}`;
  }

  /** Whether notifications can be subscribed to: a public URL, and a key to seal signing keys with. */
  receivesNotifications(): boolean {
    return this.#publicUrl !== undefined && this.canSeal();
  }

  canSeal(): boolean {
    return this.setup.encryptionKey !== undefined;
  }

  /** Opens a value sealed by `seal`. */
  open(sealed: string): Result<string> {
    if (this.setup.encryptionKey === undefined) {
      return fail('service_unavailable', 'TRANCHE_ENCRYPTION_KEY is not set, so a stored secret cannot be read');
    }
    return ok(openSecret(this.setup.encryptionKey, sealed));
  }

  connectionOf(configuration: Pick<Configuration, 'graphqlUrl' | 'apiKeyCiphertext'>): Result<IssuerConnection> {
    let apiKey = sandboxApiKey;
    if (configuration.apiKeyCiphertext !== null) {
      if (this.setup.encryptionKey === undefined) {
        return fail('service_unavailable', 'TRANCHE_ENCRYPTION_KEY is not set, so the stored API key cannot be read');
      }
      apiKey = openSecret(this.setup.encryptionKey, configuration.apiKeyCiphertext);
    }
    return ok({ graphqlUrl: configuration.graphqlUrl, apiKey, ...this.setup.limits });
  }

  client(connection: IssuerConnection): HighnoteClient {
    return highnoteAdapter(connection);
  }

  /** The organization's issuer, configuring the local sandbox for it when that is the mode. */
  async forOrganization(organizationId: string): Promise<Result<OrganizationIssuer>> {
    const stored = await readConfiguration(this.db, organizationId);
    const configuration = stored === undefined ? await this.provisionSandbox(organizationId) : ok(stored);
    if (configuration === undefined) {
      return fail('invalid_state', 'Highnote is not configured for this organization: PUT /v1/configurations first');
    }
    if (!configuration.ok) return configuration;
    // A configuration Tranche provisioned itself (no key of its own) follows the local sandbox to
    // wherever it listens now, so a restart on other ports keeps working.
    if (configuration.value.apiKeyCiphertext === null && this.setup.sandboxUrl !== undefined) {
      configuration.value.graphqlUrl = `${this.setup.sandboxUrl}/graphql`;
    }
    const connection = this.connectionOf(configuration.value);
    if (!connection.ok) return connection;
    return ok({
      configuration: configuration.value,
      connection: connection.value,
      highnote: this.client(connection.value),
    });
  }

  /**
   * Gives an organization its own card product on the local sandbox, funds its funding account,
   * and stores that configuration. Two requests racing here may each make a card product; the
   * first stored wins and the other is never used.
   */
  private async provisionSandbox(organizationId: string): Promise<Result<Configuration> | undefined> {
    const origin = this.setup.sandboxUrl;
    if (origin === undefined) return undefined;
    let product: { cardProductId: string; fundingFinancialAccountId: string };
    try {
      const response = await fetch(`${origin}/_sandbox/card-products`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
        signal: AbortSignal.timeout(this.setup.limits?.requestTimeoutMs ?? 10_000),
      });
      if (!response.ok) return fail('issuer_error', `The local Highnote sandbox answered ${response.status}`);
      product = (await response.json()) as typeof product;
    } catch (error) {
      return fail('issuer_error', `The local Highnote sandbox could not be reached: ${(error as Error).message}`);
    }
    const connection: IssuerConnection = {
      graphqlUrl: `${origin}/graphql`,
      apiKey: sandboxApiKey,
      ...this.setup.limits,
    };
    const deposit = await this.client(connection).simulateDeposit({
      toFinancialAccountId: product.fundingFinancialAccountId,
      amountCents: sandboxInitialDepositCents,
    });
    if (!deposit.ok) return { ok: false, failure: issuerFailure(deposit.failure) };
    const now = new Date();
    await this.db
      .insertInto('issuer_configurations')
      .values({
        organization_id: organizationId,
        environment: 'sandbox',
        graphql_url: connection.graphqlUrl,
        api_key_ciphertext: null,
        api_key_last4: null,
        card_product_id: product.cardProductId,
        funding_financial_account_id: product.fundingFinancialAccountId,
        created_at: now,
        updated_at: now,
      })
      .onConflict((conflict) => conflict.column('organization_id').doNothing())
      .execute();
    // Notifications are subscribed to by a job: a failure to register never fails the configuration.
    if (this.receivesNotifications()) await enqueueJobs(this.db, [registerTargetRequest(organizationId)], now);
    const stored = await readConfiguration(this.db, organizationId);
    return stored === undefined ? fail('not_found', 'The organization is gone') : ok(stored);
  }

  /** Seals an API key for storage; fails when the process has no encryption key. */
  seal(apiKey: string): Result<string> {
    if (this.setup.encryptionKey === undefined) {
      return fail('service_unavailable', 'TRANCHE_ENCRYPTION_KEY is not set, so an API key cannot be stored');
    }
    return ok(sealSecret(this.setup.encryptionKey, apiKey));
  }
}

export interface ConfigurationInput {
  environment: IssuerEnvironment;
  graphqlUrl: string;
  apiKeyCiphertext: string | null;
  apiKeyLast4: string | null;
  cardProductId: string;
  fundingFinancialAccountId: string;
}

/** Stores the organization's configuration (a PUT: the whole of it). */
export async function storeConfiguration(unit: UnitOfWork, input: ConfigurationInput): Promise<Configuration> {
  const row = {
    environment: input.environment,
    graphql_url: input.graphqlUrl,
    api_key_ciphertext: input.apiKeyCiphertext,
    api_key_last4: input.apiKeyLast4,
    card_product_id: input.cardProductId,
    funding_financial_account_id: input.fundingFinancialAccountId,
    updated_at: unit.now,
  };
  const stored = await unit.tx
    .insertInto('issuer_configurations')
    .values({ organization_id: unit.organizationId, created_at: unit.now, ...row })
    .onConflict((conflict) => conflict.column('organization_id').doUpdateSet(row))
    .returningAll()
    .executeTakeFirstOrThrow();
  return configurationOf(stored);
}

/**
 * What the organization has promised and not paid, against what its funding account holds: the
 * reservations on every pool and what sits in transit to cards.
 */
export async function coverageOf(
  db: Db,
  organizationId: string,
  fundingBalanceCents: bigint | null,
): Promise<Coverage> {
  const totals = await sql<{ reserved: string | null; in_transit: string | null }>`
    SELECT
      sum(debits_pending_cents) FILTER (WHERE kind = 'pool') AS reserved,
      sum(credits_posted_cents - debits_posted_cents) FILTER (WHERE kind = 'in_transit') AS in_transit
    FROM ledger_accounts WHERE organization_id = ${organizationId} AND kind IN ('pool', 'in_transit')`.execute(db);
  const row = totals.rows[0];
  const reservedCents = BigInt(row?.reserved ?? 0);
  const inTransitCents = BigInt(row?.in_transit ?? 0);
  const warnings: string[] = [];
  if (fundingBalanceCents === null) {
    warnings.push('The funding account balance could not be read from Highnote.');
  } else if (fundingBalanceCents < reservedCents + inTransitCents) {
    warnings.push(
      `The funding account holds $${dollars(fundingBalanceCents)}, less than the $${dollars(reservedCents + inTransitCents)} reserved or in transit.`,
    );
  }
  return { reservedCents, inTransitCents, fundingBalanceCents, warnings };
}

/**
 * Highnote operations without an `idempotencyKey` (an account holder, an application, a physical
 * order) are deduplicated by the request that asked for them: what Highnote created is recorded
 * under the request's `Idempotency-Key` as soon as it answers, and a retry of that request finds
 * it here instead of creating a second one.
 */
export async function recalledIssuerRequest(
  db: Db,
  organizationId: string,
  operation: string,
  requestKey: string | undefined,
): Promise<{ issuerId: string; localId: string | null } | undefined> {
  if (requestKey === undefined) return undefined;
  const row = await db
    .selectFrom('issuer_requests')
    .select(['issuer_id', 'local_id'])
    .where('organization_id', '=', organizationId)
    .where('operation', '=', operation)
    .where('request_key', '=', requestKey)
    .executeTakeFirst();
  return row === undefined ? undefined : { issuerId: row.issuer_id, localId: row.local_id };
}

export async function rememberIssuerRequest(
  db: Db,
  organizationId: string,
  operation: string,
  requestKey: string | undefined,
  created: { issuerId: string; localId: string | null },
): Promise<void> {
  if (requestKey === undefined) return;
  await db
    .insertInto('issuer_requests')
    .values({
      organization_id: organizationId,
      operation,
      request_key: requestKey,
      issuer_id: created.issuerId,
      local_id: created.localId,
      created_at: new Date(),
    })
    .onConflict((conflict) => conflict.columns(['organization_id', 'operation', 'request_key']).doNothing())
    .execute();
}
