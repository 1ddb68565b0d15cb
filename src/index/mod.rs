//! The SQLite index: blob id -> (pack, offset, lengths). The only module that
//! speaks SQL. It is a cache of the pack trailers and may be deleted at any
//! time; rows are added only after their pack is durable, so a row never
//! points at data that a crash could take away.

mod migrate;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};
use crate::format::pack::{Compression, PackEntry};
use crate::id::{BlobId, BlobKind, PackId};

/// Where a blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    /// The pack holding it.
    pub pack: PackId,
    /// Its entry in that pack.
    pub entry: PackEntry,
}

/// An open index database.
pub struct Index {
    conn: Connection,
}

impl Index {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, false)
    }

    /// Opens the database for the only process that may use it (the
    /// repository is locked exclusively): SQLite then keeps the WAL index in
    /// its own memory instead of a shared-memory file, which it cannot grow
    /// on a full disk, so prune can still run there and give space back.
    pub fn open_exclusive(path: &Path) -> Result<Self> {
        Self::open_with(path, true)
    }

    fn open_with(path: &Path, exclusive: bool) -> Result<Self> {
        // A symlink planted where the database belongs must not make SQLite
        // create or write a database at its target.
        let flags = rusqlite::OpenFlags::default() | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let mut conn = Connection::open_with_flags(path, flags)?;
        if exclusive {
            // Must come before the first access to the database.
            conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        }
        // A second backup may be committing; wait for it rather than fail.
        conn.busy_timeout(std::time::Duration::from_secs(120))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a committed transaction survives power loss, so the index
        // is durable before any snapshot that relies on it is written.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Lookups read pages through a memory map instead of one pread each:
        // a no-change backup does one lookup per unchanged chunk (bench
        // corpus, median of 3: 0.58 against 0.61 s on a quiet machine, 0.70
        // against 0.92 s on a busy one). An I/O error on the mapped file
        // would end the process like a kill -9, which the write order is
        // built for.
        conn.pragma_update(None, "mmap_size", 256i64 << 20)?;
        migrate::migrate(&mut conn)?;
        Ok(Index { conn })
    }

    /// Writes a copy of the whole database to `dest` (which must not exist).
    pub fn copy_to(&self, dest: &Path) -> Result<()> {
        let dest =
            dest.to_str().ok_or_else(|| Error::InvalidInput(format!("{} is not UTF-8", dest.display())))?;
        self.conn.execute("VACUUM INTO ?1", [dest])?;
        Ok(())
    }

    /// Deletes the database and its journal files.
    pub fn destroy(path: &Path) -> Result<()> {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            match std::fs::remove_file(&name) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(name, e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Runs many reads as one read transaction. Each statement outside a
    /// transaction is a transaction of its own, and in WAL mode each takes
    /// and drops a lock on the shared-memory file with `fcntl`: for the tens
    /// of thousands of lookups of a restore plan or of a directory of
    /// unchanged files, that locking cost more than the lookups.
    pub fn in_read_transaction<T>(&mut self, f: impl FnOnce(&Self) -> Result<T>) -> Result<T> {
        self.conn.execute_batch("BEGIN DEFERRED")?;
        let result = f(self);
        // Only reads happened, so committing and rolling back are the same.
        self.conn.execute_batch("COMMIT")?;
        result
    }

    /// Whether an intact copy of the blob is stored in some indexed pack.
    pub fn contains(&self, blob: &BlobId) -> Result<bool> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT 1 FROM blobs b JOIN packs p ON p.id = b.pack
             WHERE b.id = ?1 AND b.kind = ?2 AND p.missing = 0 AND b.damaged = 0 LIMIT 1",
        )?;
        Ok(stmt.exists(params![&blob.as_bytes()[..], blob.kind().code()])?)
    }

    /// Where a blob is stored, if anywhere.
    pub fn lookup(&self, blob: &BlobId) -> Result<Option<BlobLocation>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.name, b.offset, b.stored_len, b.raw_len, b.compression
             FROM blobs b JOIN packs p ON p.id = b.pack
             WHERE b.id = ?1 AND b.kind = ?2 AND p.missing = 0 AND b.damaged = 0 LIMIT 1",
        )?;
        let row =
            stmt.query_row(params![&blob.as_bytes()[..], blob.kind().code()], location_row).optional()?;
        row.map(|row| located(blob, row)).transpose()
    }

    /// Where `pack` holds its copy of a blob, damaged or not.
    pub fn lookup_in(&self, pack: &PackId, blob: &BlobId) -> Result<Option<BlobLocation>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.name, b.offset, b.stored_len, b.raw_len, b.compression
             FROM blobs b JOIN packs p ON p.id = b.pack
             WHERE b.id = ?1 AND b.kind = ?2 AND p.name = ?3 AND p.missing = 0 LIMIT 1",
        )?;
        let key = params![&blob.as_bytes()[..], blob.kind().code(), &pack.as_bytes()[..]];
        let row = stmt.query_row(key, location_row).optional()?;
        row.map(|row| located(blob, row)).transpose()
    }

    /// Records a durable pack and its entries in one transaction. A pack
    /// marked missing that is written again is present again: the same name
    /// means the same bytes, so its rows serve lookups once more.
    pub fn add_pack(&mut self, pack: &PackId, size: u64, entries: &[PackEntry]) -> Result<()> {
        let tx = self.conn.transaction()?;
        insert_pack(&tx, pack, size, entries)?;
        tx.commit()?;
        Ok(())
    }

    /// Indexes `pack` afresh from `entries` (its trailer, read again),
    /// in one transaction, keeping the marks of its blobs and padding: a
    /// pack that comes back after it was missing (moved aside, unreadable,
    /// or not listed when the index was rebuilt) is the same damaged file
    /// until a read proves otherwise. The trailer mark goes: the trailer
    /// was just read.
    pub fn reindex_pack(&mut self, pack: &PackId, size: u64, entries: &[PackEntry]) -> Result<()> {
        let marked = self.damaged_in(pack)?;
        let padding = self.padding_damaged(pack)?;
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM packs WHERE name = ?1", [&pack.as_bytes()[..]])?;
        insert_pack(&tx, pack, size, entries)?;
        tx.execute(
            "UPDATE packs SET padding_damaged = ?2 WHERE name = ?1",
            params![&pack.as_bytes()[..], padding],
        )?;
        mark_in(&tx, pack, marked.iter())?;
        tx.commit()?;
        Ok(())
    }

    /// Records `pack`, which storage does not list now, with `entries`
    /// and the marks of `damaged` among them, as missing: its rows serve
    /// no lookup, but its marks are there when it comes back.
    pub fn add_missing_pack(
        &mut self,
        pack: &PackId,
        size: u64,
        entries: &[PackEntry],
        damaged: &[BlobId],
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        insert_pack(&tx, pack, size, entries)?;
        tx.execute("UPDATE packs SET missing = 1 WHERE name = ?1", [&pack.as_bytes()[..]])?;
        mark_in(&tx, pack, damaged.iter())?;
        tx.commit()?;
        Ok(())
    }

    /// The recorded size of `pack`, missing or not, if it is indexed.
    pub fn pack_size(&self, pack: &PackId) -> Result<Option<u64>> {
        let mut stmt = self.conn.prepare_cached("SELECT size FROM packs WHERE name = ?1")?;
        Ok(stmt.query_row([&pack.as_bytes()[..]], |r| r.get(0)).optional()?)
    }

    /// Every present (not missing) indexed pack holding an intact copy of the blob.
    pub fn packs_holding(&self, blob: &BlobId) -> Result<Vec<PackId>> {
        self.packs_with_copy(blob, false)
    }

    /// Present packs holding a copy of `blob`, intact or marked damaged.
    fn packs_with_copy(&self, blob: &BlobId, damaged: bool) -> Result<Vec<PackId>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.name FROM blobs b JOIN packs p ON p.id = b.pack
             WHERE b.id = ?1 AND b.kind = ?2 AND p.missing = 0 AND b.damaged = ?3",
        )?;
        let rows = stmt.query_map(params![&blob.as_bytes()[..], blob.kind().code(), damaged], |r| {
            r.get::<_, Vec<u8>>(0)
        })?;
        rows.map(|r| PackId::from_slice(&r?)).collect()
    }

    /// The entries the index holds for one pack, sorted by offset.
    pub fn pack_entries(&self, pack: &PackId) -> Result<Vec<PackEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT b.id, b.kind, b.offset, b.stored_len, b.raw_len, b.compression
             FROM blobs b JOIN packs p ON p.id = b.pack WHERE p.name = ?1 ORDER BY b.offset",
        )?;
        let rows = stmt.query_map([&pack.as_bytes()[..]], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, u8>(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get::<_, u8>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, offset, stored_len, raw_len, comp) = row?;
            let blob = row_blob(id, kind)?;
            let compression = Compression::from_code(comp)
                .ok_or_else(|| Error::IndexDamaged(format!("row of pack {pack} has compression {comp}")))?;
            out.push(PackEntry { blob, offset, stored_len, raw_len, compression });
        }
        Ok(out)
    }

    /// Forgets a pack deleted or gone from storage: its rows go, but for
    /// the copies and padding marked damaged, which stay as a missing pack.
    /// Should the same file come back (moved aside and put back, or copied
    /// back from an old copy of the repository), it is indexed again with
    /// its marks, so its damaged copies never serve a lookup.
    pub fn forget_pack(&mut self, pack: &PackId) -> Result<()> {
        let name = &pack.as_bytes()[..];
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM blobs WHERE damaged = 0 AND pack = (SELECT id FROM packs WHERE name = ?1)",
            [name],
        )?;
        tx.execute(
            "DELETE FROM packs WHERE name = ?1 AND padding_damaged = 0
                 AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.pack = packs.id)",
            [name],
        )?;
        tx.execute("UPDATE packs SET missing = 1, trailer_damaged = 0 WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(())
    }

    /// Marks the copy of `blob` in `pack` as proved damaged: it serves no
    /// lookup from now on.
    pub fn mark_damaged(&mut self, pack: &PackId, blob: &BlobId) -> Result<()> {
        self.conn.execute(
            "UPDATE blobs SET damaged = 1
             WHERE id = ?1 AND kind = ?2 AND pack = (SELECT id FROM packs WHERE name = ?3)",
            params![&blob.as_bytes()[..], blob.kind().code(), &pack.as_bytes()[..]],
        )?;
        Ok(())
    }

    /// Takes back the marks of `pack`'s copies: of `blob`, or of all of
    /// them and of its padding, once they were read again and found whole.
    pub fn clear_damaged(&mut self, pack: &PackId, blob: Option<&BlobId>) -> Result<()> {
        let name = &pack.as_bytes()[..];
        let in_pack = "pack = (SELECT id FROM packs WHERE name = ?1)";
        match blob {
            Some(b) => self.conn.execute(
                &format!("UPDATE blobs SET damaged = 0 WHERE {in_pack} AND id = ?2 AND kind = ?3"),
                params![name, &b.as_bytes()[..], b.kind().code()],
            )?,
            None => {
                self.set_padding_damaged(pack, false)?;
                self.set_trailer_damaged(pack, false)?;
                self.conn.execute(&format!("UPDATE blobs SET damaged = 0 WHERE {in_pack}"), params![name])?
            }
        };
        Ok(())
    }

    /// Marks (or, read again and found whole, unmarks) `pack`'s padding
    /// envelope as proved damaged: `repair packs` then rewrites the pack.
    pub fn set_padding_damaged(&mut self, pack: &PackId, damaged: bool) -> Result<()> {
        self.conn.execute(
            "UPDATE packs SET padding_damaged = ?2 WHERE name = ?1",
            params![&pack.as_bytes()[..], damaged],
        )?;
        Ok(())
    }

    /// Marks (or, read again and found whole, unmarks) `pack`'s trailer as
    /// proved damaged while its blobs are indexed: `repair packs` then
    /// rewrites the pack.
    pub fn set_trailer_damaged(&mut self, pack: &PackId, damaged: bool) -> Result<()> {
        self.conn.execute(
            "UPDATE packs SET trailer_damaged = ?2 WHERE name = ?1",
            params![&pack.as_bytes()[..], damaged],
        )?;
        Ok(())
    }

    /// Whether `pack`'s trailer is marked damaged.
    pub fn trailer_damaged(&self, pack: &PackId) -> Result<bool> {
        let mut stmt =
            self.conn.prepare_cached("SELECT 1 FROM packs WHERE name = ?1 AND trailer_damaged = 1")?;
        Ok(stmt.exists([&pack.as_bytes()[..]])?)
    }

    /// Whether `pack`'s padding envelope is marked damaged.
    pub fn padding_damaged(&self, pack: &PackId) -> Result<bool> {
        let mut stmt =
            self.conn.prepare_cached("SELECT 1 FROM packs WHERE name = ?1 AND padding_damaged = 1")?;
        Ok(stmt.exists([&pack.as_bytes()[..]])?)
    }

    /// The blobs of `pack` marked damaged.
    pub fn damaged_in(&self, pack: &PackId) -> Result<HashSet<BlobId>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT b.id, b.kind FROM blobs b JOIN packs p ON p.id = b.pack
             WHERE p.name = ?1 AND b.damaged = 1",
        )?;
        let rows =
            stmt.query_map([&pack.as_bytes()[..]], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, u8>(1)?)))?;
        rows.map(|row| row.map_err(Error::from).and_then(|(id, kind)| row_blob(id, kind))).collect()
    }

    /// Every copy marked damaged, as (pack, blob): what a rebuilt index
    /// must mark again, or a backup would deduplicate against it.
    pub fn damage_marks(&self) -> Result<Vec<(PackId, BlobId)>> {
        let mut stmt = self.conn.prepare(
            "SELECT p.name, b.id, b.kind FROM blobs b JOIN packs p ON p.id = b.pack WHERE b.damaged = 1",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, u8>(2)?)))?;
        rows.map(|row| {
            let (pack, id, kind) = row?;
            Ok((PackId::from_slice(&pack)?, row_blob(id, kind)?))
        })
        .collect()
    }

    /// Present packs holding a copy of `blob` marked damaged.
    pub fn damaged_copies(&self, blob: &BlobId) -> Result<Vec<PackId>> {
        self.packs_with_copy(blob, true)
    }

    /// Present packs holding a blob marked damaged, or whose padding or
    /// trailer is.
    pub fn damaged_packs(&self) -> Result<Vec<PackId>> {
        let mut stmt = self.conn.prepare(
            "SELECT p.name FROM packs p
             WHERE p.missing = 0 AND (p.padding_damaged = 1 OR p.trailer_damaged = 1
                 OR EXISTS (SELECT 1 FROM blobs b WHERE b.pack = p.id AND b.damaged = 1))
             ORDER BY p.name",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|r| PackId::from_slice(&r?)).collect()
    }

    /// Marks a pack as gone from storage: its rows stay for `verify` to
    /// name, but serve no lookup.
    pub fn mark_missing(&mut self, pack: &PackId) -> Result<()> {
        self.conn.execute("UPDATE packs SET missing = 1 WHERE name = ?1", [&pack.as_bytes()[..]])?;
        Ok(())
    }

    /// Packs marked missing.
    pub fn missing_packs(&self) -> Result<Vec<PackId>> {
        let mut stmt = self.conn.prepare("SELECT name FROM packs WHERE missing = 1 ORDER BY name")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|r| PackId::from_slice(&r?)).collect()
    }

    /// Every present (not missing) indexed pack with its recorded size.
    pub fn packs(&self) -> Result<HashMap<PackId, u64>> {
        let mut stmt = self.conn.prepare("SELECT name, size FROM packs WHERE missing = 0")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, u64>(1)?)))?;
        let mut out = HashMap::new();
        for row in rows {
            let (name, size) = row?;
            out.insert(PackId::from_slice(&name)?, size);
        }
        Ok(out)
    }

    /// Counts of indexed packs and blobs by kind, for stats.
    pub fn counts(&self) -> Result<IndexCounts> {
        let packs: u64 = self.conn.query_row("SELECT COUNT(*) FROM packs", [], |r| r.get(0))?;
        let count_kind = |kind: BlobKind| -> Result<(u64, u64, u64)> {
            Ok(self.conn.query_row(
                "SELECT COUNT(*), COALESCE(SUM(raw_len), 0), COALESCE(SUM(stored_len), 0)
                 FROM (SELECT DISTINCT id, raw_len, stored_len FROM blobs WHERE kind = ?1)",
                [kind.code()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        };
        let (chunks, chunk_raw, chunk_stored) = count_kind(BlobKind::Chunk)?;
        let (trees, _, tree_stored) = count_kind(BlobKind::Tree)?;
        Ok(IndexCounts { packs, chunks, trees, chunk_raw, stored: chunk_stored + tree_stored })
    }
}

/// Totals over the index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct IndexCounts {
    /// Indexed packs.
    pub packs: u64,
    /// Distinct chunks.
    pub chunks: u64,
    /// Distinct tree nodes.
    pub trees: u64,
    /// Raw bytes of the distinct chunks.
    pub chunk_raw: u64,
    /// Stored (compressed) bytes of all distinct blobs.
    pub stored: u64,
}

/// Records a pack and its entries within `tx` (see [`Index::add_pack`]).
fn insert_pack(
    tx: &rusqlite::Transaction<'_>,
    pack: &PackId,
    size: u64,
    entries: &[PackEntry],
) -> Result<()> {
    tx.execute(
        "INSERT INTO packs (name, size) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET size = excluded.size, missing = 0",
        params![&pack.as_bytes()[..], size],
    )?;
    let rowid: i64 =
        tx.query_row("SELECT id FROM packs WHERE name = ?1", [&pack.as_bytes()[..]], |r| r.get(0))?;
    // Its bytes were just written whole (a damaged file under the name
    // is replaced), so nothing in it is damaged any more.
    tx.execute("UPDATE blobs SET damaged = 0 WHERE pack = ?1", [rowid])?;
    tx.execute("UPDATE packs SET padding_damaged = 0, trailer_damaged = 0 WHERE id = ?1", [rowid])?;
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO blobs (id, kind, pack, offset, stored_len, raw_len, compression)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for e in entries {
        stmt.execute(params![
            &e.blob.as_bytes()[..],
            e.blob.kind().code(),
            rowid,
            e.offset,
            e.stored_len,
            e.raw_len,
            e.compression.code()
        ])?;
    }
    Ok(())
}

/// Marks the copies of `blobs` in `pack` damaged, within `tx`.
fn mark_in<'b>(
    tx: &rusqlite::Transaction<'_>,
    pack: &PackId,
    blobs: impl Iterator<Item = &'b BlobId>,
) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "UPDATE blobs SET damaged = 1
         WHERE id = ?1 AND kind = ?2 AND pack = (SELECT id FROM packs WHERE name = ?3)",
    )?;
    for blob in blobs {
        stmt.execute(params![&blob.as_bytes()[..], blob.kind().code(), &pack.as_bytes()[..]])?;
    }
    Ok(())
}

type LocationRow = (Vec<u8>, u32, u32, u32, u8);

/// The columns of a location query: pack name, offset, lengths, compression.
fn location_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LocationRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn located(blob: &BlobId, (pack, offset, stored_len, raw_len, comp): LocationRow) -> Result<BlobLocation> {
    let compression = Compression::from_code(comp)
        .ok_or_else(|| Error::IndexDamaged(format!("compression code {comp}")))?;
    Ok(BlobLocation {
        pack: PackId::from_slice(&pack)?,
        entry: PackEntry { blob: *blob, offset, stored_len, raw_len, compression },
    })
}

/// A blob id and kind as stored in a row.
fn row_blob(id: Vec<u8>, kind: u8) -> Result<BlobId> {
    let kind = BlobKind::from_code(kind).ok_or_else(|| Error::IndexDamaged(format!("blob kind {kind}")))?;
    let id: [u8; 32] = id.try_into().map_err(|_| Error::IndexDamaged("blob id is not 32 bytes".into()))?;
    Ok(BlobId::new(kind, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::ChunkId;

    fn entry(id: u8, offset: u32) -> PackEntry {
        PackEntry {
            blob: BlobId::Chunk(ChunkId::from_bytes([id; 32])),
            offset,
            stored_len: 10,
            raw_len: 20,
            compression: Compression::Zstd,
        }
    }

    #[test]
    fn add_lookup_remove() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = Index::open(&dir.path().join("i.sqlite")).unwrap();
        let pack = PackId::from_bytes([9; 32]);
        idx.add_pack(&pack, 100, &[entry(1, 8), entry(2, 18)]).unwrap();
        let loc = idx.lookup(&entry(2, 0).blob).unwrap().unwrap();
        assert_eq!(loc.pack, pack);
        assert_eq!(loc.entry, entry(2, 18));
        assert!(!idx.contains(&BlobId::Tree(crate::id::TreeId::from_bytes([1; 32]))).unwrap());
        assert_eq!(idx.packs().unwrap().get(&pack), Some(&100));
        idx.mark_missing(&pack).unwrap();
        assert!(!idx.contains(&entry(1, 0).blob).unwrap(), "missing packs serve no lookup");
        idx.add_pack(&pack, 100, &[entry(1, 8), entry(2, 18)]).unwrap();
        assert!(idx.contains(&entry(1, 0).blob).unwrap(), "a pack written again serves lookups");
        assert!(idx.missing_packs().unwrap().is_empty());
        idx.mark_damaged(&pack, &entry(2, 0).blob).unwrap();
        assert!(idx.lookup(&entry(2, 0).blob).unwrap().is_none(), "a damaged copy serves no lookup");
        assert!(idx.contains(&entry(1, 0).blob).unwrap(), "the rest of the pack does");
        assert_eq!(idx.damaged_in(&pack).unwrap(), HashSet::from([entry(2, 0).blob]));
        assert_eq!(idx.damaged_packs().unwrap(), vec![pack]);
        assert_eq!(idx.damaged_copies(&entry(2, 0).blob).unwrap(), vec![pack]);
        idx.clear_damaged(&pack, Some(&entry(2, 0).blob)).unwrap();
        assert!(idx.damaged_packs().unwrap().is_empty(), "read again and found whole");
        idx.mark_damaged(&pack, &entry(2, 0).blob).unwrap();
        idx.clear_damaged(&pack, None).unwrap();
        assert!(idx.contains(&entry(2, 0).blob).unwrap());
        idx.set_padding_damaged(&pack, true).unwrap();
        assert!(idx.padding_damaged(&pack).unwrap());
        assert_eq!(idx.damaged_packs().unwrap(), vec![pack], "damaged padding alone needs a repair");
        assert!(idx.contains(&entry(1, 0).blob).unwrap(), "its blobs still serve lookups");
        idx.add_pack(&pack, 100, &[entry(1, 8), entry(2, 18)]).unwrap();
        assert!(!idx.padding_damaged(&pack).unwrap(), "a pack written again is whole");
        idx.set_padding_damaged(&pack, true).unwrap();
        idx.clear_damaged(&pack, None).unwrap();
        assert!(idx.damaged_packs().unwrap().is_empty(), "read again and found whole");
        idx.mark_damaged(&pack, &entry(2, 0).blob).unwrap();
        idx.mark_missing(&pack).unwrap();
        assert!(idx.lookup(&entry(1, 0).blob).unwrap().is_none());
        assert_eq!(idx.missing_packs().unwrap(), vec![pack]);
        assert_eq!(idx.pack_entries(&pack).unwrap().len(), 2, "but their rows are kept");
        idx.forget_pack(&pack).unwrap();
        let kept: Vec<BlobId> = idx.pack_entries(&pack).unwrap().iter().map(|e| e.blob).collect();
        assert_eq!(kept, vec![entry(2, 0).blob], "only the row of the damaged copy stays");
        assert_eq!(idx.damaged_in(&pack).unwrap().len(), 1);
        idx.clear_damaged(&pack, None).unwrap();
        idx.forget_pack(&pack).unwrap();
        assert!(idx.pack_entries(&pack).unwrap().is_empty());
        assert!(idx.missing_packs().unwrap().is_empty(), "nothing marked: the pack is forgotten whole");
    }

    #[test]
    fn a_pack_that_comes_back_keeps_its_marks() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = Index::open(&dir.path().join("i.sqlite")).unwrap();
        let pack = PackId::from_bytes([9; 32]);
        let (one, two) = (entry(1, 0).blob, entry(2, 0).blob);
        idx.add_missing_pack(&pack, 100, &[entry(1, 8), entry(2, 18)], &[two]).unwrap();
        assert_eq!(idx.missing_packs().unwrap(), vec![pack]);
        assert_eq!(idx.pack_size(&pack).unwrap(), Some(100), "missing, yet recorded");
        assert!(!idx.contains(&one).unwrap(), "a missing pack serves no lookup");
        // Back, read from its trailer: its rows serve lookups, its marks stand.
        idx.reindex_pack(&pack, 100, &[entry(1, 8), entry(2, 18)]).unwrap();
        assert!(idx.missing_packs().unwrap().is_empty());
        assert!(idx.contains(&one).unwrap());
        assert!(!idx.contains(&two).unwrap(), "the damaged copy still serves no lookup");
        assert_eq!(idx.damaged_in(&pack).unwrap(), HashSet::from([two]));
        idx.set_padding_damaged(&pack, true).unwrap();
        idx.set_trailer_damaged(&pack, true).unwrap();
        idx.mark_missing(&pack).unwrap();
        idx.reindex_pack(&pack, 100, &[entry(1, 8)]).unwrap();
        assert!(idx.padding_damaged(&pack).unwrap(), "the padding was not read again");
        assert!(!idx.trailer_damaged(&pack).unwrap(), "the trailer was");
        assert!(idx.damaged_in(&pack).unwrap().is_empty(), "a blob the trailer does not list has no row");
        assert_eq!(idx.pack_size(&PackId::from_bytes([8; 32])).unwrap(), None);
    }

    #[test]
    fn reopening_keeps_rows_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.sqlite");
        Index::open(&path).unwrap().add_pack(&PackId::from_bytes([1; 32]), 5, &[entry(3, 8)]).unwrap();
        assert!(Index::open(&path).unwrap().contains(&entry(3, 0).blob).unwrap());
    }
}
