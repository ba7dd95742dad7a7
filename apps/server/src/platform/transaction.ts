import { type Db, databaseErrorOf } from './db.js';

/** Attempts for a transaction that lost a deadlock or serialization race before giving up. */
export const maxTransactionAttempts = 3;

function isRetryable(error: unknown): boolean {
  const code = databaseErrorOf(error)?.code;
  return code === '40P01' || code === '40001';
}

/** Runs one database transaction, again when it lost a deadlock or serialization race. */
export async function inTransaction<T>(db: Db, work: (tx: Db) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().execute(work);
    } catch (error) {
      if (attempt >= maxTransactionAttempts || !isRetryable(error)) throw error;
    }
  }
}
