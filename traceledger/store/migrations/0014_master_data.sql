-- Names of places, parties and products (EPCIS master data), derived by the indexer from
-- master data entries of the log (document headers, the registry's `location add`) and
-- rebuildable from them. One row per version of one attribute of one identifier in one
-- language; a new version only when the value changed. Only statements their signer was
-- entitled to make are here (see traceledger/ingest/masterdata.py).
CREATE TABLE master_data (
    key        text COLLATE "C" NOT NULL,   -- index key: 414/<GLN>, 417/<GLN>, 01/<GTIN>...
    attribute  text NOT NULL,               -- name, city, countryCode...
    lang       text NOT NULL DEFAULT '',    -- BCP 47 tag; '' when the value names none
    value      text NOT NULL,
    version    integer NOT NULL CHECK (version >= 1),
    idx        bigint NOT NULL,             -- the log entry that said it
    signer     bigint,                      -- the enterprise; NULL: the ledger's registry
    PRIMARY KEY (key, attribute, lang, version)
);
CREATE INDEX master_data_idx ON master_data (idx);
