import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from '../platform/db.js';
import { mutate } from '../work/mutate.js';
import type { Work } from '../work/runner.js';

/**
 * `mutate` for the responses that show a secret once (a new API key, an OAuth2 client): the
 * secret goes to the caller but never into the idempotency table, whose stored copy of the
 * response is `redact(body)`. A replay with the same `Idempotency-Key` therefore answers with the
 * redacted copy (`Idempotent-Replayed: true`): the ids and the secret's last four characters, not
 * the secret. A caller that lost the first response revokes that credential and makes another.
 *
 * `organizationId` lets an operator request act for an organization it names; the key's scope
 * stays the caller's (`operator` for the operator token).
 */
export function mutateRevealingOnce<T>(
  db: Db,
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  options: { organizationId?: string; redact: (body: T) => unknown },
  work: Work<T>,
): Promise<FastifyReply> {
  return mutate(db, request, reply, status, work, options);
}

/** A secret as a replay shows it: its prefix and last four characters. */
export function redactedSecret(secret: string): string {
  const prefix = /^[a-z]+_/.exec(secret)?.[0] ?? '';
  return `${prefix}…${secret.slice(-4)}`;
}
