-- snap index, schema 5. A pack whose trailer (its table of contents,
-- DESIGN.md 5.2) was read and proved damaged, but whose blobs are indexed
-- all the same (from the rows `repair index` salvaged, each blob checked
-- where they place it), is marked: its blobs stay in use, and `repair
-- packs` rewrites the pack from them and drops it, so the repository
-- itself is whole again and no longer needs this host's rows.

ALTER TABLE packs ADD COLUMN trailer_damaged INTEGER NOT NULL DEFAULT 0;
