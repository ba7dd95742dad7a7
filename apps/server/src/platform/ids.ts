import { createHash, randomBytes } from 'node:crypto';
import { type Expression, type RawBuilder, sql } from 'kysely';
import { monotonicFactory } from 'ulid';

/** Every public id is a prefix and a ULID, so ids sort by creation time and say what they name. */
export const idPrefixes = {
  organization: 'org',
  apiKey: 'key',
  program: 'prg',
  user: 'usr',
  task: 'tsk',
  userTask: 'ut',
  disbursement: 'dsb',
  account: 'acc',
  transfer: 'trf',
  request: 'req',
  job: 'job',
  event: 'evt',
  application: 'app',
  card: 'card',
  webhookEndpoint: 'whe',
  webhookDelivery: 'whd',
  agreement: 'agr',
  consent: 'cns',
  spend: 'spd',
  reconciliationRun: 'rcn',
} as const;

export type IdKind = keyof typeof idPrefixes;

/** Random bytes drawn from the system at a time for ids, instead of one system call per character. */
const randomPoolBytes = 4_096;
let randomPool = randomBytes(randomPoolBytes);
let randomOffset = 0;

/** Uniform in [0, 1) in steps of 1/256, from the pool: ulid keeps 5 bits of each (a base-32 character). */
function pooledRandom(): number {
  if (randomOffset === randomPool.length) {
    randomPool = randomBytes(randomPoolBytes);
    randomOffset = 0;
  }
  return (randomPool[randomOffset++] as number) / 256;
}

const nextUlid = monotonicFactory(pooledRandom);

export function newId(kind: IdKind): string {
  return `${idPrefixes[kind]}_${nextUlid().toLowerCase()}`;
}

/** Largest id length accepted in a path or body; longer input is a validation error, not a lookup. */
export const maxIdLength = 64;

/**
 * The transfer that resolves a user task's reservation (its post or void) is named after the user
 * task, so a retry or a second worker can never resolve it under another id.
 */
export function resolutionTransferId(userTaskId: string): string {
  return `${idPrefixes.transfer}_${userTaskId}`;
}

/** The same name computed in SQL from a `user_tasks.id` column, for set-wise updates. */
export function resolutionTransferIdOfColumn(column: Expression<string>): RawBuilder<string> {
  return sql<string>`${sql.lit(`${idPrefixes.transfer}_`)} || ${column}`;
}

/** The same, from the `id` column of the one table an UPDATE names. */
export const resolutionTransferIdOfRow = resolutionTransferIdOfColumn(sql.ref('id'));

/**
 * A Highnote `idempotencyKey` derived from our own ids: a UUID (version 4 in form, as Highnote
 * asks) made from a hash of the parts, so the same operation on the same object always sends the
 * same key, from any process, after any crash.
 */
export function issuerIdempotencyKey(...parts: string[]): string {
  const bytes = createHash('sha256').update(parts.join('\u0000')).digest().subarray(0, 16);
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The ledger transfer that settles a disbursement on the card: one per disbursement, ever. */
export function settlementTransferId(disbursementId: string): string {
  return `${idPrefixes.transfer}_settle_${disbursementId}`;
}

/** The ledger transfer that returns a cancelled disbursement's money to its pool. */
export function disbursementReturnTransferId(disbursementId: string): string {
  return `${idPrefixes.transfer}_return_${disbursementId}`;
}
