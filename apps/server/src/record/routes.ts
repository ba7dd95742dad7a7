import { Type } from 'typebox';
import type { Db } from '../platform/db.js';
import { ApiError } from '../platform/errors.js';
import { type App, decodeCursor, encodeCursor, page, pageSize } from '../platform/http.js';
import { errorResponses, Id, ListQuery, maxPageSize, Nullable, ObjectKind, Timestamp } from '../platform/schemas.js';
import { getProgram } from '../programs/program.js';
import { getUserTask, listUserTasks } from '../usertasks/usertask.js';
import { csvColumns, csvHeader, csvRows } from './csv.js';
import { gatherRecords } from './record.js';
import { UserTaskRecordSchema } from './record-schema.js';

/** Most user tasks one CSV export holds; past it, `Link: <…>; rel="next"` continues the export. */
export const maxCsvRecords = 10_000;

const recordFormats = ['json', 'csv'] as const;

export function recordRoutes(app: App, deps: { db: Db }): void {
  const { db } = deps;
  app.addSchema(UserTaskRecordSchema);
  const config = { auth: 'organization' as const };
  const RecordRef = Type.Ref('UserTaskRecord');

  app.get(
    '/v1/usertasks/:id/record',
    {
      config,
      schema: {
        tags: ['record'],
        summary: 'Retrieve the record of a user task: reservation, completion, approvals and disbursement',
        description:
          'Gathered from stored facts only — the rows, ledger transfers and events the changes wrote: why the money was reserved (the assignment, its credential and request, the pending ledger transfer), who completed and approved the milestone, and each status of the disbursement with the event that reported it, its settlement and the spends that drew on it.',
        params: Type.Object({ id: Id('ut', 'User task id.') }),
        response: { 200: RecordRef, ...errorResponses() },
      },
    },
    async (request) => {
      const userTask = await getUserTask(db, request.organizationId, request.params.id);
      if (userTask === undefined) throw new ApiError('not_found', `No user task ${request.params.id}`);
      const [record] = await gatherRecords(db, request.organizationId, [userTask]);
      return record;
    },
  );

  const ProgramRecordSchema = Type.Object(
    {
      object: ObjectKind('program_record'),
      programId: Id('prg', 'Program id.'),
      generatedAt: Timestamp('When the export was read.'),
      records: Type.Array(RecordRef, { description: 'This page’s user task records, newest user task first.' }),
      hasMore: Type.Boolean({ description: 'Whether another page follows.', examples: [true] }),
      nextCursor: Nullable(
        Type.String({
          description: 'Pass as `cursor` for the next page; null on the last page.',
          examples: ['eyJhZnRlciI6InV0XzAxamQ4bjNxN3YwYzR4Mm01azllNnQxaHpyIn0'],
        }),
      ),
    },
    { description: 'A page of the program’s records.' },
  );

  app.get(
    '/v1/programs/:id/record',
    {
      config,
      schema: {
        tags: ['record'],
        summary: 'Export the records of a program’s user tasks, as JSON or CSV, for auditors',
        description: `\`format=json\` (the default) answers a page of records (\`limit\`, \`cursor\`), each as \`GET /v1/usertasks/{id}/record\` shows it. \`format=csv\` answers \`text/csv\` (RFC 4180, a header row, CRLF line ends), one row per user task with the columns ${csvColumns.map((c) => `\`${c}\``).join(', ')}; it holds every user task from \`cursor\` on, up to ${maxCsvRecords}, and a \`Link: <…>; rel="next"\` header continues a longer export.`,
        params: Type.Object({ id: Id('prg', 'Program id.') }),
        querystring: Type.Object({
          ...ListQuery,
          format: Type.Optional(
            Type.Union(
              recordFormats.map((format) => Type.Literal(format)),
              { default: 'json', description: '`json` (paginated) or `csv`.', examples: ['csv'] },
            ),
          ),
        }),
        response: {
          200: {
            description: 'The program’s records: a JSON page, or CSV rows.',
            content: {
              'application/json': { schema: ProgramRecordSchema },
              'text/csv': {
                schema: Type.String({
                  description: 'One row per user task after a header row (RFC 4180).',
                  examples: [
                    `${csvColumns.join(',')}\r\nut_01jd8n3q7v0c4x2m5k9e6t1hzr,usr_01jd8n3q7v0c4x2m5k9e6t1hzr,emp-8812,,"OSHA 10, ""construction""",500,funded,2026-11-25T10:00:00.000Z,key_01jd8n3q7v0c4x2m5k9e6t1hzr,2026-11-25T11:00:00.000Z,instructor:42,,,dsb_01jd8n3q7v0c4x2m5k9e6t1hzr,iftr_8Kd,settled,2026-11-25T11:00:02.000Z,140,360\r\n`,
                  ],
                }),
              },
            },
          },
          ...errorResponses(),
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const { organizationId } = request;
      const program = await getProgram(db, organizationId, id);
      if (program === undefined) throw new ApiError('not_found', `No program ${id}`);
      const afterId = decodeCursor(request.query.cursor);
      if (request.query.format !== 'csv') {
        const { limit } = request.query;
        const userTasks = await listUserTasks(db, organizationId, { programId: id, afterId, limit: pageSize(limit) });
        const listed = page(userTasks, limit, (userTask) => userTask);
        return {
          object: 'program_record' as const,
          programId: id,
          generatedAt: new Date().toISOString(),
          records: await gatherRecords(db, organizationId, listed.data),
          hasMore: listed.hasMore,
          nextCursor: listed.nextCursor,
        };
      }
      // CSV: the whole program from the cursor on, read a page at a time, bounded by maxCsvRecords.
      let csv = csvHeader();
      let after = afterId;
      let written = 0;
      let more = true;
      while (more && written < maxCsvRecords) {
        const size = Math.min(maxPageSize, maxCsvRecords - written);
        const userTasks = await listUserTasks(db, organizationId, { programId: id, afterId: after, limit: size + 1 });
        more = userTasks.length > size;
        const batch = userTasks.slice(0, size);
        csv += csvRows(await gatherRecords(db, organizationId, batch));
        written += batch.length;
        after = batch[batch.length - 1]?.id ?? after;
      }
      if (more && after !== undefined) {
        const next = `/v1/programs/${id}/record?format=csv&cursor=${encodeURIComponent(encodeCursor(after))}`;
        reply.header('link', `<${next}>; rel="next"`);
      }
      reply.header('content-disposition', `attachment; filename="${id}-record.csv"`);
      return reply.type('text/csv; charset=utf-8').send(csv);
    },
  );
}
