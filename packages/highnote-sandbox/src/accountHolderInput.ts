import type { Address, PersonName } from './store.js';
import type { FieldUserErrorView } from './views.js';

/* Highnote's documented limits for a US person account holder. */
const GIVEN_NAME_MIN_LENGTH = 1;
const FAMILY_NAME_MIN_LENGTH = 2;
const NAME_MAX_LENGTH = 255;
const MIN_AGE_YEARS = 10;
const MAX_AGE_YEARS = 100;
const DATE_OF_BIRTH_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
const SOCIAL_SECURITY_NUMBER_PATTERN = /^(\d{3}-\d{2}-\d{4}|\d{9})$/;

interface PersonInput {
  name: PersonName;
  billingAddress?: Address | null;
  billingAddressToken?: string | null;
  dateOfBirth: string;
  identificationDocument?: { socialSecurityNumber: { number: string } } | null;
}

function problem(code: string, description: string, path: string[]): FieldUserErrorView {
  const fullPath = ['personAccountHolder', ...path];
  return { code, description, path: fullPath, errorPath: fullPath };
}

function lengthWithin(value: string, min: number, max: number): boolean {
  return value.length >= min && value.length <= max;
}

function ageInYears(dateOfBirth: Date, today: Date): number {
  const years = today.getUTCFullYear() - dateOfBirth.getUTCFullYear();
  const birthdayPassed =
    today.getUTCMonth() > dateOfBirth.getUTCMonth() ||
    (today.getUTCMonth() === dateOfBirth.getUTCMonth() && today.getUTCDate() >= dateOfBirth.getUTCDate());
  return birthdayPassed ? years : years - 1;
}

function dateOfBirthProblem(dateOfBirth: string): FieldUserErrorView | null {
  const invalid = problem('INVALID_FORMAT', 'dateOfBirth must be a YYYY-MM-DD date', ['dateOfBirth']);
  if (!DATE_OF_BIRTH_PATTERN.test(dateOfBirth)) return invalid;
  const parsed = new Date(`${dateOfBirth}T00:00:00Z`);
  // Round-tripping rejects dates such as 2001-02-30 that Date would silently roll over.
  if (Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 10) !== dateOfBirth) return invalid;
  const age = ageInYears(parsed, new Date());
  if (age < MIN_AGE_YEARS || age > MAX_AGE_YEARS) {
    return problem('INVALID_VALUE', `age must be ${MIN_AGE_YEARS}-${MAX_AGE_YEARS} years`, ['dateOfBirth']);
  }
  return null;
}

function billingAddressProblem(person: PersonInput): FieldUserErrorView | null {
  const hasAddress = Boolean(person.billingAddress);
  const hasToken = Boolean(person.billingAddressToken);
  if (hasAddress === hasToken) {
    return problem('INVALID_INPUT', 'provide exactly one of billingAddress or billingAddressToken', ['billingAddress']);
  }
  if (hasToken) {
    return problem('UNSUPPORTED', 'the sandbox does not issue address tokens yet', ['billingAddressToken']);
  }
  return null;
}

/** Returns every problem at once, as Highnote's UserError does, so a client can fix them together. */
export function validateAccountHolderInput(person: PersonInput): FieldUserErrorView[] {
  const problems: FieldUserErrorView[] = [];
  if (!lengthWithin(person.name.givenName, GIVEN_NAME_MIN_LENGTH, NAME_MAX_LENGTH)) {
    problems.push(problem('INVALID_LENGTH', 'givenName must be 1-255 characters', ['name', 'givenName']));
  }
  if (!lengthWithin(person.name.familyName, FAMILY_NAME_MIN_LENGTH, NAME_MAX_LENGTH)) {
    problems.push(problem('INVALID_LENGTH', 'familyName must be 2-255 characters', ['name', 'familyName']));
  }
  const socialSecurityNumber = person.identificationDocument?.socialSecurityNumber.number;
  if (socialSecurityNumber !== undefined && !SOCIAL_SECURITY_NUMBER_PATTERN.test(socialSecurityNumber)) {
    const path = ['identificationDocument', 'socialSecurityNumber', 'number'];
    problems.push(problem('INVALID_FORMAT', 'socialSecurityNumber must be 123-45-6789 or nine digits', path));
  }
  const other = [dateOfBirthProblem(person.dateOfBirth), billingAddressProblem(person)];
  for (const found of other) if (found) problems.push(found);
  return problems;
}
