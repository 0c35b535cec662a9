-- Named EPCIS queries, their subscriptions, and recall notices (issue 17).

-- A named query (POST /queries): the EPCIS query language object as sent. It belongs to
-- an enterprise (any of its tokens may use it; it sees what that enterprise may see) or,
-- for inspectors and regulators, to the token that made it (it sees everything).
CREATE TABLE named_queries (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._~-]{0,99}$'),
    enterprise_id  bigint REFERENCES enterprises (id),
    created_by     bigint NOT NULL REFERENCES access_tokens (id),
    definition     jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX named_queries_enterprise_name ON named_queries (enterprise_id, name)
    WHERE enterprise_id IS NOT NULL;
CREATE UNIQUE INDEX named_queries_token_name ON named_queries (created_by, name)
    WHERE enterprise_id IS NULL;

-- A webhook subscription to a named query. `next_idx` is the delivery cursor: every
-- matching event below it has been delivered (acknowledged with a 2xx); it moves only
-- after a delivery succeeds, so a restart resends at most the last batch (at-least-once).
CREATE TABLE subscriptions (
    id               uuid PRIMARY KEY,
    query_id         bigint NOT NULL REFERENCES named_queries (id) ON DELETE CASCADE,
    dest             text NOT NULL,
    signature_token  text,            -- the subscriber's HMAC key; never shown again
    stream           boolean NOT NULL,
    schedule         jsonb,           -- cron-like fields; NULL for a stream
    report_if_empty  boolean NOT NULL DEFAULT false,
    initial_record_time timestamptz,
    next_idx         bigint NOT NULL CHECK (next_idx >= 0),
    next_run_at      timestamptz,     -- a scheduled subscription's next run
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_notified_at timestamptz,
    failures         integer NOT NULL DEFAULT 0,
    retry_at         timestamptz,
    last_error       text,
    suspended_at     timestamptz,     -- set after too many failed attempts in a row
    CHECK (stream = (schedule IS NULL))
);
CREATE INDEX subscriptions_query ON subscriptions (query_id);
CREATE INDEX subscriptions_active ON subscriptions (next_idx) WHERE suspended_at IS NULL;

-- Where an enterprise wants recall notices (traceledger enterprise notify ID --url URL),
-- and the key that signs them (GS1-Signature, HMAC-SHA256).
CREATE TABLE recall_endpoints (
    enterprise_id  bigint PRIMARY KEY REFERENCES enterprises (id),
    url            text NOT NULL,
    secret         text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- One row per logged recall or non_conformant verdict, written when the notifier first
-- read it: whether it is believed (entitled), what the forward trace found, and the
-- common part of the notice (with the event's inclusion proof).
CREATE TABLE recall_notices (
    recall_idx  bigint PRIMARY KEY REFERENCES entries (idx),
    kind        text NOT NULL CHECK (kind IN ('recalled', 'non_conformant')),
    entitled    boolean NOT NULL,
    truncated   boolean NOT NULL DEFAULT false,
    -- JSON text, not jsonb: the recall event inside keeps its key order, so it still
    -- hashes to what its leaf commits to.
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Each holder of affected goods and how its notice fared. A holder without a recall
-- endpoint is listed for the inspector to chase, and told as soon as it registers one.
CREATE TABLE recall_deliveries (
    recall_idx       bigint NOT NULL REFERENCES recall_notices (recall_idx),
    enterprise_id    bigint NOT NULL REFERENCES enterprises (id),
    holds            jsonb NOT NULL,   -- the affected goods it holds, from the trace
    url              text,             -- where the last attempt went
    ack_token        text NOT NULL UNIQUE,  -- sent inside the signed notice; POSTed back
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    last_error       text,
    delivered_at     timestamptz,
    suspended_at     timestamptz,
    acknowledged_at  timestamptz,
    PRIMARY KEY (recall_idx, enterprise_id)
);
CREATE INDEX recall_deliveries_due ON recall_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND suspended_at IS NULL AND acknowledged_at IS NULL;

-- How far the notifier has read the log for recalls and verdicts (one row). It starts
-- at the log's size when this migration runs: recalls logged before there was anyone to
-- notify are not announced again, years later, on upgrade.
CREATE TABLE notice_state (
    one       boolean PRIMARY KEY DEFAULT true CHECK (one),
    next_idx  bigint NOT NULL
);
INSERT INTO notice_state (next_idx) SELECT size FROM log_head;
