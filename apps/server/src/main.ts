import { constants } from 'node:os';
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { openDatabase } from './platform/db.js';
import { migrateToLatest } from './platform/migrate.js';
import { jobCatalog } from './worker/catalog.js';
import { defaultConcurrency, defaultPollIntervalMs, startWorker, type Worker } from './worker/worker.js';

const usage = 'usage: tranche <serve|worker|migrate>';

/**
 * How long a graceful shutdown may take, in milliseconds, before the process gives up and exits
 * with status 1. Longer than the worker's own bound on waiting for its running jobs (30 s), so a
 * worker that gives up still lets the database close; a platform's grace period before SIGKILL
 * (Kubernetes' `terminationGracePeriodSeconds`) should be longer still.
 */
const shutdownTimeoutMs = 40_000;

/** One program, three roles: `serve` (API and worker), `worker`, `migrate`. */
async function main(role: string | undefined): Promise<void> {
  if (role !== 'serve' && role !== 'worker' && role !== 'migrate') {
    console.error(usage);
    process.exitCode = 2;
    return;
  }
  const config = loadConfig();
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.databasePoolSize,
    onIdleConnectionError: (error) => console.error(`database: idle connection closed (${error.message})`),
  });
  const applied = await migrateToLatest(database.db);
  if (role === 'migrate') {
    console.log(applied.length === 0 ? 'migrations: up to date' : `migrations applied: ${applied.join(', ')}`);
    await database.close();
    return;
  }
  const app = await buildApp(config, database);
  // A worker-only process has no listening socket; its timer is what keeps it alive.
  const worker: Worker = startWorker(database.db, {
    catalog: jobCatalog({ sweepIntervalMs: config.sweepIntervalMs }),
    log: app.log,
    pollIntervalMs: defaultPollIntervalMs,
    concurrency: defaultConcurrency,
    keepAlive: role === 'worker',
  });
  onShutdownSignal(async (signal) => {
    app.log.info({ signal }, 'shutting down: no new connections, finishing requests and jobs in flight');
    // The server drains its requests while the worker finishes its current jobs; the database
    // closes only once neither uses it.
    await Promise.all([app.close(), worker.stop()]);
    await database.close();
    app.log.info({ signal }, 'shut down');
  });
  if (role === 'serve') {
    await app.listen({ port: config.port, host: config.host });
    const base = `http://${config.host}:${config.port}`;
    app.log.info(
      { database: database.kind, dataDir: database.kind === 'pglite' ? config.dataDir : undefined },
      `Tranche is serving ${base} (reference at ${base}/docs)`,
    );
    if (database.kind === 'pglite' && config.adminToken !== undefined) {
      console.log(`Operator token (kept in ${config.dataDir}/admin-token): ${config.adminToken}`);
    }
  }
}

/**
 * SIGTERM or SIGINT starts `shutdown`; the process exits 0 when it completes, 1 when it fails or
 * outlasts `shutdownTimeoutMs`. A second signal exits at once (128 + the signal's number, as a
 * shell reports it), for an operator who does not want to wait.
 */
function onShutdownSignal(shutdown: (signal: NodeJS.Signals) => Promise<void>): void {
  let started = false;
  const handle = (signal: NodeJS.Signals) => {
    if (started) {
      console.error(`${signal} during shutdown: exiting now`);
      process.exit(128 + constants.signals[signal]);
    }
    started = true;
    // Not unref'd: should the shutdown stall with nothing else pending, this still ends it with 1.
    setTimeout(() => {
      console.error(`shutdown did not finish within ${shutdownTimeoutMs} ms: exiting`);
      process.exit(1);
    }, shutdownTimeoutMs);
    shutdown(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('shutdown failed', error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
}

main(process.argv[2]).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(`configuration: ${error.message}`);
    process.exit(2);
  }
  console.error(error);
  process.exit(1);
});
