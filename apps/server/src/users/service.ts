import { maxBatchSize } from '../ledger/ledger.js';
import { type Db, databaseErrorOf, dateOf } from '../platform/db.js';
import { fail, ok, type Result } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { findProgram, releaseOpenUserTasks } from '../programs/service.js';

export interface User {
  id: string;
  externalId: string | null;
  highnoteAccountHolderId: string | null;
  firstName: string | null;
  lastName: string | null;
  email: string | null;
  phoneNumber: string | null;
  dateOfBirth: string | null;
  metadata: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

export interface UserFields {
  externalId?: string | undefined;
  highnoteAccountHolderId?: string | undefined;
  firstName?: string | undefined;
  lastName?: string | undefined;
  email?: string | undefined;
  phoneNumber?: string | undefined;
  dateOfBirth?: string | undefined;
  metadata?: Record<string, string> | undefined;
}

type UserRow = {
  id: string;
  external_id: string | null;
  highnote_account_holder_id: string | null;
  first_name: string | null;
  last_name: string | null;
  email: string | null;
  phone_number: string | null;
  date_of_birth: string | null;
  metadata: unknown;
  created_at: Date;
  updated_at: Date;
};

function userOf(row: UserRow): User {
  return {
    id: row.id,
    externalId: row.external_id,
    highnoteAccountHolderId: row.highnote_account_holder_id,
    firstName: row.first_name,
    lastName: row.last_name,
    email: row.email,
    phoneNumber: row.phone_number,
    dateOfBirth: row.date_of_birth,
    metadata: row.metadata as Record<string, string>,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function duplicateExternalId(error: unknown): boolean {
  const failure = databaseErrorOf(error);
  return failure?.code === '23505' && failure.constraint === 'users_external_id';
}

export async function getUser(db: Db, organizationId: string, id: string): Promise<User | undefined> {
  const row = await db
    .selectFrom('users')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined ? undefined : userOf(row);
}

export async function listUsers(
  db: Db,
  organizationId: string,
  options: { afterId: string | undefined; limit: number; externalId: string | undefined },
): Promise<User[]> {
  let query = db
    .selectFrom('users')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .orderBy('id', 'desc')
    .limit(options.limit);
  if (options.afterId !== undefined) query = query.where('id', '<', options.afterId);
  if (options.externalId !== undefined) query = query.where('external_id', '=', options.externalId);
  return (await query.execute()).map(userOf);
}

/** Creates a participant and, when `programId` is given, enrolls them in that program. */
export async function createUser(
  tx: Db,
  organizationId: string,
  input: UserFields & { programId?: string | undefined },
): Promise<Result<User>> {
  if (input.externalId !== undefined) {
    const existing = await tx
      .selectFrom('users')
      .select('id')
      .where('organization_id', '=', organizationId)
      .where('external_id', '=', input.externalId)
      .executeTakeFirst();
    if (existing !== undefined) {
      return fail('invalid_state', `User ${existing.id} already has externalId ${input.externalId}`, 'externalId');
    }
  }
  const id = newId('user');
  try {
    await tx
      .insertInto('users')
      .values({
        organization_id: organizationId,
        id,
        external_id: input.externalId ?? null,
        highnote_account_holder_id: input.highnoteAccountHolderId ?? null,
        first_name: input.firstName ?? null,
        last_name: input.lastName ?? null,
        email: input.email ?? null,
        phone_number: input.phoneNumber ?? null,
        date_of_birth: input.dateOfBirth ?? null,
        metadata: JSON.stringify(input.metadata ?? {}),
      })
      .execute();
  } catch (error) {
    if (duplicateExternalId(error)) {
      return fail('invalid_state', `Another user already has externalId ${input.externalId}`, 'externalId');
    }
    throw error;
  }
  if (input.programId !== undefined) {
    const enrolled = await enroll(tx, organizationId, input.programId, id);
    if (!enrolled.ok) return enrolled;
  }
  const user = await getUser(tx, organizationId, id);
  return user === undefined ? fail('not_found', `No user ${id}`) : ok(user);
}

export async function updateUser(tx: Db, organizationId: string, id: string, input: UserFields): Promise<Result<User>> {
  const existing = await getUser(tx, organizationId, id);
  if (existing === undefined) return fail('not_found', `No user ${id}`);
  if (input.externalId !== undefined && input.externalId !== existing.externalId) {
    const clash = await tx
      .selectFrom('users')
      .select('id')
      .where('organization_id', '=', organizationId)
      .where('external_id', '=', input.externalId)
      .executeTakeFirst();
    if (clash !== undefined) {
      return fail('invalid_state', `User ${clash.id} already has externalId ${input.externalId}`, 'externalId');
    }
  }
  await tx
    .updateTable('users')
    .set({
      ...(input.externalId !== undefined ? { external_id: input.externalId } : {}),
      ...(input.highnoteAccountHolderId !== undefined
        ? { highnote_account_holder_id: input.highnoteAccountHolderId }
        : {}),
      ...(input.firstName !== undefined ? { first_name: input.firstName } : {}),
      ...(input.lastName !== undefined ? { last_name: input.lastName } : {}),
      ...(input.email !== undefined ? { email: input.email } : {}),
      ...(input.phoneNumber !== undefined ? { phone_number: input.phoneNumber } : {}),
      ...(input.dateOfBirth !== undefined ? { date_of_birth: input.dateOfBirth } : {}),
      ...(input.metadata !== undefined ? { metadata: JSON.stringify(input.metadata) } : {}),
      updated_at: new Date(),
    })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .execute();
  const user = await getUser(tx, organizationId, id);
  return user === undefined ? fail('not_found', `No user ${id}`) : ok(user);
}

export interface Enrollment {
  programId: string;
  userId: string;
  status: 'active' | 'dismissed';
  enrolledAt: Date;
  dismissedAt: Date | null;
}

function enrollmentOf(row: {
  program_id: string;
  user_id: string;
  status: 'active' | 'dismissed';
  enrolled_at: Date;
  dismissed_at: Date | string | null;
}): Enrollment {
  return {
    programId: row.program_id,
    userId: row.user_id,
    status: row.status,
    enrolledAt: row.enrolled_at,
    dismissedAt: dateOf(row.dismissed_at),
  };
}

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
  options: { afterId: string | undefined; limit: number; status: 'active' | 'dismissed' | undefined },
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
 * seat count only rises while below the cap, so racing enrollments never pass it. Returns
 * whether a seat was taken by this call.
 */
export async function takeSeat(
  tx: Db,
  organizationId: string,
  programId: string,
  userId: string,
): Promise<Result<boolean>> {
  const seated = await tx
    .insertInto('enrollments')
    .values({ organization_id: organizationId, program_id: programId, user_id: userId, status: 'active' })
    .onConflict((conflict) =>
      conflict
        .columns(['organization_id', 'program_id', 'user_id'])
        .doUpdateSet({ status: 'active', enrolled_at: new Date(), dismissed_at: null })
        .where('enrollments.status', '=', 'dismissed'),
    )
    .returning('user_id')
    .executeTakeFirst();
  if (seated === undefined) return ok(false);
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
  return ok(true);
}

export async function enroll(
  tx: Db,
  organizationId: string,
  programId: string,
  userId: string,
): Promise<Result<Enrollment>> {
  const program = await findProgram(tx, organizationId, programId);
  if (!program.ok) return program;
  if (program.value.status === 'closed') return fail('invalid_state', `Program ${programId} is closed`);
  const user = await getUser(tx, organizationId, userId);
  if (user === undefined) return fail('not_found', `No user ${userId}`, 'userId');
  const seat = await takeSeat(tx, organizationId, programId, userId);
  if (!seat.ok) return seat;
  const enrollment = await getEnrollment(tx, organizationId, programId, userId);
  return enrollment === undefined ? fail('not_found', `No enrollment of ${userId}`) : ok(enrollment);
}

/** Dismisses a participant: frees the seat and releases every open reservation of theirs. */
export async function dismiss(
  tx: Db,
  organizationId: string,
  programId: string,
  userId: string,
): Promise<Result<Enrollment>> {
  const dismissed = await tx
    .updateTable('enrollments')
    .set({ status: 'dismissed', dismissed_at: new Date() })
    .where('organization_id', '=', organizationId)
    .where('program_id', '=', programId)
    .where('user_id', '=', userId)
    .where('status', '=', 'active')
    .returning('user_id')
    .executeTakeFirst();
  if (dismissed === undefined) {
    const existing = await getEnrollment(tx, organizationId, programId, userId);
    if (existing === undefined) return fail('not_found', `User ${userId} is not enrolled in program ${programId}`);
    return fail('invalid_state', `User ${userId} is already dismissed from program ${programId}`);
  }
  // Lock order everywhere: enrollment, program, user tasks, accounts.
  await tx
    .updateTable('programs')
    .set((eb) => ({ participant_count: eb('participant_count', '-', 1) }))
    .where('organization_id', '=', organizationId)
    .where('id', '=', programId)
    .execute();
  for (;;) {
    const released = await releaseOpenUserTasks(tx, organizationId, { programId, userId }, 'participant_dismissed');
    if (released < maxBatchSize) break;
  }
  const enrollment = await getEnrollment(tx, organizationId, programId, userId);
  return enrollment === undefined ? fail('not_found', `No enrollment of ${userId}`) : ok(enrollment);
}
