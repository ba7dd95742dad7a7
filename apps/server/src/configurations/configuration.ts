import type { Selectable } from 'kysely';
import { Type } from 'typebox';
import { dollars, isoRequired } from '../platform/present.js';
import type { IssuerConfigurationsTable } from '../platform/schema.js';
import { BalanceDollars, Nullable, ObjectKind, OneOf, Timestamp } from '../platform/schemas.js';

/** An organization's card platform configuration, and how the API presents it (never its key). */

export const issuerEnvironments = ['sandbox', 'test', 'live'] as const;
export type IssuerEnvironment = (typeof issuerEnvironments)[number];

/** Highnote's endpoints per environment; a sandbox names its own. */
export const highnoteGraphqlUrls: Record<Exclude<IssuerEnvironment, 'sandbox'>, string> = {
  test: 'https://api.us.test.highnote.com/graphql',
  live: 'https://api.us.highnote.com/graphql',
};

export interface Configuration {
  organizationId: string;
  environment: IssuerEnvironment;
  graphqlUrl: string;
  /** Sealed (see `platform/secrets.ts`); null for the embedded sandbox, which takes any key. */
  apiKeyCiphertext: string | null;
  apiKeyLast4: string | null;
  cardProductId: string;
  fundingFinancialAccountId: string;
  createdAt: Date;
  updatedAt: Date;
}

export function configurationOf(row: Selectable<IssuerConfigurationsTable>): Configuration {
  return {
    organizationId: row.organization_id,
    environment: row.environment,
    graphqlUrl: row.graphql_url,
    apiKeyCiphertext: row.api_key_ciphertext,
    apiKeyLast4: row.api_key_last4,
    cardProductId: row.card_product_id,
    fundingFinancialAccountId: row.funding_financial_account_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** What the organization owes its participants and what its funding account holds, in cents. */
export interface Coverage {
  reservedCents: bigint;
  inTransitCents: bigint;
  /** The funding account's available cash; null when Highnote could not be read. */
  fundingBalanceCents: bigint | null;
  warnings: string[];
}

export const ConfigurationSchema = Type.Object(
  {
    object: ObjectKind('configuration'),
    highnote: Type.Object(
      {
        environment: OneOf(issuerEnvironments, {
          description: 'sandbox (a local Highnote sandbox), test or live.',
          examples: ['test'],
        }),
        graphqlUrl: Type.String({
          description: 'Highnote GraphQL endpoint.',
          examples: ['https://api.us.test.highnote.com/graphql'],
        }),
        cardProductId: Type.String({ description: 'Card product participants are issued.', examples: ['cp_9xWq7'] }),
        fundingFinancialAccountId: Type.String({
          description: 'Product funding account cards are funded from.',
          examples: ['fa_funding_01'],
        }),
        apiKeyLast4: Nullable(
          Type.String({
            description: 'Last four characters of the stored API key; the key is never returned.',
            examples: ['x9Qa'],
          }),
        ),
        fundingBalance: Nullable(
          BalanceDollars(
            'Available cash in the funding account, read from Highnote now; null when it could not be read.',
            250000,
          ),
        ),
        commitments: Type.Object(
          {
            reserved: BalanceDollars('Reserved for assigned milestones across every program.', 1500),
            inTransit: BalanceDollars('Verified milestones whose card funding has not settled.', 500),
            total: BalanceDollars('reserved + inTransit.', 2000),
          },
          { description: 'What the organization has promised participants and not yet paid.' },
        ),
        warnings: Type.Array(Type.String(), {
          description: 'Problems worth acting on, e.g. a funding balance below the commitments.',
          examples: [[]],
        }),
      },
      { description: 'The Highnote card program this organization funds cards through.' },
    ),
    createdAt: Timestamp('Configured.'),
    updatedAt: Timestamp('Last changed.'),
  },
  { $id: 'Configuration' },
);

export function presentConfiguration(configuration: Configuration, coverage: Coverage) {
  const total = coverage.reservedCents + coverage.inTransitCents;
  return {
    object: 'configuration' as const,
    highnote: {
      environment: configuration.environment,
      graphqlUrl: configuration.graphqlUrl,
      cardProductId: configuration.cardProductId,
      fundingFinancialAccountId: configuration.fundingFinancialAccountId,
      apiKeyLast4: configuration.apiKeyLast4,
      fundingBalance: coverage.fundingBalanceCents === null ? null : dollars(coverage.fundingBalanceCents),
      commitments: {
        reserved: dollars(coverage.reservedCents),
        inTransit: dollars(coverage.inTransitCents),
        total: dollars(total),
      },
      warnings: coverage.warnings,
    },
    createdAt: isoRequired(configuration.createdAt),
    updatedAt: isoRequired(configuration.updatedAt),
  };
}
