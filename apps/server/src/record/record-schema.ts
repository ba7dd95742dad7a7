import { Type } from 'typebox';
import { disbursementStatuses } from '../disbursements/disbursement.js';
import { transferKinds } from '../ledger/kinds.js';
import { eventTypes } from '../platform/events.js';
import { BalanceDollars, Id, Nullable, NullableTimestamp, ObjectKind, OneOf, Timestamp } from '../platform/schemas.js';
import { spendStatuses } from '../spend/spend.js';
import { UserTaskSchema } from '../usertasks/usertask.js';

/** How the API presents a user task's record (see record.ts for where each fact comes from). */

const actorExample = 'api_key:key_01jd8n3q7v0c4x2m5k9e6t1hzr';

/** Who caused an event: the actor stored beside it, the credential it names, the request. */
const ActorFields = (what: string) => ({
  actor: Nullable(
    Type.String({
      description: `Who ${what}: \`api_key:<key id>\` for a request, \`system:<job>\` for the worker, \`operator\`.`,
      examples: [actorExample],
    }),
  ),
  credentialId: Nullable(
    Type.String({
      description: 'The organization credential (API key id) the request authenticated with; null for the system.',
      examples: ['key_01jd8n3q7v0c4x2m5k9e6t1hzr'],
    }),
  ),
  requestId: Nullable(
    Type.String({ description: 'The request that caused it (`X-Request-Id`).', examples: ['req-1a2b'] }),
  ),
  eventId: Nullable(Id('evt', 'The event that recorded it.')),
});

const transferExample = {
  id: 'tr_01jd8n3q7v0c4x2m5k9e6t1hzr',
  kind: 'pending',
  amount: 500,
  createdAt: '2026-11-25T10:00:00.000Z',
};

const completionExample = {
  completedBy: 'instructor:42',
  completedAt: '2026-11-25T11:00:00.000Z',
  evidence: { certificateNumber: 'OSHA-10-88231' },
  amount: 500,
  actor: actorExample,
  credentialId: 'key_01jd8n3q7v0c4x2m5k9e6t1hzr',
  requestId: 'req-1a2c',
  eventId: 'evt_01jd8n3q7v0c4x2m5k9e6t1hzs',
};

const disbursementExample = {
  id: 'dsb_01jd8n3q7v0c4x2m5k9e6t1hzr',
  amount: 500,
  status: 'settled',
  cardId: 'card_01jd8n3q7v0c4x2m5k9e6t1hzr',
  highnoteTransferId: 'iftr_8Kd',
  attempt: 1,
  failureCode: null,
  failureReason: null,
  createdAt: '2026-11-25T11:00:00.000Z',
  settledAt: '2026-11-25T11:00:02.000Z',
  history: [
    {
      type: 'disbursement.settled',
      status: 'settled',
      at: '2026-11-25T11:00:02.000Z',
      actor: 'system:highnote',
      credentialId: null,
      requestId: 'req-1a2d',
      eventId: 'evt_01jd8n3q7v0c4x2m5k9e6t1hzt',
    },
  ],
  settlementTransfer: { ...transferExample, id: 'tr_settle_dsb_01jd8n3q7v0c4x2m5k9e6t1hzr', kind: 'posted' },
  returnTransfer: null,
  spent: 100,
  remaining: 400,
  spends: [
    {
      spendId: 'spd_01jd8n3q7v0c4x2m5k9e6t1hzr',
      amount: 100,
      status: 'cleared',
      merchant: 'CORNER GROCERY',
      occurredAt: '2026-11-26T09:30:00.000Z',
    },
  ],
};

const TransferSchema = (description: string) =>
  Nullable(
    Type.Object(
      {
        id: Type.String({ description: 'Ledger transfer id.', examples: ['tr_01jd8n3q7v0c4x2m5k9e6t1hzr'] }),
        kind: OneOf(transferKinds, {
          description: '`pending` (a reservation), `post_pending`/`void_pending` (its resolution) or `posted`.',
          examples: ['pending'],
        }),
        amount: BalanceDollars('Amount moved.', 500),
        createdAt: Timestamp('Written to the ledger.'),
      },
      { description, examples: [transferExample] },
    ),
  );

export const UserTaskRecordSchema = Type.Object(
  {
    object: ObjectKind('user_task_record'),
    // The user task's fields inline: a description beside a $ref does not survive into the document.
    userTask: Type.Object(UserTaskSchema.properties, {
      description: 'The user task as `GET /v1/usertasks/{id}` presents it.',
    }),
    program: Type.Object(
      {
        id: Id('prg', 'Program id.'),
        name: Type.String({ description: 'Program name.', examples: ['OSHA completion funding'] }),
      },
      { description: 'The program whose pool reserved the money.' },
    ),
    user: Type.Object(
      {
        id: Id('usr', 'Participant id.'),
        externalId: Nullable(Type.String({ description: 'Your id for the participant.', examples: ['emp-8812'] })),
      },
      { description: 'The participant.' },
    ),
    reservation: Type.Object(
      {
        reservedAt: Timestamp('When the assignment reserved the money (its `usertask.assigned` event).'),
        amount: BalanceDollars('Reserved from the pool.', 500),
        ...ActorFields('assigned the milestone'),
        transfer: TransferSchema('The pending ledger transfer that reserved the money.'),
        resolution: TransferSchema(
          'The transfer that resolved the reservation: posted at completion or voided at cancel or expiry; null while open.',
        ),
      },
      { description: 'Why funds were reserved: the assignment, who made it, and the ledger transfer.' },
    ),
    completion: Nullable(
      Type.Object(
        {
          completedBy: Nullable(
            Type.String({ description: 'Who verified the milestone.', examples: ['instructor:42'] }),
          ),
          completedAt: Timestamp('Verified.'),
          evidence: Nullable(
            Type.Record(Type.String(), Type.Unknown(), {
              description: 'What the verifier saw, as stored at completion.',
              examples: [{ certificateNumber: 'OSHA-10-88231' }],
            }),
          ),
          amount: Nullable(BalanceDollars('Released at completion.', 500)),
          ...ActorFields('completed it'),
        },
        {
          description: 'Who completed the milestone, when, and on what evidence; null while not completed.',
          examples: [completionExample],
        },
      ),
    ),
    approvals: Type.Array(
      Type.Object({
        type: OneOf(eventTypes, {
          description: '`usertask.pending_approval`, `usertask.approved` or `usertask.rejected`.',
          examples: ['usertask.approved'],
        }),
        by: Nullable(
          Type.String({
            description: 'Who approved or rejected (who completed, for `pending_approval`), as the event carries it.',
            examples: ['supervisor:7'],
          }),
        ),
        at: Timestamp('When.'),
        ...ActorFields('acted'),
      }),
      { description: 'The approval steps of a dual-approval task, oldest first; empty when there were none.' },
    ),
    consents: Type.Array(
      Type.Object({
        consentId: Type.String({ description: 'The consent record.', examples: ['cns_01jd8x'] }),
        agreementId: Type.String({ description: 'The agreement.', examples: ['agr_01jd8x'] }),
        agreementType: Type.String({ description: 'Its type.', examples: ['cardholder_agreement'] }),
        title: Type.String({ description: 'Its title in that version.', examples: ['Cardholder agreement'] }),
        version: Type.Integer({ minimum: 1, description: 'The version accepted.', examples: [2] }),
        contentHash: Type.String({
          description: 'SHA-256 of that version’s content.',
          examples: ['3f0a9c1e5b7d2468ace013579bdf2468ace013579bdf2468ace013579bdf2468'],
        }),
        acceptedAt: Timestamp('When the participant accepted it.'),
        ipAddress: Type.String({ description: 'From where.', examples: ['203.0.113.7'] }),
        userAgent: Type.String({ description: 'With which user agent.', examples: ['Mozilla/5.0'] }),
        method: Type.String({ description: 'How consent was given.', examples: ['click_through'] }),
      }),
      {
        description:
          'The consents that satisfied the program’s required agreements when the milestone was completed (now, while it is not).',
      },
    ),
    disbursement: Nullable(
      Type.Object(
        {
          id: Id('dsb', 'Disbursement id.'),
          amount: BalanceDollars('Amount funded to the card.', 500),
          status: OneOf(disbursementStatuses, { description: 'Its status now.', examples: ['settled'] }),
          cardId: Nullable(Id('card', 'The card funded.')),
          highnoteTransferId: Nullable(
            Type.String({ description: 'Highnote’s transfer id, once initiated.', examples: ['iftr_8Kd'] }),
          ),
          attempt: Type.Integer({
            minimum: 1,
            description: 'Funding attempt; each retry starts the next.',
            examples: [1],
          }),
          failureCode: Nullable(
            Type.String({
              description: 'Highnote’s reason code for a failed transfer.',
              examples: ['INSUFFICIENT_FUNDS'],
            }),
          ),
          failureReason: Nullable(
            Type.String({ description: 'Why the funding failed.', examples: ['Highnote failed the transfer'] }),
          ),
          createdAt: Timestamp('Opened at completion.'),
          settledAt: NullableTimestamp('Settled on the card.'),
          history: Type.Array(
            Type.Object({
              type: OneOf(eventTypes, {
                description: 'The `disbursement.*` event.',
                examples: ['disbursement.settled'],
              }),
              status: Nullable(
                OneOf(disbursementStatuses, { description: 'The status the event reported.', examples: ['settled'] }),
              ),
              at: Timestamp('When it was recorded.'),
              ...ActorFields('moved it (`system:highnote` or a job for a Highnote notification)'),
            }),
            {
              description: 'Each status the disbursement went through, oldest first, with the event that reported it.',
            },
          ),
          settlementTransfer: TransferSchema('The ledger transfer in transit → disbursed at settlement; null before.'),
          returnTransfer: TransferSchema('The ledger transfer that returned a cancelled funding to the pool.'),
          spent: BalanceDollars('How much of it the participant has spent (first-in-first-out attribution).', 140),
          remaining: BalanceDollars('What of it is still on the card; 0 until it settles.', 360),
          spends: Type.Array(
            Type.Object({
              spendId: Id('spd', 'The spend.'),
              amount: BalanceDollars('What of the spend this disbursement paid.', 100),
              status: OneOf(spendStatuses, { description: 'The spend’s status now.', examples: ['cleared'] }),
              merchant: Nullable(Type.String({ description: 'Merchant name.', examples: ['CORNER GROCERY'] })),
              occurredAt: Timestamp('The transaction’s first event at Highnote.'),
            }),
            { description: 'The card spends that drew on this disbursement, oldest first.' },
          ),
        },
        {
          description:
            'The funding of the card: its status history, settlement and what it paid for; null before completion.',
          examples: [disbursementExample],
        },
      ),
    ),
  },
  { $id: 'UserTaskRecord', description: 'What is on record for one milestone, from stored facts only.' },
);
