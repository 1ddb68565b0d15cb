//! File contents: where each chunk is stored, writing it to every place
//! that needs it (pack regions read once, blobs decoded once, all-zero
//! blocks left as holes), and re-reading files to check them against their
//! chunk ids.

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use super::metadata::{Applied, apply_metadata};
use super::target::{At, Owned, create_sized, owned_identity};
use super::{Action, Ctx, Located, Plan};
use crate::dirfd::identity;
use crate::error::{Error, Result};
use crate::format::pack::PackEntry;
use crate::hash::BlobHasher;
use crate::id::{BlobId, ChunkId, PackId};
use crate::ops::WarningKind;
use crate::repo::Repository;

/// Pack regions closer than this are read in one request (which holds one
/// blob at a time, however long).
const COALESCE_GAP: u64 = 256 << 10;

/// One place a chunk's bytes go: where they are stored, and the file (by
/// plan index) and offset they are written to.
struct Place<'a> {
    pack: &'a PackId,
    entry: &'a PackEntry,
    file: usize,
    offset: u64,
}

/// A needed blob and all the places its bytes go.
struct Need<'a> {
    entry: &'a PackEntry,
    places: &'a [Place<'a>],
}

/// Looks every chunk of the planned files up in the index, once.
pub(super) fn locate_chunks(repo: &Repository, plan: &Plan) -> Result<Located> {
    let chunks = plan.files.iter().flat_map(|f| &f.chunks).map(|c| BlobId::Chunk(*c));
    let found = repo.locate_many(chunks)?;
    Ok(found.into_iter().filter_map(|(blob, loc)| Some((blob.as_chunk()?, (loc.pack, loc.entry)))).collect())
}

/// Creates the files to write, then fills them pack by pack.
pub(super) fn write_contents(ctx: &Ctx, located: &Located) {
    let writes = |i: &usize| ctx.plan.files[*i].action.writes();
    let mut sizes = vec![0u64; ctx.plan.files.len()];
    for (i, file) in ctx.plan.files.iter().enumerate().filter(|(i, _)| writes(i)) {
        for chunk in &file.chunks {
            match located.get(chunk) {
                Some((_, entry)) => sizes[i] += u64::from(entry.raw_len),
                None => match ctx.repo.absent(&BlobId::Chunk(*chunk)) {
                    Error::Missing(_) => ctx.fail(i, format!("chunk {chunk} is missing from the repository")),
                    unknown => ctx.fail(i, unknown),
                },
            }
        }
    }
    let total: u64 = sizes.iter().sum();
    ctx.progress.begin("restore", Some(total));
    // Created up front, in plan (directory) order: creating them as their
    // chunks arrive (pack order, one open less) measured 20-40 % slower.
    // A file already failed (data missing) is not begun: replacing it would
    // remove what is there for nothing.
    let begin = |i: &usize| writes(i) && !ctx.is_failed(*i) && !ctx.stopped();
    sizes.par_iter().enumerate().filter(|(i, _)| begin(i)).for_each(|(i, len)| {
        let file = &ctx.plan.files[i];
        let created = create_sized(&file.at, *len, file.action != Action::New).and_then(|f| {
            let _ = ctx.created[i].set(identity(&rustix::fs::fstat(&f)?));
            Ok(f)
        });
        match created {
            // Nothing more will be written to it.
            Ok(f) if file.chunks.is_empty() => {
                let to = Applied::Open { fd: f.as_fd(), dir: false };
                if let Err(e) = apply_metadata(ctx, &file.at.path, &file.meta, to) {
                    ctx.write_failed(i, e);
                }
            }
            Ok(_) => {}
            Err(e) => ctx.write_failed(i, e),
        }
    });
    if ctx.stopped() {
        return ctx.progress.end();
    }
    // Every place, sorted by where its bytes are stored: a pack's needs then
    // lie together in offset order, and the places of one blob side by side.
    let mut places = Vec::new();
    for (i, file) in ctx.plan.files.iter().enumerate().filter(|(i, _)| writes(i) && !ctx.is_failed(*i)) {
        let mut offset = 0;
        for chunk in &file.chunks {
            let (pack, entry) = &located[chunk];
            places.push(Place { pack, entry, file: i, offset });
            offset += u64::from(entry.raw_len);
        }
    }
    places.sort_unstable_by_key(|p| (p.pack, p.entry.offset));
    let packs: Vec<&[Place]> = places.chunk_by(|a, b| a.pack == b.pack).collect();
    packs.into_par_iter().for_each(|in_pack| {
        let needs: Vec<Need> = in_pack
            .chunk_by(|a, b| a.entry.offset == b.entry.offset)
            .map(|places| Need { entry: places[0].entry, places })
            .collect();
        for group in coalesce(&needs).into_iter().take_while(|_| !ctx.stopped()) {
            restore_region(ctx, in_pack[0].pack, group);
        }
    });
    ctx.progress.end();
}

/// Splits offset-sorted needs into runs that are read with one request.
fn coalesce<'n>(needs: &'n [Need<'n>]) -> Vec<&'n [Need<'n>]> {
    let mut groups = Vec::new();
    let mut start = 0;
    for i in 1..=needs.len() {
        let split = i == needs.len() || {
            let prev = &needs[i - 1].entry;
            let prev_end = u64::from(prev.offset) + u64::from(prev.stored_len);
            u64::from(needs[i].entry.offset) > prev_end + COALESCE_GAP
        };
        if split {
            groups.push(&needs[start..i]);
            start = i;
        }
    }
    groups
}

/// Reads a run of needed blobs with one request, holding one at a time,
/// and writes each to its places.
fn restore_region(ctx: &Ctx, pack: &PackId, group: &[Need]) {
    let fail = |needs: &[Need], why: String| {
        needs.iter().flat_map(|n| n.places).for_each(|p| ctx.fail(p.file, &why));
    };
    // A read error names the pack already; a blob that does not open names
    // itself, not the pack.
    let unreadable = |e: crate::Error| format!("pack {pack}: {}", e.detail());
    let start = u64::from(group[0].entry.offset);
    let last = &group[group.len() - 1].entry;
    let end = u64::from(last.offset) + u64::from(last.stored_len);
    let mut reader = match ctx.repo.stream_pack_range(pack, start, end - start) {
        Ok(r) => r,
        Err(e) => return fail(group, unreadable(e)),
    };
    let mut stored = Vec::new();
    for (i, need) in group.iter().enumerate().take_while(|_| !ctx.stopped()) {
        if let Err(e) = reader.read_stored(need.entry, &mut stored, |_| {}) {
            return fail(&group[i..], unreadable(e));
        }
        match ctx.repo.open_blob(pack, need.entry, &stored) {
            Ok(raw) => write_places(ctx, need, &raw),
            // That copy is marked damaged now: read_blob takes another if
            // the index has one, and otherwise this proof is the answer.
            Err(e) if e.proves_damage() => match ctx.repo.read_blob(&need.entry.blob) {
                Ok(raw) => write_places(ctx, need, &raw),
                Err(_) => fail(std::slice::from_ref(need), format!("in pack {pack}: {e}")),
            },
            Err(e) => fail(std::slice::from_ref(need), format!("in pack {pack}: {e}")),
        }
    }
}

fn write_places(ctx: &Ctx, need: &Need, raw: &[u8]) {
    for &Place { file, offset, .. } in need.places {
        if ctx.is_failed(file) {
            continue;
        }
        if let Err(e) = write_place(ctx, file, raw, offset) {
            ctx.write_failed(file, e);
            continue;
        }
        ctx.bytes.fetch_add(raw.len() as u64, Ordering::Relaxed);
        ctx.progress.advance(0, raw.len() as u64);
    }
}

/// Writes one chunk into a file; the write that completes the file (other
/// threads may be writing its other chunks) applies its metadata through
/// the same descriptor, after every write to it.
fn write_place(ctx: &Ctx, file: usize, raw: &[u8], offset: u64) -> std::io::Result<()> {
    let planned = &ctx.plan.files[file];
    let written = write_nonzero(ctx, file, raw, offset)?;
    // A write that failed never counts, so a failed file is never complete.
    if ctx.unwritten[file].fetch_sub(1, Ordering::AcqRel) == 1 {
        let f = match written {
            Some(f) => f,
            None => ctx.open_created(file)?,
        };
        let to = Applied::Open { fd: f.as_fd(), dir: false };
        apply_metadata(ctx, &planned.at.path, &planned.meta, to)?;
    }
    Ok(())
}

/// Filesystem block size assumed for holes; a multiple of every common one.
const HOLE_BLOCK: u64 = 4096;

/// Writes `data` at `offset` except for block-aligned all-zero stretches:
/// the file already has its full length, so those stay holes and a sparse
/// file is restored sparse. Returns the file it opened, if it had to.
fn write_nonzero(ctx: &Ctx, file: usize, data: &[u8], offset: u64) -> std::io::Result<Option<std::fs::File>> {
    let runs = nonzero_runs(data, offset);
    if runs.is_empty() {
        return Ok(None);
    }
    let f = ctx.open_created(file)?;
    for run in runs {
        f.write_all_at(&data[run.clone()], offset + run.start as u64)?;
    }
    Ok(Some(f))
}

/// The parts of `data` (which starts at file offset `offset`) that must be
/// written: maximal runs of blocks, aligned to file offsets, that are not
/// all zero.
fn nonzero_runs(data: &[u8], offset: u64) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    let mut start = 0usize;
    while start < data.len() {
        let to_boundary = (HOLE_BLOCK - (offset + start as u64) % HOLE_BLOCK) as usize;
        let end = (start + to_boundary).min(data.len());
        if data[start..end].iter().any(|b| *b != 0) {
            match runs.last_mut() {
                Some(last) if last.end == start => last.end = end,
                _ => runs.push(start..end),
            }
        }
        start = end;
    }
    runs
}

/// Re-reads every file written and checks each chunk against its id.
pub(super) fn verify_files(ctx: &Ctx, located: &Located) -> u64 {
    let checked = AtomicU64::new(0);
    let written = |(i, f): &(usize, &super::PlannedFile)| f.action.writes() && !ctx.is_failed(*i);
    ctx.plan.files.par_iter().enumerate().filter(written).for_each(|(_, f)| {
        match verify_file(ctx.repo.keys().hasher(), &f.at, &f.chunks, located) {
            Ok(_) => drop(checked.fetch_add(1, Ordering::Relaxed)),
            Err(e) => ctx.warnings.push(&f.at.path, WarningKind::Failed, format!("verification failed: {e}")),
        }
    });
    checked.into_inner()
}

/// Whether the file at `at` holds exactly `chunks`; if so, the identity
/// of the file read. It is opened without following a symlink or blocking
/// on a fifo: a restore also asks this of whatever it finds in the target.
pub(super) fn verify_file(
    hasher: &BlobHasher,
    at: &At,
    chunks: &[ChunkId],
    located: &Located,
) -> std::io::Result<Owned> {
    let mut f = at.parent.open(at.name(), rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK, 0)?;
    let mut buf = Vec::new();
    for chunk in chunks {
        let len = located.get(chunk).map_or(0, |(_, e)| e.raw_len as usize);
        buf.resize(len, 0);
        f.read_exact(&mut buf)?;
        if hasher.chunk_id(&buf) != *chunk {
            return Err(std::io::Error::other(format!("contents differ from chunk {chunk}")));
        }
    }
    if f.read(&mut [0u8; 1])? != 0 {
        return Err(std::io::Error::other("file is longer than in the snapshot"));
    }
    Ok(owned_identity(&rustix::fs::fstat(&f)?))
}

#[cfg(test)]
mod tests {
    use super::nonzero_runs;

    #[test]
    fn zero_blocks_are_skipped_at_file_alignment() {
        let mut data = vec![0u8; 3 * 4096];
        data[5000] = 1;
        // The chunk starts 100 bytes into a block, so blocks end at 3996, 8092, ...
        assert_eq!(nonzero_runs(&data, 100), vec![3996..8092]);
        assert!(nonzero_runs(&[0; 10], 0).is_empty());
        // Adjacent non-zero blocks merge into one write.
        assert_eq!(nonzero_runs(&[1; 10], 4090), vec![0..10]);
    }
}
