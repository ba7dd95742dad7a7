import type { Kysely } from 'kysely';

// Frozen once landed: a schema change is a new migration file. No application imports here.

export async function up(_db: Kysely<unknown>): Promise<void> {}
