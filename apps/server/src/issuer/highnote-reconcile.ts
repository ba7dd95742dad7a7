import { callIssuer, type IssuerConnection, type IssuerResult } from './graphql.js';
import { centsOf, type TransferStatus, transferStatuses } from './highnote.js';

/**
 * What reconciliation reads from Highnote per financial account, through the Search API's
 * connections on `FinancialAccount`: `interFinancialAccountTransfers` (every load Tranche made from
 * the product funding account, and any it did not) and `transactionEvents` (card spend, so that an
 * event whose notification was lost can be recovered). Each read follows `pageInfo.endCursor`
 * until `hasNextPage` is false, within `reconcileMaxPages`.
 */

/** Rows asked for per page (Highnote's default is 20; 100 is the largest page the sandbox serves). */
export const reconcilePageSize = 100;
/** Pages read per account and call, so at most 10,000 rows; beyond that, narrow with `createdSince`. */
export const reconcileMaxPages = 100;

/** Overrides of the two limits above, for tests that page through a handful of rows. */
export interface ReconcileLimits {
  pageSize?: number;
  maxPages?: number;
}

/** An inter-financial-account transfer from or to the account read, as Highnote has it now. */
export interface IssuerTransferRow {
  id: string;
  status: TransferStatus;
  /** Highnote's `InterFinancialAccountTransferStatusReasonCode`, when the transfer failed. */
  statusReason: string | null;
  amountCents: bigint;
  fromFinancialAccountId: string;
  toFinancialAccountId: string;
  createdAt: string;
  updatedAt: string;
}

/**
 * What a card transaction event did, in our words. An `AuthorizationEvent` is approved when its
 * response code is `APPROVED`; a `ClearingEvent` crediting the cardholder is a refund. Any other
 * event type Highnote sends (`AuthorizationAndClearEvent`, `AdjustmentEvent`, balance inquiries…)
 * is `other`, with its `eventType`, so that the reconciler can flag it rather than miss it.
 */
export const transactionEventKinds = [
  'authorization_approved',
  'authorization_declined',
  'reversal',
  'clearing',
  'refund',
  'other',
] as const;
export type TransactionEventKind = (typeof transactionEventKinds)[number];

/** Highnote's `MerchantDetails`, as the acquirer sent them. */
export interface IssuerMerchant {
  merchantId: string | null;
  name: string | null;
  description: string | null;
  /** Highnote's `MerchantCategory`, e.g. `GROCERY_STORES_SUPERMARKETS`. */
  category: string | null;
  /** The four-digit MCC. */
  categoryCode: string | null;
  countryCodeAlpha3: string | null;
}

export interface IssuerTransactionEvent {
  /** The event's own id: the key to deduplicate on. */
  id: string;
  transactionId: string;
  kind: TransactionEventKind;
  /** Highnote's type name, e.g. `ClearingEvent`. */
  eventType: string;
  /** The approved amount; zero for a decline. */
  amountCents: bigint;
  /** `DEBIT` moves money out of the cardholder's account, `CREDIT` into it. */
  accountingDirection: 'DEBIT' | 'CREDIT' | null;
  cardId: string | null;
  financialAccountId: string;
  merchant: IssuerMerchant | null;
  responseCode: string | null;
  createdAt: string;
}

interface Amount {
  value: number | string;
  currencyCode: string;
  decimalPlaces?: number | null;
}

interface Page<Node> {
  pageInfo: { hasNextPage: boolean; endCursor?: string | null };
  edges?: ({ node: Node | null } | null)[] | null;
}

interface TransferNode {
  id: string;
  status: string;
  statusReason?: string | null;
  amount: Amount;
  fromFinancialAccount?: { id: string } | null;
  toFinancialAccount?: { id: string } | null;
  createdAt: string;
  updatedAt: string;
}

interface TransactionEventNode {
  __typename: string;
  id: string;
  responseCode?: string | null;
  accountingDirection?: 'DEBIT' | 'CREDIT' | null;
  approvedAmount?: Amount | null;
  createdAt: string;
  paymentCard?: { id: string } | null;
  transaction?: { id?: string } | null;
  merchantDetails?: Partial<IssuerMerchant> | null;
}

const pageInfoFields = 'pageInfo { hasNextPage endCursor }';

const transfersDocument = `query InterFinancialAccountTransfers(
  $id: ID!
  $first: Int
  $after: String
  $filterBy: InterFinancialAccountTransferFilterInput
) {
  node(id: $id) {
    __typename
    ... on FinancialAccount {
      interFinancialAccountTransfers(first: $first, after: $after, filterBy: $filterBy) {
        ${pageInfoFields}
        edges { node {
          id status statusReason
          amount { value currencyCode decimalPlaces }
          fromFinancialAccount { id } toFinancialAccount { id }
          createdAt updatedAt
        } }
      }
    }
  }
}`;

const merchantFields = 'merchantDetails { merchantId name description category categoryCode countryCodeAlpha3 }';

/* `merchantDetails` is not on the TransactionEvent interface, so it is selected per event type. */
const transactionEventsDocument = `query TransactionEvents($id: ID!, $first: Int, $after: String, $filterBy: TransactionEventsFilterInput) {
  node(id: $id) {
    __typename
    ... on FinancialAccount {
      transactionEvents(first: $first, after: $after, filterBy: $filterBy) {
        ${pageInfoFields}
        edges { node {
          __typename id responseCode accountingDirection createdAt
          approvedAmount { value currencyCode decimalPlaces }
          paymentCard { id }
          transaction { ... on DebitTransaction { id } ... on CreditTransaction { id } }
          ... on AuthorizationEvent { ${merchantFields} }
          ... on ClearingEvent { ${merchantFields} }
          ... on ReversalEvent { ${merchantFields} }
        } }
      }
    }
  }
}`;

function transferRowOf(node: TransferNode): IssuerTransferRow {
  if (!(transferStatuses as readonly string[]).includes(node.status)) {
    throw new Error(`transfer ${node.id} is in status ${node.status}`);
  }
  const from = node.fromFinancialAccount?.id;
  const to = node.toFinancialAccount?.id;
  if (from === undefined || to === undefined) throw new Error(`transfer ${node.id} lacks one of its accounts`);
  return {
    id: node.id,
    status: node.status as TransferStatus,
    statusReason: node.statusReason ?? null,
    amountCents: centsOf(node.amount),
    fromFinancialAccountId: from,
    toFinancialAccountId: to,
    createdAt: node.createdAt,
    updatedAt: node.updatedAt,
  };
}

function kindOf(node: TransactionEventNode): TransactionEventKind {
  switch (node.__typename) {
    case 'AuthorizationEvent':
      return node.responseCode === 'APPROVED' ? 'authorization_approved' : 'authorization_declined';
    case 'ReversalEvent':
      return 'reversal';
    case 'ClearingEvent':
      if (node.accountingDirection === 'DEBIT') return 'clearing';
      if (node.accountingDirection === 'CREDIT') return 'refund';
      throw new Error(`clearing event ${node.id} has no accounting direction`);
    default:
      return 'other';
  }
}

function merchantOf(details: Partial<IssuerMerchant> | null | undefined): IssuerMerchant | null {
  if (details === null || details === undefined) return null;
  return {
    merchantId: details.merchantId ?? null,
    name: details.name ?? null,
    description: details.description ?? null,
    category: details.category ?? null,
    categoryCode: details.categoryCode ?? null,
    countryCodeAlpha3: details.countryCodeAlpha3 ?? null,
  };
}

function transactionEventOf(financialAccountId: string, node: TransactionEventNode): IssuerTransactionEvent {
  const kind = kindOf(node);
  const transactionId = node.transaction?.id;
  if (transactionId === undefined) throw new Error(`transaction event ${node.id} names no transaction`);
  // Only an event that moved no money may come without an amount.
  const movesMoney = kind !== 'authorization_declined' && kind !== 'other';
  if ((node.approvedAmount ?? null) === null && movesMoney) {
    throw new Error(`transaction event ${node.id} (${kind}) has no approved amount`);
  }
  return {
    id: node.id,
    transactionId,
    kind,
    eventType: node.__typename,
    amountCents: node.approvedAmount ? centsOf(node.approvedAmount) : 0n,
    accountingDirection: node.accountingDirection ?? null,
    cardId: node.paymentCard?.id ?? null,
    financialAccountId,
    merchant: merchantOf(node.merchantDetails),
    responseCode: node.responseCode ?? null,
    createdAt: node.createdAt,
  };
}

const unexpected = (message: string) => ({ ok: false, failure: { kind: 'unexpected', message, attempts: 1 } }) as const;

/**
 * Reads every page of one connection on a financial account. An answer that cannot be read, a
 * cursor that does not move, or more than `maxPages` pages is `unexpected`: a partial
 * list would let the reconciler take a missing row for an absent one.
 */
async function readAllPages<Node, Row>(
  connection: IssuerConnection,
  limits: ReconcileLimits,
  request: {
    financialAccountId: string;
    document: string;
    connectionField: string;
    filterBy: Record<string, unknown>;
    rowOf: (node: Node) => Row;
  },
): Promise<IssuerResult<Row[]>> {
  const pageSize = limits.pageSize ?? reconcilePageSize;
  const maxPages = limits.maxPages ?? reconcileMaxPages;
  const rows: Row[] = [];
  const label = `${request.connectionField} of ${request.financialAccountId}`;
  let after: string | null = null;
  for (let page = 0; page < maxPages; page++) {
    const answer: IssuerResult<Record<string, Page<Node> | null | undefined>> = await callIssuer(connection, {
      field: 'node',
      document: request.document,
      variables: { id: request.financialAccountId, first: pageSize, after, filterBy: request.filterBy },
      retryable: true,
    });
    if (!answer.ok) return answer;
    const found: Page<Node> | null | undefined = answer.value[request.connectionField];
    if (found === null || found === undefined) return unexpected(`${label}: not a financial account`);
    try {
      for (const edge of found.edges ?? []) if (edge?.node) rows.push(request.rowOf(edge.node));
    } catch (error) {
      return unexpected(`${label}: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!found.pageInfo.hasNextPage) return { ok: true, value: rows, requestId: answer.requestId };
    const next: string | null = found.pageInfo.endCursor ?? null;
    if (next === null || next === after) return unexpected(`${label}: the next page has no new cursor`);
    after = next;
  }
  return unexpected(`${label}: more than ${maxPages * pageSize} rows; narrow with createdSince`);
}

/** Highnote's `TimestampFilterInput` for "created at or after". */
function createdSinceFilter(createdSince: Date | undefined) {
  return createdSince === undefined ? {} : { createdAt: { greaterThanOrEquals: createdSince.toISOString() } };
}

export function highnoteReconcileClient(connection: IssuerConnection, limits: ReconcileLimits = {}) {
  return {
    /**
     * Every transfer from or to the account (for the product funding account: every card load),
     * created at or after `createdSince` when given (inclusive, so reading again from the last
     * watermark loses nothing; rows are keyed by id), and only in `statuses` when given.
     */
    transfersOfAccount(
      financialAccountId: string,
      options: { createdSince?: Date; statuses?: readonly TransferStatus[] } = {},
    ): Promise<IssuerResult<IssuerTransferRow[]>> {
      return readAllPages(connection, limits, {
        financialAccountId,
        document: transfersDocument,
        connectionField: 'interFinancialAccountTransfers',
        filterBy: {
          ...createdSinceFilter(options.createdSince),
          ...(options.statuses === undefined ? {} : { status: { includes: options.statuses } }),
        },
        rowOf: transferRowOf,
      });
    },

    /** Every card transaction event on the account, created at or after `createdSince` when given. */
    transactionEventsOfAccount(
      financialAccountId: string,
      options: { createdSince?: Date } = {},
    ): Promise<IssuerResult<IssuerTransactionEvent[]>> {
      return readAllPages(connection, limits, {
        financialAccountId,
        document: transactionEventsDocument,
        connectionField: 'transactionEvents',
        filterBy: createdSinceFilter(options.createdSince),
        rowOf: (node: TransactionEventNode) => transactionEventOf(financialAccountId, node),
      });
    },
  };
}

export type HighnoteReconcileClient = ReturnType<typeof highnoteReconcileClient>;
