/**
 * Delayed state changes (application approval, transfer settlement, webhook retries). Every pending
 * timer is tracked so that reset and close can cancel them: a timer firing after reset would
 * resurrect old state.
 */
export class Scheduler {
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #afterTask: () => void;

  /** `afterTask` runs after each task, e.g. to note that state may have changed. */
  constructor(afterTask: () => void = () => {}) {
    this.#afterTask = afterTask;
  }

  schedule(delayMs: number, task: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      try {
        task();
      } finally {
        this.#afterTask();
      }
    }, delayMs);
    // A pending approval must not keep a test process or the CLI alive on its own.
    timer.unref();
    this.#timers.add(timer);
  }

  cancelAll(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}
