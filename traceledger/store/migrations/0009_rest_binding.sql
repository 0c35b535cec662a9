-- Docking standard EPCIS clients (issue 13): how each event came in, whether a sender's
-- hash eventID is the event's own hash, and the EPCIS REST binding's capture jobs.

-- Derived by the indexer like the rest of the row:
--   declaration:      the event carries an errorDeclaration (corrects may still be NULL
--                     when no single event of its signer has its eventID);
--   submitted_with:   'dsse' (an enterprise's signed envelope), 'token' (the REST binding
--                     with an access token: the ledger signs as custodian) or
--                     'http-signature' (the REST binding, RFC 9421-signed by the enterprise);
--   event_id_verified: for an ni:///sha-256 eventID, whether it is the event's computed
--                     hash; NULL for other eventIDs (urn:uuid:...).
ALTER TABLE events ADD COLUMN declaration boolean NOT NULL DEFAULT false;
ALTER TABLE events ADD COLUMN submitted_with text NOT NULL DEFAULT 'dsse'
    CHECK (submitted_with IN ('dsse', 'token', 'http-signature'));
ALTER TABLE events ADD COLUMN event_id_verified boolean;

-- Rows indexed before: every one came in a DSSE envelope; declarations are recognisable
-- from their payload, and a plain event's identity is its computed hash.
UPDATE events e SET declaration = true
    FROM entries n
    WHERE n.idx = e.idx AND position('"errorDeclaration"'::bytea IN n.payload) > 0;
UPDATE events e
    SET event_id_verified = (
        lower(split_part(substr(e.event_id, 15), '?', 1)) = encode(n.identity, 'hex'))
    FROM entries n
    WHERE n.idx = e.idx AND NOT e.declaration AND lower(e.event_id) LIKE 'ni:///sha-256;%';

-- EPCIS REST binding capture jobs (POST /capture). A job is written once its document has
-- been captured or refused, so a job that exists is never lost by a restart.
CREATE TABLE capture_jobs (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text NOT NULL UNIQUE,                 -- the captureID
    enterprise_id   bigint NOT NULL REFERENCES enterprises (id),
    token_id        bigint REFERENCES access_tokens (id), -- NULL when HTTP-signed
    created_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    running         boolean NOT NULL DEFAULT false,
    success         boolean NOT NULL,
    error_behaviour text NOT NULL DEFAULT 'rollback' CHECK (error_behaviour = 'rollback'),
    errors          jsonb NOT NULL DEFAULT '[]',
    envelope_hash   bytea REFERENCES envelopes (hash),    -- the custody envelope, if captured
    receipt         jsonb                                 -- entries, as /v1/capture answers
);
CREATE INDEX capture_jobs_enterprise ON capture_jobs (enterprise_id, seq);
