import { assert } from '../platform/errors.js';
import type { EventType } from '../platform/events.js';
import type { UnitOfWork } from '../work/unit.js';
import { presentUserTask, type UserTaskStatus, userTaskOf } from './usertask.js';

/**
 * The funding side of a user task's state: its disbursement settled (`completed → funded`), failed
 * (`completed → funding_failed`), was retried (`funding_failed → completed`) or was cancelled, its
 * money returned to the pool (`completed | funding_failed → cancelled`). The disbursement drives
 * these; this module writes the user task's half, with its event. Each move names the states it
 * starts from, so a duplicate or late call moves nothing and answers false.
 */
const fundingMoves = {
  funded: { from: ['completed'], to: 'funded', event: 'usertask.funded' },
  failed: { from: ['completed'], to: 'funding_failed', event: 'usertask.funding_failed' },
  retried: { from: ['funding_failed'], to: 'completed', event: 'usertask.funding_retried' },
  released: { from: ['completed', 'funding_failed'], to: 'cancelled', event: 'usertask.cancelled' },
} as const satisfies Record<string, { from: readonly UserTaskStatus[]; to: UserTaskStatus; event: EventType }>;

export type FundingMove = keyof typeof fundingMoves;

export async function moveFunding(
  unit: UnitOfWork,
  move: FundingMove,
  userTaskId: string,
  disbursementId: string,
): Promise<boolean> {
  const spec = fundingMoves[move];
  const row = await unit.tx
    .updateTable('user_tasks')
    .set({
      status: spec.to,
      updated_at: unit.now,
      ...(move === 'released' ? { cancellation_reason: 'funding_cancelled', cancelled_at: unit.now } : {}),
    })
    .where('organization_id', '=', unit.organizationId)
    .where('id', '=', userTaskId)
    .where('status', 'in', spec.from)
    .returningAll()
    .executeTakeFirst();
  if (row === undefined) return false;
  assert(row.status === spec.to, `user task ${userTaskId} did not move to ${spec.to}`);
  unit.emit(spec.event, presentUserTask(userTaskOf({ ...row, disbursement_id: disbursementId })));
  return true;
}
