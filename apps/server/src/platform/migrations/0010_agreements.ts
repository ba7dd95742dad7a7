import { type Kysely, sql } from 'kysely';

// Frozen once landed: a schema change is a new migration file. No application imports here.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
-- Agreements: documents a participant accepts (e-sign consent, cardholder agreement, privacy
-- notice, program terms, other). The agreement row only names the document and its type; its
-- text lives in immutable, numbered versions. Nothing here is ever changed or deleted.
CREATE TABLE agreements (
  organization_id text NOT NULL REFERENCES organizations (id),
  id text NOT NULL,
  type text NOT NULL CHECK (type IN ('esign_consent', 'cardholder_agreement', 'privacy_notice', 'program_terms', 'other')),
  created_at timestamptz NOT NULL,
  PRIMARY KEY (organization_id, id)
);

-- One version of an agreement: its title and either its text or a URL to it, with the SHA-256 of
-- that content (the text's UTF-8 bytes, or the URL as given). Versions number 1, 2, 3… without a
-- gap: every version after the first references the one before it. The current version is the
-- highest.
CREATE TABLE agreement_versions (
  organization_id text NOT NULL,
  agreement_id text NOT NULL,
  version integer NOT NULL CHECK (version BETWEEN 1 AND 100000),
  previous_version integer GENERATED ALWAYS AS (NULLIF(version - 1, 0)) STORED,
  title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  body text CHECK (length(body) BETWEEN 1 AND 60000),
  url text CHECK (url ~ '^https?://[^\\s]+$' AND length(url) <= 2048),
  content_hash text NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (organization_id, agreement_id, version),
  FOREIGN KEY (organization_id, agreement_id) REFERENCES agreements (organization_id, id),
  FOREIGN KEY (organization_id, agreement_id, previous_version)
    REFERENCES agreement_versions (organization_id, agreement_id, version),
  CONSTRAINT agreement_versions_one_content CHECK ((body IS NULL) <> (url IS NULL)),
  -- The hash the code computes, checked against the content it names.
  CONSTRAINT agreement_versions_content_hash
    CHECK (content_hash = encode(sha256(convert_to(coalesce(body, url), 'UTF8')), 'hex'))
);

-- Consent records: a participant's acceptance, or withdrawal, of one version of an agreement —
-- when (server time), from where (IP address, user agent) and how. Append-only: a withdrawal is
-- a new record, never a change to the acceptance. sequence orders a participant's records.
CREATE TABLE consents (
  organization_id text NOT NULL,
  id text NOT NULL,
  sequence bigint GENERATED ALWAYS AS IDENTITY,
  user_id text NOT NULL,
  agreement_id text NOT NULL,
  version integer NOT NULL,
  action text NOT NULL CHECK (action IN ('accept', 'withdraw')),
  method text NOT NULL CHECK (method IN ('api', 'click_through', 'esign', 'written', 'other')),
  -- One address (not a network): the cast refuses anything else.
  ip_address text NOT NULL CHECK (ip_address NOT LIKE '%/%' AND family(ip_address::inet) IN (4, 6)),
  user_agent text NOT NULL CHECK (length(user_agent) BETWEEN 1 AND 1000),
  recorded_at timestamptz NOT NULL,
  request_id text,
  actor text NOT NULL,
  PRIMARY KEY (organization_id, id),
  FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id),
  FOREIGN KEY (organization_id, agreement_id, version)
    REFERENCES agreement_versions (organization_id, agreement_id, version)
);
-- The latest record of a participant for an agreement, and a participant's agreements.
CREATE INDEX consents_latest ON consents (organization_id, user_id, agreement_id, sequence DESC);

-- The agreements a program's participants must accept, in the order the program lists them, and
-- whether a new version needs their consent again. Same organization by the keys.
CREATE TABLE program_agreements (
  organization_id text NOT NULL,
  program_id text NOT NULL,
  agreement_id text NOT NULL,
  position smallint NOT NULL CHECK (position BETWEEN 0 AND 19),
  reconsent_on_new_version boolean NOT NULL,
  PRIMARY KEY (organization_id, program_id, agreement_id),
  UNIQUE (organization_id, program_id, position),
  FOREIGN KEY (organization_id, program_id) REFERENCES programs (organization_id, id),
  FOREIGN KEY (organization_id, agreement_id) REFERENCES agreements (organization_id, id)
);
CREATE INDEX program_agreements_by_agreement ON program_agreements (organization_id, agreement_id);

CREATE FUNCTION agreements_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% rows are never changed or deleted', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER agreements_append_only BEFORE UPDATE OR DELETE ON agreements
  FOR EACH ROW EXECUTE FUNCTION agreements_append_only();
CREATE TRIGGER agreements_no_truncate BEFORE TRUNCATE ON agreements
  FOR EACH STATEMENT EXECUTE FUNCTION agreements_append_only();
CREATE TRIGGER agreement_versions_append_only BEFORE UPDATE OR DELETE ON agreement_versions
  FOR EACH ROW EXECUTE FUNCTION agreements_append_only();
CREATE TRIGGER agreement_versions_no_truncate BEFORE TRUNCATE ON agreement_versions
  FOR EACH STATEMENT EXECUTE FUNCTION agreements_append_only();
CREATE TRIGGER consents_append_only BEFORE UPDATE OR DELETE ON consents
  FOR EACH ROW EXECUTE FUNCTION agreements_append_only();
CREATE TRIGGER consents_no_truncate BEFORE TRUNCATE ON consents
  FOR EACH STATEMENT EXECUTE FUNCTION agreements_append_only();
`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
