import { Type } from 'typebox';
import { ApiError } from '../platform/errors.js';

/**
 * The `evidence` object of a completion: free-form keys (certificate numbers, notes) and, when
 * present, `references` — typed pointers to what the verifier saw, which a task in `evidence`
 * mode requires:
 * - `{type: "url", url}`: an http(s) URL;
 * - `{type: "document_hash", algorithm: "sha256", value}`: the document's digest, 64 hex digits;
 * - `{type: "note", text}`: what the verifier wrote down.
 * Each may carry a `description`. The references are checked whenever they are sent, whatever the
 * task's mode.
 */

/** Largest evidence object accepted, in bytes of JSON. */
export const maxEvidenceBytes = 16 * 1024;
/** Most references one completion carries. */
export const maxEvidenceReferences = 20;
export const maxReferenceUrlLength = 2000;
export const maxReferenceNoteLength = 2000;
export const maxReferenceDescriptionLength = 500;

export const evidenceReferenceTypes = ['url', 'document_hash', 'note'] as const;
export type EvidenceReferenceType = (typeof evidenceReferenceTypes)[number];

/** The digest algorithms a document hash may name, with the form of their hex value. */
const documentHashForms = { sha256: /^[0-9a-fA-F]{64}$/ } as const;
const documentHashAlgorithms = Object.keys(documentHashForms) as (keyof typeof documentHashForms)[];

const Reference = Type.Object(
  {
    type: Type.Unsafe<EvidenceReferenceType>(
      Type.Union(
        evidenceReferenceTypes.map((value) => Type.Literal(value)),
        { description: 'What the reference points to: `url`, `document_hash` or `note`.', examples: ['url'] },
      ),
    ),
    url: Type.Optional(
      Type.String({
        maxLength: maxReferenceUrlLength,
        description: 'type url: an http(s) URL.',
        examples: ['https://lms.example.org/certificates/OSHA-10-88231'],
      }),
    ),
    algorithm: Type.Optional(
      // A string enum rather than a union of literals: a union of one is an illogical `anyOf`.
      Type.Unsafe<keyof typeof documentHashForms>(
        Type.String({
          enum: [...documentHashAlgorithms],
          description: 'type document_hash: the digest algorithm.',
          examples: ['sha256'],
        }),
      ),
    ),
    value: Type.Optional(
      Type.String({
        maxLength: 128,
        description: 'type document_hash: the digest in hex (64 digits for sha256).',
        examples: ['9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'],
      }),
    ),
    text: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: maxReferenceNoteLength,
        description: 'type note: what the verifier wrote down.',
        examples: ['Card checked in person at the site office.'],
      }),
    ),
    description: Type.Optional(
      Type.String({
        maxLength: maxReferenceDescriptionLength,
        description: 'What the reference is.',
        examples: ['DOL card scan'],
      }),
    ),
  },
  { additionalProperties: false },
);

export const Evidence = Type.Object(
  {
    references: Type.Optional(
      Type.Array(Reference, {
        minItems: 1,
        maxItems: maxEvidenceReferences,
        description:
          'Typed references: `{type: "url", url}`, `{type: "document_hash", algorithm: "sha256", value}`, `{type: "note", text}`. Required by a task in `evidence` mode.',
        examples: [[{ type: 'url', url: 'https://lms.example.org/certificates/OSHA-10-88231' }]],
      }),
    ),
  },
  {
    additionalProperties: true,
    maxProperties: 50,
    propertyNames: { maxLength: 100 },
    description: 'What the verifier saw: certificate numbers, notes and typed `references`.',
    examples: [
      {
        certificateNumber: 'OSHA-10-88231',
        references: [{ type: 'url', url: 'https://lms.example.org/certificates/OSHA-10-88231' }],
      },
    ],
  },
);

type ReferenceInput = {
  type: EvidenceReferenceType;
  url?: string | undefined;
  algorithm?: string | undefined;
  value?: string | undefined;
  text?: string | undefined;
};

/** The fields each type of reference has, beside `type` and `description`. */
const referenceFields: Record<EvidenceReferenceType, readonly string[]> = {
  url: ['url'],
  document_hash: ['algorithm', 'value'],
  note: ['text'],
};

/**
 * Checks a validated evidence object at the edge: its size, and each reference's fields for its
 * type. Throws `validation_error` naming the field (`evidence.references.0.url`). Answers whether
 * it carries at least one reference, which a task in `evidence` mode requires.
 */
export function checkEvidence(evidence: Record<string, unknown> | undefined): boolean {
  if (evidence === undefined) return false;
  if (JSON.stringify(evidence).length > maxEvidenceBytes) {
    throw new ApiError('validation_error', `evidence must be at most ${maxEvidenceBytes} bytes of JSON`, 'evidence');
  }
  const references = evidence.references as readonly ReferenceInput[] | undefined;
  if (references === undefined) return false;
  references.forEach((reference, index) => {
    checkReference(reference, `evidence.references.${index}`);
  });
  return references.length > 0;
}

function checkReference(reference: ReferenceInput, param: string): void {
  const fields = referenceFields[reference.type];
  for (const field of ['url', 'algorithm', 'value', 'text'] as const) {
    const given = reference[field] !== undefined;
    if (given && !fields.includes(field)) {
      throw new ApiError(
        'validation_error',
        `${param}.${field} is not a field of a ${reference.type} reference`,
        `${param}.${field}`,
      );
    }
    if (!given && fields.includes(field)) {
      throw new ApiError(
        'validation_error',
        `${param}.${field} is required for a ${reference.type} reference`,
        `${param}.${field}`,
      );
    }
  }
  if (reference.type === 'url' && !isHttpUrl(reference.url ?? '')) {
    throw new ApiError('validation_error', `${param}.url must be an http or https URL`, `${param}.url`);
  }
  if (reference.type === 'document_hash') {
    const form = documentHashForms[reference.algorithm as keyof typeof documentHashForms];
    if (!form.test(reference.value ?? '')) {
      throw new ApiError(
        'validation_error',
        `${param}.value must be the ${reference.algorithm} digest in hex`,
        `${param}.value`,
      );
    }
  }
}

function isHttpUrl(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
}
