-- The tamper-evident log: entries (leaves + payloads), envelopes, Merkle tiles, signed checkpoints.

-- Facts fixed at creation: the origin and the log's public key. A restart with another
-- origin or key is refused, so one database never holds two logs' checkpoints.
CREATE TABLE log_meta (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    origin      text NOT NULL,
    public_key  bytea NOT NULL CHECK (length(public_key) = 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The sequencer's head. Its row lock is the single-writer lock: every append
-- transaction takes it first (SELECT ... FOR UPDATE), so indexes are contiguous.
CREATE TABLE log_head (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    size        bigint NOT NULL CHECK (size >= 0),
    last_hash   bytea NOT NULL CHECK (length(last_hash) = 32),
    last_time   bigint NOT NULL
);
INSERT INTO log_head (size, last_hash, last_time) VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000', 0);

-- Envelopes are stored byte-for-byte once, shared by the entries they carried.
CREATE TABLE envelopes (
    hash        bytea PRIMARY KEY CHECK (length(hash) = 32),
    body        bytea  -- NULL once redacted; the hash stays committed in the leaves
);

-- One row per leaf. `leaf` is the exact byte string hashed into the Merkle tree;
-- identity, payload and envelope_hash sit beside it and verify re-derives them.
CREATE TABLE entries (
    idx            bigint PRIMARY KEY CHECK (idx >= 0),
    identity       bytea NOT NULL UNIQUE CHECK (length(identity) = 32),
    leaf           bytea NOT NULL,
    payload        bytea,  -- NULL once redacted
    envelope_hash  bytea REFERENCES envelopes (hash)
);

-- C2SP tlog-tiles: `hashes` is the concatenation of 1..256 32-byte hashes.
-- Only the rightmost tile of each level ever grows.
CREATE TABLE tiles (
    level   smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx     bigint NOT NULL CHECK (idx >= 0),
    hashes  bytea NOT NULL CHECK (length(hashes) BETWEEN 32 AND 8192 AND length(hashes) % 32 = 0),
    PRIMARY KEY (level, idx)
);

-- Every checkpoint ever signed, so anyone can check they are mutually consistent.
CREATE TABLE checkpoints (
    size        bigint PRIMARY KEY CHECK (size >= 0),
    root_hash   bytea NOT NULL CHECK (length(root_hash) = 32),
    note        text NOT NULL,
    signed_at   timestamptz NOT NULL DEFAULT now()
);
