import type { Db } from '../platform/db.js';
import { Batcher } from '../work/batcher.js';
import { assignEach, assignmentConflict } from './assign.js';
import { completeEach } from './transitions.js';

/**
 * The hot path's batchers: assignments and completions of one organization commit in batches.
 * The routes build one pair per app; the bench builds its own over the same work, the same way.
 */
export function userTaskBatchers(db: Db) {
  return {
    assignments: new Batcher(db, assignEach, { conflictKey: assignmentConflict }),
    // Two completions of one user task never share a batch: the second sees the first.
    completions: new Batcher(db, completeEach, { conflictKey: (input) => input.id }),
  };
}
