import { callIssuer, type IssuerConnection, type IssuerResult } from '../issuer/graphql.js';

/**
 * Highnote's notification target operations (`shared/reference/highnote.md` §8), as typed calls
 * over `callIssuer`. A target is where Highnote POSTs signed notifications; its signing keys are
 * returned at creation and at each rotation, and nowhere else worth relying on.
 */

export interface IssuerSigningKey {
  id: string;
  secret: string;
  createdAt: string;
  /** When a retired key stops signing (24 h after a rotation); null for the current key. */
  expiresAt: string | null;
}

export interface IssuerNotificationTarget {
  id: string;
  status: string;
  signingKeys: IssuerSigningKey[];
}

const targetFields = `__typename id status signingKeys { id secret createdAt expiresAt }`;
const errorFields = `
  ... on UserError { __typename errors { code description errorPath } }
  ... on AccessDeniedError { __typename message }
`;

interface TargetPayload {
  id: string;
  status: string;
  signingKeys?: IssuerSigningKey[] | null;
}

function targetOf(result: IssuerResult<TargetPayload>): IssuerResult<IssuerNotificationTarget> {
  if (!result.ok) return result;
  const { id, status, signingKeys } = result.value;
  return { ok: true, value: { id, status, signingKeys: signingKeys ?? [] }, requestId: result.requestId };
}

/**
 * Creates a target. It has no idempotency key, so it is sent once: a lost answer leaves a target
 * Tranche never learnt the keys of, which never turns ACTIVE (its activation fails verification).
 */
export async function addWebhookNotificationTarget(
  connection: IssuerConnection,
  input: { name: string; uri: string; subscriptions: readonly string[] },
): Promise<IssuerResult<IssuerNotificationTarget>> {
  const result = await callIssuer<TargetPayload>(connection, {
    field: 'addWebhookNotificationTarget',
    document: `mutation AddTarget($input: AddWebhookNotificationTargetInput!) {
      addWebhookNotificationTarget(input: $input) {
        ... on WebhookNotificationTarget { ${targetFields} }
        ${errorFields}
      }
    }`,
    variables: { input: { name: input.name, uri: input.uri, subscriptions: [...input.subscriptions] } },
    retryable: false,
  });
  return targetOf(result);
}

/** Adds a signing key; the ones before it keep signing beside it for 24 hours. */
export async function rotateNotificationTargetSigningKey(
  connection: IssuerConnection,
  targetId: string,
): Promise<IssuerResult<IssuerNotificationTarget>> {
  const result = await callIssuer<TargetPayload>(connection, {
    field: 'rotateNotificationTargetSigningKey',
    document: `mutation RotateKey($input: RotateNotificationTargetSigningKeyInput!) {
      rotateNotificationTargetSigningKey(input: $input) {
        ... on WebhookNotificationTarget { ${targetFields} }
        ${errorFields}
      }
    }`,
    variables: { input: { targetId } },
    // Each call adds a key: sent once, like any mutation without an idempotency key.
    retryable: false,
  });
  return targetOf(result);
}
