//! `snap dump`: a snapshot, or one path of it, as a tar or zip archive,
//! written entry by entry as the trees are walked. A file's contents go out
//! one chunk at a time (the size in the entry's header comes from the tree),
//! so neither the tree nor a whole file is ever held in memory. A tar
//! streams to any `Write`; a zip needs a file it can seek in, so one for a
//! pipe is built in an unnamed temporary file first.
//!
//! Archive paths are relative: the snapshot's absolute paths without the
//! leading `/` (as `snap restore` lays them out under its target), or, when
//! a path is given, relative to that path's parent directory.
//!
//! tar (GNU format): modes with setuid, setgid and sticky bits, numeric
//! owners, mtimes to the second, symlinks, hardlinks (as links to the first
//! name dumped), fifos and devices; names and link targets byte for byte,
//! long ones as GNU long-name entries. Sockets have no tar form.
//!
//! zip: the Unix mode and file type in the external attributes (as Info-ZIP
//! writes them), the mtime as a local DOS time (two-second steps, 1980 to
//! 2107) plus the extended-timestamp field (UTC seconds), and symlinks;
//! hardlinked files are stored once per name. Names are stored byte for
//! byte: UTF-8 ones flagged as such, others unflagged, as Info-ZIP's `zip`
//! does on Unix, so `unzip` there gives back the same bytes (readers that
//! follow the specification literally show them as CP437). Fifos, devices
//! and sockets have no zip form.
//!
//! An entry a format cannot hold is left out with a warning. A file whose
//! data cannot be read ends the dump with an error naming it: an archive
//! has no way to mark a hole. The archive is then left unfinished: a tar
//! gets no trailer (and stops inside that file's entry), a zip file lacks
//! its central directory, and a zip for a pipe is not written at all.

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::mem::ManuallyDrop;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::FileType;
use serde::Serialize;
use tar::{EntryType, Header};
use zip::write::{FullFileOptions, SimpleFileOptions};
use zip::{CompressionMethod, System, ZipWriter};

use super::{Warning, WarningKind, Warnings};
use crate::error::{Error, Result};
use crate::format::Timestamp;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Entry, Metadata, Node};
use crate::names;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::tree;

/// Output is written in blocks of this size.
const OUTPUT_BUFFER: usize = 1 << 20;

/// Zip files larger than this get ZIP64 sizes. The choice is made before
/// the data is compressed, and deflate can grow incompressible data a
/// little, so the margin below 4 GiB is generous.
const ZIP64_ABOVE: u64 = 0xF000_0000;

/// Archive formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Tar,
    Zip,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Tar => "tar",
            Format::Zip => "zip",
        })
    }
}

/// What to dump, and how.
#[derive(Clone, Debug)]
pub struct DumpOptions {
    pub format: Format,
    /// Only this path of the snapshot (and what is below it).
    pub path: Option<PathBuf>,
    /// The output, as named in write errors.
    pub destination: PathBuf,
}

/// The outcome of a dump.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DumpReport {
    /// Files, every name of a hardlinked file counted.
    pub files: u64,
    pub dirs: u64,
    /// Symlinks, fifos and devices.
    pub others: u64,
    /// File bytes read from the repository and archived.
    pub bytes: u64,
    /// Entries the format cannot hold, left out.
    pub warnings: Vec<Warning>,
}

/// Where the archive goes.
pub enum Output<'a> {
    /// A regular file: a zip is written into it directly.
    File(&'a mut File),
    /// Anything else (standard output, a pipe). A zip is first built in an
    /// unnamed temporary file and then copied: writing a zip means going back
    /// to complete each entry's header.
    Stream(&'a mut dyn Write),
}

/// Writes `snap` (or the part of it at `opts.path`) to `out` as an archive.
pub fn dump(
    repo: &Repository,
    snap: &Snapshot,
    opts: &DumpOptions,
    out: Output<'_>,
    progress: &dyn Progress,
) -> Result<DumpReport> {
    let path = names::split_optional_path(opts.path.as_deref())?;
    let walk = Walk { repo, snap, path, format: opts.format, progress };
    let dest = opts.destination.as_path();
    match (opts.format, out) {
        (Format::Tar, Output::File(file)) => write_tar(&walk, file, dest),
        (Format::Tar, Output::Stream(out)) => write_tar(&walk, out, dest),
        (Format::Zip, Output::File(file)) => write_zip(&walk, file, dest),
        (Format::Zip, Output::Stream(out)) => write_zip_through_temp(&walk, out, dest),
    }
}

/// On failure the sink is dropped unfinished, so no trailer follows what
/// was written, and the entry being written stays short.
fn write_tar(walk: &Walk, out: impl Write, dest: &Path) -> Result<DumpReport> {
    let mut out = BufWriter::with_capacity(OUTPUT_BUFFER, out);
    let mut sink =
        TarSink { builder: ManuallyDrop::new(tar::Builder::new(&mut out)), first_names: HashMap::new() };
    let report = walk.run(&mut sink, dest)?;
    sink.finish().and_then(|()| out.flush()).map_err(|e| Error::io(dest, e))?;
    Ok(report)
}

fn write_zip(walk: &Walk, out: impl Write + Seek, dest: &Path) -> Result<DumpReport> {
    let mut out = BufWriter::with_capacity(OUTPUT_BUFFER, out);
    let mut sink = ZipSink { zip: ManuallyDrop::new(ZipWriter::new(&mut out)) };
    let report = walk.run(&mut sink, dest)?;
    sink.finish().and_then(|()| out.flush()).map_err(|e| Error::io(dest, e))?;
    Ok(report)
}

/// Nothing reaches `out` unless the whole archive was built.
fn write_zip_through_temp(walk: &Walk, out: &mut dyn Write, dest: &Path) -> Result<DumpReport> {
    let temp_dir = std::env::temp_dir();
    let mut temp = tempfile::tempfile_in(&temp_dir).map_err(|e| Error::io(&temp_dir, e))?;
    let report = write_zip(walk, &mut temp, &temp_dir)?;
    temp.rewind().map_err(|e| Error::io(&temp_dir, e))?;
    io::copy(&mut temp, out).and_then(|_| out.flush()).map_err(|e| Error::io(dest, e))?;
    Ok(report)
}

/// What is dumped.
struct Walk<'a> {
    repo: &'a Repository,
    snap: &'a Snapshot,
    /// The dumped path's names from the snapshot root (empty: all of it).
    path: Vec<Vec<u8>>,
    format: Format,
    progress: &'a dyn Progress,
}

impl Walk<'_> {
    /// Adds every entry to `sink`; write errors name `dest`.
    fn run(&self, sink: &mut dyn Sink, dest: &Path) -> Result<DumpReport> {
        let mut dumper = Dumper {
            walk: self,
            sink,
            dest,
            skip: self.path.len().saturating_sub(1),
            report: DumpReport::default(),
            warnings: Warnings::default(),
        };
        self.progress.begin("dump", None);
        let store = tree::WithHoles::new(self.repo);
        let walked =
            tree::walk_path(&store, self.snap.tree, &self.path, &mut |names, entry| dumper.add(names, entry));
        self.progress.end();
        walked?;
        for hole in store.into_holes() {
            dumper.warnings.push_warning(super::hole_warning(&hole, Path::new("/"), "in the archive"));
        }
        Ok(DumpReport { warnings: dumper.warnings.into_vec(), ..dumper.report })
    }
}

struct Dumper<'a> {
    walk: &'a Walk<'a>,
    sink: &'a mut dyn Sink,
    dest: &'a Path,
    /// Leading names left out of archive paths: those above the dumped path's own.
    skip: usize,
    report: DumpReport,
    warnings: Warnings,
}

impl Dumper<'_> {
    /// Archives the entry at `names` (from the snapshot root).
    fn add(&mut self, names: &[Vec<u8>], entry: &Entry) -> Result<()> {
        let archive_path = names[self.skip..].join(&b'/');
        let (chunks, size) = match &entry.node {
            Node::File { chunks, size } => (chunks.as_slice(), *size),
            _ => (&[][..], 0),
        };
        // A tar entry's length is written before its data, so a file whose
        // data is known to be damaged or missing (the index has no intact
        // copy of a chunk) is left out before its header, and the dump goes
        // on; damage met only while reading still ends it.
        if let Some(lost) = self.known_lost(chunks)? {
            let why = format!("damaged data, left out of the archive: {lost}");
            self.warnings.push(&names::join(Path::new("/"), names), WarningKind::Failed, why);
            return Ok(());
        }
        let mut data = self.walk.repo.file_reader(chunks, size);
        match self.sink.add(&archive_path, entry, &mut data) {
            Ok(true) => self.count(entry, data.bytes_read()),
            Ok(false) => self.warnings.push(
                &names::join(Path::new("/"), names),
                WarningKind::Skipped,
                format!("a {} archive cannot hold a {}; left out", self.walk.format, kind_name(&entry.node)),
            ),
            Err(e) => {
                return Err(match data.take_error() {
                    Some(read) if read.proves_damage() => {
                        Error::corrupt(format!("data of {}", names::display_components(names)), read)
                    }
                    Some(read) => read,
                    None => Error::io(self.dest, e),
                });
            }
        }
        Ok(())
    }

    /// The first chunk of `chunks` proved to have no intact copy; an error
    /// if one cannot be told.
    fn known_lost(&self, chunks: &[crate::id::ChunkId]) -> Result<Option<Error>> {
        for chunk in chunks {
            match self.walk.repo.locate(&crate::id::BlobId::Chunk(*chunk)) {
                Ok(_) => {}
                Err(e) if e.proves_damage() => return Ok(Some(e)),
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    fn count(&mut self, entry: &Entry, bytes: u64) {
        let r = &mut self.report;
        match entry.node {
            Node::File { .. } => {
                r.files += 1;
                r.bytes += bytes;
                self.walk.progress.advance(1, bytes);
            }
            Node::Dir { .. } => r.dirs += 1,
            _ => r.others += 1,
        }
    }
}

fn kind_name(node: &Node) -> &'static str {
    match node {
        Node::File { .. } => "file",
        Node::Dir { .. } => "directory",
        Node::Symlink { .. } => "symlink",
        Node::Fifo => "fifo",
        Node::CharDevice { .. } => "character device",
        Node::BlockDevice { .. } => "block device",
        Node::Socket => "socket",
    }
}

/// One archive format's writer.
trait Sink {
    /// Adds an entry at `path`, a file's contents read from `data`.
    /// `Ok(false)`: the format cannot hold this kind of entry.
    fn add(&mut self, path: &[u8], entry: &Entry, data: &mut dyn Read) -> io::Result<bool>;
}

struct TarSink<W: Write> {
    /// Never dropped unfinished: a `Builder` writes the archive's trailer
    /// when dropped, and a trailer after a short entry could make the
    /// archive look whole. It holds only `W`, here a reference.
    builder: ManuallyDrop<tar::Builder<W>>,
    /// Archive path of the first name dumped of each hardlinked inode.
    first_names: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> Sink for TarSink<W> {
    fn add(&mut self, path: &[u8], entry: &Entry, data: &mut dyn Read) -> io::Result<bool> {
        let mut header = tar_header(&entry.meta);
        match &entry.node {
            Node::File { size, .. } => match self.first_name(path, &entry.meta) {
                Some(first) => self.append_link(header, EntryType::Link, path, &first)?,
                None => {
                    header.set_size(*size);
                    self.append(header, EntryType::Regular, path, data)?;
                }
            },
            Node::Dir { .. } => self.append(header, EntryType::Directory, path, &mut io::empty())?,
            Node::Symlink { target } => self.append_link(header, EntryType::Symlink, path, target)?,
            Node::Fifo => self.append(header, EntryType::Fifo, path, &mut io::empty())?,
            Node::CharDevice { rdev } => self.append_device(header, EntryType::Char, path, *rdev)?,
            Node::BlockDevice { rdev } => self.append_device(header, EntryType::Block, path, *rdev)?,
            Node::Socket => return Ok(false),
        }
        Ok(true)
    }
}

/// A header with what every kind of entry has.
fn tar_header(meta: &Metadata) -> Header {
    let mut header = Header::new_gnu();
    header.set_mode(meta.mode & 0o7777);
    header.set_uid(meta.uid.into());
    header.set_gid(meta.gid.into());
    // The field is unsigned: times before 1970 are stored as the epoch.
    header.set_mtime(u64::try_from(meta.mtime.secs).unwrap_or(0));
    header.set_size(0);
    header
}

impl<W: Write> TarSink<W> {
    /// Writes the archive's trailer.
    fn finish(self) -> io::Result<()> {
        ManuallyDrop::into_inner(self.builder).into_inner().map(drop)
    }

    /// For a file with other names: the archive path it was first dumped
    /// under; `None` (and this path is remembered) the first time.
    fn first_name(&mut self, path: &[u8], meta: &Metadata) -> Option<Vec<u8>> {
        if meta.nlink < 2 {
            return None;
        }
        match self.first_names.entry((meta.dev, meta.inode)) {
            Slot::Occupied(first) => Some(first.get().clone()),
            Slot::Vacant(slot) => {
                slot.insert(path.to_vec());
                None
            }
        }
    }

    fn append(
        &mut self,
        mut header: Header,
        kind: EntryType,
        path: &[u8],
        data: &mut dyn Read,
    ) -> io::Result<()> {
        header.set_entry_type(kind);
        self.builder.append_data(&mut header, Path::new(OsStr::from_bytes(path)), data)
    }

    /// A symlink or hardlink. The target is stored byte for byte (the tar
    /// crate's `append_link` treats it as a path and folds `a//b` to `a/b`);
    /// one too long for the header goes first in a GNU long-link entry, as
    /// GNU tar writes it.
    fn append_link(
        &mut self,
        mut header: Header,
        kind: EntryType,
        path: &[u8],
        target: &[u8],
    ) -> io::Result<()> {
        let room = header.as_old().linkname.len();
        if target.len() > room {
            self.builder.append(&long_link_header(target.len()), target.chain(&[0u8][..]))?;
        }
        header.set_link_name_literal(&target[..target.len().min(room)])?;
        self.append(header, kind, path, &mut io::empty())
    }

    fn append_device(
        &mut self,
        mut header: Header,
        kind: EntryType,
        path: &[u8],
        rdev: u64,
    ) -> io::Result<()> {
        header.set_device_major(rustix::fs::major(rdev))?;
        header.set_device_minor(rustix::fs::minor(rdev))?;
        self.append(header, kind, path, &mut io::empty())
    }
}

/// The header of a GNU long-link entry holding a NUL-terminated target.
fn long_link_header(target_len: usize) -> Header {
    let mut header = Header::new_gnu();
    let name = b"././@LongLink";
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_mode(0o644);
    header.set_size(target_len as u64 + 1);
    header.set_entry_type(EntryType::GNULongLink);
    header.set_cksum();
    header
}

struct ZipSink<W: Write + Seek> {
    /// Never dropped unfinished: a `ZipWriter` completes the archive when
    /// dropped (and complains on stderr when it cannot), which a failed dump
    /// must not do; after a failure it is leaked instead.
    zip: ManuallyDrop<ZipWriter<W>>,
}

impl<W: Write + Seek> ZipSink<W> {
    /// Writes the archive's central directory.
    fn finish(self) -> io::Result<()> {
        ManuallyDrop::into_inner(self.zip).finish().map(drop).map_err(io::Error::from)
    }
}

impl<W: Write + Seek> Sink for ZipSink<W> {
    fn add(&mut self, path: &[u8], entry: &Entry, data: &mut dyn Read) -> io::Result<bool> {
        let (kind, method, size) = match &entry.node {
            Node::File { size, .. } => (FileType::RegularFile, CompressionMethod::Deflated, *size),
            Node::Dir { .. } => (FileType::Directory, CompressionMethod::Stored, 0),
            Node::Symlink { .. } => (FileType::Symlink, CompressionMethod::Stored, 0),
            _ => return Ok(false),
        };
        let mut name = path.to_vec();
        if kind == FileType::Directory {
            // Readers tell a directory by its trailing slash.
            name.push(b'/');
        }
        self.zip.start_file_with_options(zip_options(&entry.meta, kind, method, size)?.name(&name))?;
        match &entry.node {
            Node::File { .. } => drop(io::copy(data, &mut *self.zip)?),
            Node::Symlink { target } => self.zip.write_all(target)?,
            _ => {}
        }
        Ok(true)
    }
}

fn zip_options(
    meta: &Metadata,
    kind: FileType,
    method: CompressionMethod,
    size: u64,
) -> io::Result<FullFileOptions<'static, 'static>> {
    let options = SimpleFileOptions::default()
        .system(System::Unix)
        // Info-ZIP's layout: the Unix st_mode in the high 16 bits.
        .external_attributes((kind.as_raw_mode() | (meta.mode & 0o7777)) << 16)
        .last_modified_time(dos_time(meta.mtime))
        .compression_method(method)
        .large_file(size > ZIP64_ABOVE)
        .into_full_options();
    Ok(match u32::try_from(meta.mtime.secs) {
        Ok(secs) => options.with_extended_timestamp(Some(secs), None, None)?,
        Err(_) => options,
    })
}

/// The mtime as a DOS time: local time, as zip tools read it; 1980-01-01
/// for a time outside the years it can hold.
fn dos_time(t: Timestamp) -> zip::DateTime {
    use chrono::{Datelike, Timelike};
    let local = super::local_time(t);
    let fields = |year| {
        zip::DateTime::from_date_and_time(
            year,
            local.month() as u8,
            local.day() as u8,
            local.hour() as u8,
            local.minute() as u8,
            local.second() as u8,
        )
        .ok()
    };
    u16::try_from(local.year()).ok().and_then(fields).unwrap_or_default()
}
