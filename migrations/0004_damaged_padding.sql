-- snap index, schema 4. A format 3 pack whose padding envelope (the sealed
-- zeros that bring it to a padded length, DESIGN.md 5.2) was read and
-- proved damaged (it does not open, or opens to bytes other than zeros) is
-- marked: its blobs stand on their own and stay in use, but `repair packs`
-- rewrites the pack from them and drops it. Nothing reads the padding but a
-- whole-pack read, so a mark forgotten by rebuilding the index costs
-- nothing until the next `verify --read-data` finds the damage again.

ALTER TABLE packs ADD COLUMN padding_damaged INTEGER NOT NULL DEFAULT 0;
