import { Type } from 'typebox';
import { mutateRevealingOnce, redactedSecret } from '../credentials/reveal.js';
import type { Db } from '../platform/db.js';
import type { App } from '../platform/http.js';
import { errorResponses, Id, ObjectKind, Timestamp } from '../platform/schemas.js';
import { createOrganization } from './service.js';

export function organizationRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
  app.post(
    '/v1/organizations',
    {
      config: { auth: 'operator' },
      schema: {
        tags: ['operator'],
        summary: 'Create an organization (operator token); its API key is shown once',
        security: [{ operatorToken: [] }],
        body: Type.Object(
          {
            name: Type.String({
              minLength: 1,
              maxLength: 200,
              description: 'Organization name.',
              examples: ['Acme Workforce'],
            }),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            id: Id('org', 'Organization id.'),
            object: ObjectKind('organization'),
            name: Type.String({ description: 'Organization name.', examples: ['Acme Workforce'] }),
            apiKey: Type.String({
              description:
                'Secret API key of the write scope; store it now, it is not shown again. A replay with the same `Idempotency-Key` shows its prefix and last four characters only.',
              examples: ['sk_…'],
            }),
            createdAt: Timestamp('Created.'),
          }),
          ...errorResponses(422),
        },
      },
    },
    async (request, reply) =>
      mutateRevealingOnce<{ apiKey: string }>(
        db,
        request,
        reply,
        201,
        { redact: (body) => ({ ...body, apiKey: redactedSecret(body.apiKey) }) },
        async (unit) => {
          const created = await createOrganization(unit.tx, request.body.name, unit.now);
          if (!created.ok) return created;
          const { id, name, apiKey, createdAt } = created.value;
          return { ok: true, value: { id, object: 'organization', name, apiKey, createdAt: createdAt.toISOString() } };
        },
      ),
  );
}
