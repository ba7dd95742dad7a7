import type { Db } from '../platform/db.js';
import { ok } from '../platform/errors.js';
import { runUnit, systemContext } from '../work/runner.js';
import { expireDue } from './transitions.js';
import { openUserTaskStatuses } from './usertask.js';

/** The job that runs the sweep; also the actor its units record. */
export const expireDueJobName = 'usertasks.expire_due';

/**
 * Expires open user tasks whose window has ended and voids their reservations, up to `limit` in
 * all. Each organization's share is its own unit (its own transaction, its own ledger batch and
 * events); rows are claimed with SKIP LOCKED, so any number of workers can sweep at once.
 * Answers how many expired.
 */
export async function expireDueUserTasks(db: Db, options: { now: Date; limit: number }): Promise<number> {
  const due = await db
    .selectFrom('user_tasks')
    .select('organization_id')
    .where('status', 'in', openUserTaskStatuses)
    .where('expires_at', '<=', options.now)
    .orderBy('expires_at')
    .limit(options.limit)
    .execute();
  const organizations = [...new Set(due.map((row) => row.organization_id))];
  let expired = 0;
  for (const organizationId of organizations) {
    if (expired >= options.limit) break;
    const outcome = await runUnit(
      db,
      systemContext(organizationId, expireDueJobName),
      async (unit) => ok(await expireDue(unit, options.limit - expired)),
      { now: options.now },
    );
    if (outcome.ok && !outcome.replayed) expired += outcome.value;
  }
  return expired;
}
