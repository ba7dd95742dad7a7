import { type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import type { Db } from './db.js';
import * as ledgerCore from './migrations/0001_ledger_core.js';
import * as spine from './migrations/0002_spine.js';
import * as jobs from './migrations/0003_jobs.js';
import * as lookupIndexes from './migrations/0004_lookup_indexes.js';
import * as cards from './migrations/0005_cards.js';
import * as partnerWebhooks from './migrations/0006_partner_webhooks.js';
import * as highnoteNotifications from './migrations/0007_highnote_notifications.js';
import * as spend from './migrations/0008_spend.js';
import * as reconciliation from './migrations/0009_reconciliation.js';
import * as agreements from './migrations/0010_agreements.js';
import * as credentials from './migrations/0011_credentials.js';
import * as verification from './migrations/0012_verification.js';
import * as audit from './migrations/0013_audit.js';

/** The ordered migrations. A landed migration is frozen; changes come as a new entry. */
const migrations: Record<string, Migration> = {
  '0001_ledger_core': ledgerCore,
  '0002_spine': spine,
  '0003_jobs': jobs,
  '0004_lookup_indexes': lookupIndexes,
  '0005_cards': cards,
  '0006_partner_webhooks': partnerWebhooks,
  '0007_highnote_notifications': highnoteNotifications,
  '0008_spend': spend,
  '0009_reconciliation': reconciliation,
  '0010_agreements': agreements,
  '0011_credentials': credentials,
  '0012_verification': verification,
  '0013_audit': audit,
};

class StaticMigrationProvider implements MigrationProvider {
  async getMigrations() {
    return migrations;
  }
}

export function latestMigrationName(): string {
  const names = Object.keys(migrations).sort();
  return names[names.length - 1] as string;
}

export async function migrateToLatest(db: Db): Promise<string[]> {
  const migrator = new Migrator({ db, provider: new StaticMigrationProvider() });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** True when the database answers and the newest migration is applied. */
export async function isReady(db: Db): Promise<boolean> {
  try {
    const result = await sql<{ name: string }>`SELECT name FROM kysely_migration ORDER BY name DESC LIMIT 1`.execute(
      db,
    );
    return result.rows[0]?.name === latestMigrationName();
  } catch {
    return false;
  }
}
