import type { UserTaskRecord } from './record.js';

/**
 * The program record as CSV (RFC 4180): one row per user task, CRLF line ends, a header row. No
 * CSV library is a dependency, and quoting is the whole of what is needed: a field holding a
 * comma, a quote, CR or LF is quoted and its quotes doubled; every other field is written as is.
 */

type Cell = string | number | null;

/** The columns, in order, and how each reads a record. */
const columns: readonly [string, (record: UserTaskRecord) => Cell][] = [
  ['userTaskId', (r) => r.userTask.id],
  ['userId', (r) => r.user.id],
  ['externalUserId', (r) => r.user.externalId],
  ['taskId', (r) => r.userTask.taskId],
  ['name', (r) => r.userTask.name],
  ['amount', (r) => r.reservation.amount],
  ['status', (r) => r.userTask.status],
  ['reservedAt', (r) => r.reservation.reservedAt],
  ['reservedBy', (r) => r.reservation.credentialId ?? r.reservation.actor],
  ['completedAt', (r) => r.completion?.completedAt ?? null],
  ['completedBy', (r) => r.completion?.completedBy ?? null],
  ['approvedBy', (r) => lastApproval(r)?.by ?? null],
  ['approvedAt', (r) => lastApproval(r)?.at ?? null],
  ['disbursementId', (r) => r.disbursement?.id ?? null],
  ['highnoteTransferId', (r) => r.disbursement?.highnoteTransferId ?? null],
  ['disbursementStatus', (r) => r.disbursement?.status ?? null],
  ['settledAt', (r) => r.disbursement?.settledAt ?? null],
  ['spent', (r) => r.disbursement?.spent ?? null],
  ['remaining', (r) => r.disbursement?.remaining ?? null],
];

export const csvColumns = columns.map(([name]) => name);

function lastApproval(record: UserTaskRecord) {
  const approved = record.approvals.filter((approval) => approval.type === 'usertask.approved');
  return approved[approved.length - 1];
}

/** One field, quoted when it must be. */
export function csvField(value: Cell): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function csvLine(cells: readonly Cell[]): string {
  return `${cells.map(csvField).join(',')}\r\n`;
}

export function csvHeader(): string {
  return csvLine(csvColumns);
}

export function csvRows(records: readonly UserTaskRecord[]): string {
  return records.map((record) => csvLine(columns.map(([, read]) => read(record)))).join('');
}
