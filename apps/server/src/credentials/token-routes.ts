import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import type { App } from '../platform/http.js';
import { errorResponses } from '../platform/schemas.js';
import { Scope } from './api-keys.js';
import { authenticateClient, grantClientCredentials, grantRefreshToken } from './clients.js';
import type { AccessTokenVerifier } from './tokens.js';

/** Longest `clientId:secret` pair read from HTTP Basic, and longest refresh token, in characters. */
const maxBasicCredentialsLength = 1_024;
const maxRefreshTokenLength = 200;
const grantTypes = ['client_credentials', 'refresh_token'] as const;

const TokenResponse = Type.Object(
  {
    accessToken: Type.String({
      description: 'A signed JWT: send it as `Authorization: Bearer <accessToken>`.',
      examples: ['eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjbGlfMDEifQ.c2ln'],
    }),
    refreshToken: Type.String({
      description:
        'Exchanges once for a new pair (`grant_type=refresh_token`, in the `refresh-token` header); lives 48 hours.',
      examples: ['rt_Jt3kq0mV1b8nYw5xHfA2cR7uLzP4sE6dG9iKoT1vX9Qa'],
    }),
    expiresIn: Type.Integer({ description: 'Seconds the access token lives.', examples: [3600] }),
    scope: Scope,
    tokenType: Type.Literal('bearer', { description: 'Always `bearer`.', examples: ['bearer'] }),
  },
  { description: 'An access token and its refresh token.' },
);

/** `clientId` and password from `Authorization: Basic …`, or undefined. */
function basicCredentialsOf(request: FastifyRequest): { clientId: string; password: string } | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header.trim());
  if (match?.[1] === undefined || match[1].length > maxBasicCredentialsLength) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { clientId: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

const unauthorized = (message = 'The client id or secret is not valid') => new ApiError('unauthorized', message);

/** `POST /v1/oauth2/token`: the OAuth2 token endpoint (client credentials and refresh token grants). */
export function tokenRoutes(
  app: App,
  deps: { db: Db; signingKey: Buffer | undefined; verifier: AccessTokenVerifier | undefined },
): void {
  const { db, signingKey, verifier } = deps;
  const tags = ['authentication'];
  const withoutEncryptionKey = () =>
    new ApiError('service_unavailable', 'TRANCHE_ENCRYPTION_KEY is not set, so OAuth2 tokens cannot be signed');

  app.post(
    '/v1/oauth2/token',
    {
      config: { auth: 'client' as const },
      schema: {
        tags,
        summary: 'Get an access token (OAuth2 client credentials or refresh token grant)',
        description:
          'HTTP Basic `clientId:clientSecret` (or `clientId:encodedClientSecret`). `grant_type=client_credentials` starts a token family; `grant_type=refresh_token` with the refresh token in the `refresh-token` header exchanges it, once, for a new pair: presenting a spent refresh token again revokes every token of its family. Access tokens live 1 hour, refresh tokens 48 hours. No `Idempotency-Key`: a retry gets a new pair.',
        security: [],
        querystring: Type.Object(
          {
            grant_type: Type.Union(
              grantTypes.map((grant) => Type.Literal(grant)),
              { description: 'The grant.', examples: ['client_credentials'] },
            ),
          },
          { additionalProperties: false },
        ),
        headers: Type.Object({
          'refresh-token': Type.Optional(
            Type.String({
              minLength: 1,
              maxLength: maxRefreshTokenLength,
              description: 'The refresh token, with `grant_type=refresh_token`.',
              examples: ['rt_Jt3kq0mV1b8nYw5xHfA2cR7uLzP4sE6dG9iKoT1vX9Qa'],
            }),
          ),
        }),
        response: { 200: TokenResponse, ...errorResponses(429) },
      },
    },
    async (request, reply) => {
      const basic = basicCredentialsOf(request);
      if (basic === undefined) throw unauthorized('Send "Authorization: Basic base64(clientId:clientSecret)"');
      // Charged before the secret is checked, so guessing a client's secret is rate limited too.
      app.authentication.charge(reply, basic.clientId);
      if (signingKey === undefined) throw withoutEncryptionKey();
      const client = await authenticateClient(db, basic.clientId, basic.password);
      if (client === undefined) throw unauthorized();
      reply.header('Cache-Control', 'no-store');
      if (request.query.grant_type === 'client_credentials') return grantClientCredentials(db, signingKey, client);
      const refreshToken = request.headers['refresh-token'];
      if (typeof refreshToken !== 'string') {
        throw new ApiError('validation_error', 'Send the refresh token in the refresh-token header', 'refresh-token');
      }
      const outcome = await grantRefreshToken(db, signingKey, client, refreshToken);
      if (outcome.ok) return outcome.pair;
      if (outcome.reason === 'reused') {
        verifier?.forgetFamily(outcome.familyId);
        throw unauthorized('The refresh token was already used; every token of its family is revoked');
      }
      throw unauthorized(`The refresh token is ${outcome.reason === 'unknown' ? 'not valid' : outcome.reason}`);
    },
  );
}
