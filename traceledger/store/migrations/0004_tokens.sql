-- Bearer tokens for inspectors and regulators, stored only as SHA-256 hashes.
CREATE TABLE access_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('inspector', 'regulator')),
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- Every inspector or regulator query, for the audit trail.
CREATE TABLE audit_log (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_id  bigint NOT NULL REFERENCES access_tokens (id),
    at        timestamptz NOT NULL DEFAULT now(),
    method    text NOT NULL,
    path      text NOT NULL,
    status    integer
);
CREATE INDEX audit_log_token ON audit_log (token_id, at);
