import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { App } from './http.js';

/**
 * Prometheus metrics, served at `GET /metrics`. What belongs to an app (its requests, its job
 * queue) lives in a registry of that app, so that several apps in one process (the tests) never
 * collide; what belongs to the process (CPU, memory, event loop, ledger batches, which the ledger
 * records without knowing which app asked) is counted once per process and shown by every app.
 */

/** Upper bounds of the request duration buckets, in seconds: a cached read up to the SDK's 30 s timeout. */
const requestDurationBucketsSeconds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Upper bounds of the ledger batch buckets, in operations: powers of two up to the ledger's largest batch (8,190). */
const ledgerBatchBucketsOperations = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1_024, 2_048, 4_096, 8_192];
/** Longest a scrape waits for the job queue's numbers, in milliseconds; past it the gauges read NaN. */
export const jobQueueReadTimeoutMs = 2_000;
/**
 * The route label of a request no route matched. Routes are labelled by their pattern
 * (`/v1/programs/:id`), never the URL, so the number of series is bounded by the routes;
 * a scanner probing random paths adds this one series, not one per path.
 */
export const unmatchedRouteLabel = 'unmatched';

const processRegistry = new Registry();
let processMetricsStarted = false;

const ledgerBatchOperations = new Histogram({
  name: 'tranche_ledger_batch_operations',
  help: 'Operations in each ledger batch applied (one database transaction).',
  buckets: ledgerBatchBucketsOperations,
  registers: [processRegistry],
});

/** Records the size of one ledger batch; called where batches are applied. */
export function observeLedgerBatch(size: number): void {
  ledgerBatchOperations.observe(size);
}

/** Upper bounds of the unit batch buckets, in units: powers of two up to the largest batch a batcher takes. */
const unitBatchBucketsUnits = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1_024];

const unitBatchUnits = new Histogram({
  name: 'tranche_unit_batch_units',
  help: 'Units of work committed together in one transaction (a batch; 1 for a lone request).',
  buckets: unitBatchBucketsUnits,
  registers: [processRegistry],
});

const unitBatchAttempts = new Counter({
  name: 'tranche_unit_batch_reruns_total',
  help: 'Batch attempts rolled back and run again without a unit that failed after writing.',
  registers: [processRegistry],
});

/** Records one committed batch of units and how many attempts it took. */
export function observeUnitBatch(units: number, attempts: number): void {
  unitBatchUnits.observe(units);
  if (attempts > 1) unitBatchAttempts.inc(attempts - 1);
}

/** The job queue as a scrape sees it: jobs waiting to run, and how long the oldest has waited. */
export interface JobQueueState {
  depth: number;
  oldestAgeSeconds: number;
}

export type ReadJobQueue = () => Promise<JobQueueState>;

export interface Metrics {
  readonly registry: Registry;
  /** Adds the job queue gauges, read through `read` on every scrape. */
  registerQueueGauges(read: ReadJobQueue, onError: (error: unknown) => void): void;
}

/** A registry for one app, already holding the process-wide metrics. */
export function createMetrics(): Metrics {
  if (!processMetricsStarted) {
    // Started on first use, not on import: a script that never serves metrics starts no monitors.
    collectDefaultMetrics({ register: processRegistry });
    processMetricsStarted = true;
  }
  const registry = Registry.merge([processRegistry]);
  return {
    registry,
    registerQueueGauges(read, onError) {
      // Both gauges are collected in the same scrape; they share one read.
      let reading: Promise<JobQueueState | undefined> | undefined;
      const readOnce = () => {
        reading ??= withTimeout(read(), jobQueueReadTimeoutMs)
          .catch((error: unknown) => {
            onError(error);
            return undefined;
          })
          .finally(() => {
            reading = undefined;
          });
        return reading;
      };
      // NaN, not 0, when the queue could not be read: an empty queue and an unknown one differ.
      new Gauge({
        name: 'tranche_job_queue_depth',
        help: 'Jobs waiting to run (queued and due).',
        registers: [registry],
        async collect() {
          this.set((await readOnce())?.depth ?? Number.NaN);
        },
      });
      new Gauge({
        name: 'tranche_job_queue_oldest_age_seconds',
        help: 'How long the oldest waiting job has been due, in seconds.',
        registers: [registry],
        async collect() {
          this.set((await readOnce())?.oldestAgeSeconds ?? Number.NaN);
        },
      });
    },
  };
}

function withTimeout<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Counts and times every request by method, route pattern and status, and serves `GET /metrics`.
 * Install it before the routes, so that its hook sees all of them.
 *
 * `/metrics` takes the operator token: it shares its listener with the public API, and its
 * numbers (request rates by route, ledger batch sizes across every tenant) are business volume,
 * no one's to read anonymously. Prometheus sends the token with `authorization: {credentials}`.
 * It is hidden from the OpenAPI document, which describes the API to integrators.
 */
export function installMetrics(app: App, options: { readJobQueue?: ReadJobQueue | undefined } = {}): Metrics {
  const metrics = createMetrics();
  const labelNames = ['method', 'route', 'status_code'] as const;
  const requests = new Counter({
    name: 'tranche_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status.',
    labelNames,
    registers: [metrics.registry],
  });
  const durations = new Histogram({
    name: 'tranche_http_request_duration_seconds',
    help: 'Time from receiving a request to finishing its response, in seconds.',
    labelNames,
    buckets: requestDurationBucketsSeconds,
    registers: [metrics.registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    const labels = {
      method: request.method,
      route: request.routeOptions.url ?? unmatchedRouteLabel,
      status_code: String(reply.statusCode),
    };
    requests.inc(labels);
    durations.observe(labels, reply.elapsedTime / 1_000);
  });
  if (options.readJobQueue !== undefined) {
    const read = options.readJobQueue;
    metrics.registerQueueGauges(read, (error) =>
      app.log.warn({ reason: error instanceof Error ? error.message : String(error) }, 'metrics: job queue unread'),
    );
  }
  app.get('/metrics', { schema: { hide: true }, config: { auth: 'operator' } }, async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return metrics;
}
