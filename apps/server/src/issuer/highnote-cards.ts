import { callIssuer, type IssuerConnection, type IssuerResult } from './graphql.js';

/**
 * The Highnote operations of onboarding and cards: account holders, card product applications,
 * financial accounts, payment cards and physical card orders. Names are Highnote's (see
 * `shared/reference/highnote.md` §1–4 and §7). Operations whose input has an `idempotencyKey` are
 * retried with it; the others are sent once, and their callers deduplicate (see `issuer_requests`).
 */

const userErrorFields = `
  ... on UserError { __typename errors { code description errorPath } }
  ... on AccessDeniedError { __typename message }
`;

function mapped<A, B>(result: IssuerResult<A>, map: (value: A) => B): IssuerResult<B> {
  return result.ok ? { ok: true, value: map(result.value), requestId: result.requestId } : result;
}

/** A US person as Highnote takes it. The SSN is passed through, never kept by Tranche. */
export interface PersonDetails {
  externalId: string;
  givenName: string;
  familyName: string;
  email?: string | undefined;
  /** E.164; split into Highnote's country code and national number. */
  phoneNumber?: string | undefined;
  dateOfBirth: string;
  address: PostalAddress;
  ssn?: string | undefined;
}

export interface PostalAddress {
  line1: string;
  line2?: string | undefined;
  city: string;
  state: string;
  postalCode: string;
  /** ISO 3166 alpha-3; Highnote's US programs take `USA`. */
  country: string;
}

function addressInput(address: PostalAddress) {
  return {
    streetAddress: address.line1,
    ...(address.line2 === undefined ? {} : { extendedAddress: address.line2 }),
    locality: address.city,
    region: address.state,
    postalCode: address.postalCode,
    countryCodeAlpha3: address.country,
  };
}

/** `+14155550100` → country code `1`, number `4155550100` (North American numbers); others keep their digits. */
function phoneInput(e164: string) {
  const digits = e164.replace(/^\+/, '');
  const [countryCode, number] = digits.startsWith('1') ? ['1', digits.slice(1)] : [digits.slice(0, 2), digits.slice(2)];
  return { countryCode, number, label: 'MOBILE' };
}

export type ApplicationStatusCode = 'PENDING' | 'IN_REVIEW' | 'APPROVED' | 'DENIED' | 'CLOSED';

export interface IssuerApplication {
  id: string;
  status: ApplicationStatusCode;
  denialReason: string | null;
}

interface ApplicationPayload {
  id: string;
  applicationState: { status: ApplicationStatusCode };
  applicationDenialReason?: string | null;
}

const applicationFields = `__typename id applicationState { status } applicationDenialReason`;

function applicationOf(payload: ApplicationPayload): IssuerApplication {
  return {
    id: payload.id,
    status: payload.applicationState.status,
    denialReason: payload.applicationDenialReason ?? null,
  };
}

export type PaymentCardStatusCode = 'ACTIVATION_REQUIRED' | 'ACTIVE' | 'SUSPENDED' | 'CLOSED';

export interface IssuerCard {
  id: string;
  status: PaymentCardStatusCode;
  last4: string | null;
  network: string | null;
  expirationDate: string | null;
  formFactor: 'VIRTUAL' | 'PHYSICAL' | null;
}

const cardFields = `__typename id status last4 network expirationDate formFactor`;

interface CardPayload {
  id: string;
  status: PaymentCardStatusCode;
  last4?: string | null;
  network?: string | null;
  expirationDate?: string | null;
  formFactor?: 'VIRTUAL' | 'PHYSICAL' | null;
}

function cardOf(payload: CardPayload): IssuerCard {
  return {
    id: payload.id,
    status: payload.status,
    last4: payload.last4 ?? null,
    network: payload.network ?? null,
    expirationDate: payload.expirationDate ?? null,
    formFactor: payload.formFactor ?? null,
  };
}

export interface IssuerCardOrder {
  id: string;
  status: string;
}

export const shippingMethods = [
  'USPS_GROUND',
  'USPS_PRIORITY',
  'USPS_EXPRESS',
  'UPS_GROUND',
  'UPS_SECOND_DAY',
  'UPS_NEXT_DAY',
] as const;
export type ShippingMethod = (typeof shippingMethods)[number];

const targetStatus = { activate: 'ACTIVE', suspend: 'SUSPENDED', close: 'CLOSED' } as const;

/** Longest line Highnote embosses on a physical card (its schema's limit for `textLines`). */
export const maxEmbossedLineLength = 23;

/** How long a newly issued card is valid, in years. */
export const cardValidityYears = 3;

export function highnoteCards(connection: IssuerConnection) {
  const readCard = async (id: string): Promise<IssuerResult<IssuerCard>> => {
    const result = await callIssuer<CardPayload>(connection, {
      field: 'node',
      document: `query Card($id: ID!) { node(id: $id) { ... on PaymentCard { ${cardFields} } } }`,
      variables: { id },
      retryable: true,
    });
    return mapped(result, cardOf);
  };
  return {
    /** Creates a US person account holder. No idempotency key exists: sent once. */
    async createPersonAccountHolder(person: PersonDetails): Promise<IssuerResult<{ id: string }>> {
      return callIssuer<{ id: string }>(connection, {
        field: 'createUSPersonAccountHolder',
        document: `mutation CreatePerson($input: CreateUSPersonAccountHolderInput!) {
          createUSPersonAccountHolder(input: $input) {
            ... on USPersonAccountHolder { __typename id }
            ${userErrorFields}
          }
        }`,
        variables: {
          input: {
            personAccountHolder: {
              externalId: person.externalId,
              name: { givenName: person.givenName, familyName: person.familyName },
              ...(person.email === undefined ? {} : { email: person.email }),
              ...(person.phoneNumber === undefined ? {} : { phoneNumber: phoneInput(person.phoneNumber) }),
              dateOfBirth: person.dateOfBirth,
              billingAddress: addressInput(person.address),
              ...(person.ssn === undefined
                ? {}
                : {
                    identificationDocument: {
                      socialSecurityNumber: { number: person.ssn, countryCodeAlpha3: 'USA' },
                    },
                  }),
            },
          },
        },
        retryable: false,
      });
    },

    /** Applies for a card product with the cardholder agreement's consent. Sent once. */
    async createApplication(input: {
      accountHolderId: string;
      cardProductId: string;
      consentAt: Date;
      ipAddress: string | null;
    }): Promise<IssuerResult<IssuerApplication>> {
      const ip =
        input.ipAddress === null
          ? undefined
          : input.ipAddress.includes(':')
            ? { v6: input.ipAddress }
            : { v4: input.ipAddress };
      const result = await callIssuer<ApplicationPayload>(connection, {
        field: 'createAccountHolderCardProductApplication',
        document: `mutation Apply($input: CreateAccountHolderCardProductApplicationInput!) {
          createAccountHolderCardProductApplication(input: $input) {
            ... on AccountHolderCardProductApplication { ${applicationFields} }
            ${userErrorFields}
          }
        }`,
        variables: {
          input: {
            accountHolderId: input.accountHolderId,
            cardProductId: input.cardProductId,
            cardHolderAgreementConsent: {
              primaryAuthorizedPersonId: input.accountHolderId,
              consentTimestamp: input.consentAt.toISOString(),
              ...(ip === undefined ? {} : { consentIpAddress: ip }),
            },
            ...(ip === undefined ? {} : { ipAddress: ip }),
          },
        },
        retryable: false,
      });
      return mapped(result, applicationOf);
    },

    async application(id: string): Promise<IssuerResult<IssuerApplication>> {
      const result = await callIssuer<ApplicationPayload>(connection, {
        field: 'node',
        document: `query Application($id: ID!) {
          node(id: $id) { ... on AccountHolderCardProductApplication { ${applicationFields} } }
        }`,
        variables: { id },
        retryable: true,
      });
      return mapped(result, applicationOf);
    },

    /** Issues the financial account of an approved application; the key makes a repeat return the same account. */
    async issueFinancialAccount(input: {
      applicationId: string;
      name: string;
      externalId: string;
      idempotencyKey: string;
    }): Promise<IssuerResult<{ id: string }>> {
      return callIssuer<{ id: string }>(connection, {
        field: 'issueFinancialAccountForApplication',
        document: `mutation IssueAccount($input: IssueFinancialAccountForApplicationInput!) {
          issueFinancialAccountForApplication(input: $input) {
            ... on FinancialAccount { __typename id }
            ${userErrorFields}
          }
        }`,
        variables: { input },
        retryable: true,
      });
    },

    /** Issues a payment card on a financial account (virtual; a physical one is ordered for it). */
    async issueCard(input: {
      financialAccountId: string;
      externalId: string;
      activateOnCreate: boolean;
      idempotencyKey: string;
      now: Date;
    }): Promise<IssuerResult<IssuerCard>> {
      const expires = new Date(input.now);
      expires.setUTCFullYear(expires.getUTCFullYear() + cardValidityYears);
      const result = await callIssuer<CardPayload | { paymentCard: CardPayload | null; status: string }>(connection, {
        field: 'issuePaymentCardForFinancialAccount',
        document: `mutation IssueCard($input: IssuePaymentCardForFinancialAccountInput!) {
          issuePaymentCardForFinancialAccount(input: $input) {
            ... on PaymentCard { ${cardFields} }
            ${userErrorFields}
          }
        }`,
        variables: {
          input: {
            financialAccountId: input.financialAccountId,
            idempotencyKey: input.idempotencyKey,
            options: {
              expirationDate: `${expires.toISOString().slice(0, 10)}T23:59:59Z`,
              activateOnCreate: input.activateOnCreate,
              externalId: input.externalId,
            },
          },
        },
        retryable: true,
      });
      return mapped(result, (payload) =>
        cardOf('paymentCard' in payload ? (payload.paymentCard as CardPayload) : payload),
      );
    },

    /** Orders the physical card of an issued card. No idempotency key exists: sent once. */
    async orderPhysicalCard(input: {
      paymentCardId: string;
      recipient: { givenName: string; familyName: string };
      address: PostalAddress;
      method: ShippingMethod;
      signatureRequired: boolean;
    }): Promise<IssuerResult<IssuerCardOrder>> {
      const result = await callIssuer<{ id: string; orderState: { status: string } }>(connection, {
        field: 'orderPhysicalPaymentCard',
        document: `mutation OrderCard($input: OrderPhysicalPaymentCardInput!) {
          orderPhysicalPaymentCard(input: $input) {
            ... on PhysicalPaymentCardOrder { __typename id orderState { status } }
            ${userErrorFields}
          }
        }`,
        variables: {
          input: {
            paymentCardId: input.paymentCardId,
            deliveryDetails: { name: input.recipient, address: addressInput(input.address) },
            cardPersonalization: {
              textLines: {
                line1: `${input.recipient.givenName} ${input.recipient.familyName}`.slice(0, maxEmbossedLineLength),
              },
            },
            courier: { method: input.method, signatureRequiredOnDelivery: input.signatureRequired },
          },
        },
        retryable: false,
      });
      return mapped(result, (order) => ({ id: order.id, status: order.orderState.status }));
    },

    card: readCard,

    /**
     * Activates (also lifts a suspension), suspends or closes a card. No idempotency key exists,
     * but each is a move to a state, so sending one again is harmless: they are retried.
     */
    async changeCardStatus(
      paymentCardId: string,
      action: 'activate' | 'suspend' | 'close',
    ): Promise<IssuerResult<IssuerCard>> {
      const field = `${action}PaymentCard`;
      const input = `${action[0]?.toUpperCase()}${action.slice(1)}PaymentCardInput`;
      const result = await callIssuer<CardPayload>(connection, {
        field,
        document: `mutation ChangeCard($input: ${input}!) {
          ${field}(input: $input) {
            ... on PaymentCard { ${cardFields} }
            ${userErrorFields}
          }
        }`,
        variables: { input: { paymentCardId } },
        retryable: true,
      });
      if (!result.ok && result.failure.kind === 'rejected') {
        // A retry after a lost answer finds the card already moved, and Highnote refuses the
        // repeat: a card already where it was asked to go is the answer, not an error.
        const current = await readCard(paymentCardId);
        if (current.ok && current.value.status === targetStatus[action]) return current;
      }
      return mapped(result, cardOf);
    },

    /** Test environments only: wires money into a product funding account. */
    async simulateDeposit(input: {
      toFinancialAccountId: string;
      amountCents: bigint;
    }): Promise<IssuerResult<unknown>> {
      return callIssuer<unknown>(connection, {
        field: 'simulateDeposit',
        document: `mutation Deposit($input: SimulateDepositInput!) {
          simulateDeposit(input: $input) {
            ... on Transfer { __typename id status }
            ${userErrorFields}
          }
        }`,
        variables: {
          input: {
            toFinancialAccountId: input.toFinancialAccountId,
            amount: { value: Number(input.amountCents), currencyCode: 'USD' },
            source: 'WIRE',
            memo: 'Tranche sandbox funding',
          },
        },
        retryable: false,
      });
    },
  };
}
