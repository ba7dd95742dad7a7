import type { Selectable } from 'kysely';
import { Type } from 'typebox';
import { PostalAddressSchema } from '../cards/card.js';
import type { PostalAddress } from '../issuer/highnote-cards.js';
import { isoRequired } from '../platform/present.js';
import type { UsersTable } from '../platform/schema.js';
import { Id, Metadata, Nullable, ObjectKind, Timestamp } from '../platform/schemas.js';

/** A participant and how the API presents them. */

export interface User {
  id: string;
  externalId: string | null;
  highnoteAccountHolderId: string | null;
  firstName: string | null;
  lastName: string | null;
  email: string | null;
  phoneNumber: string | null;
  dateOfBirth: string | null;
  address: PostalAddress | null;
  metadata: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

/** A row of `users` as a query selects it. */
type UserRow = Selectable<UsersTable>;

export function userOf(row: UserRow): User {
  return {
    id: row.id,
    externalId: row.external_id,
    highnoteAccountHolderId: row.highnote_account_holder_id,
    firstName: row.first_name,
    lastName: row.last_name,
    email: row.email,
    phoneNumber: row.phone_number,
    dateOfBirth: row.date_of_birth,
    address: (row.address as PostalAddress | null) ?? null,
    metadata: row.metadata as Record<string, string>,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export const UserSchema = Type.Object(
  {
    id: Id('usr', 'User id.'),
    object: ObjectKind('user'),
    externalId: Nullable(
      Type.String({ description: 'Your id for this person; unique in your organization.', examples: ['emp-1842'] }),
    ),
    highnoteAccountHolderId: Nullable(
      Type.String({ description: 'Linked Highnote account holder.', examples: ['ach_1842'] }),
    ),
    firstName: Nullable(Type.String({ description: 'Given name.', examples: ['Ada'] })),
    lastName: Nullable(Type.String({ description: 'Family name.', examples: ['Lovelace'] })),
    email: Nullable(Type.String({ description: 'Email address.', examples: ['ada@example.com'] })),
    phoneNumber: Nullable(Type.String({ description: 'Phone number, E.164.', examples: ['+14155550100'] })),
    dateOfBirth: Nullable(Type.String({ description: 'Date of birth, YYYY-MM-DD.', examples: ['1990-12-10'] })),
    address: Nullable(PostalAddressSchema),
    metadata: Metadata,
    createdAt: Timestamp('Created.'),
    updatedAt: Timestamp('Last changed.'),
  },
  { $id: 'User' },
);

export function presentUser(user: User) {
  return {
    id: user.id,
    object: 'user' as const,
    externalId: user.externalId,
    highnoteAccountHolderId: user.highnoteAccountHolderId,
    firstName: user.firstName,
    lastName: user.lastName,
    email: user.email,
    phoneNumber: user.phoneNumber,
    dateOfBirth: user.dateOfBirth,
    address: user.address,
    metadata: user.metadata,
    createdAt: isoRequired(user.createdAt),
    updatedAt: isoRequired(user.updatedAt),
  };
}
