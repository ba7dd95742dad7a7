import { sql } from 'kysely';
import type { Db } from '../platform/db.js';
import { assert, fail, ok, type Result } from '../platform/errors.js';
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
  const [seat] = await takeSeats([{ unit, programId, userId }]);
  return seat ?? fail('not_found', `No enrollment of ${userId}`);
}

const seatKey = (seat: { programId: string; userId: string }) => `${seat.programId}\u0000${seat.userId}`;

/**
 * Seats a batch of participants, one per unit (units of one transaction, in the batch's order),
 * with one statement for the enrollments and, when anyone takes a new seat, one for the seat
 * counts. A participant named twice is seated by the first unit; the second finds the seat taken
 * (null), as it would one request later. When a program has fewer seats left than newcomers,
 * the first ones in the batch's order take them. A refusal comes after the enrollment was written,
 * so it is answered as a unit that wrote (the runner rolls the batch back without it).
 */
export async function takeSeats(
  seats: readonly { unit: UnitOfWork; programId: string; userId: string }[],
): Promise<Result<Enrollment | null>[]> {
  const first = seats[0];
  if (first === undefined) return [];
  const { tx, organizationId, now } = first.unit;
  const distinct = new Map<string, { programId: string; userId: string }>();
  for (const seat of seats) distinct.set(seatKey(seat), { programId: seat.programId, userId: seat.userId });
  // Enrollment rows are locked in key order, so two batches that share participants never deadlock.
  const ordered = [...distinct.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, seat]) => seat);
  const seated = await tx
    .insertInto('enrollments')
    .values(
      ordered.map((seat) => ({
        organization_id: organizationId,
        program_id: seat.programId,
        user_id: seat.userId,
        status: 'active' as const,
        enrolled_at: now,
      })),
    )
    .onConflict((conflict) =>
      conflict
        .columns(['organization_id', 'program_id', 'user_id'])
        .doUpdateSet({ status: 'active', enrolled_at: now, dismissed_at: null })
        .where('enrollments.status', '=', 'dismissed'),
    )
    .returningAll()
    .execute();
  const answers: (Result<Enrollment | null> | undefined)[] = seats.map(() => undefined);
  if (seated.length === 0) return answers.map(() => ok(null));
  const seatedByKey = new Map(seated.map((row) => [seatKey({ programId: row.program_id, userId: row.user_id }), row]));

  // Who takes each new seat: the first unit that names the participant.
  const newcomers: number[] = [];
  const claimedKeys = new Set<string>();
  seats.forEach((seat, index) => {
    const key = seatKey(seat);
    if (seatedByKey.has(key) && !claimedKeys.has(key)) {
      claimedKeys.add(key);
      newcomers.push(index);
    } else {
      answers[index] = ok(null);
    }
  });

  // A participant dismissed with more open user tasks than one round releases comes back only
  // once the release job has finished; otherwise the job could not tell their old milestones
  // from the new ones. (A brand-new enrollment has no user tasks.)
  const leftOpen = await tx
    .selectFrom('user_tasks')
    .select(['program_id', 'user_id'])
    .distinct()
    .where('organization_id', '=', organizationId)
    .where('status', 'in', openUserTaskStatuses)
    .where((eb) =>
      eb.or(
        newcomers.map((index) => {
          const seat = seats[index] as { programId: string; userId: string };
          return eb.and([eb('program_id', '=', seat.programId), eb('user_id', '=', seat.userId)]);
        }),
      ),
    )
    .execute();
  const stillReleasing = new Set(leftOpen.map((row) => seatKey({ programId: row.program_id, userId: row.user_id })));
  const counted: number[] = [];
  for (const index of newcomers) {
    const seat = seats[index] as { programId: string; userId: string };
    if (stillReleasing.has(seatKey(seat))) {
      answers[index] = fail(
        'invalid_state',
        `User ${seat.userId}'s dismissal from program ${seat.programId} is still releasing reservations; try again shortly`,
        'userId',
      );
    } else {
      counted.push(index);
    }
  }

  // Seats per program: the programs are locked in id order (an UPDATE joined to a list locks in
  // whatever order its plan reads, which deadlocked two processes), read, and given what fits.
  const wanted = new Map<string, number>();
  for (const index of counted) {
    const programId = (seats[index] as { programId: string }).programId;
    wanted.set(programId, (wanted.get(programId) ?? 0) + 1);
  }
  const granted = new Map<string, number>();
  if (wanted.size > 0) {
    const rows = await tx
      .selectFrom('programs')
      .select(['id', 'participant_count', 'max_participants'])
      .where('organization_id', '=', organizationId)
      .where('id', 'in', [...wanted.keys()])
      .orderBy('id')
      .forNoKeyUpdate()
      .execute();
    for (const row of rows) {
      const room = Math.max(0, Math.min(wanted.get(row.id) ?? 0, row.max_participants - row.participant_count));
      if (room > 0) granted.set(row.id, room);
    }
    if (granted.size > 0) await addSeats(tx, organizationId, granted);
  }
  for (const index of counted) {
    const seat = seats[index] as { unit: UnitOfWork; programId: string; userId: string };
    const left = granted.get(seat.programId) ?? 0;
    if (left <= 0) {
      answers[index] = fail(
        'participant_cap_reached',
        `Program ${seat.programId} has reached its maxParticipants`,
        'userId',
      );
      continue;
    }
    granted.set(seat.programId, left - 1);
    const row = seatedByKey.get(seatKey(seat));
    assert(row !== undefined, `the seat of ${seat.userId} was written`);
    const enrollment = enrollmentOf(row);
    seat.unit.emit('enrollment.created', presentEnrollment(enrollment));
    answers[index] = ok(enrollment);
  }
  return answers.map((answer) => answer ?? ok(null));
}

/** Adds seats to the counts of programs this transaction has locked, in one statement. */
async function addSeats(tx: Db, organizationId: string, seats: ReadonlyMap<string, number>): Promise<void> {
  const values = [...seats.entries()].map(([programId, count]) => sql`(${programId}::text, ${count}::integer)`);
  await sql`UPDATE programs AS p
    SET participant_count = p.participant_count + v.seats
    FROM (VALUES ${sql.join(values)}) AS v (id, seats)
    WHERE p.organization_id = ${organizationId} AND p.id = v.id`.execute(tx);
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
