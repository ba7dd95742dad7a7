import { Type } from 'typebox';
import { registerTargetRequest } from '../notifications/subscriptions.js';
import type { Db } from '../platform/db.js';
import { ApiError, ok } from '../platform/errors.js';
import type { App } from '../platform/http.js';
import { errorResponses, OneOf } from '../platform/schemas.js';
import { mutate } from '../work/mutate.js';
import {
  type Configuration,
  ConfigurationSchema,
  highnoteGraphqlUrls,
  issuerEnvironments,
  presentConfiguration,
} from './configuration.js';
import { coverageOf, type Issuers, storeConfiguration } from './service.js';

export function configurationRoutes(app: App, deps: { db: Db; issuers: Issuers }): void {
  const { db, issuers } = deps;
  app.addSchema(ConfigurationSchema);
  const config = { auth: 'organization' as const };
  const ConfigurationRef = Type.Ref('Configuration');

  /** The configuration with the funding balance read now and the commitments beside it. */
  async function present(organizationId: string, configuration: Configuration) {
    const connection = issuers.connectionOf(configuration);
    let balance: bigint | null = null;
    if (connection.ok) {
      const read = await issuers.client(connection.value).availableCashCents(configuration.fundingFinancialAccountId);
      if (read.ok) balance = read.value;
    }
    return presentConfiguration(configuration, await coverageOf(db, organizationId, balance));
  }

  app.get(
    '/v1/configurations',
    {
      config,
      schema: {
        tags: ['configuration'],
        summary: 'The Highnote configuration, with the funding balance beside the outstanding commitments',
        description:
          'In the default sandbox mode an organization is configured on first use against the local Highnote sandbox (its own card product and a funded funding account).',
        response: { 200: ConfigurationRef, ...errorResponses(409, 502) },
      },
    },
    async (request) => {
      const issuer = await issuers.forOrganization(request.organizationId);
      if (!issuer.ok) throw ApiError.of(issuer.failure);
      return present(request.organizationId, issuer.value.configuration);
    },
  );

  app.put(
    '/v1/configurations',
    {
      config,
      schema: {
        tags: ['configuration'],
        summary: 'Set the Highnote environment, API key, card product and funding account',
        description:
          'The key is checked against Highnote (and the funding account read with it) before anything is stored; it is kept encrypted and never returned.',
        body: Type.Object(
          {
            highnote: Type.Object(
              {
                environment: OneOf(issuerEnvironments, {
                  description: 'test or live Highnote, or sandbox (a Highnote sandbox at graphqlUrl).',
                  examples: ['test'],
                }),
                apiKey: Type.String({
                  minLength: 8,
                  maxLength: 500,
                  description: 'Highnote API key (sk_test_… or sk_live_…; a sandbox takes any).',
                  examples: ['sk_test_5fQ2example'],
                }),
                graphqlUrl: Type.Optional(
                  Type.String({
                    format: 'uri',
                    maxLength: 2000,
                    description: 'Endpoint; defaults to Highnote’s for test and live, required for sandbox.',
                    examples: ['https://api.us.test.highnote.com/graphql'],
                  }),
                ),
                cardProductId: Type.String({
                  minLength: 1,
                  maxLength: 500,
                  description: 'Card product participants are issued.',
                  examples: ['cp_9xWq7'],
                }),
                fundingFinancialAccountId: Type.String({
                  minLength: 1,
                  maxLength: 500,
                  description: 'The card product’s funding account.',
                  examples: ['fa_funding_01'],
                }),
              },
              { additionalProperties: false, description: 'The Highnote card program to fund cards through.' },
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: ConfigurationRef, ...errorResponses(409, 422, 503) },
      },
    },
    async (request, reply) => {
      const input = request.body.highnote;
      const graphqlUrl =
        input.graphqlUrl ?? (input.environment === 'sandbox' ? undefined : highnoteGraphqlUrls[input.environment]);
      if (graphqlUrl === undefined) {
        throw new ApiError('validation_error', 'graphqlUrl is required for a sandbox', 'highnote.graphqlUrl');
      }
      const result = issuers.seal(input.apiKey);
      if (!result.ok) throw ApiError.of(result.failure);
      const sealed = result.value;
      // Checked before anything is written: the key opens the endpoint and reads the funding account.
      const connection = issuers.connectionOf({ graphqlUrl, apiKeyCiphertext: sealed });
      if (!connection.ok) throw ApiError.of(connection.failure);
      const client = issuers.client(connection.value);
      const balance = await client.availableCashCents(input.fundingFinancialAccountId);
      if (!balance.ok) {
        const failure = balance.failure;
        if (failure.kind === 'unauthorized') {
          throw new ApiError('validation_error', 'Highnote refused this API key', 'highnote.apiKey');
        }
        if (failure.kind === 'unexpected' || failure.kind === 'rejected') {
          throw new ApiError(
            'validation_error',
            `The funding account could not be read: ${failure.message}`,
            'highnote.fundingFinancialAccountId',
          );
        }
        // Checked with what the request gave: an endpoint that does not answer is the request's to fix.
        throw new ApiError(
          'validation_error',
          `Highnote could not be reached at ${graphqlUrl}: ${failure.message}`,
          'highnote.graphqlUrl',
        );
      }
      return mutate(db, request, reply, 200, async (unit) => {
        const stored = await storeConfiguration(unit, {
          environment: input.environment,
          graphqlUrl,
          apiKeyCiphertext: sealed,
          apiKeyLast4: input.apiKey.slice(-4),
          cardProductId: input.cardProductId,
          fundingFinancialAccountId: input.fundingFinancialAccountId,
        });
        const presented = presentConfiguration(stored, await coverageOf(unit.tx, unit.organizationId, balance.value));
        unit.emit('configuration.updated', presented);
        // The notification target follows the configuration; registering it is the job's, so a
        // Highnote that refuses it never fails the configuration (polling still works).
        if (issuers.receivesNotifications()) unit.enqueue(registerTargetRequest(unit.organizationId));
        return ok(presented);
      });
    },
  );
}
