-- The event index is derived from the log and rebuilt from it (traceledger verify compares
-- the two), and every leaf commits to its envelope's hash: foreign keys on these rows
-- asserted what the indexer and the sequencer already guarantee, at the price of a
-- row-locking check per row. Measured at 1,000-event documents, the checks made COPY into
-- events and event_keys about five times slower than the inserts themselves, and every
-- entry of a document locked the same envelope row once more.
ALTER TABLE entries DROP CONSTRAINT IF EXISTS entries_envelope_hash_fkey;
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_idx_fkey;
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_enterprise_id_fkey;
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_corrects_fkey;
ALTER TABLE event_keys DROP CONSTRAINT IF EXISTS event_keys_idx_fkey;
