import { sql } from 'kysely';
import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import type { App } from '../platform/http.js';
import { isoRequired } from '../platform/present.js';
import { errorResponses, ListOf, ListQuery, Nullable, ObjectKind, Timestamp } from '../platform/schemas.js';
import { auditTablesOf } from './chain.js';

/**
 * `GET /v1/audit-log`: the organization's state changes, oldest first, each with who made it
 * (actor and credential), the request, the resource before and after, and the block of the hash
 * chain that seals it (null until the chain job reaches it, about a minute after it committed).
 */

const Resource = (description: string, example: Record<string, unknown>) =>
  Type.Object({}, { additionalProperties: true, description, examples: [example] });

export const AuditEntrySchema = Type.Object(
  {
    id: Type.String({ description: 'The event id of the change.', examples: ['evt_01jd8x'] }),
    object: ObjectKind('audit_entry'),
    sequence: Type.String({
      description: 'Position in the organization’s log (a decimal integer).',
      examples: ['1042'],
    }),
    type: Type.String({ description: 'The change, as an event type.', examples: ['usertask.completed'] }),
    resourceId: Nullable(Type.String({ description: 'The resource changed.', examples: ['ut_01jd8x'] })),
    actor: Type.String({
      description: '`api_key:<key id>`, `client:<credential id>`, `operator` or `system:<job>`.',
      examples: ['api_key:key_01jd8x'],
    }),
    credentialId: Nullable(
      Type.String({ description: 'The credential that made the request.', examples: ['key_01jd8x'] }),
    ),
    requestId: Nullable(
      Type.String({ description: 'The request that made it (`X-Request-Id`).', examples: ['req_01jd8x'] }),
    ),
    occurredAt: Timestamp('When the change was made.'),
    before: Nullable(
      Resource('The resource as the API presented it before the change; null for its first.', {
        id: 'ut_01jd8x',
        object: 'usertask',
        status: 'assigned',
      }),
    ),
    after: Resource('The resource as the API presented it after the change.', {
      id: 'ut_01jd8x',
      object: 'usertask',
      status: 'completed',
    }),
    chain: Nullable(
      Type.Object(
        {
          blockNo: Type.Integer({ minimum: 1, description: 'The block that seals the entry.', examples: [12] }),
          blockHash: Type.String({
            description: 'SHA-256 of the block, linking to the one before.',
            examples: ['9f2c4b7e0d1a…'],
          }),
        },
        {
          description: 'Where the hash chain seals the entry; null until the chain job reaches it.',
          examples: [{ blockNo: 12, blockHash: '9f2c4b7e0d1a…' }],
        },
      ),
    ),
  },
  { $id: 'AuditEntry' },
);

interface Row {
  sequence: string;
  id: string;
  type: string;
  actor: string;
  request_id: string | null;
  created_at: Date;
  data: { object: Record<string, unknown> };
}

function credentialOf(actor: string): string | null {
  const [kind, id] = actor.split(':', 2);
  return (kind === 'api_key' || kind === 'client') && id !== undefined ? id : null;
}

function decodeSequence(cursor: string | undefined): string {
  if (cursor === undefined) return '0';
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown };
    // A sequence is a bigint: a number past its range was never a cursor here.
    if (
      typeof parsed.after === 'string' &&
      /^[0-9]{1,19}$/.test(parsed.after) &&
      BigInt(parsed.after) <= 9_223_372_036_854_775_807n
    ) {
      return parsed.after;
    }
  } catch {
    // fall through
  }
  throw new ApiError('validation_error', 'cursor is not one this API returned', 'cursor');
}

export function auditRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
  app.addSchema(AuditEntrySchema);

  app.get(
    '/v1/audit-log',
    {
      config: { auth: 'organization' as const },
      schema: {
        tags: ['audit'],
        summary: 'The audit log: every state change, oldest first, hash-chained',
        description:
          'Each entry is one state change with its actor, credential, request, and the resource before and after. Entries are sealed into a SHA-256 hash chain per organization about a minute after they commit; `npx tranche audit verify` recomputes the chain and names the first entry that does not match.',
        querystring: Type.Object({
          ...ListQuery,
          resourceId: Type.Optional(
            Type.String({
              maxLength: 64,
              pattern: '^[a-z0-9_]+$',
              description: 'Only changes of this resource.',
              examples: ['ut_01jd8x'],
            }),
          ),
        }),
        response: {
          200: ListOf(Type.Ref('AuditEntry'), 'A page of audit entries, oldest first.'),
          ...errorResponses(),
        },
      },
    },
    async (request) => {
      const { organizationId } = request;
      const { cursor, limit, resourceId } = request.query;
      const size = limit ?? 20;
      const after = decodeSequence(cursor);
      const rows = await sql<Row>`
        SELECT sequence::text AS sequence, id, type, actor, request_id, created_at, data
        FROM events
        WHERE organization_id = ${organizationId} AND sequence > ${after}::bigint
          ${resourceId === undefined ? sql`` : sql`AND data -> 'object' ->> 'id' = ${resourceId}`}
        ORDER BY events.sequence
        LIMIT ${size + 1}`.execute(db);
      const visible = rows.rows.slice(0, size);
      // The version of each resource just before its first change on this page.
      const firstOnPage = new Map<string, string>();
      for (const row of visible) {
        const id = row.data.object.id;
        if (typeof id === 'string' && !firstOnPage.has(id)) firstOnPage.set(id, row.sequence);
      }
      const earlier = new Map<string, unknown>();
      if (firstOnPage.size > 0) {
        const values = [...firstOnPage].map(([id, sequence]) => sql`(${id}::text, ${sequence}::bigint)`);
        const found = await sql<{ resource_id: string; data: { object: unknown } }>`
          SELECT v.resource_id, e.data FROM (VALUES ${sql.join(values)}) AS v (resource_id, sequence)
          CROSS JOIN LATERAL (
            SELECT data FROM events
            WHERE organization_id = ${organizationId} AND sequence < v.sequence
              AND data -> 'object' ->> 'id' = v.resource_id
            ORDER BY sequence DESC LIMIT 1
          ) AS e`.execute(db);
        for (const row of found.rows) earlier.set(row.resource_id, row.data.object);
      }
      const blocks =
        visible.length === 0
          ? []
          : await auditTablesOf(db)
              .selectFrom('audit_blocks')
              .select(['block_no', 'first_sequence', 'last_sequence', 'hash'])
              .where('organization_id', '=', organizationId)
              .where('last_sequence', '>=', (visible[0] as Row).sequence)
              .where('first_sequence', '<=', (visible[visible.length - 1] as Row).sequence)
              .orderBy('block_no')
              .execute();
      const blockOf = (sequence: string) =>
        blocks.find(
          (block) =>
            BigInt(block.first_sequence) <= BigInt(sequence) && BigInt(sequence) <= BigInt(block.last_sequence),
        );
      const data = visible.map((row) => {
        const resourceId = typeof row.data.object.id === 'string' ? row.data.object.id : null;
        const before = resourceId === null ? null : (earlier.get(resourceId) ?? null);
        if (resourceId !== null) earlier.set(resourceId, row.data.object);
        const block = blockOf(row.sequence);
        return {
          id: row.id,
          object: 'audit_entry' as const,
          sequence: row.sequence,
          type: row.type,
          resourceId,
          actor: row.actor,
          credentialId: credentialOf(row.actor),
          requestId: row.request_id,
          occurredAt: isoRequired(new Date(row.created_at)),
          before,
          after: row.data.object,
          chain: block === undefined ? null : { blockNo: block.block_no, blockHash: block.hash },
        };
      });
      const last = visible[visible.length - 1];
      const hasMore = rows.rows.length > size;
      return {
        data,
        hasMore,
        nextCursor:
          hasMore && last !== undefined
            ? Buffer.from(JSON.stringify({ after: last.sequence })).toString('base64url')
            : null,
      };
    },
  );
}
