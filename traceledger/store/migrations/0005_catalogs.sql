-- Risk catalogs (the high-risk product catalog and the port special-control catalog).
-- Every version is an authority-signed entry in the log; these tables are derived from
-- those entries by the indexer (traceledger.catalog.index_entry) and rebuildable from them.

CREATE TABLE catalog_versions (
    catalog         text NOT NULL CHECK (catalog IN ('high-risk', 'port-special-control')),
    version         bigint NOT NULL CHECK (version >= 1),
    idx             bigint NOT NULL UNIQUE REFERENCES entries (idx),  -- the log entry
    effective_from  timestamptz NOT NULL,
    -- Port locations ("414/<GLN>") where arrivals are screened against this version.
    ports           text[] NOT NULL DEFAULT '{}',
    -- Sampling rate for arrivals that match no entry; NULL: the service default.
    base_rate       double precision CHECK (base_rate BETWEEN 0 AND 1),
    description     text,
    signer          bigint REFERENCES enterprises (id),
    PRIMARY KEY (catalog, version)
);

CREATE TABLE catalog_entries (
    catalog          text NOT NULL,
    version          bigint NOT NULL,
    position         integer NOT NULL CHECK (position >= 0),  -- index in the document's list
    gtin             text COLLATE "C" CHECK (gtin ~ '^[0-9]{14}$'),
    company_prefix   text COLLATE "C" CHECK (company_prefix ~ '^[0-9]{4,12}$'),
    country          text CHECK (country ~ '^[A-Z]{2}$'),
    product_class    text,
    reason           text NOT NULL,
    inspection_rate  double precision NOT NULL CHECK (inspection_rate BETWEEN 0 AND 1),
    PRIMARY KEY (catalog, version, position),
    FOREIGN KEY (catalog, version) REFERENCES catalog_versions (catalog, version),
    CHECK ((gtin IS NULL) <> (company_prefix IS NULL))
);
CREATE INDEX catalog_entries_gtin ON catalog_entries (gtin) WHERE gtin IS NOT NULL;
