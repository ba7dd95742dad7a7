import { randomInt } from 'node:crypto';
import { validateAccountHolderInput } from './accountHolderInput.js';
import { announceCard } from './cards.js';
import { paymentCardView } from './cardViews.js';
import type { AmountInput, Payload, SandboxContext, SandboxServices } from './context.js';
import { APPLICATION_EVENT_NAMES, applicationEventNode, transferEvent } from './eventNodes.js';
import { initialApplicationStatus, isDecided } from './kyc.js';
import { nodeView } from './nodes.js';
import {
  type AccountHolderRecord,
  type Address,
  type ApplicationRecord,
  type ApplicationStatus,
  ensureCardProduct,
  ensurePlaceholderAccountHolder,
  type FinancialAccountRecord,
  hasAnyFeature,
  isSandboxIssuedId,
  newExternalId,
  newId,
  nowIso,
  type PaymentCardRecord,
  type PersonName,
  type Phone,
  type SandboxState,
  type TransferRecord,
} from './store.js';
import { creditDeposit, settleTransfer } from './transfers.js';
import {
  accountHolderView,
  applicationView,
  depositView,
  financialAccountView,
  transferView,
  type UserErrorView,
  userError,
} from './views.js';

/*
 * Onboarding and funding: account holders, KYC applications, accounts, card issue, deposits and
 * funding transfers.
 */

const PAYMENT_CARD_LAST4_EXCLUSIVE_MAX = 10_000;

/**
 * Runs `perform` once per (API key, operation, key). Only successes are remembered, by the id of
 * the record answered: a UserError changed nothing, so a retry after fixing the cause may act.
 */
function idempotent<T extends Payload & { id: string }>(
  context: SandboxContext,
  operation: string,
  idempotencyKey: string | null | undefined,
  perform: () => T | UserErrorView,
): unknown {
  if (!idempotencyKey) return perform();
  const storeKey = [context.apiKey, operation, idempotencyKey].join('\u0000');
  const previousId = context.state.idempotentResults.get(storeKey);
  if (previousId !== undefined) {
    const previous = nodeView(context.state, previousId);
    if (previous) return previous;
  }
  const result = perform();
  if (result.__typename !== 'UserError') context.state.idempotentResults.set(storeKey, (result as T).id);
  return result;
}

interface CreateUSPersonAccountHolderInput {
  personAccountHolder: {
    name: PersonName;
    email?: string | null;
    phoneNumber?: Phone | null;
    billingAddress?: Address | null;
    billingAddressToken?: string | null;
    dateOfBirth: string;
    identificationDocument?: { socialSecurityNumber: { number: string } } | null;
    externalId?: string | null;
  };
}

function createUSPersonAccountHolder(input: CreateUSPersonAccountHolderInput, context: SandboxContext) {
  const person = input.personAccountHolder;
  const problems = validateAccountHolderInput(person);
  if (problems.length > 0) return { __typename: 'UserError', errors: problems };
  const createdAt = nowIso();
  // The SSN was only format-checked above; it is deliberately not copied into the record.
  const holder: AccountHolderRecord = {
    id: newId('ah'),
    externalId: person.externalId ?? null,
    name: person.name,
    email: person.email ?? null,
    phoneNumbers: person.phoneNumber ? [person.phoneNumber] : [],
    billingAddress: person.billingAddress ?? null,
    dateOfBirth: person.dateOfBirth,
    createdAt,
    updatedAt: createdAt,
  };
  context.state.accountHolders.set(holder.id, holder);
  return accountHolderView(holder);
}

interface CreateApplicationInput {
  cardProductId: string;
  accountHolderId: string;
  cardHolderAgreementConsent: { primaryAuthorizedPersonId: string; consentTimestamp: string };
}

/** Approves a PENDING application after the configured delay (also used after a restart). */
export function scheduleApproval(services: SandboxServices, application: ApplicationRecord): void {
  services.scheduler.schedule(services.timing.applicationApprovalDelayMs, () => {
    // A simulated status change, or a reset, may have come first; they win.
    const current = services.state.applications.get(application.id);
    if (current === application && application.status === 'PENDING') {
      setApplicationStatus(services, application, 'APPROVED');
    }
  });
}

function setApplicationStatus(services: SandboxServices, application: ApplicationRecord, status: ApplicationStatus) {
  const changedAt = nowIso();
  application.status = status;
  application.updatedAt = changedAt;
  application.decisionedAt = isDecided(status) ? changedAt : null;
  const eventName = APPLICATION_EVENT_NAMES[status];
  if (eventName) services.notifier.emit(eventName, applicationEventNode(application));
}

function resolveSeedableAccountHolder(state: SandboxState, accountHolderId: string) {
  const holder = state.accountHolders.get(accountHolderId);
  if (holder) return holder;
  return isSandboxIssuedId(accountHolderId) ? null : ensurePlaceholderAccountHolder(state, accountHolderId);
}

function createAccountHolderCardProductApplication(input: CreateApplicationInput, context: SandboxContext) {
  const { state } = context;
  if (Number.isNaN(Date.parse(input.cardHolderAgreementConsent.consentTimestamp))) {
    return userError('INVALID_INPUT', 'consentTimestamp must be an ISO 8601 timestamp', [
      'cardHolderAgreementConsent',
      'consentTimestamp',
    ]);
  }
  const holder = resolveSeedableAccountHolder(state, input.accountHolderId);
  if (!holder) return userError('NOT_FOUND', 'account holder not found', ['accountHolderId']);
  if (isSandboxIssuedId(input.cardProductId) && !state.cardProducts.has(input.cardProductId)) {
    return userError('NOT_FOUND', 'card product not found', ['cardProductId']);
  }
  ensureCardProduct(state, input.cardProductId);
  const createdAt = nowIso();
  const application: ApplicationRecord = {
    id: newId('app'),
    accountHolderId: holder.id,
    cardProductId: input.cardProductId,
    status: 'PENDING',
    decisionedAt: null,
    createdAt,
    updatedAt: createdAt,
  };
  const initialStatus = initialApplicationStatus(holder);
  state.applications.set(application.id, application);
  if (initialStatus !== 'PENDING') setApplicationStatus(context, application, initialStatus);
  if (initialStatus === 'PENDING') scheduleApproval(context, application);
  return applicationView(state, application);
}

function simulateApplicationStatusChange(
  input: { applicationId: string; newApplicationStatus: ApplicationStatus },
  context: SandboxContext,
) {
  const application = context.state.applications.get(input.applicationId);
  if (!application) return userError('NOT_FOUND', 'application not found', ['applicationId']);
  setApplicationStatus(context, application, input.newApplicationStatus);
  return applicationView(context.state, application);
}

interface IssueFinancialAccountInput {
  applicationId: string;
  name: string;
  externalId?: string | null;
  idempotencyKey?: string | null;
}

function issueFinancialAccount(input: IssueFinancialAccountInput, context: SandboxContext) {
  const { state } = context;
  const application = state.applications.get(input.applicationId);
  if (!application) return userError('NOT_FOUND', 'application not found', ['applicationId']);
  if (application.status !== 'APPROVED') {
    return userError('APPLICATION_NOT_APPROVED', `application is ${application.status}`, ['applicationId']);
  }
  const externalId = input.externalId ?? newExternalId();
  const taken = [...state.financialAccounts.values()].some((account) => account.externalId === externalId);
  if (taken) return userError('ALREADY_EXISTS', 'externalId is already used', ['externalId']);
  const createdAt = nowIso();
  const account: FinancialAccountRecord = {
    id: newId('fa'),
    externalId,
    name: input.name,
    accountStatus: 'ACTIVE',
    features: ['PREPAID_PAYMENT_CARD'],
    cardProductId: application.cardProductId,
    applicationId: application.id,
    availableCash: { creditCents: 0n, debitCents: 0n, heldCents: 0n },
    createdAt,
    updatedAt: createdAt,
  };
  state.financialAccounts.set(account.id, account);
  return financialAccountView(state, account);
}

interface IssuePaymentCardInput {
  financialAccountId: string;
  options: { expirationDate: string; activateOnCreate: boolean; externalId?: string | null };
  idempotencyKey?: string | null;
}

function issuePaymentCard(input: IssuePaymentCardInput, context: SandboxContext) {
  const { state } = context;
  const account = state.financialAccounts.get(input.financialAccountId);
  if (!account) return userError('NOT_FOUND', 'financial account not found', ['financialAccountId']);
  if (!hasAnyFeature(account, ['PREPAID_PAYMENT_CARD', 'DEBIT_PAYMENT_CARD']) || account.accountStatus !== 'ACTIVE') {
    return userError('INVALID_FINANCIAL_ACCOUNT', 'account cannot hold payment cards', ['financialAccountId']);
  }
  const expiresAt = Date.parse(input.options.expirationDate);
  if (Number.isNaN(expiresAt) || expiresAt <= Date.now()) {
    return userError('INVALID_INPUT', 'expirationDate must be a future ISO datetime', ['options', 'expirationDate']);
  }
  const createdAt = nowIso();
  // Only four digits are ever made up: there is no PAN to leak.
  const card: PaymentCardRecord = {
    id: newId('pc'),
    externalId: input.options.externalId ?? newExternalId(),
    last4: String(randomInt(PAYMENT_CARD_LAST4_EXCLUSIVE_MAX)).padStart(4, '0'),
    expirationDate: new Date(expiresAt).toISOString(),
    status: input.options.activateOnCreate ? 'ACTIVE' : 'ACTIVATION_REQUIRED',
    financialAccountId: account.id,
    attachedSpendRules: [],
    attachedVelocityRules: [],
    createdAt,
    updatedAt: createdAt,
  };
  state.paymentCards.set(card.id, card);
  announceCard(context, 'PAYMENT_CARD_ISSUED', card, null);
  return paymentCardView(state, card);
}

function simulateDeposit(
  input: { amount: AmountInput; toFinancialAccountId: string; memo?: string | null },
  context: SandboxContext,
) {
  const account = context.state.financialAccounts.get(input.toFinancialAccountId);
  if (!account) return userError('NOT_FOUND', 'financial account not found', ['toFinancialAccountId']);
  if (!hasAnyFeature(account, ['PRODUCT_FUNDING'])) {
    return userError('INVALID_FINANCIAL_ACCOUNT', 'deposits go to a product funding account', ['toFinancialAccountId']);
  }
  if (input.amount.value <= 0n) return userError('INVALID_INPUT', 'amount must be positive', ['amount', 'value']);
  creditDeposit(account, input.amount.value);
  return depositView({
    id: newId('dep'),
    amountCents: input.amount.value,
    memo: input.memo ?? null,
    createdAt: nowIso(),
  });
}

interface InitiateTransferInput {
  fromFinancialAccountId: string;
  toFinancialAccountId: string;
  amount: AmountInput;
  memo?: string | null;
  idempotencyKey?: string | null;
}

function initiateFundingTransfer(input: InitiateTransferInput, context: SandboxContext) {
  const { state } = context;
  if (!state.financialAccounts.has(input.fromFinancialAccountId)) {
    return userError('ACCOUNT_NOT_FOUND', 'source financial account not found', ['fromFinancialAccountId']);
  }
  if (!state.financialAccounts.has(input.toFinancialAccountId)) {
    return userError('ACCOUNT_NOT_FOUND', 'destination financial account not found', ['toFinancialAccountId']);
  }
  const createdAt = nowIso();
  const transfer: TransferRecord = {
    id: newId('tr'),
    fromFinancialAccountId: input.fromFinancialAccountId,
    toFinancialAccountId: input.toFinancialAccountId,
    amountCents: input.amount.value,
    memo: input.memo ?? null,
    idempotencyKey: input.idempotencyKey ?? null,
    status: 'PENDING',
    statusReason: null,
    createdAt,
    updatedAt: createdAt,
  };
  state.transfers.set(transfer.id, transfer);
  announceTransfer(context, transfer);
  scheduleSettlement(context, transfer);
  return transferView(state, transfer);
}

function announceTransfer(services: SandboxServices, transfer: TransferRecord): void {
  const { name, node } = transferEvent(transfer);
  services.notifier.emit(name, node);
}

/** Settles a PENDING transfer after the configured delay (also used after a restart). */
export function scheduleSettlement(services: SandboxServices, transfer: TransferRecord): void {
  services.scheduler.schedule(services.timing.transferSettlementDelayMs, () => {
    if (services.state.transfers.get(transfer.id) !== transfer || transfer.status !== 'PENDING') return;
    settleTransfer(services.state, transfer);
    announceTransfer(services, transfer);
  });
}

/** After a restart from a state file: the timers that were pending when it was written run again. */
export function resumePendingWork(services: SandboxServices): void {
  for (const application of services.state.applications.values()) {
    if (application.status === 'PENDING') scheduleApproval(services, application);
  }
  for (const transfer of services.state.transfers.values()) {
    if (transfer.status === 'PENDING') scheduleSettlement(services, transfer);
  }
}

function withIdempotency<Input extends { idempotencyKey?: string | null }>(
  operation: string,
  resolve: (input: Input, context: SandboxContext) => (Payload & { id: string }) | UserErrorView,
) {
  return (input: Input, context: SandboxContext) =>
    idempotent(context, operation, input.idempotencyKey, () => resolve(input, context));
}

export const onboardingMutations = {
  createUSPersonAccountHolder,
  createAccountHolderCardProductApplication,
  simulateApplicationStatusChange,
  issueFinancialAccountForApplication: withIdempotency('issueFinancialAccountForApplication', issueFinancialAccount),
  issuePaymentCardForFinancialAccount: withIdempotency('issuePaymentCardForFinancialAccount', issuePaymentCard),
  simulateDeposit,
  initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount: withIdempotency(
    'initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount',
    initiateFundingTransfer,
  ),
};
