import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError, ok } from '../platform/errors.js';
import { type App, decodeCursor, page, pageSize } from '../platform/http.js';
import { errorResponses, Id, ListOf, ListQuery } from '../platform/schemas.js';
import { mutate, presented } from '../work/mutate.js';
import {
  ApiKeySchema,
  ApiKeyWithSecretSchema,
  createApiKey,
  getApiKey,
  listApiKeys,
  maxApiKeyNameLength,
  presentApiKey,
  revokeApiKey,
  Scope,
} from './api-keys.js';
import { mutateRevealingOnce, redactedSecret } from './reveal.js';

/** `/v1/api-keys`: an organization's API keys, made and revoked with a write credential. */
export function apiKeyRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
  app.addSchema(ApiKeySchema);
  app.addSchema(ApiKeyWithSecretSchema);
  const config = { auth: 'organization' as const };
  const tags = ['authentication'];
  const KeyRef = Type.Ref('ApiKey');
  const KeyParams = Type.Object({ id: Id('key', 'API key id.') });

  app.post(
    '/v1/api-keys',
    {
      config,
      schema: {
        tags,
        summary: 'Create an API key (its secret is shown once)',
        description:
          'A `read` key calls GET routes only; a `write` key calls every route of the organization. Only the hash of the secret is stored: keep it from this answer. A replay with the same `Idempotency-Key` shows the secret’s last four characters only.',
        body: Type.Object(
          {
            name: Type.Optional(
              Type.String({
                minLength: 1,
                maxLength: maxApiKeyNameLength,
                description: 'Your name for the key.',
                examples: ['Payroll sync'],
              }),
            ),
            scope: Scope,
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Ref('ApiKeyWithSecret'), ...errorResponses(403, 422, 429) },
      },
    },
    async (request, reply) =>
      mutateRevealingOnce<ReturnType<typeof presentApiKey> & { secret: string }>(
        db,
        request,
        reply,
        201,
        { redact: (body) => ({ ...body, secret: redactedSecret(body.secret) }) },
        async (unit) => {
          const created = await createApiKey(unit, request.body);
          return created.ok ? ok({ ...presentApiKey(created.value.row), secret: created.value.secret }) : created;
        },
      ),
  );

  app.get(
    '/v1/api-keys',
    {
      config,
      schema: {
        tags,
        summary: 'List API keys, newest first (revoked ones included)',
        querystring: Type.Object(ListQuery),
        response: { 200: ListOf(KeyRef, 'A page of API keys.'), ...errorResponses(429) },
      },
    },
    async (request) => {
      const rows = await listApiKeys(db, request.organizationId, {
        afterId: decodeCursor(request.query.cursor),
        limit: pageSize(request.query.limit),
      });
      return page(rows, request.query.limit, presentApiKey);
    },
  );

  app.get(
    '/v1/api-keys/:id',
    {
      config,
      schema: {
        tags,
        summary: 'Retrieve an API key',
        params: KeyParams,
        response: { 200: KeyRef, ...errorResponses(429) },
      },
    },
    async (request) => {
      const row = await getApiKey(db, request.organizationId, request.params.id);
      if (row === undefined) throw new ApiError('not_found', `No API key ${request.params.id}`);
      return presentApiKey(row);
    },
  );

  app.delete(
    '/v1/api-keys/:id',
    {
      config,
      schema: {
        tags,
        summary: 'Revoke an API key (the key is kept, marked revoked)',
        description:
          'The key is refused at once by the process that revoked it and within 10 seconds by every other process (the time a verified key is cached). Revoking a revoked key answers it unchanged. A key cannot revoke itself (409 `invalid_state`): make a new key, then revoke the old one with it.',
        params: KeyParams,
        response: { 200: KeyRef, ...errorResponses(403, 409, 422, 429) },
      },
    },
    async (request, reply) => {
      const answered = await mutate(db, request, reply, 200, async (unit) =>
        presented(await revokeApiKey(unit, request.params.id), presentApiKey),
      );
      app.authentication.forgetCredential(request.params.id);
      return answered;
    },
  );
}
