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
