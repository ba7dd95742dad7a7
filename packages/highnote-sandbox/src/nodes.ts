import { paymentCardView, physicalOrderView } from './cardViews.js';
import { notificationEventView, notificationTargetView } from './notifications.js';
import { spendRuleView, velocityRuleView } from './ruleViews.js';
import type { SandboxState } from './store.js';
import { transactionEventView, transactionView } from './transactionViews.js';
import { accountHolderView, applicationView, cardProductView, financialAccountView, transferView } from './views.js';

/** `node(id)`: every record kind is addressable, as Highnote's global ids are. */
export function nodeView(state: SandboxState, id: string): unknown {
  const from = <Record>(records: ReadonlyMap<string, Record>, view: (record: Record) => unknown) => {
    const record = records.get(id);
    return record === undefined ? null : view(record);
  };
  return (
    from(state.accountHolders, accountHolderView) ??
    from(state.applications, (application) => applicationView(state, application)) ??
    from(state.cardProducts, (product) => cardProductView(state, product)) ??
    from(state.financialAccounts, (account) => financialAccountView(state, account)) ??
    from(state.paymentCards, (card) => paymentCardView(state, card)) ??
    from(state.transfers, (transfer) => transferView(state, transfer)) ??
    from(state.physicalOrders, (order) => physicalOrderView(state, order)) ??
    from(state.spendRules, spendRuleView) ??
    from(state.velocityRules, (rule) => velocityRuleView(state, rule)) ??
    from(state.transactions, (transaction) => transactionView(state, transaction)) ??
    from(state.transactionEvents, (event) => transactionEventView(state, event)) ??
    from(state.notificationTargets, notificationTargetView) ??
    from(state.notificationEvents, notificationEventView)
  );
}
