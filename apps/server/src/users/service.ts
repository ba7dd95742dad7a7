import { enroll } from '../enrollments/service.js';
import type { PostalAddress } from '../issuer/highnote-cards.js';
import { type Db, databaseErrorOf } from '../platform/db.js';
import { fail, ok, type Result } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import type { UnitOfWork } from '../work/unit.js';
import { presentUser, type User, userOf } from './user.js';

export interface UserFields {
  externalId?: string | undefined;
  highnoteAccountHolderId?: string | undefined;
  firstName?: string | undefined;
  lastName?: string | undefined;
  email?: string | undefined;
  phoneNumber?: string | undefined;
  dateOfBirth?: string | undefined;
  address?: PostalAddress | undefined;
  metadata?: Record<string, string> | undefined;
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
/** Whether another participant already has this externalId (checked before Highnote is called). */
export async function externalIdTaken(
  db: Db,
  organizationId: string,
  externalId: string | undefined,
): Promise<string | undefined> {
  if (externalId === undefined) return undefined;
  const row = await db
    .selectFrom('users')
    .select('id')
    .where('organization_id', '=', organizationId)
    .where('external_id', '=', externalId)
    .executeTakeFirst();
  return row?.id;
}

export async function createUser(
  unit: UnitOfWork,
  input: UserFields & { programId?: string | undefined; id?: string | undefined },
): Promise<Result<User>> {
  const { tx, organizationId } = unit;
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
  const id = input.id ?? newId('user');
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
        address: input.address === undefined ? null : JSON.stringify(input.address),
        metadata: JSON.stringify(input.metadata ?? {}),
        created_at: unit.now,
        updated_at: unit.now,
      })
      .execute();
  } catch (error) {
    if (duplicateExternalId(error)) {
      return fail('invalid_state', `Another user already has externalId ${input.externalId}`, 'externalId');
    }
    throw error;
  }
  const user = await getUser(tx, organizationId, id);
  if (user === undefined) return fail('not_found', `No user ${id}`);
  unit.emit('user.created', presentUser(user));
  if (input.programId !== undefined) {
    const enrolled = await enroll(unit, input.programId, id);
    if (!enrolled.ok) return enrolled;
  }
  return ok(user);
}

export async function updateUser(unit: UnitOfWork, id: string, input: UserFields): Promise<Result<User>> {
  const { tx, organizationId } = unit;
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
      ...(input.address !== undefined ? { address: JSON.stringify(input.address) } : {}),
      ...(input.metadata !== undefined ? { metadata: JSON.stringify(input.metadata) } : {}),
      updated_at: unit.now,
    })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .execute();
  const user = await getUser(tx, organizationId, id);
  if (user === undefined) return fail('not_found', `No user ${id}`);
  unit.emit('user.updated', presentUser(user));
  return ok(user);
}
