import { authorizationMutations } from './authorizations.js';
import { cardLifecycleMutations } from './cards.js';
import { mutations, type SandboxContext } from './context.js';
import { nodeView } from './nodes.js';
import { notificationMutations, notificationQueries } from './notifications.js';
import { onboardingMutations } from './onboarding.js';
import { physicalOrderMutations } from './physicalOrders.js';
import { ruleMutations } from './rules.js';
import { settlementMutations } from './settlement.js';

export type { SandboxContext, SandboxServices, SandboxTiming } from './context.js';

/** Root resolvers keyed by Query and Mutation field name; graphql-js calls them with (args, context). */
export function buildRootValue(): Record<string, unknown> {
  return {
    ping: () => 'pong',
    node: (args: { id: string }, context: SandboxContext) => nodeView(context.state, args.id),
    ...notificationQueries,
    ...mutations({
      ...onboardingMutations,
      ...cardLifecycleMutations,
      ...physicalOrderMutations,
      ...ruleMutations,
      ...authorizationMutations,
      ...settlementMutations,
      ...notificationMutations,
    }),
  };
}
