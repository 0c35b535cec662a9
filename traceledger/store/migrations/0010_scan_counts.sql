-- How often each serialized item's code was looked up (traceledger/lookup/scans.py): a
-- counterfeit signal, since a code copied onto fakes is looked up by every buyer of a
-- fake. Only counts and times: no client address, nor any hash of one, is stored.
CREATE TABLE scan_counts (
    key       text COLLATE "C" PRIMARY KEY,  -- the item's canonical Digital Link path; the
                                             -- C collation lets prefix searches use the index
    count     bigint NOT NULL CHECK (count > 0),
    first_at  timestamptz NOT NULL,
    last_at   timestamptz NOT NULL CHECK (last_at >= first_at)
);
