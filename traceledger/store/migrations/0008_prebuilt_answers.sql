-- Lookup answers built ahead of the first scan (traceledger/prebuilt.py): the consumer
-- view of a serialized item's or a lot's history, as the JSON a lookup returns. An answer
-- is only ever served while still current: no event indexed since `indexed_below` names
-- one of the `keys` its walk visited, and the clock has not passed `valid_until` (an
-- expiry date). Anything else is assembled live, so these rows only make lookups
-- faster, never different; dropping them all is always safe.
CREATE TABLE prebuilt_answers (
    key            text PRIMARY KEY,      -- the item's canonical Digital Link path
    tree_size      bigint NOT NULL,       -- the checkpoint its proofs are against
    indexed_below  bigint NOT NULL,       -- index_state.next_idx when its walk began
    keys           text[] NOT NULL,       -- every index key the walk visited
    pending        integer NOT NULL,      -- its events not yet covered by that checkpoint
    event_count    integer NOT NULL,
    valid_until    timestamptz,           -- when the clock alone changes it; NULL: never
    built_at       timestamptz NOT NULL DEFAULT now(),
    body           bytea NOT NULL         -- the answer as JSON (identifier.input = /key)
);
-- Which answers an event on a key makes stale (the prebuilder rebuilds them).
CREATE INDEX prebuilt_answers_by_key ON prebuilt_answers USING gin (keys);
-- The builder's idle rounds (every checkpoint interval) look for answers the clock or a
-- newer checkpoint made stale: both through small partial indexes, never a table scan.
CREATE INDEX prebuilt_answers_expiring ON prebuilt_answers (valid_until)
    WHERE valid_until IS NOT NULL;
CREATE INDEX prebuilt_answers_pending ON prebuilt_answers (tree_size) WHERE pending > 0;

-- How far the prebuilder has read the index (one row, like index_state).
CREATE TABLE prebuild_state (
    one       boolean PRIMARY KEY DEFAULT true CHECK (one),
    next_idx  bigint NOT NULL
);
INSERT INTO prebuild_state (next_idx) VALUES (0);

-- Answers name senders as registered: if an enterprise's row is ever changed or removed
-- by hand, no answer built before may be served again.
CREATE FUNCTION drop_prebuilt_answers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM prebuilt_answers;
    RETURN NULL;
END $$;
CREATE TRIGGER enterprises_change_answers AFTER UPDATE OR DELETE ON enterprises
    FOR EACH STATEMENT EXECUTE FUNCTION drop_prebuilt_answers();
