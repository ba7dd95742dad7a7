import type {
  AccountHolderRecord,
  ApplicationRecord,
  CardProductRecord,
  DepositRecord,
  FeatureType,
  FinancialAccountRecord,
  PaymentCardRecord,
  SandboxState,
  TransferRecord,
} from './store.js';

/*
 * Records as GraphQL objects. `__typename` lets graphql-js resolve unions and the Node interface;
 * fields that change over time or point at other records are functions, which graphql-js calls at
 * query time, so a stored idempotent answer still shows the record's current state.
 */

export const USD_DECIMAL_PLACES = 2;
const DEFAULT_PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 100;
const PAYMENT_CARD_BIN = '411111';
const PRODUCT_NAME = 'Sandbox card product';

export interface FieldUserErrorView {
  code: string;
  description: string;
  path: string[];
  errorPath: string[];
}

export interface UserErrorView {
  __typename: 'UserError';
  errors: FieldUserErrorView[];
}

export function userError(code: string, description: string, path: string[] = []): UserErrorView {
  return { __typename: 'UserError', errors: [{ code, description, path, errorPath: path }] };
}

export function amountView(amountCents: bigint) {
  return { value: amountCents, currencyCode: 'USD', decimalPlaces: BigInt(USD_DECIMAL_PLACES) };
}

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

interface AccountsArguments {
  first?: number | null;
  after?: string | null;
  filterBy?: { features?: { includes?: FeatureType[] | null } | null } | null;
}

function pageOfAccounts(state: SandboxState, accounts: FinancialAccountRecord[], args: AccountsArguments) {
  const pageSize = Math.min(Math.max(args.first ?? DEFAULT_PAGE_SIZE, 0), MAX_PAGE_SIZE);
  const afterIndex = args.after ? accounts.findIndex((account) => account.id === args.after) : -1;
  const page = accounts.slice(afterIndex + 1, afterIndex + 1 + pageSize);
  const edges = page.map((account) => ({ cursor: account.id, node: financialAccountView(state, account) }));
  return {
    edges,
    pageInfo: {
      hasNextPage: afterIndex + 1 + page.length < accounts.length,
      hasPreviousPage: afterIndex >= 0,
      startCursor: page[0]?.id ?? null,
      endCursor: page.at(-1)?.id ?? null,
    },
  };
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
      return pageOfAccounts(state, accounts, args);
    },
  };
}

function cardProductViewById(state: SandboxState, cardProductId: string) {
  const product = state.cardProducts.get(cardProductId);
  return product ? cardProductView(state, product) : null;
}

function availableCashLedgerView(account: FinancialAccountRecord) {
  return {
    name: 'AVAILABLE_CASH',
    creditBalance: amountView(account.availableCash.creditCents),
    debitBalance: amountView(account.availableCash.debitCents),
    // The account owes its holder the balance, so the ledger is credit-normal.
    normalBalance: 'CREDIT',
    asOf: account.updatedAt,
  };
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
      const ledgers = [availableCashLedgerView(account)];
      const wanted = args.ledgerNames;
      return wanted ? ledgers.filter((ledger) => wanted.includes(ledger.name)) : ledgers;
    },
    createdAt: account.createdAt,
    updatedAt: () => account.updatedAt,
  };
}

function financialAccountViewById(state: SandboxState, financialAccountId: string) {
  const account = state.financialAccounts.get(financialAccountId);
  return account ? financialAccountView(state, account) : null;
}

export function paymentCardView(state: SandboxState, card: PaymentCardRecord) {
  const expiration = new Date(card.expirationDate);
  return {
    __typename: 'PaymentCard',
    id: card.id,
    externalId: card.externalId,
    bin: PAYMENT_CARD_BIN,
    last4: card.last4,
    expirationDate: card.expirationDate,
    expirationMonth: String(expiration.getUTCMonth() + 1).padStart(2, '0'),
    expirationYear: String(expiration.getUTCFullYear()),
    network: 'VISA',
    status: () => card.status,
    formFactor: 'VIRTUAL',
    financialAccounts: () => [financialAccountViewById(state, card.financialAccountId)].filter((view) => view),
    cardProduct: () => {
      const account = state.financialAccounts.get(card.financialAccountId);
      return account ? cardProductViewById(state, account.cardProductId) : null;
    },
    createdAt: card.createdAt,
    updatedAt: () => card.updatedAt,
  };
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
    transferActivityType: 'LOAD_PAYMENT_CARD_ACCOUNT',
    memo: transfer.memo,
    fromFinancialAccount: () => financialAccountViewById(state, transfer.fromFinancialAccountId),
    toFinancialAccount: () => financialAccountViewById(state, transfer.toFinancialAccountId),
    createdAt: transfer.createdAt,
    updatedAt: () => transfer.updatedAt,
  };
}

/** `node(id)`: every record kind is addressable, as Highnote's global ids are. */
export function nodeView(state: SandboxState, id: string) {
  const holder = state.accountHolders.get(id);
  if (holder) return accountHolderView(holder);
  const application = state.applications.get(id);
  if (application) return applicationView(state, application);
  const product = state.cardProducts.get(id);
  if (product) return cardProductView(state, product);
  const account = state.financialAccounts.get(id);
  if (account) return financialAccountView(state, account);
  const card = state.paymentCards.get(id);
  if (card) return paymentCardView(state, card);
  const transfer = state.transfers.get(id);
  return transfer ? transferView(state, transfer) : null;
}
