import type { Issuers } from '../configurations/service.js';
import { assert, ok } from '../platform/errors.js';
import { issuerIdempotencyKey } from '../platform/ids.js';
import { defineJob, type JobContext, type JobRequest } from '../platform/jobs.js';
import { runUnit } from '../work/runner.js';
import { decideApplication, getApplication } from './service.js';

/**
 * Following an application to Highnote's decision. Highnote decides asynchronously; until its
 * notifications are wired in, the follow job reads the application and, while it is undecided,
 * ends with an error so the queue runs it again with backoff (about 20 minutes in all). On
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
  const status = read.value.status;
  if (status === 'PENDING' || status === 'IN_REVIEW') {
    if (status === 'IN_REVIEW' && application.status === 'pending') {
      await runUnit(context.db, unitContext, async (unit) =>
        ok(await decideApplication(unit, applicationId, { status: 'in_review' })),
      );
    }
    throw new ApplicationUndecided(`application ${applicationId} is still ${status}`);
  }
  if (status === 'APPROVED') {
    const account = await highnote.issueFinancialAccount({
      applicationId: application.highnoteApplicationId,
      name: `Tranche ${application.userId}`,
      externalId: application.id,
      idempotencyKey: issuerIdempotencyKey('financial-account', organizationId, application.id),
    });
    if (!account.ok) throw new ApplicationUndecided(account.failure.message);
    await runUnit(context.db, unitContext, async (unit) =>
      ok(
        await decideApplication(unit, applicationId, {
          status: 'approved',
          highnoteFinancialAccountId: account.value.id,
        }),
      ),
    );
    return;
  }
  await runUnit(context.db, unitContext, async (unit) =>
    ok(
      await decideApplication(unit, applicationId, {
        status: status === 'DENIED' ? 'denied' : 'closed',
        reason: read.value.denialReason,
      }),
    ),
  );
}
