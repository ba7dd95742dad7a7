import type {
  AccountHolderRecord,
  ApplicationRecord,
  CardProductRecord,
  DepositRecord,
  FeatureType,
  FinancialAccountRecord,
  SandboxState,
  TransferRecord,
  TransferStatus,
} from './store.js';
import { accountTransactionEvents } from './transactionViews.js';
import {
  amountView,
  connection,
  type PageArguments,
  type TimestampFilter,
  type ValueFilter,
  withinTimestampFilter,
  withinValueFilter,
} from './viewPrimitives.js';

export { amountView, type FieldUserErrorView, type UserErrorView, userError } from './viewPrimitives.js';

/*
 * Records as GraphQL objects. `__typename` lets graphql-js resolve unions and the Node interface;
 * fields that change over time or point at other records are functions, which graphql-js calls at
 * query time, so a stored idempotent answer still shows the record's current state.
 */

const PRODUCT_NAME = 'Sandbox card product';
/** Every transfer the sandbox makes is a load from the product funding account onto a card account. */
const TRANSFER_ACTIVITY_TYPE = 'LOAD_PAYMENT_CARD_ACCOUNT';

export function accountHolderView(holder: AccountHolderRecord) {
  return {
    __typename: 'USPersonAccountHolder',
    id: holder.id,
    externalId: holder.externalId,
    name: holder.name,
    email: holder.email,
    phoneNumbers: holder.phoneNumbers,
    billingAddress: holder.billingAddress,
    dateOfBirth: holder.dateOfBirth,
    createdAt: holder.createdAt,
    updatedAt: () => holder.updatedAt,
  };
}

export function applicationView(state: SandboxState, application: ApplicationRecord) {
  return {
    __typename: 'AccountHolderCardProductApplication',
    id: application.id,
    applicationState: () => ({ status: application.status }),
    applicationDenialReason: () => (application.status === 'DENIED' ? 'DENIED_DUE_TO_OTHER' : null),
    cardProduct: () => cardProductViewById(state, application.cardProductId),
    decisionedAt: () => application.decisionedAt,
    createdAt: application.createdAt,
    updatedAt: () => application.updatedAt,
  };
}

interface AccountsArguments extends PageArguments {
  filterBy?: { features?: { includes?: FeatureType[] | null } | null } | null;
}

export function cardProductView(state: SandboxState, product: CardProductRecord) {
  return {
    __typename: 'CardProduct',
    id: product.id,
    name: PRODUCT_NAME,
    accounts: (args: AccountsArguments) => {
      const wanted = args.filterBy?.features?.includes ?? null;
      const accounts = [...state.financialAccounts.values()].filter(
        (account) =>
          account.cardProductId === product.id &&
          (wanted === null || account.features.some((feature) => wanted.includes(feature))),
      );
      return connection(
        accounts,
        args,
        (account) => account.id,
        (account) => financialAccountView(state, account),
      );
    },
  };
}

export function cardProductViewById(state: SandboxState, cardProductId: string) {
  const product = state.cardProducts.get(cardProductId);
  return product ? cardProductView(state, product) : null;
}

/*
 * AVAILABLE_CASH counts authorization holds as debits, so credit − debit is what a card can spend.
 * CASH is the posted balance: the same without the holds.
 */
function ledgerViews(account: FinancialAccountRecord) {
  const { creditCents, debitCents, heldCents } = account.availableCash;
  // The account owes its holder the balance, so both ledgers are credit-normal.
  const ledger = (name: string, debit: bigint) => ({
    name,
    creditBalance: amountView(creditCents),
    debitBalance: amountView(debit),
    normalBalance: 'CREDIT',
    asOf: account.updatedAt,
  });
  return [ledger('AVAILABLE_CASH', debitCents), ledger('CASH', debitCents - heldCents)];
}

interface AccountTransfersArguments extends PageArguments {
  filterBy?: {
    createdAt?: TimestampFilter | null;
    updatedAt?: TimestampFilter | null;
    transferActivityType?: ValueFilter<string> | null;
    status?: ValueFilter<TransferStatus> | null;
  } | null;
}

/** `FinancialAccount.interFinancialAccountTransfers`: transfers from or to the account, oldest first. */
function accountTransfers(state: SandboxState, account: FinancialAccountRecord, args: AccountTransfersArguments) {
  const filter = args.filterBy;
  const transfers = [...state.transfers.values()].filter(
    (transfer) =>
      (transfer.fromFinancialAccountId === account.id || transfer.toFinancialAccountId === account.id) &&
      withinValueFilter(transfer.status, filter?.status) &&
      withinValueFilter(TRANSFER_ACTIVITY_TYPE, filter?.transferActivityType) &&
      withinTimestampFilter(transfer.createdAt, filter?.createdAt) &&
      withinTimestampFilter(transfer.updatedAt, filter?.updatedAt),
  );
  return connection(
    transfers,
    args,
    (transfer) => transfer.id,
    (transfer) => transferView(state, transfer),
  );
}

export function financialAccountView(state: SandboxState, account: FinancialAccountRecord) {
  return {
    __typename: 'FinancialAccount',
    id: account.id,
    externalId: account.externalId,
    name: account.name,
    accountStatus: () => account.accountStatus,
    features: account.features.map((featureType) => ({ featureType, enabled: true })),
    cardProduct: () => cardProductViewById(state, account.cardProductId),
    cardProductApplication: () => {
      const application = account.applicationId ? state.applications.get(account.applicationId) : undefined;
      return application ? applicationView(state, application) : null;
    },
    ledgers: (args: { ledgerNames?: string[] | null }) => {
      const ledgers = ledgerViews(account);
      const wanted = args.ledgerNames;
      return wanted ? ledgers.filter((ledger) => wanted.includes(ledger.name)) : ledgers;
    },
    interFinancialAccountTransfers: (args: AccountTransfersArguments) => accountTransfers(state, account, args),
    /*
     * transactionViews imports this module too: the cycle is safe because each side calls the other
     * only at query time. `unknown` keeps TypeScript from inferring the two views' types in a circle.
     */
    transactionEvents: (args: Parameters<typeof accountTransactionEvents>[2]): unknown =>
      accountTransactionEvents(state, account.id, args),
    createdAt: account.createdAt,
    updatedAt: () => account.updatedAt,
  };
}

export function financialAccountViewById(state: SandboxState, financialAccountId: string) {
  const account = state.financialAccounts.get(financialAccountId);
  return account ? financialAccountView(state, account) : null;
}

export function depositView(deposit: DepositRecord) {
  return {
    __typename: 'Transfer',
    id: deposit.id,
    amount: amountView(deposit.amountCents),
    status: 'COMPLETED',
    memo: deposit.memo,
    createdAt: deposit.createdAt,
  };
}

export function transferView(state: SandboxState, transfer: TransferRecord) {
  return {
    __typename: 'InterFinancialAccountTransfer',
    id: transfer.id,
    amount: amountView(transfer.amountCents),
    status: () => transfer.status,
    statusReason: () => transfer.statusReason,
    transferActivityType: TRANSFER_ACTIVITY_TYPE,
    memo: transfer.memo,
    fromFinancialAccount: () => financialAccountViewById(state, transfer.fromFinancialAccountId),
    toFinancialAccount: () => financialAccountViewById(state, transfer.toFinancialAccountId),
    createdAt: transfer.createdAt,
    updatedAt: () => transfer.updatedAt,
  };
}
