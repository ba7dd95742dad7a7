import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

// The environment is read once, validated, and refused with a message that names the variable.

const base = { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/unused', TRANCHE_ADMIN_TOKEN: 'x'.repeat(16) };

describe('configuration', () => {
  it('takes the worker limits from the environment, with defaults', () => {
    expect(loadConfig(base)).toMatchObject({ workerConcurrency: 4, workerPollIntervalMs: 1000, sweepIntervalMs: 5000 });
    const tuned = loadConfig({ ...base, TRANCHE_WORKER_CONCURRENCY: '16', TRANCHE_WORKER_POLL_INTERVAL_MS: '250' });
    expect(tuned).toMatchObject({ workerConcurrency: 16, workerPollIntervalMs: 250 });
  });

  it.each([
    ['TRANCHE_WORKER_CONCURRENCY', '0'],
    ['TRANCHE_WORKER_CONCURRENCY', '65'],
    ['TRANCHE_WORKER_CONCURRENCY', 'four'],
    ['TRANCHE_WORKER_POLL_INTERVAL_MS', '5'],
    ['TRANCHE_DATABASE_POOL_SIZE', '0'],
    ['PORT', '70000'],
    ['TRANCHE_ISSUER', 'stripe'],
    ['TRANCHE_ADMIN_TOKEN', 'short'],
  ])('refuses %s=%s, naming it', (name, value) => {
    expect(() => loadConfig({ ...base, [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, [name]: value })).toThrow(name);
  });
});
