import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SandboxState } from './store.js';

/*
 * Keeps a sandbox's state in a JSON file across restarts. The file is read once at start and
 * rewritten, whole, a short while after changes and on close. A write goes to a temporary file in
 * the same directory that is then renamed over the old one, so a crash leaves the old or the new
 * state, never half of one. Amounts are bigint in memory and `{"$bigint": "123"}` in the file.
 */

const FORMAT = 'highnote-sandbox-state';
const FORMAT_VERSION = 1;
const BIGINT_TAG = '$bigint';

type Collections = Record<string, [string, unknown][]>;

function toJson(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? { [BIGINT_TAG]: value.toString() } : value;
}

function fromJson(_key: string, value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const tagged = (value as Record<string, unknown>)[BIGINT_TAG];
  return typeof tagged === 'string' && Object.keys(value).length === 1 ? BigInt(tagged) : value;
}

export function serializeState(state: SandboxState): string {
  const collections: Collections = {};
  for (const [name, records] of Object.entries(state) as [string, Map<string, unknown>][]) {
    collections[name] = [...records.entries()];
  }
  return JSON.stringify(
    { format: FORMAT, version: FORMAT_VERSION, savedAt: new Date().toISOString(), collections },
    toJson,
  );
}

/** Replaces every collection of `state` with the file's; a collection the file lacks comes back empty. */
export function restoreState(state: SandboxState, text: string, source: string): void {
  const parsed = JSON.parse(text, fromJson) as { format?: unknown; version?: unknown; collections?: unknown };
  if (parsed.format !== FORMAT || parsed.version !== FORMAT_VERSION) {
    throw new Error(`${source} is not a ${FORMAT} file of version ${FORMAT_VERSION}`);
  }
  const collections = (parsed.collections ?? {}) as Collections;
  for (const [name, records] of Object.entries(state) as [string, Map<string, unknown>][]) {
    const entries = collections[name] ?? [];
    if (!Array.isArray(entries) || entries.some((entry) => !Array.isArray(entry) || typeof entry[0] !== 'string')) {
      throw new Error(`${source}: collection ${name} is not a list of [id, record] pairs`);
    }
    records.clear();
    for (const [id, record] of entries) records.set(id, record);
  }
}

export interface StateFileOptions {
  path: string;
  /** How long after a change the file is written; changes in between are written together. */
  debounceMs: number;
}

export class StateFile {
  readonly #state: SandboxState;
  readonly #options: StateFileOptions;
  #dirty = false;
  #timer: NodeJS.Timeout | null = null;
  #writes: Promise<void> = Promise.resolve();
  #writeCount = 0;

  constructor(state: SandboxState, options: StateFileOptions) {
    this.#state = state;
    this.#options = options;
  }

  /** Loads the file into the state if it exists; a file that cannot be read as state is an error. */
  load(): boolean {
    if (!existsSync(this.#options.path)) return false;
    restoreState(this.#state, readFileSync(this.#options.path, 'utf8'), this.#options.path);
    return true;
  }

  markDirty(): void {
    this.#dirty = true;
    if (this.#timer !== null) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, this.#options.debounceMs);
    this.#timer.unref();
  }

  /** Writes now if anything changed; resolves when that write (and any before it) is done. */
  flush(): Promise<void> {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#writes = this.#writes.then(async () => {
      if (!this.#dirty) return;
      this.#dirty = false;
      try {
        await this.#writeAtomically(serializeState(this.#state));
      } catch (error) {
        this.#dirty = true;
        console.error(`highnote-sandbox: could not write ${this.#options.path}`, error);
      }
    });
    return this.#writes;
  }

  async #writeAtomically(text: string): Promise<void> {
    const { path } = this.#options;
    this.#writeCount += 1;
    const temporary = `${path}.${process.pid}.${this.#writeCount}.tmp`;
    await mkdir(dirname(path), { recursive: true });
    try {
      await writeFile(temporary, text, 'utf8');
      await rename(temporary, path);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }
}
