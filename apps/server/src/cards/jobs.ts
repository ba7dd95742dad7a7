import type { HighnoteClient, Issuers } from '../configurations/service.js';
import type { ApplicationStatusCode } from '../issuer/highnote-cards.js';
import type { Db } from '../platform/db.js';
import { assert, ok } from '../platform/errors.js';
import { issuerIdempotencyKey } from '../platform/ids.js';
import { defineJob, type JobContext, type JobRequest } from '../platform/jobs.js';
import { runUnit } from '../work/runner.js';
import type { UnitContext } from '../work/unit.js';
import type { Application } from './application.js';
import { decideApplication, getApplication } from './service.js';

/**
 * Following an application to Highnote's decision. Highnote decides asynchronously and notifies
 * (see `notifications/`); a notification can be lost, so the follow job also reads the application
 * and, while it is undecided, ends with an error so the queue runs it again with backoff (about 20
 * minutes in all). On
 * approval it issues the financial account (its idempotency key derived from the application) and
 * records both in one unit.
 */

export const followApplicationJobName = 'applications.follow';
const followMaxAttempts = 30;

export class ApplicationUndecided extends Error {}

export interface FollowPayload {
  applicationId: string;
}

export function followApplicationRequest(applicationId: string): JobRequest {
  const payload: FollowPayload = { applicationId };
  return {
    name: followApplicationJobName,
    payload,
    maxAttempts: followMaxAttempts,
    dedupeKey: `${followApplicationJobName}:${applicationId}`,
  };
}

export function followApplicationJob(deps: { issuers: Issuers }) {
  return defineJob<FollowPayload>({
    name: followApplicationJobName,
    maxAttempts: followMaxAttempts,
    backoff: { baseMs: 250, maxMs: 60_000 },
    visibilityTimeoutMs: 60_000,
    run: (context, payload) => follow(context, deps.issuers, payload.applicationId),
  });
}

async function follow(context: JobContext, issuers: Issuers, applicationId: string): Promise<void> {
  const organizationId = context.job.organizationId;
  assert(organizationId !== null, 'an application belongs to an organization');
  const unitContext = { organizationId, actor: { kind: 'system' as const, id: context.job.id }, requestId: null };
  const application = await getApplication(context.db, organizationId, applicationId);
  if (application === undefined || (application.status !== 'pending' && application.status !== 'in_review')) return;
  const issuer = await issuers.forOrganization(organizationId);
  if (!issuer.ok) throw new ApplicationUndecided(issuer.failure.message);
  const { highnote } = issuer.value;
  const read = await highnote.application(application.highnoteApplicationId);
  if (!read.ok) throw new ApplicationUndecided(read.failure.message);
  await recordApplicationDecision(context.db, unitContext, highnote, application, read.value);
  if (read.value.status === 'PENDING' || read.value.status === 'IN_REVIEW') {
    throw new ApplicationUndecided(`application ${applicationId} is still ${read.value.status}`);
  }
}

/**
 * Records what Highnote reports about an application, forward only: the one path for the follow
 * job and for Highnote's notifications. On approval the financial account is issued first (its
 * idempotency key derived from the application, so both paths get the same account) and recorded
 * with the decision in one unit.
 */
export async function recordApplicationDecision(
  db: Db,
  unitContext: UnitContext,
  highnote: HighnoteClient,
  application: Application,
  reported: { status: ApplicationStatusCode; denialReason: string | null },
): Promise<void> {
  const { status } = reported;
  if (status === 'PENDING') return;
  if (status === 'IN_REVIEW') {
    if (application.status === 'pending') {
      await runUnit(db, unitContext, async (unit) =>
        ok(await decideApplication(unit, application.id, { status: 'in_review' })),
      );
    }
    return;
  }
  if (status === 'APPROVED') {
    if (application.status !== 'pending' && application.status !== 'in_review') return;
    const account = await highnote.issueFinancialAccount({
      applicationId: application.highnoteApplicationId,
      name: `Tranche ${application.userId}`,
      externalId: application.id,
      idempotencyKey: issuerIdempotencyKey('financial-account', unitContext.organizationId, application.id),
    });
    if (!account.ok) throw new ApplicationUndecided(account.failure.message);
    await runUnit(db, unitContext, async (unit) =>
      ok(
        await decideApplication(unit, application.id, {
          status: 'approved',
          highnoteFinancialAccountId: account.value.id,
        }),
      ),
    );
    return;
  }
  await runUnit(db, unitContext, async (unit) =>
    ok(
      await decideApplication(unit, application.id, {
        status: status === 'DENIED' ? 'denied' : 'closed',
        reason: reported.denialReason,
      }),
    ),
  );
}
