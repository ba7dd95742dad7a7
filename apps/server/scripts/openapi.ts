import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildApp } from '../src/app.js';
import { openDatabase } from '../src/platform/db.js';
import { migrateToLatest } from '../src/platform/migrate.js';

/**
 * Writes the server's OpenAPI document, generated from the route schemas, to the path given as
 * the first argument. The app is built on a throwaway in-memory PGlite database, so generating
 * the document needs no running server and no configuration.
 *
 *   tsx apps/server/scripts/openapi.ts node_modules/.cache/tranche/openapi.json
 */

/** Builds the app on an in-memory database and returns its OpenAPI document. */
export async function openApiDocument(): Promise<Record<string, unknown>> {
  const database = await openDatabase({ databaseUrl: undefined, dataDir: 'memory://' });
  try {
    await migrateToLatest(database.db);
    const app = await buildApp({ adminToken: undefined, logLevel: 'silent' }, database, { logger: false });
    try {
      // A plain-JSON round trip drops anything the document holds that JSON cannot carry.
      return JSON.parse(JSON.stringify(app.swagger())) as Record<string, unknown>;
    } finally {
      await app.close();
    }
  } finally {
    await database.close();
  }
}

async function main(outputPath: string | undefined): Promise<void> {
  if (outputPath === undefined || outputPath === '') {
    console.error('usage: tsx apps/server/scripts/openapi.ts <output.json>');
    process.exitCode = 2;
    return;
  }
  const target = resolve(outputPath);
  const document = await openApiDocument();
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, `${JSON.stringify(document, null, 2)}\n`, 'utf8');
  console.log(`OpenAPI document written to ${target}`);
}

// Run only as a script; the SDK's staleness test imports `openApiDocument` instead.
const invokedPath = process.argv[1];
if (invokedPath !== undefined && import.meta.url === pathToFileURL(resolve(invokedPath)).href) {
  main(process.argv[2]).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
