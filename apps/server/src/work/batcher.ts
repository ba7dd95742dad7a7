import type { Db } from '../platform/db.js';
import { runUnits, type Settled, type SetWork, type UnitOutcome, type UnitRequest } from './runner.js';

/**
 * Group commit. Units of work that contend for the same rows (one organization's pools) queue
 * here, per key, and run together: one transaction, multi-row statements, one ledger batch and
 * one commit for the whole batch (see `runUnits` for how each unit is still answered alone).
 *
 * A key runs one batch at a time. A unit that arrives while its key's batch runs waits for the
 * next one, which takes everything that queued meanwhile, up to `maxBatchUnits`. A lone unit is not
 * delayed waiting for company: an idle key starts its batch at the end of the current turn of
 * the event loop, so only requests that arrived in the same turn join it.
 *
 * Batching is per process: processes sharing a database each batch their own requests and stay
 * correct through the database's locks; for the most throughput, route a hot program's traffic
 * to one process (README, "Running several processes").
 */

/** Most units one batch takes; the rest wait for the next batch. */
export const maxBatchUnits = 256;
/**
 * Batches of one key that run at once. Two: while one holds the pool's lock and commits, the next
 * claims its keys and writes its rows, then waits for that lock. Units of two batches in flight
 * take their rows in the same order (keys, enrollments and programs sorted, the pool last), so
 * they wait on each other and never deadlock.
 */
export const batchesInFlightPerKey = 2;

interface Waiting<I, T> {
  request: UnitRequest<I, T>;
  resolve(outcome: UnitOutcome<T>): void;
  reject(error: unknown): void;
}

interface Lane<I, T> {
  waiting: Waiting<I, T>[];
  running: number;
}

export class Batcher<I, T> {
  readonly #lanes = new Map<string, Lane<I, T>>();

  constructor(
    private readonly db: Db,
    private readonly work: SetWork<I, T>,
    private readonly options: {
      /** Two units with the same conflict key never share a transaction. */
      conflictKey?: (input: I) => string | undefined;
      maxUnits?: number;
    } = {},
  ) {}

  /** Runs the unit in the next batch of `key` and answers its outcome. */
  run(key: string, request: UnitRequest<I, T>): Promise<UnitOutcome<T>> {
    return new Promise((resolve, reject) => {
      let lane = this.#lanes.get(key);
      if (lane === undefined) {
        lane = { waiting: [], running: 0 };
        this.#lanes.set(key, lane);
      }
      lane.waiting.push({ request, resolve, reject });
      if (lane.running < batchesInFlightPerKey) {
        lane.running++;
        const started = lane;
        setImmediate(() => void this.#drain(key, started));
      }
    });
  }

  /** Runs batches of one key until nothing waits. */
  async #drain(key: string, lane: Lane<I, T>): Promise<void> {
    try {
      while (lane.waiting.length > 0) {
        const batch = lane.waiting.splice(0, this.options.maxUnits ?? maxBatchUnits);
        let settled: Settled<T>[];
        try {
          settled = await runUnits(
            this.db,
            batch.map((waiting) => waiting.request),
            this.work,
            { conflictKey: this.options.conflictKey },
          );
        } catch (error) {
          for (const waiting of batch) waiting.reject(error);
          continue;
        }
        batch.forEach((waiting, index) => {
          const answer = settled[index];
          if (answer === undefined) waiting.reject(new Error('the runner answers every unit'));
          else if ('error' in answer) waiting.reject(answer.error);
          else waiting.resolve(answer.outcome);
        });
      }
    } finally {
      lane.running--;
      if (lane.running === 0 && lane.waiting.length === 0) this.#lanes.delete(key);
    }
  }
}
