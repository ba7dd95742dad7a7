/*
 * Faults a test arms through `POST /_sandbox/faults` to exercise a client's retry and recovery
 * paths against the failures a real network and a real Highnote produce.
 */
export const FAULT_MODES = ['error', 'timeout', 'lost_response', 'user_error'] as const;
export type FaultMode = (typeof FAULT_MODES)[number];

/** Enough for any retry test; a bigger count is a typo rather than an intent. */
export const MAX_FAULT_COUNT = 1_000;
const DEFAULT_FAULT_COUNT = 1;

export interface ArmedFault {
  operation: string;
  mode: FaultMode;
}

export type FaultRequest = { ok: true; fault: ArmedFault; count: number } | { ok: false; message: string };

function isFaultMode(value: unknown): value is FaultMode {
  return typeof value === 'string' && (FAULT_MODES as readonly string[]).includes(value);
}

export function parseFaultRequest(body: unknown, knownOperations: ReadonlySet<string>): FaultRequest {
  if (typeof body !== 'object' || body === null) return { ok: false, message: 'body must be a JSON object' };
  const { operation, mode, count = DEFAULT_FAULT_COUNT } = body as Record<string, unknown>;
  if (typeof operation !== 'string' || !knownOperations.has(operation)) {
    return { ok: false, message: 'operation must be a Query or Mutation field name the sandbox serves' };
  }
  if (!isFaultMode(mode)) return { ok: false, message: `mode must be one of ${FAULT_MODES.join(', ')}` };
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > MAX_FAULT_COUNT) {
    return { ok: false, message: `count must be an integer from 1 to ${MAX_FAULT_COUNT}` };
  }
  return { ok: true, fault: { operation, mode }, count };
}

/** Per operation, the mode and how many upcoming calls it still applies to. */
export class FaultPlan {
  readonly #armed = new Map<string, { mode: FaultMode; remaining: number }>();

  arm(fault: ArmedFault, count: number): void {
    this.#armed.set(fault.operation, { mode: fault.mode, remaining: count });
  }

  /** Consumes one fault for the first of `operations` that has one armed. */
  take(operations: readonly string[]): ArmedFault | null {
    for (const operation of operations) {
      const armed = this.#armed.get(operation);
      if (!armed) continue;
      armed.remaining -= 1;
      if (armed.remaining === 0) this.#armed.delete(operation);
      return { operation, mode: armed.mode };
    }
    return null;
  }

  clear(): void {
    this.#armed.clear();
  }
}
