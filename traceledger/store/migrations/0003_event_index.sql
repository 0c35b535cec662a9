-- The lookup index, derived from the log by the indexer and rebuildable from it.

CREATE TABLE events (
    idx            bigint PRIMARY KEY REFERENCES entries (idx),
    event_id       text NOT NULL,
    event_type     text NOT NULL,
    event_time     timestamptz NOT NULL,
    action         text,
    biz_step       text,
    disposition    text,
    read_point     text COLLATE "C",
    biz_location   text COLLATE "C",
    enterprise_id  bigint REFERENCES enterprises (id),  -- the signer; NULL if unsigned
    -- For an EPCIS errorDeclaration: the index of the event it declares erroneous.
    corrects       bigint REFERENCES entries (idx)
);
CREATE INDEX events_event_id ON events (event_id);
CREATE INDEX events_corrects ON events (corrects) WHERE corrects IS NOT NULL;
CREATE INDEX events_time ON events (event_time);

-- Every identifier an event names, normalized to a GS1 key ("01/<gtin14>/10/<lot>",
-- "00/<sscc>", "414/<gln>") or kept as written for non-GS1 URIs. The "C" collation
-- makes prefix searches (all serials of a GTIN) use the index.
CREATE TABLE event_keys (
    key   text COLLATE "C" NOT NULL,
    idx   bigint NOT NULL REFERENCES events (idx),
    role  text NOT NULL,
    PRIMARY KEY (key, idx, role)
);
CREATE INDEX event_keys_idx ON event_keys (idx);

CREATE TABLE index_state (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    next_idx   bigint NOT NULL
);
INSERT INTO index_state (next_idx) VALUES (0);
