import type { Db } from '../platform/db.js';
import { assert } from '../platform/errors.js';
import {
  type AnyJobDefinition,
  type ClaimedJob,
  claimJobs,
  type JobCatalog,
  type JobLog,
  maxClaimBatchSize,
  runClaimedJob,
  scheduleRecurringJobs,
} from '../platform/jobs.js';

/** How often an idle worker looks for due jobs. */
export const defaultPollIntervalMs = 1_000;
/** Jobs one worker process runs at once. */
export const defaultConcurrency = 4;
/** Most jobs one worker may run at once (each holds a database connection while it writes). */
export const maxConcurrency = 64;
/** How long `stop()` waits for running jobs before it gives up on them (their leases then expire). */
export const workerStopTimeoutMs = 30_000;

export interface WorkerOptions {
  catalog: JobCatalog;
  log: JobLog;
  pollIntervalMs: number;
  concurrency: number;
  /** A worker-only process has no socket; its timer is what keeps it alive. */
  keepAlive?: boolean;
  stopTimeoutMs?: number;
  /** The time the worker claims, schedules and finishes at; tests move it. */
  clock?: () => Date;
}

export interface Worker {
  /**
   * Stops claiming, asks running jobs to stop between rounds, and waits for them (bounded), renewing
   * their leases meanwhile; jobs still running when the wait runs out are left to their leases.
   */
  stop(): Promise<void>;
}

/**
 * Runs the jobs of `catalog`: each tick it schedules the recurring ones (a no-op while one is queued
 * or running), then claims as many due jobs as it has free slots, and runs them concurrently. After
 * a full claim it looks again as soon as a slot frees; otherwise it waits `pollIntervalMs`. Any
 * number of workers, in any number of processes, can share one database.
 */
export function startWorker(db: Db, options: WorkerOptions): Worker {
  const { catalog, log } = options;
  const clock = options.clock ?? (() => new Date());
  const stopTimeoutMs = options.stopTimeoutMs ?? workerStopTimeoutMs;
  assert(
    Number.isInteger(options.concurrency) && options.concurrency >= 1 && options.concurrency <= maxConcurrency,
    `worker concurrency must be 1 to ${maxConcurrency}`,
  );
  assert(options.pollIntervalMs > 0, 'worker pollIntervalMs must be positive');
  const byName = new Map<string, AnyJobDefinition>();
  for (const definition of catalog) {
    assert(!byName.has(definition.name), `job ${definition.name} is in the catalog twice`);
    byName.set(definition.name, definition);
  }
  const recurring = catalog.filter((definition) => definition.recurring !== undefined);
  const nextScheduleAtMs = new Map<string, number>();
  const running = new Set<Promise<unknown>>();
  const stopping = new AbortController();
  // Aborted when stop() gives up waiting: running jobs stop renewing their leases, so other workers
  // claim them again once the leases run out, as if this process had died.
  const abandoning = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let polling: Promise<void> | undefined;
  let backlog = false;

  const schedule = async (now: Date) => {
    const due = recurring.filter((definition) => (nextScheduleAtMs.get(definition.name) ?? 0) <= now.getTime());
    if (due.length === 0) return;
    await scheduleRecurringJobs(db, due, now);
    for (const definition of due) {
      nextScheduleAtMs.set(definition.name, now.getTime() + (definition.recurring?.intervalMs ?? 0));
    }
  };

  const start = (job: ClaimedJob) => {
    const definition = byName.get(job.name);
    assert(definition !== undefined, `claimed job ${job.name} that is not in the catalog`);
    const run: Promise<unknown> = runClaimedJob(db, definition, job, {
      log,
      clock,
      signal: stopping.signal,
      abandon: abandoning.signal,
    })
      .catch((error: unknown) =>
        log.error({ err: error, id: job.id, name: job.name }, 'recording a job outcome failed'),
      )
      .finally(() => {
        running.delete(run);
        if (backlog) wake(0);
      });
    running.add(run);
  };

  const poll = async () => {
    const now = clock();
    await schedule(now);
    const free = Math.min(options.concurrency - running.size, maxClaimBatchSize);
    if (free <= 0) return;
    const claimed = await claimJobs(db, catalog, free, now);
    backlog = claimed.length === free;
    for (const job of claimed) start(job);
  };

  const tick = () => {
    if (stopping.signal.aborted || polling !== undefined) return;
    polling = poll()
      .catch((error: unknown) => {
        backlog = false;
        log.error({ err: error }, 'worker poll failed');
      })
      .finally(() => {
        polling = undefined;
        wake(backlog ? 0 : options.pollIntervalMs);
      });
  };

  function wake(delayMs: number) {
    if (stopping.signal.aborted) return;
    clearTimeout(timer);
    timer = setTimeout(tick, delayMs);
    if (options.keepAlive !== true) timer.unref();
  }

  wake(0);
  return {
    async stop() {
      if (stopping.signal.aborted) return;
      stopping.abort();
      clearTimeout(timer);
      await polling;
      if (running.size === 0) return;
      let timeout: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timeout = setTimeout(() => resolve(true), stopTimeoutMs);
      });
      const finished = Promise.allSettled([...running]).then(() => false);
      const gaveUp = await Promise.race([finished, timedOut]);
      clearTimeout(timeout);
      if (gaveUp) {
        abandoning.abort();
        log.warn({ running: running.size }, 'worker stopped with jobs still running; their leases will expire');
      }
    },
  };
}
