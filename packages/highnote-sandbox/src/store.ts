import { randomBytes, randomInt } from 'node:crypto';

/*
 * In-memory state of one sandbox. Records are plain mutable objects; the GraphQL layer reads them
 * live, so a client polling `node(id)` sees a transfer move from PENDING to COMPLETED.
 */

export type ApplicationStatus = 'PENDING' | 'IN_REVIEW' | 'APPROVED' | 'DENIED' | 'CLOSED';
export type FeatureType = 'PRODUCT_FUNDING' | 'CARD_FUNDING_ACCOUNT' | 'PREPAID_PAYMENT_CARD' | 'DEBIT_PAYMENT_CARD';
export type TransferStatus = 'PENDING' | 'COMPLETED' | 'FAILED';
export type TransferFailureReason =
  | 'INSUFFICIENT_FUNDS'
  | 'ACCOUNT_NOT_ACTIVE'
  | 'PREPAID_CARD_OR_DEBIT_CARD_FEATURE_NOT_ENABLED'
  | 'PRODUCT_FUNDING_OR_CARD_FUNDING_FEATURE_NOT_ENABLED'
  | 'TRANSFER_AMOUNT_IS_NEGATIVE_OR_ZERO'
  | 'ACCOUNTS_DO_NOT_BELONG_TO_SAME_PRODUCT'
  | 'IDEMPOTENCY_KEY_NOT_PROVIDED';

export interface PersonName {
  givenName: string;
  middleName?: string | null;
  familyName: string;
  suffix?: string | null;
  title?: string | null;
}

export interface Address {
  streetAddress: string;
  extendedAddress?: string | null;
  postalCode: string;
  region: string;
  locality: string;
  countryCodeAlpha3: string;
}

export interface Phone {
  countryCode: string;
  number: string;
  extension?: string | null;
  label: string;
}

/** No identification number is kept: the KYC simulation decides on name and address alone. */
export interface AccountHolderRecord {
  id: string;
  externalId: string | null;
  name: PersonName | null;
  email: string | null;
  phoneNumbers: Phone[];
  billingAddress: Address | null;
  dateOfBirth: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface CardProductRecord {
  id: string;
  fundingFinancialAccountId: string;
}

export interface ApplicationRecord {
  id: string;
  accountHolderId: string;
  cardProductId: string;
  status: ApplicationStatus;
  decisionedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/**
 * The AVAILABLE_CASH ledger's running totals in cents; available = credit − debit, which never goes
 * below zero. `debitCents` includes authorization holds; `heldCents` is that part of it, so the
 * posted (CASH) balance is credit − (debit − held).
 */
export interface LedgerTotals {
  creditCents: bigint;
  debitCents: bigint;
  heldCents: bigint;
}

export interface FinancialAccountRecord {
  id: string;
  externalId: string;
  name: string;
  accountStatus: 'ACTIVE' | 'CLOSED';
  features: FeatureType[];
  cardProductId: string;
  applicationId: string | null;
  availableCash: LedgerTotals;
  createdAt: string;
  updatedAt: string;
}

export type PaymentCardStatus = 'ACTIVATION_REQUIRED' | 'ACTIVE' | 'SUSPENDED' | 'CLOSED';

/** A rule attached to a card: `version` is what the client asked for, e.g. `LATEST` or `1`. */
export interface RuleAttachment {
  id: string;
  version: string;
  attachedAt: string;
}

export interface PaymentCardRecord {
  id: string;
  externalId: string;
  last4: string;
  expirationDate: string;
  status: PaymentCardStatus;
  financialAccountId: string;
  attachedSpendRules: RuleAttachment[];
  attachedVelocityRules: RuleAttachment[];
  createdAt: string;
  updatedAt: string;
}

export interface DepositRecord {
  id: string;
  amountCents: bigint;
  memo: string | null;
  createdAt: string;
}

export interface TransferRecord {
  id: string;
  fromFinancialAccountId: string;
  toFinancialAccountId: string;
  amountCents: bigint;
  memo: string | null;
  idempotencyKey: string | null;
  status: TransferStatus;
  statusReason: TransferFailureReason | null;
  createdAt: string;
  updatedAt: string;
}

export type PhysicalOrderStatus =
  | 'NEW'
  | 'SENT_TO_PRINTER'
  | 'APPROVED'
  | 'CANCELED'
  | 'SHIPPED'
  | 'SHIP_FAILED'
  | 'COMPLETED';

export interface PhysicalOrderRecord {
  id: string;
  paymentCardId: string;
  status: PhysicalOrderStatus;
  stateHistory: { previousStatus: PhysicalOrderStatus | null; newStatus: PhysicalOrderStatus; createdAt: string }[];
  deliveryDetails: { name: PersonName; companyName: string | null; address: Address };
  /** Stored upper-cased, as Highnote does. */
  textLines: { line1: string; line2: string | null; line3: string | null };
  courier: { method: string; signatureRequiredOnDelivery: boolean };
  requestedShipDate: string | null;
  trackingNumber: string | null;
  actualShipDate: string | null;
  createdAt: string;
  updatedAt: string;
}

/** Allow and block lists of one kind of value; an empty allow list allows everything. */
export interface AllowBlockLists {
  allowed: string[];
  blocked: string[];
}

export type SpendRuleSettings =
  | { kind: 'AmountLimitSpendRule'; maximumAmountCents: bigint }
  | { kind: 'CountLimitSpendRule'; maximumCount: number }
  | ({ kind: 'MerchantCategorySpendRule'; allowedMcc: string[]; blockedMcc: string[] } & AllowBlockLists)
  | ({ kind: 'MerchantIdentifierSpendRule' } & AllowBlockLists)
  | ({ kind: 'CardTransactionProcessingTypeConditionSpendRule' } & AllowBlockLists)
  | ({ kind: 'PointOfServiceCategorySpendRule' } & AllowBlockLists);

export type SpendRuleKind = SpendRuleSettings['kind'];

/** Rules are never updated here, so every rule has the one version `1`. */
export interface SpendRuleRecord {
  id: string;
  name: string | null;
  version: string;
  userType: string | null;
  settings: SpendRuleSettings;
  createdAt: string;
  updatedAt: string;
}

export type VelocityRuleWindow =
  | 'DAILY'
  | 'WEEKLY'
  | 'MONTHLY'
  | 'NINETY_DAYS'
  | 'YEARLY'
  | 'PER_TRANSACTION'
  | 'COOLDOWN_MINUTE'
  | 'COOLDOWN_HOUR'
  | 'QUARTERLY';

export type VelocityConstraintLevel = 'CARD' | 'ACCOUNT' | 'CARD_LINEAGE' | 'PLATFORM' | 'PRODUCT' | 'ACCOUNT_HOLDER';

export interface VelocityRuleRecord {
  id: string;
  name: string;
  version: string;
  window: VelocityRuleWindow;
  cumulativeRuleId: string;
  conditionRuleIds: string[];
  constraintLevelOverride: VelocityConstraintLevel | null;
  userType: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface MerchantRecord {
  category: string | null;
  categoryCode: string | null;
  merchantId: string | null;
  name: string | null;
  description: string | null;
  countryCodeAlpha3: string | null;
}

export type SpendRuleRecommendation = 'ALLOW' | 'BLOCK' | 'NONE';

/** One rule's verdict on one authorization; `valuesTested` holds strings, or cents for amount rules. */
export interface SpendRuleResultRecord {
  ruleId: string;
  /** `SpendRule` for an attached spend rule, `VelocityRule` for a velocity rule. */
  source: 'SpendRule' | 'VelocityRule';
  recommendation: SpendRuleRecommendation;
  message: string;
  valuesTested: (string | bigint)[];
}

/**
 * One card transaction: an authorization and what followed it. The hold is the part of the
 * authorized amount still counted as a debit on the AVAILABLE_CASH ledger without having cleared.
 */
export interface TransactionRecord {
  id: string;
  paymentCardId: string;
  financialAccountId: string;
  cardProductId: string;
  accountHolderId: string | null;
  responseCode: string;
  requestedCents: bigint;
  approvedCents: bigint;
  heldCents: bigint;
  clearedCents: bigint;
  reversedCents: bigint;
  refundedCents: bigint;
  cashbackCents: bigint | null;
  merchant: MerchantRecord;
  transactionProcessingType: string;
  pointOfServiceCategory: string | null;
  eventIds: string[];
  createdAt: string;
  updatedAt: string;
}

export type TransactionEventKind = 'AuthorizationEvent' | 'ClearingEvent' | 'ReversalEvent';

export interface TransactionEventRecord {
  id: string;
  kind: TransactionEventKind;
  transactionId: string;
  responseCode: string;
  requestedCents: bigint;
  approvedCents: bigint;
  accountingDirection: 'DEBIT' | 'CREDIT';
  transactionProcessingType: string;
  availableAfterCents: bigint;
  spendRuleResults: SpendRuleResultRecord[];
  createdAt: string;
}

export type NotificationTargetStatus = 'PENDING_VERIFICATION' | 'ACTIVE' | 'DEACTIVATED' | 'ACTIVATION_FAILED';

export interface SigningKeyRecord {
  id: string;
  secret: string;
  createdAt: string;
  /** Null while the key is the newest one; set when a rotation retires it. */
  expiresAt: string | null;
}

export interface NotificationTargetRecord {
  id: string;
  name: string;
  uri: string;
  email: string | null;
  subscriptions: string[];
  status: NotificationTargetStatus;
  signingKeys: SigningKeyRecord[];
  createdAt: string;
  updatedAt: string;
  deactivatedAt: string | null;
}

/** A JSON object as delivered: the event node is a snapshot taken when the event happened. */
export type JsonObject = { [key: string]: JsonValue };
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;

export interface NotificationEventRecord {
  id: string;
  name: string;
  createdAt: string;
  expiresAt: string;
  node: JsonObject;
}

export interface SandboxState {
  /* Maps only: clearState and persistence treat every member alike. */
  accountHolders: Map<string, AccountHolderRecord>;
  cardProducts: Map<string, CardProductRecord>;
  applications: Map<string, ApplicationRecord>;
  financialAccounts: Map<string, FinancialAccountRecord>;
  paymentCards: Map<string, PaymentCardRecord>;
  transfers: Map<string, TransferRecord>;
  physicalOrders: Map<string, PhysicalOrderRecord>;
  spendRules: Map<string, SpendRuleRecord>;
  velocityRules: Map<string, VelocityRuleRecord>;
  transactions: Map<string, TransactionRecord>;
  transactionEvents: Map<string, TransactionEventRecord>;
  notificationTargets: Map<string, NotificationTargetRecord>;
  /** In creation order, oldest first; trimmed to the newest MAX_STORED_NOTIFICATION_EVENTS. */
  notificationEvents: Map<string, NotificationEventRecord>;
  /** The id of the record first answered per (API key, operation, idempotency key). */
  idempotentResults: Map<string, string>;
}

/** Ids the sandbox issues carry this prefix, so an unknown id with it is "not found" rather than seed data. */
export const SANDBOX_ID_PREFIX = 'sbx_';
/** Older notification events are dropped, oldest first, so a long-running sandbox stays small. */
export const MAX_STORED_NOTIFICATION_EVENTS = 1_000;
const ID_RANDOM_BYTES = 8;
const EXTERNAL_ID_LENGTH = 10;
const BASE58_ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

export function createState(): SandboxState {
  return {
    accountHolders: new Map(),
    cardProducts: new Map(),
    applications: new Map(),
    financialAccounts: new Map(),
    paymentCards: new Map(),
    transfers: new Map(),
    physicalOrders: new Map(),
    spendRules: new Map(),
    velocityRules: new Map(),
    transactions: new Map(),
    transactionEvents: new Map(),
    notificationTargets: new Map(),
    notificationEvents: new Map(),
    idempotentResults: new Map(),
  };
}

export function clearState(state: SandboxState): void {
  for (const collection of Object.values(state)) collection.clear();
}

export function newId(kind: string): string {
  return `${SANDBOX_ID_PREFIX}${kind}_${randomBytes(ID_RANDOM_BYTES).toString('hex')}`;
}

export function isSandboxIssuedId(id: string): boolean {
  return id.startsWith(SANDBOX_ID_PREFIX);
}

/** Highnote's default externalId: ten upper-case Base58 characters. */
export function newExternalId(): string {
  let externalId = '';
  for (let index = 0; index < EXTERNAL_ID_LENGTH; index += 1) {
    externalId += BASE58_ALPHABET[randomInt(BASE58_ALPHABET.length)];
  }
  return externalId.toUpperCase();
}

export function nowIso(): string {
  return new Date().toISOString();
}

export function availableCents(account: FinancialAccountRecord): bigint {
  return account.availableCash.creditCents - account.availableCash.debitCents;
}

export function hasAnyFeature(account: FinancialAccountRecord, wanted: readonly FeatureType[]): boolean {
  return account.features.some((feature) => wanted.includes(feature));
}

/**
 * Card products are not created through the API; any id a client names that the sandbox did not
 * issue is taken as seed data and gets its product funding account on first use.
 */
export function ensureCardProduct(state: SandboxState, cardProductId: string): CardProductRecord {
  const existing = state.cardProducts.get(cardProductId);
  if (existing) return existing;
  const createdAt = nowIso();
  const funding: FinancialAccountRecord = {
    id: newId('fa'),
    externalId: newExternalId(),
    name: 'Product funding account',
    accountStatus: 'ACTIVE',
    features: ['PRODUCT_FUNDING'],
    cardProductId,
    applicationId: null,
    availableCash: { creditCents: 0n, debitCents: 0n, heldCents: 0n },
    createdAt,
    updatedAt: createdAt,
  };
  state.financialAccounts.set(funding.id, funding);
  const product: CardProductRecord = { id: cardProductId, fundingFinancialAccountId: funding.id };
  state.cardProducts.set(cardProductId, product);
  return product;
}

/** An account holder that a seed refers to by id alone: no details, so KYC approves it. */
export function ensurePlaceholderAccountHolder(state: SandboxState, accountHolderId: string): AccountHolderRecord {
  const existing = state.accountHolders.get(accountHolderId);
  if (existing) return existing;
  const createdAt = nowIso();
  const holder: AccountHolderRecord = {
    id: accountHolderId,
    externalId: null,
    name: null,
    email: null,
    phoneNumbers: [],
    billingAddress: null,
    dateOfBirth: null,
    createdAt,
    updatedAt: createdAt,
  };
  state.accountHolders.set(holder.id, holder);
  return holder;
}
