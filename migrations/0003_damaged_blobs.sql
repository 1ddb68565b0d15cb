-- snap index, schema 3. A blob whose stored bytes were read and proved
-- damaged (they do not decode, or do not match the id) is marked in its
-- pack: that copy no longer serves lookups, so the next backup stores the
-- data anew instead of deduplicating against it, restore and prune take
-- another copy, and `repair packs` moves the readable blobs of the pack
-- out and drops it. A mark is a local finding; rebuilding the index
-- forgets it until the next read finds the damage again.

ALTER TABLE blobs ADD COLUMN damaged INTEGER NOT NULL DEFAULT 0;
