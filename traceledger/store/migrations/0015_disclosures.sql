-- Selective disclosure (issue 12): version-2 leaves commit to an event as salted field
-- digests (traceledger/tlog/disclosure.py). The salts stay on the server: an answer
-- discloses a field with its salt, or withholds it as a bare digest.

-- The 16-byte salts of the stored event's top-level fields, concatenated in the order of
-- the field names sorted by code point; NULL for version-1 leaves (payload hash).
ALTER TABLE entries ADD COLUMN salts bytea CHECK (length(salts) % 16 = 0);

-- A redacted field: its value and salt are erased from the stored event; its digest stays
-- here so the leaf's commitment (and every proof) still holds. The redaction itself is a
-- log entry (`entry`) saying who, when and why, appended right after the erasure commits
-- (NULL until then): an answer whose walk began before that entry is stale.
CREATE TABLE redactions (
    idx         bigint NOT NULL REFERENCES entries (idx),
    field       text NOT NULL,
    digest      bytea NOT NULL CHECK (length(digest) = 32),
    entry       bigint REFERENCES entries (idx),
    PRIMARY KEY (idx, field)
);

-- Answers built before this release showed confidential index columns to the public.
DELETE FROM prebuilt_answers;
