import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError, ok } from '../platform/errors.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import {
  errorResponses,
  Id,
  ListOf,
  ListQuery,
  NullableTimestamp,
  ObjectKind,
  Timestamp,
} from '../platform/schemas.js';
import { mutate, presented } from '../work/mutate.js';
import { Scope } from './api-keys.js';
import {
  type ClientKeys,
  createClientCredential,
  getClientCredential,
  listClientCredentials,
  maxClientPasswordLength,
  minClientPasswordLength,
  newClientKeys,
  presentClientCredential,
  revokeClientCredential,
} from './clients.js';
import { mutateRevealingOnce } from './reveal.js';
import type { AccessTokenVerifier } from './tokens.js';

const clientFields = {
  id: Id('cli', 'Client credential id; the same as `clientId`.'),
  object: ObjectKind('client_credential'),
  clientId: Id('cli', 'The OAuth2 client id, the user name of HTTP Basic at the token endpoint.'),
  scope: Scope,
  last4: Type.String({ description: 'The last four characters of the client secret.', examples: ['x9Qa'] }),
  encodedPublicKey: Type.String({
    description: 'The client’s RSA public key: base64 of the DER SubjectPublicKeyInfo.',
    examples: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA…'],
  }),
  creationTimestamp: Type.Integer({
    description: 'Created, in milliseconds since the epoch.',
    examples: [1795600800000],
  }),
  createdAt: Timestamp('Created.'),
  revokedAt: NullableTimestamp('When the client was revoked; null while it works.'),
};
const ClientCredentialSchema = Type.Object(clientFields, {
  $id: 'ClientCredential',
  description: 'An OAuth2 client, without its secret.',
});
const ClientCredentialWithSecretSchema = Type.Object(
  {
    ...clientFields,
    clientSecret: Type.String({
      description:
        'The client secret, shown this once: the password of HTTP Basic at `POST /v1/oauth2/token`. A replay with the same `Idempotency-Key` shows its prefix and last four characters only.',
      examples: ['cs_Jt3kq0mV1b8nYw5xHfA2cR7uLzP4sE6dG9iKoT1vX9Qa'],
    }),
    encodedClientSecret: Type.String({
      description:
        'The client secret encrypted with RSA-OAEP (SHA-256) under `encodedPublicKey`, base64; also accepted as the Basic password at the token endpoint. Not shown again.',
      examples: ['kZ3v…'],
    }),
    encodedPrivateKey: Type.String({
      description:
        'The client’s RSA private key: base64 of the DER encrypted PKCS#8, under the `clientPassword` (PBKDF2, AES-256-CBC). Never stored by Tranche; not shown again.',
      examples: ['MIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI…'],
    }),
  },
  { $id: 'ClientCredentialWithSecret', description: 'A new OAuth2 client with its secrets, shown once.' },
);

export function clientCredentialRoutes(
  app: App,
  deps: { db: Db; signingKey: Buffer | undefined; verifier: AccessTokenVerifier | undefined },
): void {
  const { db, signingKey, verifier } = deps;
  app.addSchema(ClientCredentialSchema);
  app.addSchema(ClientCredentialWithSecretSchema);
  const config = { auth: 'organization' as const };
  const tags = ['authentication'];
  const ClientRef = Type.Ref('ClientCredential');
  const ClientParams = Type.Object({ id: Id('cli', 'Client credential id (the clientId).') });
  const withoutEncryptionKey = () =>
    new ApiError('service_unavailable', 'TRANCHE_ENCRYPTION_KEY is not set, so OAuth2 tokens cannot be signed');

  app.post(
    '/v1/client-credentials',
    {
      config: { auth: 'organization_or_operator' as const },
      schema: {
        tags,
        summary: 'Create an OAuth2 client (its secrets are shown once)',
        description:
          'With a write API key of the organization, or with the operator token and an `organizationId`. The answer carries the client secret, an RSA key pair made for the client (the private key encrypted under `clientPassword`, never stored) and the secret encrypted under the public key. Exchange `clientId:clientSecret` at `POST /v1/oauth2/token`.',
        security: [{ apiKey: [] }, { operatorToken: [] }],
        body: Type.Object(
          {
            clientPassword: Type.String({
              minLength: minClientPasswordLength,
              maxLength: maxClientPasswordLength,
              description: 'Encrypts `encodedPrivateKey`; never stored.',
              examples: ['correct horse battery staple'],
            }),
            scope: Type.Optional({ ...Scope, description: 'The scope of the client’s tokens; `write` by default.' }),
            organizationId: Type.Optional(
              Id('org', 'The organization, when called with the operator token; with an API key, its own or none.'),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Ref('ClientCredentialWithSecret'), ...errorResponses(403, 422, 429) },
      },
    },
    async (request, reply) => {
      if (signingKey === undefined) throw withoutEncryptionKey();
      const { organizationId: named, clientPassword, scope } = request.body;
      const isOperator = request.organizationId === '';
      if (isOperator && named === undefined) {
        throw new ApiError('validation_error', 'With the operator token, name the organization', 'organizationId');
      }
      if (!isOperator && named !== undefined && named !== request.organizationId) {
        throw new ApiError('not_found', `No organization ${named}`, 'organizationId');
      }
      // Made before the transaction: an RSA key takes tens of milliseconds, no lock should wait on it.
      const keys: ClientKeys = await newClientKeys(clientPassword);
      type Created = ReturnType<typeof presentClientCredential> & {
        clientSecret: string;
        encodedClientSecret: string;
        encodedPrivateKey: string;
      };
      return mutateRevealingOnce<Created>(
        db,
        request,
        reply,
        201,
        {
          organizationId: named ?? request.organizationId,
          // A replay shows the public parts only: the secret's last four, no private key, no encoded secret.
          redact: (body) => ({
            ...body,
            clientSecret: `cs_…${body.last4}`,
            encodedClientSecret: '[redacted]',
            encodedPrivateKey: '[redacted]',
          }),
        },
        async (unit) => {
          const created = await createClientCredential(unit, { scope: scope ?? 'write', keys });
          if (!created.ok) return created;
          return ok({
            ...presentClientCredential(created.value.row),
            clientSecret: keys.secret,
            encodedClientSecret: keys.encodedSecret,
            encodedPrivateKey: keys.encodedPrivateKey,
          });
        },
      );
    },
  );

  app.get(
    '/v1/client-credentials',
    {
      config,
      schema: {
        tags,
        summary: 'List OAuth2 clients, newest first (revoked ones included)',
        querystring: Type.Object(ListQuery),
        response: { 200: ListOf(ClientRef, 'A page of OAuth2 clients.'), ...errorResponses(429) },
      },
    },
    async (request) => {
      const rows = await listClientCredentials(db, request.organizationId, {
        afterId: decodeCursor(request.query.cursor),
        limit: pageSize(request.query.limit),
      });
      return page(rows, request.query.limit, presentClientCredential);
    },
  );

  app.get(
    '/v1/client-credentials/:id',
    {
      config,
      schema: {
        tags,
        summary: 'Retrieve an OAuth2 client',
        params: ClientParams,
        response: { 200: ClientRef, ...errorResponses(429) },
      },
    },
    async (request) => {
      const row = await getClientCredential(db, request.organizationId, request.params.id);
      if (row === undefined) throw new ApiError('not_found', `No client credential ${request.params.id}`);
      return presentClientCredential(row);
    },
  );

  app.delete(
    '/v1/client-credentials/:id',
    {
      config,
      schema: {
        tags,
        summary: 'Revoke an OAuth2 client and every token it was given',
        description:
          'Its access and refresh tokens are refused at once by the process that revoked it, and within 10 seconds by every other process.',
        params: ClientParams,
        response: { 200: ClientRef, ...errorResponses(403, 422, 429) },
      },
    },
    async (request, reply) => {
      const answered = await mutate(db, request, reply, 200, async (unit) =>
        presented(await revokeClientCredential(unit, request.params.id), presentClientCredential),
      );
      verifier?.forgetCredential(request.params.id);
      return answered;
    },
  );
}
