/**
 * Drives wrk (https://github.com/wg/wrk) with `usertasks.lua` for the bench's HTTP phases, and
 * settles what wrk left open: every request wrk sent without a 2xx answer is sent again with the
 * same Idempotency-Key, so the bench knows every outcome and the books can be checked exactly.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** wrk threads per wrk process; the server, not wrk, must be the bottleneck, and it is one Node thread. */
const maxWrkThreads = 2;
/** How long wrk may wait for one answer before it counts a timeout and reconnects, in seconds. */
const wrkTimeoutSeconds = 30;
/** Extra time wrk gets to start and write its report beyond the phase, in milliseconds. */
const wrkGraceMs = 30_000;
/** Settling: requests resent at once, attempts per request, and the wait between attempts while the original still runs. */
const settleConcurrency = 16;
const settleMaxAttempts = 20;
const settleRetryDelayMs = 250;
const settleRequestTimeoutMs = 30_000;

const script = resolve(dirname(fileURLToPath(import.meta.url)), 'usertasks.lua');

/** The wrk binary on PATH, or undefined. */
export function findWrk(): string | undefined {
  for (const directory of (process.env.PATH ?? '').split(delimiter)) {
    if (directory === '') continue;
    const candidate = join(directory, 'wrk');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface WrkRun {
  wrk: string;
  baseUrl: string;
  token: string;
  mode: 'assign' | 'complete';
  /** assign: [programId, userId] pairs, taken round robin; complete: [userTaskId, programId], each sent at most once. */
  input: readonly (readonly [string, string])[];
  connections: number;
  seconds: number;
  /** Unique in the run: it prefixes every Idempotency-Key. */
  keyPrefix: string;
  amountDollars: number;
  /** A directory for the input and report files. */
  scratchDir: string;
  /** Running wrk processes, so that the bench's cleanup can end them. */
  children: Set<ChildProcess>;
}

export interface PendingRequest {
  programId: string;
  method: 'POST' | 'PUT';
  path: string;
  key: string;
  body: string;
}

export interface WrkReport {
  /** From the first request sent to the last answer read, in seconds; at most wrk's -d. */
  durationSeconds: number;
  /** Answers wrk read, whatever their status; the weight of this run's latency distribution. */
  answers: number;
  /** Answers with a 2xx that named a request of this run. */
  succeeded: { id: string; programId: string }[];
  /** Answers outside 2xx, by status. */
  statuses: Map<number, number>;
  /** Connect, read, write errors and timeouts, which wrk counts apart from answers. */
  socketErrors: number;
  /** 2xx answers that named no request of this run (the stop request of a thread whose input ran out). */
  unexpected: number;
  /** Latency at each percentile wrk reported, in milliseconds, ascending; one point per step. */
  latencyMs: { percent: number; ms: number }[];
  /** Requests sent without a 2xx answer (or never sent: wrk calls `request()` once to check it). */
  pending: PendingRequest[];
}

/** Runs one wrk process to the end of its phase (or of its input) and reads its report. */
export async function runWrk(run: WrkRun): Promise<WrkReport> {
  const threads = Math.min(maxWrkThreads, run.connections);
  const inputPath = join(run.scratchDir, `${run.keyPrefix}.input.tsv`);
  const outputPath = join(run.scratchDir, `${run.keyPrefix}.report.tsv`);
  await writeFile(inputPath, run.input.map(([first, second]) => `${first}\t${second}\n`).join(''));
  const args = [
    `--threads=${threads}`,
    `--connections=${run.connections}`,
    `--duration=${run.seconds}s`,
    `--timeout=${wrkTimeoutSeconds}s`,
    '--latency',
    `--script=${script}`,
    run.baseUrl,
  ];
  const child = spawn(run.wrk, args, {
    env: {
      ...process.env,
      TRANCHE_BENCH_MODE: run.mode,
      TRANCHE_BENCH_TOKEN: run.token,
      TRANCHE_BENCH_INPUT: inputPath,
      TRANCHE_BENCH_THREADS: String(threads),
      TRANCHE_BENCH_KEY_PREFIX: run.keyPrefix,
      TRANCHE_BENCH_AMOUNT: String(run.amountDollars),
      TRANCHE_BENCH_OUTPUT: outputPath,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  run.children.add(child);
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), run.seconds * 1000 + wrkGraceMs);
  const exit = await new Promise<number | string>((done, failed) => {
    child.once('error', failed);
    child.once('exit', (code, signal) => done(signal ?? code ?? 'unknown'));
  }).finally(() => {
    clearTimeout(timer);
    run.children.delete(child);
  });
  if (exit !== 0) throw new Error(`wrk ${args.join(' ')} exited with ${exit}:\n${output.slice(-2_000)}`);
  return parseReport(await readFile(outputPath, 'utf8'));
}

function parseReport(text: string): WrkReport {
  const report: WrkReport = {
    durationSeconds: 0,
    answers: 0,
    succeeded: [],
    statuses: new Map(),
    socketErrors: 0,
    unexpected: 0,
    latencyMs: [],
    pending: [],
  };
  let wrkSeconds = 0;
  let activeSeconds: number | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const fields = line.split('\t');
    const [kind, a = '', b = '', c = '', d = ''] = fields;
    switch (kind) {
      case 'duration_us':
        wrkSeconds = Number(a) / 1e6;
        break;
      case 'active_us':
        activeSeconds = Number(a) / 1e6;
        break;
      case 'socket_errors':
        report.socketErrors = Number(a);
        break;
      case 'latency_us':
        report.latencyMs.push({ percent: Number(a), ms: Number(b) / 1000 });
        break;
      case 'unexpected':
        report.unexpected += Number(a);
        break;
      case 'status':
        report.statuses.set(Number(a), (report.statuses.get(Number(a)) ?? 0) + Number(b));
        break;
      case 'succeeded':
        report.succeeded.push({ id: a, programId: b });
        break;
      case 'pending': {
        // The body is the last field and holds no tab: the script writes compact JSON.
        const body = fields.slice(5).join('\t');
        if (b !== 'POST' && b !== 'PUT') throw new Error(`wrk report: a pending request with method "${b}"`);
        report.pending.push({ programId: a, method: b, path: c, key: d, body });
        break;
      }
      case 'responses':
        report.answers = Number(a);
        break;
      default:
        throw new Error(`wrk report: unknown line "${line.slice(0, 200)}"`);
    }
  }
  if (report.latencyMs.length === 0) throw new Error('wrk report: no latency distribution');
  // wrk runs for its whole -d even when the input ran out; the script knows when work ended.
  report.durationSeconds = Math.min(wrkSeconds, activeSeconds ?? wrkSeconds);
  return report;
}

/** The answers to requests sent again: succeeded (with their user task), refused, or still unknown. */
export interface Settled {
  succeeded: { id: string; programId: string }[];
  refused: { programId: string; status: number; text: string }[];
  unknown: { programId: string; reason: string }[];
}

/**
 * Sends every pending request again with its Idempotency-Key. The server answers a key it
 * finished with the stored answer, runs a key it never saw, and makes a concurrent duplicate
 * wait (or answers 409 `idempotency_request_in_progress`, retried here).
 */
export async function settle(baseUrl: string, token: string, pending: readonly PendingRequest[]): Promise<Settled> {
  const settled: Settled = { succeeded: [], refused: [], unknown: [] };
  let cursor = 0;
  const loop = async () => {
    while (cursor < pending.length) {
      const request = pending[cursor++] as PendingRequest;
      await settleOne(baseUrl, token, request, settled);
    }
  };
  await Promise.all(Array.from({ length: settleConcurrency }, loop));
  return settled;
}

async function settleOne(baseUrl: string, token: string, request: PendingRequest, settled: Settled): Promise<void> {
  let reason = 'no attempt';
  for (let attempt = 1; attempt <= settleMaxAttempts; attempt++) {
    let status: number;
    let text: string;
    try {
      const response = await fetch(`${baseUrl}${request.path}`, {
        method: request.method,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'idempotency-key': request.key,
        },
        body: request.body,
        signal: AbortSignal.timeout(settleRequestTimeoutMs),
      });
      status = response.status;
      text = await response.text();
    } catch (error) {
      reason = error instanceof Error ? error.message : String(error);
      await sleep(settleRetryDelayMs);
      continue;
    }
    if (status >= 200 && status <= 299) {
      const body = JSON.parse(text) as { id: string; programId: string };
      settled.succeeded.push({ id: body.id, programId: body.programId });
      return;
    }
    if (status === 409 && text.includes('idempotency_request_in_progress')) {
      reason = 'still in progress';
      await sleep(settleRetryDelayMs);
      continue;
    }
    settled.refused.push({ programId: request.programId, status, text: text.slice(0, 300) });
    return;
  }
  settled.unknown.push({ programId: request.programId, reason });
}

/**
 * The latency at `percent` of several wrk runs together, each run's points weighted by the
 * answers it got: exact for one run, and within one step of the scripts' percentiles for two.
 */
export function mergedPercentileMs(reports: readonly WrkReport[], percent: number): number {
  const runs = reports.map((report) => ({ report, answers: report.answers }));
  const points: { ms: number; weight: number }[] = [];
  let total = 0;
  for (const { report, answers } of runs) {
    if (answers === 0) continue;
    const weight = answers / report.latencyMs.length;
    for (const point of report.latencyMs) points.push({ ms: point.ms, weight });
    total += answers;
  }
  if (total === 0) return Number.NaN;
  if (runs.length === 1) {
    const exact = runs[0]?.report.latencyMs.find((point) => point.percent >= percent);
    if (exact !== undefined) return exact.ms;
  }
  points.sort((x, y) => x.ms - y.ms);
  const rank = (percent / 100) * total;
  let seen = 0;
  for (const point of points) {
    seen += point.weight;
    if (seen >= rank - 1e-9) return point.ms;
  }
  return points[points.length - 1]?.ms ?? Number.NaN;
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));
