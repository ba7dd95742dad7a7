import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from '../../../packages/highnote-sandbox/src/index.js';
import { participantWithCard, threePurchases } from './card-flow.js';
import { type Call, newOrganization, pollUntil, startTestServer, type TestServer } from './harness.js';

// The program record answers, from stored facts only, why a milestone's money was reserved, who
// completed it, when its disbursement settled and what the participant spent of it — through the
// real server, its worker and the Highnote sandbox.

let sandbox: RunningSandbox;
let server: TestServer;

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0, applicationApprovalDelayMs: 20, transferSettlementDelayMs: 20 });
  server = await startTestServer({ sandbox });
});

afterAll(async () => {
  await server?.close();
  await sandbox?.close();
});

/** An RFC 4180 reader, written apart from the server's writer so that the test checks it. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    if (quoted) {
      if (char === '"' && text[index + 1] === '"') {
        field += '"';
        index++;
      } else if (char === '"') quoted = false;
      else field += char;
    } else if (char === '"') quoted = true;
    else if (char === ',') {
      row.push(field);
      field = '';
    } else if (char === '\r' && text[index + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      index++;
    } else field += char;
  }
  expect(field, 'the last line ends with CRLF').toBe('');
  expect(row).toEqual([]);
  return rows;
}

async function apiKeyIdOf(organizationId: string): Promise<string> {
  const row = await server.database.db
    .selectFrom('api_keys')
    .select('id')
    .where('organization_id', '=', organizationId)
    .executeTakeFirstOrThrow();
  return row.id;
}

describe('the program record', () => {
  it('answers why reserved, who completed, when settled and what was spent, and exports it', async () => {
    const org = await newOrganization(server, 'Record');
    const { call } = org;
    await call('GET', '/v1/configurations');
    const keyId = await apiKeyIdOf(org.id);
    const participant = await participantWithCard(call);
    const agreement = await call('POST', '/v1/agreements', {
      type: 'cardholder_agreement',
      title: 'Cardholder agreement',
      body: 'The card is prepaid; funds come from completed milestones.',
    });
    const program = await call('POST', '/v1/programs', {
      name: 'Forklift',
      totalAwardPool: 1_000,
      maxParticipants: 5,
      requiredAgreements: [{ agreementId: agreement.body.id, reconsentOnNewVersion: true }],
    });
    const consent = await call('POST', `/v1/users/${participant.userId}/agreements`, {
      agreementId: agreement.body.id,
      version: 1,
      ipAddress: '198.51.100.23',
      userAgent: 'Mozilla/5.0 (kiosk)',
      method: 'click_through',
    });
    expect(consent.status).toBe(201);
    const programId = program.body.id as string;
    const name = 'Forklift, "class 1"';
    const assigned = await call('POST', '/v1/usertasks', {
      programId,
      userId: participant.userId,
      monetaryValue: 500,
      name,
    });
    expect(assigned.status).toBe(201);
    const userTaskId = assigned.body.id as string;
    const assignedRequestId = assigned.headers.get('x-request-id');

    // Before completion: reserved, nothing completed or disbursed.
    const open = await call('GET', `/v1/usertasks/${userTaskId}/record`);
    expect(open.status).toBe(200);
    expect(open.body).toMatchObject({
      object: 'user_task_record',
      userTask: { id: userTaskId, status: 'assigned', name },
      program: { id: programId, name: 'Forklift' },
      user: { id: participant.userId, externalId: null },
      reservation: { amount: 500, resolution: null, transfer: { kind: 'pending', amount: 500 } },
      completion: null,
      approvals: [],
      disbursement: null,
    });
    // What consent applies: the accepted version, its hash, when and from where.
    expect(open.body.consents).toEqual([
      expect.objectContaining({
        agreementId: agreement.body.id,
        agreementType: 'cardholder_agreement',
        version: 1,
        contentHash: agreement.body.contentHash,
        ipAddress: '198.51.100.23',
        userAgent: 'Mozilla/5.0 (kiosk)',
        method: 'click_through',
      }),
    ]);

    const evidence = { certificateNumber: 'FL-1-2231', url: 'https://certs.example/FL-1-2231' };
    const completed = await call('PUT', `/v1/usertasks/${userTaskId}/complete`, {
      completedBy: 'instructor:42',
      evidence,
    });
    expect(completed.status).toBe(200);
    await pollUntil(
      () => call('GET', `/v1/usertasks/${userTaskId}`),
      (answer) => answer.body.status === 'funded',
      { what: 'funding', deadlineMs: 20_000 },
    );
    await threePurchases(sandbox, participant.paymentCardId);
    // $100 cleared, $50 reversed, $60 cleared with $20 refunded: $140 drawn on the $500.
    const funded = await pollUntil(
      () => call('GET', `/v1/usertasks/${userTaskId}/record`),
      (answer) => answer.body.disbursement?.spent === 140 && answer.body.disbursement.spends.length === 2,
      { what: 'the spend on the record', deadlineMs: 20_000 },
    );
    const record = funded.body;
    // The consent that applied at completion stays on the funded record.
    expect(record.consents).toEqual([
      expect.objectContaining({ agreementId: agreement.body.id, version: 1, contentHash: agreement.body.contentHash }),
    ]);

    // Why reserved: the assignment, by this organization's API key, in that request, as a pending transfer.
    const [assignedEvent] = (await call('GET', '/v1/events?type=usertask.assigned&limit=100')).body.data.filter(
      (event: { data: { object: { id: string } } }) => event.data.object.id === userTaskId,
    );
    expect(record.reservation).toMatchObject({
      reservedAt: assignedEvent.createdAt,
      amount: 500,
      actor: `api_key:${keyId}`,
      credentialId: keyId,
      requestId: assignedRequestId,
      eventId: assignedEvent.id,
      transfer: { kind: 'pending', amount: 500 },
      resolution: { kind: 'post_pending', amount: 500 },
    });
    const reservationRow = await server.database.db
      .selectFrom('ledger_transfers')
      .selectAll()
      .where('organization_id', '=', org.id)
      .where('user_task_id', '=', userTaskId)
      .where('code', '=', 'reservation')
      .where('kind', '=', 'pending')
      .executeTakeFirstOrThrow();
    expect(record.reservation.transfer).toEqual({
      id: reservationRow.id,
      kind: 'pending',
      amount: 500,
      createdAt: reservationRow.created_at.toISOString(),
    });

    // Who completed: the verifier, the evidence, and the request that said so.
    expect(record.completion).toMatchObject({
      completedBy: 'instructor:42',
      evidence,
      amount: 500,
      actor: `api_key:${keyId}`,
      credentialId: keyId,
      requestId: completed.headers.get('x-request-id'),
      completedAt: completed.body.completedAt,
    });
    expect(record.approvals).toEqual([]);

    // When settled: each status with the event that reported it, and Highnote's transfer.
    const disbursement = (await call('GET', `/v1/disbursements?userTaskId=${userTaskId}`)).body.data[0];
    expect(disbursement.highnoteTransferId).toEqual(expect.any(String));
    expect(record.disbursement).toMatchObject({
      id: disbursement.id,
      amount: 500,
      status: 'settled',
      highnoteTransferId: disbursement.highnoteTransferId,
      attempt: 1,
      failureCode: null,
      settledAt: disbursement.settledAt,
      settlementTransfer: { kind: 'posted', amount: 500 },
      returnTransfer: null,
      spent: 140,
      remaining: 360,
    });
    const history = record.disbursement.history as { type: string; status: string; at: string; eventId: string }[];
    expect(history.map((step) => [step.type, step.status])).toEqual([
      ['disbursement.created', 'pending'],
      ['disbursement.processing', 'processing'],
      ['disbursement.settled', 'settled'],
    ]);
    const settledStep = history[2] as (typeof history)[number];
    expect(settledStep.at).toBe(disbursement.settledAt);
    const settledEvent = await call('GET', `/v1/events/${settledStep.eventId}`);
    expect(settledEvent.body).toMatchObject({
      type: 'disbursement.settled',
      data: { object: { id: disbursement.id } },
    });
    expect(
      record.disbursement.spends.map((spend: { merchant: string; amount: number }) => [spend.merchant, spend.amount]),
    ).toEqual([
      ['CORNER GROCERY', 100],
      ['WORKWEAR SUPPLY', 40],
    ]);

    // Two more milestones in the program: one left open, one cancelled.
    const second = await call('POST', '/v1/usertasks', { programId, userId: participant.userId, monetaryValue: 20 });
    const third = await call('POST', '/v1/usertasks', { programId, userId: participant.userId, monetaryValue: 30 });
    expect((await call('PUT', `/v1/usertasks/${third.body.id}/cancel`)).status).toBe(200);
    const cancelled = await call('GET', `/v1/usertasks/${third.body.id}/record`);
    expect(cancelled.body.reservation.resolution).toMatchObject({ kind: 'void_pending', amount: 30 });

    // JSON export, in pages of two, newest user task first: every record once.
    const firstPage = await call('GET', `/v1/programs/${programId}/record?limit=2`);
    expect(firstPage.status).toBe(200);
    expect(firstPage.body).toMatchObject({ object: 'program_record', programId, hasMore: true });
    expect(firstPage.body.records.map((r: { userTask: { id: string } }) => r.userTask.id)).toEqual([
      third.body.id,
      second.body.id,
    ]);
    const secondPage = await call(
      'GET',
      `/v1/programs/${programId}/record?format=json&limit=2&cursor=${encodeURIComponent(firstPage.body.nextCursor)}`,
    );
    expect(secondPage.body).toMatchObject({ hasMore: false, nextCursor: null });
    expect(secondPage.body.records).toHaveLength(1);
    expect(secondPage.body.records[0]).toEqual({ ...record, userTask: secondPage.body.records[0].userTask });

    // CSV export: parses back, quoting the comma and the quotes of the name.
    const csv = await fetch(`${server.baseUrl}/v1/programs/${programId}/record?format=csv`, {
      headers: { authorization: `Bearer ${org.apiKey}` },
    });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const text = await csv.text();
    expect(text).toContain('"Forklift, ""class 1"""');
    const [header, ...rows] = parseCsv(text) as [string[], ...string[][]];
    expect(rows).toHaveLength(3);
    const byId = new Map(rows.map((row) => [row[0], Object.fromEntries(header.map((column, i) => [column, row[i]]))]));
    expect(byId.get(userTaskId)).toEqual({
      userTaskId,
      userId: participant.userId,
      externalUserId: '',
      taskId: '',
      name,
      amount: '500',
      status: 'funded',
      reservedAt: record.reservation.reservedAt,
      reservedBy: keyId,
      completedAt: record.completion.completedAt,
      completedBy: 'instructor:42',
      approvedBy: '',
      approvedAt: '',
      disbursementId: disbursement.id,
      highnoteTransferId: disbursement.highnoteTransferId,
      disbursementStatus: 'settled',
      settledAt: disbursement.settledAt,
      spent: '140',
      remaining: '360',
    });
    expect(byId.get(third.body.id)).toMatchObject({ status: 'cancelled', disbursementId: '', completedAt: '' });

    // Another organization sees neither.
    const other = await newOrganization(server, 'Elsewhere');
    const notMine: Call[] = [
      await other.call('GET', `/v1/usertasks/${userTaskId}/record`),
      await other.call('GET', `/v1/programs/${programId}/record`),
      await other.call('GET', `/v1/programs/${programId}/record?format=csv`),
    ];
    for (const answer of notMine) {
      expect(answer.status).toBe(404);
      expect(answer.body.error.code).toBe('not_found');
    }
  });
});
