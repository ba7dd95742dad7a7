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
} as const;

export type IdKind = keyof typeof idPrefixes;

const nextUlid = monotonicFactory();

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
