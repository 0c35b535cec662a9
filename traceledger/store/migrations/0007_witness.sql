-- Witness cosignatures (c2sp.org/tlog-cosignature) the log collected on its checkpoints.
-- One row per checkpoint and witness key: `line` is the witness's note signature line,
-- verified before it was stored. /checkpoint serves the newest checkpoint with enough of
-- them (the witness quorum) with their lines appended.
CREATE TABLE cosignatures (
    size          bigint NOT NULL REFERENCES checkpoints (size),
    witness_key   text NOT NULL,   -- the witness's verifier key, <name>+<hash>+<key>
    witness_name  text NOT NULL,
    line          text NOT NULL,   -- "— <name> <base64>", without the newline
    cosigned_at   bigint NOT NULL, -- the cosignature's own timestamp, POSIX seconds
    stored_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (size, witness_key)
);
-- Where each witness stands: the last size it cosigned (the next request's old size).
CREATE INDEX cosignatures_by_witness ON cosignatures (witness_key, size);
