import type { Db } from '../platform/db.js';
import { fail, ok, type Result } from '../platform/errors.js';
import { findProgram } from '../programs/program.js';
import { lockProgram, releaseRound } from '../programs/service.js';
import { getUser } from '../users/service.js';
import { openUserTaskStatuses } from '../usertasks/usertask.js';
import type { UnitOfWork } from '../work/unit.js';
import { type Enrollment, type EnrollmentStatus, enrollmentOf, presentEnrollment } from './enrollment.js';

export async function getEnrollment(
  db: Db,
  organizationId: string,
  programId: string,
  userId: string,
): Promise<Enrollment | undefined> {
  const row = await db
    .selectFrom('enrollments')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('program_id', '=', programId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return row === undefined ? undefined : enrollmentOf(row);
}

export async function listEnrollments(
  db: Db,
  organizationId: string,
  programId: string,
  options: { afterId: string | undefined; limit: number; status: EnrollmentStatus | undefined },
): Promise<(Enrollment & { id: string })[]> {
  let query = db
    .selectFrom('enrollments')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('program_id', '=', programId)
    .orderBy('user_id', 'desc')
    .limit(options.limit);
  if (options.afterId !== undefined) query = query.where('user_id', '<', options.afterId);
  if (options.status !== undefined) query = query.where('status', '=', options.status);
  return (await query.execute()).map((row) => ({ ...enrollmentOf(row), id: row.user_id }));
}

/**
 * Makes the user an active participant. A new (or returning) participant takes a seat, and the
 * seat count only rises while below the cap, so racing enrollments never pass it. Answers the
 * enrollment when this call seated the user, or null when they already had a seat.
 */
export async function takeSeat(
  unit: UnitOfWork,
  programId: string,
  userId: string,
): Promise<Result<Enrollment | null>> {
  const { tx, organizationId, now } = unit;
  const seated = await tx
    .insertInto('enrollments')
    .values({
      organization_id: organizationId,
      program_id: programId,
      user_id: userId,
      status: 'active',
      enrolled_at: now,
    })
    .onConflict((conflict) =>
      conflict
        .columns(['organization_id', 'program_id', 'user_id'])
        .doUpdateSet({ status: 'active', enrolled_at: now, dismissed_at: null })
        .where('enrollments.status', '=', 'dismissed'),
    )
    .returningAll()
    .executeTakeFirst();
  if (seated === undefined) return ok(null);
  // A participant dismissed with more open user tasks than one round releases comes back only
  // once the release job has finished; otherwise the job could not tell their old milestones
  // from the new ones. (A brand-new enrollment has no user tasks.)
  const leftOpen = await tx
    .selectFrom('user_tasks')
    .select('id')
    .where('organization_id', '=', organizationId)
    .where('program_id', '=', programId)
    .where('user_id', '=', userId)
    .where('status', 'in', openUserTaskStatuses)
    .limit(1)
    .executeTakeFirst();
  if (leftOpen !== undefined) {
    return fail(
      'invalid_state',
      `User ${userId}'s dismissal from program ${programId} is still releasing reservations; try again shortly`,
      'userId',
    );
  }
  const counted = await tx
    .updateTable('programs')
    .set((eb) => ({ participant_count: eb('participant_count', '+', 1) }))
    .where('organization_id', '=', organizationId)
    .where('id', '=', programId)
    .whereRef('participant_count', '<', 'max_participants')
    .returning('participant_count')
    .executeTakeFirst();
  if (counted === undefined) {
    return fail('participant_cap_reached', `Program ${programId} has reached its maxParticipants`, 'userId');
  }
  const enrollment = enrollmentOf(seated);
  unit.emit('enrollment.created', presentEnrollment(enrollment));
  return ok(enrollment);
}

export async function enroll(unit: UnitOfWork, programId: string, userId: string): Promise<Result<Enrollment>> {
  const { tx, organizationId } = unit;
  const program = await findProgram(tx, organizationId, programId);
  if (!program.ok) return program;
  if (program.value.status === 'closed') return fail('invalid_state', `Program ${programId} is closed`);
  const user = await getUser(tx, organizationId, userId);
  if (user === undefined) return fail('not_found', `No user ${userId}`, 'userId');
  const seat = await takeSeat(unit, programId, userId);
  if (!seat.ok) return seat;
  if (seat.value !== null) return ok(seat.value);
  const enrollment = await getEnrollment(tx, organizationId, programId, userId);
  return enrollment === undefined ? fail('not_found', `No enrollment of ${userId}`) : ok(enrollment);
}

/** Dismisses a participant: frees the seat and releases their open reservations. */
export async function dismiss(unit: UnitOfWork, programId: string, userId: string): Promise<Result<Enrollment>> {
  const { tx, organizationId, now } = unit;
  // Lock order everywhere: enrollment, program, user tasks, accounts.
  const dismissed = await tx
    .updateTable('enrollments')
    .set({ status: 'dismissed', dismissed_at: now })
    .where('organization_id', '=', organizationId)
    .where('program_id', '=', programId)
    .where('user_id', '=', userId)
    .where('status', '=', 'active')
    .returningAll()
    .executeTakeFirst();
  if (dismissed === undefined) {
    const existing = await getEnrollment(tx, organizationId, programId, userId);
    if (existing === undefined) return fail('not_found', `User ${userId} is not enrolled in program ${programId}`);
    return fail('invalid_state', `User ${userId} is already dismissed from program ${programId}`);
  }
  const program = await lockProgram(tx, organizationId, programId);
  if (program === undefined) return fail('not_found', `No program ${programId}`);
  await tx
    .updateTable('programs')
    .set((eb) => ({ participant_count: eb('participant_count', '-', 1) }))
    .where('organization_id', '=', organizationId)
    .where('id', '=', programId)
    .execute();
  await releaseRound(unit, program, { programId, userId }, 'participant_dismissed');
  const enrollment = enrollmentOf(dismissed);
  unit.emit('enrollment.dismissed', presentEnrollment(enrollment));
  return ok(enrollment);
}
