-- snap index, schema 1. A cache: everything here can be rebuilt from the
-- pack trailers (`snap repair index`). Rows exist only for packs that were
-- durable before the row was committed.

CREATE TABLE packs (
    id   INTEGER PRIMARY KEY,
    name BLOB    NOT NULL UNIQUE,  -- 32-byte pack id (BLAKE3 of the pack file)
    size INTEGER NOT NULL          -- pack file length in bytes
);

CREATE TABLE blobs (
    id          BLOB    NOT NULL,  -- 32-byte chunk or tree id
    kind        INTEGER NOT NULL,  -- 0 chunk, 1 tree
    pack        INTEGER NOT NULL REFERENCES packs(id) ON DELETE CASCADE,
    offset      INTEGER NOT NULL,
    stored_len  INTEGER NOT NULL,
    raw_len     INTEGER NOT NULL,
    compression INTEGER NOT NULL,  -- 0 none, 1 zstd
    PRIMARY KEY (id, kind, pack)
) WITHOUT ROWID;

CREATE INDEX blobs_by_pack ON blobs(pack);
