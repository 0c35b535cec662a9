-- Enterprises that may push events, their GS1 company prefixes and signing keys.

CREATE TABLE enterprises (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    role        text NOT NULL DEFAULT 'enterprise' CHECK (role IN ('enterprise', 'authority')),
    -- Events per second this enterprise may push; NULL means no limit.
    rate_limit  double precision CHECK (rate_limit IS NULL OR rate_limit > 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE enterprise_prefixes (
    enterprise_id  bigint NOT NULL REFERENCES enterprises (id),
    prefix         text NOT NULL CHECK (prefix ~ '^[0-9]{4,12}$'),
    PRIMARY KEY (enterprise_id, prefix)
);
CREATE INDEX enterprise_prefixes_prefix ON enterprise_prefixes (prefix);

-- Several keys may be active at once (rotation). A revoked key stays on record so
-- entries signed before the revocation remain verifiable.
CREATE TABLE enterprise_keys (
    key_id         text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{64}$'),
    enterprise_id  bigint NOT NULL REFERENCES enterprises (id),
    public_key     bytea NOT NULL CHECK (length(public_key) = 32),
    added_at       timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);
CREATE INDEX enterprise_keys_enterprise ON enterprise_keys (enterprise_id);

-- The exact response to each accepted envelope, so a replay gets the identical body.
ALTER TABLE envelopes ADD COLUMN receipt bytea;
