import type { Notifier } from './notifier.js';
import type { Scheduler } from './scheduler.js';
import type { SandboxState } from './store.js';
import { userError } from './viewPrimitives.js';

export interface SandboxTiming {
  /** How long a PENDING application waits before the simulated KYC approves it. */
  applicationApprovalDelayMs: number;
  /** How long an initiated transfer stays PENDING before it completes or fails. */
  transferSettlementDelayMs: number;
}

export interface SandboxContext {
  state: SandboxState;
  scheduler: Scheduler;
  timing: SandboxTiming;
  notifier: Notifier;
  apiKey: string;
  /** Root fields whose payload this request answers with an injected UserError instead of running. */
  injectedUserErrors: ReadonlySet<string>;
}

/** The parts of a context that outlive a request: what timers and deliveries need. */
export type SandboxServices = Omit<SandboxContext, 'apiKey' | 'injectedUserErrors'>;

export interface AmountInput {
  value: bigint;
  currencyCode: 'USD';
}

export type Payload = { __typename: string };

export type MutationResolver = (args: { input: unknown }, context: SandboxContext) => unknown;

/** The injected `user_error` fault answers before the operation runs, so nothing changes. */
export function mutation<Input>(
  name: string,
  resolve: (input: Input, context: SandboxContext) => unknown,
): MutationResolver {
  return (args, context) => {
    if (context.injectedUserErrors.has(name)) {
      return userError('SANDBOX_INJECTED_FAULT', `injected user_error fault for ${name}`);
    }
    return resolve(args.input as Input, context);
  };
}

/** Builds a root-value map in which every resolver is wrapped by `mutation` under its own name. */
export function mutations(
  resolvers: Record<string, (input: never, context: SandboxContext) => unknown>,
): Record<string, MutationResolver> {
  return Object.fromEntries(
    Object.entries(resolvers).map(([name, resolve]) => [
      name,
      mutation(name, resolve as (input: unknown, context: SandboxContext) => unknown),
    ]),
  );
}
