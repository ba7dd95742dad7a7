import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { newEncryptionKey, parseEncryptionKey } from './platform/secrets.js';
import { defaultConcurrency, defaultPollIntervalMs, maxConcurrency } from './worker/worker.js';

/** Everything the process reads from its environment, parsed once at start. */
export interface Config {
  port: number;
  host: string;
  /** PostgreSQL connection string; undefined selects the embedded PGlite database. */
  databaseUrl: string | undefined;
  dataDir: string;
  /** Operator token for `POST /v1/organizations`; undefined disables operator endpoints. */
  adminToken: string | undefined;
  issuer: 'sandbox' | 'highnote';
  logLevel: string;
  /** How often the worker looks for expired reservations. */
  sweepIntervalMs: number;
  /** Connections in the PostgreSQL pool of one process. */
  databasePoolSize: number;
  /** Jobs one process's worker runs at once, and how often it looks for due jobs. */
  workerConcurrency: number;
  workerPollIntervalMs: number;
  /**
   * Seals organizations' Highnote API keys at rest. Embedded mode keeps a generated one in the
   * data directory; with PostgreSQL it comes from TRANCHE_ENCRYPTION_KEY, and without it a key
   * cannot be stored (the embedded sandbox needs none).
   */
  encryptionKey: Buffer | undefined;
  /** Where the embedded Highnote sandbox listens when `issuer` is `sandbox` (0: a free port). */
  sandboxPort: number;
  /**
   * A Highnote sandbox already running elsewhere (`npm run sandbox`), used instead of starting
   * one: several processes, or a worker-only process, share it.
   */
  sandboxUrl: string | undefined;
  /** How long a funding job's lease lasts: how soon another worker takes over from a dead one. */
  fundingLeaseMs: number;
  /** TRANCHE_RECONCILIATION_INTERVAL_MS: how often every configured organization is reconciled (daily). */
  reconciliationIntervalMs: number;
  /** Where Highnote reaches this service: notifications are registered at `<publicUrl>/v1/webhooks`. */
  publicUrl: string;
  /**
   * Per-credential rate limit of one process: a token bucket refilled at `rateLimitPerSecond`
   * requests per second holding up to `rateLimitBurst`. 0 per second turns it off.
   */
  rateLimitPerSecond: number;
  rateLimitBurst: number;
}

export class ConfigError extends Error {}

/** Where `npm start` listens unless PORT and HOST say otherwise; the OpenAPI document names it too. */
export const defaultPort = 3000;
export const defaultHost = '127.0.0.1';
const defaultSweepIntervalMs = 5_000;
const defaultDatabasePoolSize = 20;
/** Requests per second one credential may make to one process, sustained and in a burst. */
export const defaultRateLimitPerSecond = 1_000;
export const defaultRateLimitBurst = 2_000;
const maxRateLimitPerSecond = 1_000_000;

function parseInteger(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}

/**
 * Reads and validates the environment. In embedded mode an operator token is generated once and
 * kept in the data directory, so that `npm start` needs no setup and restarts keep the same token.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const databaseUrl = env.DATABASE_URL?.trim() || undefined;
  const dataDir = resolve(env.TRANCHE_DATA_DIR?.trim() || './.data');
  const issuer = env.TRANCHE_ISSUER?.trim() || 'sandbox';
  if (issuer !== 'sandbox' && issuer !== 'highnote') {
    throw new ConfigError(`TRANCHE_ISSUER must be "sandbox" or "highnote", got "${issuer}"`);
  }
  let adminToken = env.TRANCHE_ADMIN_TOKEN?.trim() || undefined;
  if (adminToken !== undefined && adminToken.length < 16) {
    throw new ConfigError('TRANCHE_ADMIN_TOKEN must be at least 16 characters');
  }
  if (adminToken === undefined && databaseUrl === undefined) {
    adminToken = embeddedAdminToken(dataDir);
  }
  let encryptionKey: Buffer | undefined;
  const rawKey = env.TRANCHE_ENCRYPTION_KEY?.trim() || undefined;
  if (rawKey !== undefined) {
    encryptionKey = parseEncryptionKey(rawKey);
    if (encryptionKey === undefined) {
      throw new ConfigError('TRANCHE_ENCRYPTION_KEY must be 32 bytes, as base64 (44 characters) or hex (64)');
    }
  } else if (databaseUrl === undefined) {
    encryptionKey = parseEncryptionKey(embeddedSecret(dataDir, 'encryption-key', newEncryptionKey));
  }
  const port = parseInteger('PORT', env.PORT, defaultPort, 0, 65535);
  const host = env.HOST?.trim() || defaultHost;
  const publicUrl = (env.TRANCHE_PUBLIC_URL?.trim() || `http://${host}:${port}`).replace(/\/+$/, '');
  if (!URL.canParse(publicUrl) || !/^https?:$/.test(new URL(publicUrl).protocol)) {
    throw new ConfigError(`TRANCHE_PUBLIC_URL must be an http(s) URL, got "${publicUrl}"`);
  }
  return {
    port,
    host,
    publicUrl,
    databaseUrl,
    dataDir,
    adminToken,
    issuer,
    logLevel: env.LOG_LEVEL?.trim() || 'info',
    sweepIntervalMs: parseInteger(
      'TRANCHE_SWEEP_INTERVAL_MS',
      env.TRANCHE_SWEEP_INTERVAL_MS,
      defaultSweepIntervalMs,
      10,
      3_600_000,
    ),
    databasePoolSize: parseInteger(
      'TRANCHE_DATABASE_POOL_SIZE',
      env.TRANCHE_DATABASE_POOL_SIZE,
      defaultDatabasePoolSize,
      1,
      500,
    ),
    workerConcurrency: parseInteger(
      'TRANCHE_WORKER_CONCURRENCY',
      env.TRANCHE_WORKER_CONCURRENCY,
      defaultConcurrency,
      1,
      maxConcurrency,
    ),
    workerPollIntervalMs: parseInteger(
      'TRANCHE_WORKER_POLL_INTERVAL_MS',
      env.TRANCHE_WORKER_POLL_INTERVAL_MS,
      defaultPollIntervalMs,
      10,
      60_000,
    ),
    encryptionKey,
    sandboxUrl: env.TRANCHE_SANDBOX_URL?.trim().replace(/\/+$/, '') || undefined,
    reconciliationIntervalMs: parseInteger(
      'TRANCHE_RECONCILIATION_INTERVAL_MS',
      env.TRANCHE_RECONCILIATION_INTERVAL_MS,
      24 * 60 * 60 * 1000,
      60_000,
      7 * 24 * 60 * 60 * 1000,
    ),
    fundingLeaseMs: parseInteger('TRANCHE_FUNDING_LEASE_MS', env.TRANCHE_FUNDING_LEASE_MS, 60_000, 1_000, 3_600_000),
    rateLimitPerSecond: parseInteger(
      'TRANCHE_RATE_LIMIT_PER_SECOND',
      env.TRANCHE_RATE_LIMIT_PER_SECOND,
      defaultRateLimitPerSecond,
      0,
      maxRateLimitPerSecond,
    ),
    rateLimitBurst: parseInteger(
      'TRANCHE_RATE_LIMIT_BURST',
      env.TRANCHE_RATE_LIMIT_BURST,
      defaultRateLimitBurst,
      1,
      maxRateLimitPerSecond,
    ),
    sandboxPort: parseInteger(
      'TRANCHE_SANDBOX_PORT',
      env.TRANCHE_SANDBOX_PORT,
      port === 0 ? 0 : Math.min(port + 1, 65535),
      0,
      65535,
    ),
  };
}

function embeddedAdminToken(dataDir: string): string {
  return embeddedSecret(dataDir, 'admin-token', () => `tra_admin_${randomBytes(24).toString('base64url')}`);
}

/** A secret generated once and kept, readable only by its owner, in the data directory. */
function embeddedSecret(dataDir: string, name: string, generate: () => string): string {
  const file = join(dataDir, name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = generate();
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}
