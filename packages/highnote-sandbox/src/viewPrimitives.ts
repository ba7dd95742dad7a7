/* Small building blocks shared by every view module. */

export const USD_DECIMAL_PLACES = 2;
const DEFAULT_PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 100;

export interface FieldUserErrorView {
  code: string;
  description: string;
  path: string[];
  errorPath: string[];
}

export interface UserErrorView {
  __typename: 'UserError';
  errors: FieldUserErrorView[];
}

export function userError(code: string, description: string, path: string[] = []): UserErrorView {
  return { __typename: 'UserError', errors: [{ code, description, path, errorPath: path }] };
}

/** For GraphQL answers: the UnsignedInt scalar serializes bigint. */
export function amountView(amountCents: bigint) {
  return { value: amountCents, currencyCode: 'USD', decimalPlaces: BigInt(USD_DECIMAL_PLACES) };
}

/** For webhook bodies and stored event snapshots, which are plain JSON. */
export function amountJson(amountCents: bigint) {
  return { value: Number(amountCents), currencyCode: 'USD', decimalPlaces: USD_DECIMAL_PLACES };
}

/** Highnote's `TimestampFilterInput` (and `NotificationTimestampFilterInput`, the same shape). */
export interface TimestampFilter {
  equals?: string | null;
  notEquals?: string | null;
  lessThan?: string | null;
  lessThanOrEquals?: string | null;
  greaterThan?: string | null;
  greaterThanOrEquals?: string | null;
  between?: { start?: string | null; end?: string | null } | null;
}

/** Every bound given must hold; `between` includes both ends. */
export function withinTimestampFilter(timestamp: string, filter: TimestampFilter | null | undefined): boolean {
  if (!filter) return true;
  const at = Date.parse(timestamp);
  const bound = (value: string | null | undefined, test: (limit: number) => boolean) =>
    value === undefined || value === null || test(Date.parse(value));
  return (
    bound(filter.equals, (limit) => at === limit) &&
    bound(filter.notEquals, (limit) => at !== limit) &&
    bound(filter.lessThan, (limit) => at < limit) &&
    bound(filter.lessThanOrEquals, (limit) => at <= limit) &&
    bound(filter.greaterThan, (limit) => at > limit) &&
    bound(filter.greaterThanOrEquals, (limit) => at >= limit) &&
    bound(filter.between?.start, (limit) => at >= limit) &&
    bound(filter.between?.end, (limit) => at <= limit)
  );
}

/** Highnote's filter over one value (`IDFilterInput`, `…StatusFilterInput`…); `includes` means any of them. */
export interface ValueFilter<Value> {
  equals?: Value | null;
  notEquals?: Value | null;
  includes?: readonly Value[] | null;
  excludes?: readonly Value[] | null;
}

export function withinValueFilter<Value>(value: Value, filter: ValueFilter<Value> | null | undefined): boolean {
  if (!filter) return true;
  return (
    (filter.equals === undefined || filter.equals === null || value === filter.equals) &&
    (filter.notEquals === undefined || filter.notEquals === null || value !== filter.notEquals) &&
    (filter.includes === undefined || filter.includes === null || filter.includes.includes(value)) &&
    (filter.excludes === undefined || filter.excludes === null || !filter.excludes.includes(value))
  );
}

export interface PageArguments {
  first?: number | null;
  after?: string | null;
}

/** A Relay connection over `items`, with each item's own id as its cursor. */
export function connection<Item, Node>(
  items: readonly Item[],
  args: PageArguments,
  cursorOf: (item: Item) => string,
  nodeOf: (item: Item) => Node,
) {
  const pageSize = Math.min(Math.max(args.first ?? DEFAULT_PAGE_SIZE, 0), MAX_PAGE_SIZE);
  const afterIndex = args.after ? items.findIndex((item) => cursorOf(item) === args.after) : -1;
  const page = items.slice(afterIndex + 1, afterIndex + 1 + pageSize);
  const first = page[0];
  const last = page.at(-1);
  return {
    edges: page.map((item) => ({ cursor: cursorOf(item), node: nodeOf(item) })),
    pageInfo: {
      hasNextPage: afterIndex + 1 + page.length < items.length,
      hasPreviousPage: afterIndex >= 0,
      startCursor: first === undefined ? null : cursorOf(first),
      endCursor: last === undefined ? null : cursorOf(last),
    },
  };
}
