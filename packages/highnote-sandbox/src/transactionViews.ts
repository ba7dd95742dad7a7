import { paymentCardViewById } from './cardViews.js';
import { spendRuleViewById, velocityRuleView } from './ruleViews.js';
import type { SandboxState, SpendRuleResultRecord, TransactionEventRecord, TransactionRecord } from './store.js';
import {
  amountView,
  connection,
  type PageArguments,
  type TimestampFilter,
  type ValueFilter,
  withinTimestampFilter,
  withinValueFilter,
} from './viewPrimitives.js';
import { cardProductViewById } from './views.js';

/* Card transactions and their events (authorization, clearing, reversal) as GraphQL objects. */

const EVENT_FILTERS: Record<string, TransactionEventRecord['kind']> = {
  AUTHORIZATION_EVENT: 'AuthorizationEvent',
  CLEARING_EVENT: 'ClearingEvent',
  REVERSAL_EVENT: 'ReversalEvent',
};

const FILTER_OF_KIND = Object.fromEntries(
  Object.entries(EVENT_FILTERS).map(([filter, kind]) => [kind, filter]),
) as Record<TransactionEventRecord['kind'], string>;

interface AccountTransactionEventsArguments extends PageArguments {
  filterBy?: {
    eventType?: ValueFilter<string> | null;
    responseCode?: ValueFilter<string> | null;
    paymentCardId?: ValueFilter<string> | null;
    transactionId?: ValueFilter<string> | null;
    id?: ValueFilter<string> | null;
    createdAt?: TimestampFilter | null;
  } | null;
}

/**
 * `FinancialAccount.transactionEvents`: every event of the account's card transactions, oldest
 * first (the order they were recorded in), so a reader can page forward from its last cursor.
 */
export function accountTransactionEvents(
  state: SandboxState,
  financialAccountId: string,
  args: AccountTransactionEventsArguments,
) {
  const filter = args.filterBy;
  const events = [...state.transactionEvents.values()].filter((event) => {
    const transaction = state.transactions.get(event.transactionId);
    return (
      transaction?.financialAccountId === financialAccountId &&
      withinValueFilter(FILTER_OF_KIND[event.kind], filter?.eventType) &&
      withinValueFilter(event.responseCode, filter?.responseCode) &&
      withinValueFilter(transaction.paymentCardId, filter?.paymentCardId) &&
      withinValueFilter(event.transactionId, filter?.transactionId) &&
      withinValueFilter(event.id, filter?.id) &&
      withinTimestampFilter(event.createdAt, filter?.createdAt)
    );
  });
  return connection(
    events,
    args,
    (event) => event.id,
    (event) => transactionEventView(state, event),
  );
}

function spendRuleResultView(state: SandboxState, result: SpendRuleResultRecord, index: number) {
  const common = { cursor: String(index), recommendation: result.recommendation, message: result.message };
  const attachedLevel = 'CARD';
  if (result.source === 'VelocityRule') {
    const rule = state.velocityRules.get(result.ruleId);
    return {
      ...common,
      __typename: 'VelocityRuleResult',
      attachedLevel,
      velocityRule: rule ? velocityRuleView(state, rule) : null,
    };
  }
  const rule = state.spendRules.get(result.ruleId);
  return {
    ...common,
    __typename: `${rule?.settings.kind ?? 'AmountLimitSpendRule'}Result`,
    attachedLevel,
    valuesTested: result.valuesTested.map((value) => (typeof value === 'bigint' ? amountView(value) : value)),
    spendRule: () => spendRuleViewById(state, result.ruleId),
  };
}

export function transactionView(state: SandboxState, transaction: TransactionRecord) {
  return {
    __typename: 'DebitTransaction',
    id: transaction.id,
    transactionEvents: (args: { eventTypes?: string[] | null }) => {
      const kinds = args.eventTypes?.map((filter) => EVENT_FILTERS[filter]) ?? null;
      return transaction.eventIds
        .flatMap((id) => state.transactionEvents.get(id) ?? [])
        .filter((event) => kinds === null || kinds.includes(event.kind))
        .map((event) => transactionEventView(state, event));
    },
  };
}

export function transactionEventView(state: SandboxState, event: TransactionEventRecord) {
  const transaction = state.transactions.get(event.transactionId);
  const cashback = transaction?.cashbackCents ?? null;
  return {
    __typename: event.kind,
    id: event.id,
    transactionId: event.transactionId,
    transaction: () => (transaction ? transactionView(state, transaction) : null),
    responseCode: event.responseCode,
    approvedAmount: amountView(event.approvedCents),
    requestedAmount: amountView(event.requestedCents),
    accountingDirection: event.accountingDirection,
    transactionProcessingType: event.transactionProcessingType,
    currentFinancialAccountAvailableToSpendAmount: amountView(event.availableAfterCents),
    merchantDetails: transaction?.merchant ?? null,
    pointOfServiceDetails: transaction?.pointOfServiceCategory
      ? { category: transaction.pointOfServiceCategory }
      : null,
    cashbackAmount: cashback === null ? null : amountView(cashback),
    paymentCard: () => (transaction ? paymentCardViewById(state, transaction.paymentCardId) : null),
    cardProduct: () => (transaction ? cardProductViewById(state, transaction.cardProductId) : null),
    spendRuleResults: (args: PageArguments) =>
      connection(
        event.spendRuleResults.map((result, index) => spendRuleResultView(state, result, index)),
        args,
        (view) => view.cursor,
        (view) => view,
      ),
    createdAt: event.createdAt,
  };
}
