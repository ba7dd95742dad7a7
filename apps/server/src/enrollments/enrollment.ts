import { Type } from 'typebox';
import { dateOf } from '../platform/db.js';
import { iso, isoRequired } from '../platform/present.js';
import { Id, NullableTimestamp, ObjectKind, OneOf, Timestamp } from '../platform/schemas.js';

/** A participant's place in a program, and how the API presents it. */

export const enrollmentStatuses = ['active', 'dismissed'] as const;
export type EnrollmentStatus = (typeof enrollmentStatuses)[number];

export interface Enrollment {
  programId: string;
  userId: string;
  status: EnrollmentStatus;
  enrolledAt: Date;
  dismissedAt: Date | null;
}

export function enrollmentOf(row: {
  program_id: string;
  user_id: string;
  status: EnrollmentStatus;
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

export const EnrollmentSchema = Type.Object(
  {
    object: ObjectKind('enrollment'),
    programId: Id('prg', 'Program id.'),
    userId: Id('usr', 'User id.'),
    status: OneOf(enrollmentStatuses, {
      description: 'active counts against the program’s maxParticipants; dismissed does not.',
      examples: ['active'],
    }),
    enrolledAt: Timestamp('Enrolled (or enrolled again).'),
    dismissedAt: NullableTimestamp('Dismissed.'),
  },
  { $id: 'Enrollment' },
);

export function presentEnrollment(enrollment: Enrollment) {
  return {
    object: 'enrollment' as const,
    programId: enrollment.programId,
    userId: enrollment.userId,
    status: enrollment.status,
    enrolledAt: isoRequired(enrollment.enrolledAt),
    dismissedAt: iso(enrollment.dismissedAt),
  };
}
