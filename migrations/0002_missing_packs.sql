-- snap index, schema 2. A pack that disappears from storage (or shrinks) is
-- not forgotten but marked missing: its rows no longer serve lookups, so no
-- backup deduplicates against it, yet `verify` can still name the pack and
-- the chunks it held. Prune removes the rows once nothing needs them.

ALTER TABLE packs ADD COLUMN missing INTEGER NOT NULL DEFAULT 0;
