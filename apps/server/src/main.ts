import { constants } from 'node:os';
import { join } from 'node:path';
import { type RunningSandbox, startSandbox } from '@tranche/highnote-sandbox';
import { buildApp } from './app.js';
import { verifyAuditLog } from './audit/verify.js';
import { ConfigError, loadConfig } from './config.js';
import { Issuers } from './configurations/service.js';
import { openDatabase } from './platform/db.js';
import { migrateToLatest } from './platform/migrate.js';
import { jobCatalog } from './worker/catalog.js';
import { startWorker, type Worker } from './worker/worker.js';

const usage = 'usage: tranche <serve|worker|migrate|audit verify>';

/**
 * How long a graceful shutdown may take, in milliseconds, before the process gives up and exits
 * with status 1. Longer than the worker's own bound on waiting for its running jobs (30 s), so a
 * worker that gives up still lets the database close; a platform's grace period before SIGKILL
 * (Kubernetes' `terminationGracePeriodSeconds`) should be longer still.
 */
const shutdownTimeoutMs = 40_000;

/** One program, three roles: `serve` (API and worker), `worker`, `migrate`. */
async function main(role: string | undefined): Promise<void> {
  if (role === 'audit') return auditCommand(process.argv[3]);
  if (role !== 'serve' && role !== 'worker' && role !== 'migrate') {
    console.error(usage);
    process.exitCode = 2;
    return;
  }
  // Listening for signals before anything opens: a signal during startup lets the step under way
  // (a migration of the embedded database) finish, then shuts down instead of listening.
  const signals = listenForShutdownSignals();
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
  // In sandbox mode the serving process runs the local Highnote sandbox beside the API; a
  // worker-only process uses the one its serving process runs.
  let sandbox: RunningSandbox | undefined;
  let sandboxUrl = config.issuer === 'sandbox' ? config.sandboxUrl : undefined;
  if (config.issuer === 'sandbox' && sandboxUrl === undefined) {
    if (role === 'serve') {
      sandbox = await startSandbox({
        port: config.sandboxPort,
        host: config.host,
        ...(database.kind === 'pglite' ? { stateFile: join(config.dataDir, 'highnote-sandbox.json') } : {}),
      });
      sandboxUrl = sandbox.url;
    } else {
      sandboxUrl = `http://${config.host}:${config.sandboxPort}`;
    }
  }
  const issuers = new Issuers(database.db, {
    sandboxUrl,
    encryptionKey: config.encryptionKey,
    publicUrl: config.publicUrl,
  });
  const app = await buildApp(config, database, {
    issuers,
    ...(config.encryptionKey === undefined ? {} : { encryptionKey: config.encryptionKey }),
  });
  // A worker-only process has no listening socket; its timer is what keeps it alive.
  const worker: Worker = startWorker(database.db, {
    catalog: jobCatalog({
      sweepIntervalMs: config.sweepIntervalMs,
      issuers,
      fundingVisibilityTimeoutMs: config.fundingLeaseMs,
      reconciliationIntervalMs: config.reconciliationIntervalMs,
      ...(config.encryptionKey === undefined ? {} : { webhooks: { encryptionKey: config.encryptionKey } }),
    }),
    log: app.log,
    pollIntervalMs: config.workerPollIntervalMs,
    concurrency: config.workerConcurrency,
    keepAlive: role === 'worker',
  });
  const signalledDuringStartup = signals.onSignal(async (signal) => {
    app.log.info({ signal }, 'shutting down: no new connections, finishing requests and jobs in flight');
    // The server drains its requests while the worker finishes its current jobs; the database
    // closes only once neither uses it.
    await Promise.all([app.close(), worker.stop()]);
    await sandbox?.close();
    await database.close();
    app.log.info({ signal }, 'shut down');
  });
  if (role === 'serve' && !signalledDuringStartup) {
    await app.listen({ port: config.port, host: config.host });
    const base = `http://${config.host}:${config.port}`;
    app.log.info(
      { database: database.kind, dataDir: database.kind === 'pglite' ? config.dataDir : undefined },
      `Tranche is serving ${base} (reference at ${base}/docs)`,
    );
    if (sandbox !== undefined) app.log.info(`Highnote sandbox at ${sandbox.graphqlUrl}`);
    if (database.kind === 'pglite' && config.adminToken !== undefined) {
      console.log(`Operator token (kept in ${config.dataDir}/admin-token): ${config.adminToken}`);
    }
  }
}

/**
 * The first SIGTERM or SIGINT runs the shutdown given to `onSignal` (at once, or as soon as it is
 * given, when the signal came during startup); the process exits 0 when it completes, 1 when it
 * fails or outlasts `shutdownTimeoutMs`. A second signal exits at once (128 + the signal's number,
 * as a shell reports it), for an operator who does not want to wait.
 */
function listenForShutdownSignals(): {
  /** Sets the shutdown; true when a signal already came, and the shutdown has begun. */
  onSignal(shutdown: (signal: NodeJS.Signals) => Promise<void>): boolean;
} {
  let shutdown: ((signal: NodeJS.Signals) => Promise<void>) | undefined;
  let received: NodeJS.Signals | undefined;
  let deadline: NodeJS.Timeout | undefined;
  const begin = (run: (signal: NodeJS.Signals) => Promise<void>, signal: NodeJS.Signals) => {
    // From here the deadline holds the process open: a shutdown that stalls still ends with 1.
    deadline?.ref();
    run(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('shutdown failed', error);
        process.exit(1);
      },
    );
  };
  const handle = (signal: NodeJS.Signals) => {
    if (received !== undefined) {
      console.error(`${signal} during shutdown: exiting now`);
      process.exit(128 + constants.signals[signal]);
    }
    received = signal;
    // Unref'd until a shutdown runs, so that a startup that ends by itself (migrate) exits as usual.
    deadline = setTimeout(() => {
      console.error(`shutdown did not finish within ${shutdownTimeoutMs} ms: exiting`);
      process.exit(1);
    }, shutdownTimeoutMs).unref();
    if (shutdown !== undefined) begin(shutdown, signal);
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
  return {
    onSignal(run) {
      shutdown = run;
      if (received === undefined) return false;
      begin(run, received);
      return true;
    },
  };
}

/**
 * `tranche audit verify`: recomputes the audit chain of every organization in the database that
 * DATABASE_URL (or TRANCHE_DATA_DIR) names; exits 0 when it is intact, 1 naming the first broken
 * entry, 2 on a usage or configuration error.
 */
async function auditCommand(action: string | undefined): Promise<void> {
  if (action !== 'verify') {
    console.error('usage: tranche audit verify');
    process.exitCode = 2;
    return;
  }
  const config = loadConfig();
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
  try {
    const verdict = await verifyAuditLog(database.db);
    if (verdict.ok) {
      console.log(
        `audit log intact: ${verdict.organizations} organizations, ${verdict.blocks} blocks, ${verdict.events} events chained (${verdict.unchained} not chained yet)`,
      );
    } else {
      console.error(
        `audit log broken: organization ${verdict.organizationId}${verdict.blockNo === null ? '' : `, block ${verdict.blockNo}`}${verdict.eventId === null ? '' : `, event ${verdict.eventId} (sequence ${verdict.sequence})`}: ${verdict.problem}`,
      );
      process.exitCode = 1;
    }
  } finally {
    await database.close();
  }
}

main(process.argv[2]).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(`configuration: ${error.message}`);
    process.exit(2);
  }
  console.error(error);
  process.exit(1);
});
