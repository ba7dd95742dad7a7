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

/** One ledger's running totals in cents; available = credit − debit, which never goes below zero. */
export interface LedgerTotals {
  creditCents: bigint;
  debitCents: bigint;
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

export interface PaymentCardRecord {
  id: string;
  externalId: string;
  last4: string;
  expirationDate: string;
  status: 'ACTIVATION_REQUIRED' | 'ACTIVE';
  financialAccountId: string;
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

export interface SandboxState {
  accountHolders: Map<string, AccountHolderRecord>;
  cardProducts: Map<string, CardProductRecord>;
  applications: Map<string, ApplicationRecord>;
  financialAccounts: Map<string, FinancialAccountRecord>;
  paymentCards: Map<string, PaymentCardRecord>;
  transfers: Map<string, TransferRecord>;
  /** First successful answer per (API key, operation, idempotency key). */
  idempotentResults: Map<string, unknown>;
}

/** Ids the sandbox issues carry this prefix, so an unknown id with it is "not found" rather than seed data. */
export const SANDBOX_ID_PREFIX = 'sbx_';
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
    availableCash: { creditCents: 0n, debitCents: 0n },
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
