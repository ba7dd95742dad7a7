import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { startWorker, type Worker } from './outbox/worker.js';
import { openDatabase } from './platform/db.js';
import { migrateToLatest } from './platform/migrate.js';

const usage = 'usage: tranche <serve|worker|migrate>';

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
    intervalMs: config.sweepIntervalMs,
    log: app.log,
    keepAlive: role === 'worker',
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
  const shutdown = async (signal: string) => {
    app.log.info({ signal }, 'shutting down');
    await worker.stop();
    await app.close();
    await database.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}

main(process.argv[2]).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(`configuration: ${error.message}`);
    process.exit(2);
  }
  console.error(error);
  process.exit(1);
});
