-- Delegations: an owner lets another enterprise create goods under its GS1 company
-- prefixes (a contract manufacturer, an importer labelling for the brand). `prefix` NULL
-- means every prefix the owner holds, now or later.
CREATE TABLE delegations (
    owner_id     bigint NOT NULL REFERENCES enterprises (id),
    delegate_id  bigint NOT NULL REFERENCES enterprises (id),
    prefix       text CHECK (prefix ~ '^[0-9]{4,12}$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (owner_id <> delegate_id),
    FOREIGN KEY (owner_id, prefix) REFERENCES enterprise_prefixes (enterprise_id, prefix)
);
-- One row per (owner, delegate, prefix); NULL counts as one value.
CREATE UNIQUE INDEX delegations_unique ON delegations (owner_id, delegate_id, coalesce(prefix, ''));
CREATE INDEX delegations_delegate ON delegations (delegate_id);
