import assert from 'node:assert/strict';
import { buildSchema, GraphQLError, GraphQLScalarType, type GraphQLSchema, Kind, type ValueNode } from 'graphql';
import { BASE_SDL } from './sdl/base.js';
import { CARDS_SDL } from './sdl/cards.js';
import { ENUMS_SDL } from './sdl/enums.js';
import { NOTIFICATIONS_SDL } from './sdl/notifications.js';
import { RULES_SDL } from './sdl/rules.js';
import { TRANSACTIONS_SDL } from './sdl/transactions.js';

/** Highnote documents idempotency keys as UUIDv4 but card issue accepts 10 characters; take the looser rule. */
export const IDEMPOTENCY_KEY_MIN_LENGTH = 10;
export const IDEMPOTENCY_KEY_MAX_LENGTH = 255;

/*
 * The subset of Highnote's Test API schema that the sandbox serves, one part per area. Type, field
 * and enum names follow Highnote so that queries written for the real API validate here; where the
 * sandbox leaves a member out, a query that selects it fails validation instead of silently reading null.
 */
const SANDBOX_SDL = [BASE_SDL, CARDS_SDL, RULES_SDL, TRANSACTIONS_SDL, NOTIFICATIONS_SDL, ENUMS_SDL].join('\n');

function invalidScalar(scalarName: string, reason: string): GraphQLError {
  return new GraphQLError(`${scalarName} ${reason}`);
}

/** Money arrives as JSON numbers and lives as bigint inside the sandbox, as everywhere in Tranche. */
function parseUnsignedInt(value: unknown): bigint {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalidScalar('UnsignedInt', 'must be a non-negative safe integer');
  }
  return BigInt(value);
}

function parseUnsignedIntLiteral(node: ValueNode): bigint {
  if (node.kind !== Kind.INT) throw invalidScalar('UnsignedInt', 'must be an integer literal');
  return parseUnsignedInt(Number(node.value));
}

function serializeUnsignedInt(value: unknown): number {
  const asNumber = typeof value === 'bigint' ? Number(value) : value;
  assert(typeof asNumber === 'number' && Number.isSafeInteger(asNumber) && asNumber >= 0, 'UnsignedInt out of range');
  return asNumber;
}

function parseIdempotencyKey(value: unknown): string {
  if (
    typeof value !== 'string' ||
    value.length < IDEMPOTENCY_KEY_MIN_LENGTH ||
    value.length > IDEMPOTENCY_KEY_MAX_LENGTH
  ) {
    throw invalidScalar(
      'IdempotencyKey',
      `must be a string of ${IDEMPOTENCY_KEY_MIN_LENGTH}-${IDEMPOTENCY_KEY_MAX_LENGTH} characters`,
    );
  }
  return value;
}

function parseIdempotencyKeyLiteral(node: ValueNode): string {
  if (node.kind !== Kind.STRING) throw invalidScalar('IdempotencyKey', 'must be a string literal');
  return parseIdempotencyKey(node.value);
}

function scalarNamed(schema: GraphQLSchema, name: string): GraphQLScalarType {
  const type = schema.getType(name);
  assert(type instanceof GraphQLScalarType, `${name} is declared as a scalar in the SDL`);
  return type;
}

/** buildSchema leaves custom scalars as pass-through; give the two we declare real parsing. */
export function buildSandboxSchema(): GraphQLSchema {
  const schema = buildSchema(SANDBOX_SDL);
  const unsignedInt = scalarNamed(schema, 'UnsignedInt');
  unsignedInt.parseValue = parseUnsignedInt;
  unsignedInt.parseLiteral = parseUnsignedIntLiteral;
  unsignedInt.serialize = serializeUnsignedInt;
  const idempotencyKey = scalarNamed(schema, 'IdempotencyKey');
  idempotencyKey.parseValue = parseIdempotencyKey;
  idempotencyKey.parseLiteral = parseIdempotencyKeyLiteral;
  return schema;
}
