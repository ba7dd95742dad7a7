import { type Kysely, sql } from 'kysely';

// Frozen once landed: a schema change is a new migration file. No application imports here.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
-- API keys get a scope (read or write), a name and the last four characters of the secret, so a
-- list can tell keys apart without showing them. Keys made before this migration were all
-- full-power keys: they become write keys, without a name or last4 (their secret is not known).
ALTER TABLE api_keys ADD COLUMN scope text NOT NULL DEFAULT 'write' CHECK (scope IN ('read', 'write'));
ALTER TABLE api_keys ALTER COLUMN scope DROP DEFAULT;
ALTER TABLE api_keys ADD COLUMN name text CHECK (length(name) BETWEEN 1 AND 200);
ALTER TABLE api_keys ADD COLUMN secret_last4 text CHECK (length(secret_last4) = 4);
CREATE INDEX api_keys_by_organization ON api_keys (organization_id, id);

-- A credential is revoked, never deleted, and a revocation is final: the only change a row takes
-- is revoked_at going from null to a time.
CREATE FUNCTION credentials_revoke_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION '% rows are revoked, never deleted', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
  END IF;
  IF OLD.revoked_at IS NOT NULL OR NEW.revoked_at IS NULL
     OR (to_jsonb(NEW) - 'revoked_at') IS DISTINCT FROM (to_jsonb(OLD) - 'revoked_at') THEN
    RAISE EXCEPTION '% rows change only by being revoked, once', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER api_keys_revoke_only BEFORE UPDATE OR DELETE ON api_keys
  FOR EACH ROW EXECUTE FUNCTION credentials_revoke_only();

-- OAuth2 clients (Stretch's client credentials). The id is the clientId; the token endpoint finds
-- a client by it alone (HTTP Basic names no organization), like api_keys by secret_hash. Both the
-- clientSecret and its RSA-encrypted form (encodedClientSecret) are accepted as the Basic password,
-- so both are stored, as SHA-256 hashes only. The private key is never stored.
CREATE TABLE client_credentials (
  organization_id text NOT NULL REFERENCES organizations (id),
  id text NOT NULL UNIQUE CHECK (length(id) BETWEEN 1 AND 64),
  scope text NOT NULL CHECK (scope IN ('read', 'write')),
  secret_hash text NOT NULL UNIQUE CHECK (length(secret_hash) = 64),
  encoded_secret_hash text NOT NULL UNIQUE CHECK (length(encoded_secret_hash) = 64),
  secret_last4 text NOT NULL CHECK (length(secret_last4) = 4),
  encoded_public_key text NOT NULL CHECK (length(encoded_public_key) BETWEEN 1 AND 4096),
  created_at timestamptz NOT NULL,
  revoked_at timestamptz,
  PRIMARY KEY (organization_id, id)
);
CREATE TRIGGER client_credentials_revoke_only BEFORE UPDATE OR DELETE ON client_credentials
  FOR EACH ROW EXECUTE FUNCTION credentials_revoke_only();

-- A token family: one client_credentials grant and every pair refreshed from it. Reusing a
-- refresh token that was already exchanged revokes its family (the access tokens carry the family
-- id, so they stop working too).
CREATE TABLE oauth_token_families (
  organization_id text NOT NULL,
  id text NOT NULL UNIQUE,
  credential_id text NOT NULL,
  created_at timestamptz NOT NULL,
  revoked_at timestamptz,
  PRIMARY KEY (organization_id, id),
  FOREIGN KEY (organization_id, credential_id) REFERENCES client_credentials (organization_id, id)
);
CREATE TRIGGER oauth_token_families_revoke_only BEFORE UPDATE OR DELETE ON oauth_token_families
  FOR EACH ROW EXECUTE FUNCTION credentials_revoke_only();

-- Refresh tokens, by hash. Each is exchanged at most once (exchanged_at, set once); expired or
-- exchanged rows stay as the record of the family.
CREATE TABLE oauth_refresh_tokens (
  organization_id text NOT NULL,
  id text NOT NULL,
  family_id text NOT NULL,
  token_hash text NOT NULL UNIQUE CHECK (length(token_hash) = 64),
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  exchanged_at timestamptz,
  PRIMARY KEY (organization_id, id),
  FOREIGN KEY (organization_id, family_id) REFERENCES oauth_token_families (organization_id, id),
  CHECK (expires_at > created_at),
  CHECK (exchanged_at IS NULL OR exchanged_at >= created_at)
);
CREATE INDEX oauth_refresh_tokens_by_family ON oauth_refresh_tokens (organization_id, family_id);

CREATE FUNCTION oauth_refresh_tokens_exchange_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'refresh tokens are never deleted' USING ERRCODE = 'restrict_violation';
  END IF;
  IF OLD.exchanged_at IS NOT NULL OR NEW.exchanged_at IS NULL
     OR (to_jsonb(NEW) - 'exchanged_at') IS DISTINCT FROM (to_jsonb(OLD) - 'exchanged_at') THEN
    RAISE EXCEPTION 'a refresh token changes only by being exchanged, once' USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER oauth_refresh_tokens_exchange_once BEFORE UPDATE OR DELETE ON oauth_refresh_tokens
  FOR EACH ROW EXECUTE FUNCTION oauth_refresh_tokens_exchange_once();
`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
