import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionError, FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, type ErrorCode, errorStatuses } from './errors.js';
import { type App, sendError } from './http.js';
import { newId } from './ids.js';

/**
 * Input the database cannot hold is refused at the edge, before any handler runs, so that it is
 * a `400 validation_error` naming the field instead of a `500` from deep inside a transaction:
 *
 * - NUL (U+0000): PostgreSQL `text` cannot store it ("invalid byte sequence for encoding UTF8:
 *   0x00") and `jsonb` refuses the `\u0000` escape.
 * - An unpaired UTF-16 surrogate (`"\ud800"` in JSON): `jsonb` refuses the escape ("invalid input
 *   syntax for type json"), and in `text` the driver silently stores U+FFFD instead, so the value
 *   read back is not the value sent. Either way the input cannot be kept as given.
 * - JSON nested deeper than `maxJsonDepth`: `JSON.stringify` overflows the stack at a few
 *   thousand levels and PostgreSQL's `jsonb` parser at about twenty thousand, both within the
 *   body limit; no field of ours needs more than a handful of levels.
 * - Dates outside years 0001–9999 or not on the calendar: see `isDateTime`.
 *
 * Requests refused before Fastify's hooks run (by Node's HTTP parser or Fastify's router) are
 * answered with the same envelope and closed list: see `answerClientError`, `answerFrameworkError`.
 */

/** Deepest nesting of objects and arrays accepted anywhere in a body, in levels; the body itself is level 1. */
export const maxJsonDepth = 32;
/** First and last calendar year a date or timestamp may name (PostgreSQL has no year 0; four digits end at 9999). */
export const earliestYear = 1;
export const latestYear = 9999;
/** Widest UTC offset accepted, in minutes: ±14:00 is the widest in use; PostgreSQL refuses beyond ±15:59. */
export const maxUtcOffsetMinutes = 14 * 60;
/** Most digits of a fraction of a second: nanoseconds, as RFC3339Nano clients write them. */
export const maxSecondFractionDigits = 9;
/** Request headers a route reads as data (stored or compared), checked like any other field. */
const headersRead = { 'idempotency-key': 'Idempotency-Key' } as const;

/** Every id we issue is a lowercase prefix, `_` and a lowercase ULID (see `ids.ts`), nothing else. */
export const idCharacters = /^[a-z0-9_]+$/;

type Problem = { param: string | undefined; message: string };

const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function unstorableCharacterOf(text: string): string | undefined {
  if (text.includes('\u0000')) return 'the NUL character (U+0000)';
  if (loneSurrogate.test(text)) return 'an unpaired UTF-16 surrogate';
  return undefined;
}

/** A key as it can be named in `param`: its unstorable characters written as `\uXXXX` escapes. */
function printable(key: string): string {
  // Iterating by code point keeps a paired surrogate (an emoji) whole; what is left alone is lone.
  return Array.from(key, (character) => {
    const unit = character.charCodeAt(0);
    const unstorable = unit === 0 || (character.length === 1 && unit >= 0xd800 && unit <= 0xdfff);
    return unstorable ? `\\u${unit.toString(16).padStart(4, '0')}` : character;
  }).join('');
}

function joined(path: string[]): string | undefined {
  return path.length === 0 ? undefined : path.join('.');
}

/** The first value under `value` the database could not hold, walking at most `maxJsonDepth` levels. */
function problemIn(value: unknown, path: string[], depth: number): Problem | undefined {
  if (typeof value === 'string') {
    const character = unstorableCharacterOf(value);
    if (character === undefined) return undefined;
    const param = joined(path);
    return { param, message: `${param ?? 'request body'} must not contain ${character}` };
  }
  if (typeof value !== 'object' || value === null) return undefined;
  if (depth > maxJsonDepth) {
    // Name the top-level field: the path down to the offending level says nothing more useful.
    const param = path[0];
    return { param, message: `${param ?? 'request body'} is nested deeper than ${maxJsonDepth} levels` };
  }
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = problemIn(item, [...path, String(index)], depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  for (const [key, item] of Object.entries(value)) {
    const character = unstorableCharacterOf(key);
    if (character !== undefined) {
      const param = joined([...path, printable(key)]);
      return { param, message: `${param} is a field name with ${character}` };
    }
    const found = problemIn(item, [...path, key], depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

function problemInRequest(request: FastifyRequest): Problem | undefined {
  for (const [header, param] of Object.entries(headersRead)) {
    const value = request.headers[header];
    for (const text of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
      const character = unstorableCharacterOf(text);
      if (character !== undefined) return { param, message: `${param} must not contain ${character}` };
    }
  }
  // Path and query values are named by their own names; the body's fields by their dotted path.
  return problemIn(request.params, [], 0) ?? problemIn(request.query, [], 0) ?? problemIn(request.body, [], 1);
}

/**
 * Refuses, on every route, a request whose body, path, query or read headers hold a value the
 * database cannot store or a body nested deeper than `maxJsonDepth`. Runs before schema
 * validation, so that such a request never reaches a handler, let alone a transaction.
 */
export function installInputChecks(app: App): void {
  app.addHook('preValidation', async (request) => {
    const problem = problemInRequest(request);
    if (problem !== undefined) throw new ApiError('validation_error', problem.message, problem.param);
  });
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function isCalendarDate(year: number, month: number, day: number): boolean {
  return (
    year >= earliestYear &&
    year <= latestYear &&
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysInMonth(year, month)
  );
}

const datePattern = /^(\d{4})-(\d{2})-(\d{2})$/;

/** The `date` format: `YYYY-MM-DD`, a day on the (proleptic Gregorian) calendar in years 0001–9999. */
export function isDate(value: string): boolean {
  const match = datePattern.exec(value);
  if (match === null) return false;
  return isCalendarDate(Number(match[1]), Number(match[2]), Number(match[3]));
}

/**
 * RFC 3339 with a `T` and a zone (`Z` or `±HH:MM`); case-insensitive as RFC 3339 allows. The
 * space separator and offsets without a colon are refused: V8's `Date.parse` reads
 * `0050-01-01 00:00:00Z` as 1950 while PostgreSQL reads 0050, and reads `+01` as no date at all.
 */
const dateTimePattern =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;
const earliestInstantMs = Date.parse(`${String(earliestYear).padStart(4, '0')}-01-01T00:00:00.000Z`);
const latestInstantMs = Date.parse(`${latestYear}-12-31T23:59:59.999Z`);

/**
 * The `date-time` format: a real calendar date and time of day (no leap second: JavaScript's
 * `Date` cannot hold second 60), whose instant in UTC also falls in years 0001–9999, so that
 * PostgreSQL, JavaScript and the ISO string we answer with all agree on it.
 */
export function isDateTime(value: string): boolean {
  const match = dateTimePattern.exec(value);
  if (match === null) return false;
  const [, year, month, day, hour, minute, second, fraction, sign, offsetHours, offsetMinutes] = match;
  if (!isCalendarDate(Number(year), Number(month), Number(day))) return false;
  if (Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59) return false;
  if (fraction !== undefined && fraction.length > maxSecondFractionDigits) return false;
  if (sign !== undefined) {
    if (Number(offsetMinutes) > 59 || Number(offsetHours) * 60 + Number(offsetMinutes) > maxUtcOffsetMinutes) {
      return false;
    }
  }
  const instantMs = Date.parse(value);
  if (Number.isNaN(instantMs)) return false;
  // JavaScript truncates the fraction to milliseconds while PostgreSQL rounds it to microseconds;
  // count any digit past the milliseconds as a whole one, so that rounding cannot reach year 10000.
  const roundsUp = fraction !== undefined && /[1-9]/.test(fraction.slice(3)) ? 1 : 0;
  return instantMs >= earliestInstantMs && instantMs + roundsUp <= latestInstantMs;
}

/** Ajv formats replacing ajv-formats' `date` and `date-time`, which accept year 0000 and second 60. */
export const dateFormats = {
  date: { type: 'string', validate: isDate },
  'date-time': { type: 'string', validate: isDateTime },
} as const;

/**
 * Answers the errors Fastify's router raises before any hook runs with our envelope, instead of
 * Fastify's own body and statuses outside the closed list: a path that does not decode (`%zz`,
 * `%ED%A0%80`), or a path parameter longer than the router keeps (its `414`). Neither can name an
 * object, so both are a `400 validation_error`.
 */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  // The router answers before the hooks run (and before the error handler is in reach), so the
  // envelope and the request id header are written here.
  reply.header('X-Request-Id', request.id);
  if (error.code === 'FST_ERR_BAD_URL') {
    sendError(reply, 'validation_error', 'The path is not a valid URL: % must start an escape of UTF-8');
  } else if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    sendError(reply, 'validation_error', 'A path parameter is longer than any id');
  } else {
    request.log.error({ err: error }, 'router failed');
    sendError(reply, 'internal_error', 'Something went wrong on our side; the request changed nothing');
  }
}

function clientErrorAnswer(parserCode: string | undefined): [ErrorCode, string] {
  if (parserCode === 'HPE_HEADER_OVERFLOW') {
    return ['payload_too_large', 'Request headers are larger than this server accepts'];
  }
  // The closed list has no 408: a request that never finished arriving is bad input.
  if (parserCode === 'ERR_HTTP_REQUEST_TIMEOUT') return ['validation_error', 'The request did not arrive in time'];
  return ['validation_error', 'The request is not valid HTTP/1.1'];
}

/**
 * Answers a request Node's HTTP parser refused before Fastify saw it (a NUL or control character
 * in a header, a malformed request line, headers past Node's size limit) with our error envelope
 * instead of Fastify's own body, which carries no `error.code` from the closed list.
 */
export function answerClientError(error: ConnectionError, socket: Socket): void {
  // The client is gone: there is no one to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [code, message] = clientErrorAnswer(error.code);
  // No request or reply exists yet: the envelope `sendError` writes, written by hand.
  const requestId = newId('request');
  const status = errorStatuses[code];
  const body = JSON.stringify({ error: { code, message, requestId } });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
