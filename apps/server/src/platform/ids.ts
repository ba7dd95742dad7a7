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
} as const;

export type IdKind = keyof typeof idPrefixes;

const nextUlid = monotonicFactory();

export function newId(kind: IdKind): string {
  return `${idPrefixes[kind]}_${nextUlid().toLowerCase()}`;
}

/** Largest id length accepted in a path or body; longer input is a validation error, not a lookup. */
export const maxIdLength = 64;
