import { callIssuer, type IssuerConnection, type IssuerResult } from './graphql.js';
import { highnoteCards } from './highnote-cards.js';

/**
 * The Highnote adapter: the card platform's operations Tranche uses, as typed functions over
 * `callIssuer`. Operation, field and enum names are Highnote's (see
 * `shared/reference/highnote.md`); amounts cross this seam as integer cents (`bigint`) and leave
 * it as Highnote's minor units. Onboarding and cards are in `highnote-cards.ts`.
 */

/** What an inter-account transfer is doing, as Highnote says it. */
export const transferStatuses = ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED'] as const;
export type TransferStatus = (typeof transferStatuses)[number];

export interface IssuerTransfer {
  id: string;
  status: TransferStatus;
  /** Why it failed (a Highnote reason code), when it did. */
  statusReasonCode: string | null;
  amountCents: bigint;
}

/** Highnote's money: an integer of minor units with its currency. Only USD is supported. */
interface Amount {
  value: number | string;
  currencyCode: string;
  decimalPlaces?: number | null;
}

/** Cents from a Highnote amount; refuses a currency or precision Tranche does not hold. */
export function centsOf(amount: Amount): bigint {
  const places = amount.decimalPlaces ?? 2;
  if (amount.currencyCode !== 'USD') throw new Error(`an amount in ${amount.currencyCode}, not USD`);
  const value = BigInt(amount.value);
  if (places === 2) return value;
  if (places < 2) return value * 10n ** BigInt(2 - places);
  const scale = 10n ** BigInt(places - 2);
  if (value % scale !== 0n) throw new Error(`an amount of ${amount.value} at ${places} places is not whole cents`);
  return value / scale;
}

/** Highnote's `AmountInput` for an amount in cents. */
function amountInput(amountCents: bigint): { value: number; currencyCode: 'USD' } {
  if (amountCents <= 0n || amountCents > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new Error(`an amount of ${amountCents} cents cannot be sent`);
  }
  return { value: Number(amountCents), currencyCode: 'USD' };
}

const transferFields = `
  __typename
  id
  status
  statusReason
  amount { value currencyCode decimalPlaces }
`;

function transferOf(payload: {
  id: string;
  status: string;
  statusReason?: string | null;
  amount: Amount;
}): IssuerTransfer {
  if (!(transferStatuses as readonly string[]).includes(payload.status)) {
    throw new Error(`a transfer in status ${payload.status}`);
  }
  return {
    id: payload.id,
    status: payload.status as TransferStatus,
    statusReasonCode: payload.statusReason ?? null,
    amountCents: centsOf(payload.amount),
  };
}

function mapped<A, B>(result: IssuerResult<A>, map: (value: A) => B): IssuerResult<B> {
  return result.ok ? { ok: true, value: map(result.value), requestId: result.requestId } : result;
}

export function highnoteAdapter(connection: IssuerConnection) {
  return {
    ...highnoteCards(connection),
    /** Whether the issuer answers and takes the key. */
    async ping(): Promise<IssuerResult<string>> {
      const result = await callIssuer<unknown>(connection, {
        field: 'ping',
        document: 'query Ping { ping }',
        variables: {},
        retryable: true,
        scalar: true,
      });
      return mapped(result, String);
    },

    /**
     * Moves `amountCents` from the product funding account to a card's financial account. The
     * idempotency key is derived from our own ids by the caller and stored before the call, so a
     * retry after a lost answer sends the same key and Highnote returns the same transfer.
     */
    async fundCard(input: {
      fromFinancialAccountId: string;
      toFinancialAccountId: string;
      amountCents: bigint;
      idempotencyKey: string;
      memo?: string;
    }): Promise<IssuerResult<IssuerTransfer>> {
      const result = await callIssuer<Parameters<typeof transferOf>[0]>(connection, {
        field: 'initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount',
        document: `mutation FundCard($input: InitiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccountInput!) {
          initiateTransferFromFundingFinancialAccountToPaymentCardFinancialAccount(input: $input) {
            ... on InterFinancialAccountTransfer { ${transferFields} }
            ... on UserError { __typename errors { code description errorPath } }
            ... on AccessDeniedError { __typename message }
          }
        }`,
        variables: {
          input: {
            fromFinancialAccountId: input.fromFinancialAccountId,
            toFinancialAccountId: input.toFinancialAccountId,
            amount: amountInput(input.amountCents),
            idempotencyKey: input.idempotencyKey,
            ...(input.memo === undefined ? {} : { memo: input.memo }),
          },
        },
        retryable: true,
      });
      return mapped(result, transferOf);
    },

    /** A transfer as Highnote sees it now. */
    async transfer(id: string): Promise<IssuerResult<IssuerTransfer>> {
      const result = await callIssuer<Parameters<typeof transferOf>[0]>(connection, {
        field: 'node',
        document: `query Transfer($id: ID!) {
          node(id: $id) { ... on InterFinancialAccountTransfer { ${transferFields} } }
        }`,
        variables: { id },
        retryable: true,
      });
      return mapped(result, transferOf);
    },

    /** What a financial account can spend: its `AVAILABLE_CASH` ledger, credits minus debits, in cents. */
    async availableCashCents(financialAccountId: string): Promise<IssuerResult<bigint>> {
      const result = await callIssuer<{
        ledgers?: { name: string; creditBalance: Amount; debitBalance: Amount }[] | null;
      }>(connection, {
        field: 'node',
        document: `query AvailableCash($id: ID!) {
          node(id: $id) {
            __typename
            ... on FinancialAccount {
              ledgers(ledgerNames: [AVAILABLE_CASH]) {
                name
                creditBalance { value currencyCode decimalPlaces }
                debitBalance { value currencyCode decimalPlaces }
              }
            }
          }
        }`,
        variables: { id: financialAccountId },
        retryable: true,
      });
      return mapped(result, (account) => {
        const ledger = account.ledgers?.find((entry) => entry.name === 'AVAILABLE_CASH');
        if (ledger === undefined)
          throw new Error(`financial account ${financialAccountId} has no AVAILABLE_CASH ledger`);
        return centsOf(ledger.creditBalance) - centsOf(ledger.debitBalance);
      });
    },
  };
}

export type HighnoteAdapter = ReturnType<typeof highnoteAdapter>;
