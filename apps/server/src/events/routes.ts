import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import { eventTypes, getEvent, listEvents, presentEvent } from '../platform/events.js';
import { type App, decodeCursor, encodeCursor, pageSize } from '../platform/http.js';
import {
  defaultPageSize,
  errorResponses,
  Id,
  ListOf,
  ListQuery,
  ObjectKind,
  OneOf,
  Timestamp,
} from '../platform/schemas.js';

/** A `usertask.completed` event's resource, shortened: any resource the API presents can stand here. */
const eventObjectExample = {
  id: 'ut_01jd8n3q7v0c4x2m5k9e6t1hzr',
  object: 'user_task',
  programId: 'prg_01jd8n3q7v0c4x2m5k9e6t1hzr',
  userId: 'usr_01jd8n3q7v0c4x2m5k9e6t1hzr',
  status: 'completed',
  monetaryValue: 500,
  completedAmount: 500,
  disbursementId: 'dsb_01jd8n3q7v0c4x2m5k9e6t1hzr',
};

const EventSchema = Type.Object(
  {
    id: Id('evt', 'Event id.'),
    object: ObjectKind('event'),
    type: OneOf(eventTypes, { description: 'What happened, as `resource.verb`.', examples: ['usertask.completed'] }),
    createdAt: Timestamp('When the change was committed.'),
    data: Type.Object(
      {
        object: Type.Record(Type.String(), Type.Unknown(), {
          description: 'The resource as the API presents it, right after the change.',
          examples: [eventObjectExample],
        }),
      },
      { description: 'The resource the event is about.' },
    ),
  },
  { $id: 'Event' },
);

/** The largest value of the bigint `sequence` column. */
const maxSequence = 2n ** 63n - 1n;

/** A page cursor names the sequence of the page's last event. */
function sequenceOf(cursor: string | undefined): bigint | undefined {
  const after = decodeCursor(cursor);
  if (after === undefined) return undefined;
  const sequence = /^[0-9]{1,19}$/.test(after) ? BigInt(after) : undefined;
  if (sequence === undefined || sequence > maxSequence) {
    throw new ApiError('validation_error', 'cursor is not one this API returned', 'cursor');
  }
  return sequence;
}

export function eventRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
  app.addSchema(EventSchema);
  const config = { auth: 'organization' as const };
  const EventRef = Type.Ref('Event');

  app.get(
    '/v1/events',
    {
      config,
      schema: {
        tags: ['events'],
        summary: 'List events, newest first',
        description:
          'Every state change appends events in the transaction of the change. Filter by `type` and by `createdAfter`.',
        querystring: Type.Object({
          ...ListQuery,
          type: Type.Optional(
            OneOf(eventTypes, { description: 'Only events of this type.', examples: ['usertask.completed'] }),
          ),
          createdAfter: Type.Optional(Timestamp('Only events created after this instant.')),
        }),
        response: { 200: ListOf(EventRef, 'A page of events.'), ...errorResponses() },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? defaultPageSize;
      const rows = await listEvents(db, request.organizationId, {
        beforeSequence: sequenceOf(request.query.cursor),
        limit: pageSize(request.query.limit),
        type: request.query.type,
        ...(request.query.createdAfter === undefined ? {} : { createdAfter: new Date(request.query.createdAfter) }),
      });
      const hasMore = rows.length > limit;
      const visible = hasMore ? rows.slice(0, limit) : rows;
      const last = visible[visible.length - 1];
      return {
        data: visible.map(presentEvent),
        hasMore,
        nextCursor: hasMore && last !== undefined ? encodeCursor(last.sequence.toString()) : null,
      };
    },
  );

  app.get(
    '/v1/events/:id',
    {
      config,
      schema: {
        tags: ['events'],
        summary: 'Retrieve an event',
        params: Type.Object({ id: Id('evt', 'Event id.') }),
        response: { 200: EventRef, ...errorResponses() },
      },
    },
    async (request) => {
      const event = await getEvent(db, request.organizationId, request.params.id);
      if (event === undefined) throw new ApiError('not_found', `No event ${request.params.id}`);
      return presentEvent(event);
    },
  );
}
