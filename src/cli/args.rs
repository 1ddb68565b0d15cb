//! Command-line arguments (clap derive): the top-level parser and the
//! commands it dispatches to. Each command's options sit in its handler's
//! file. Secrets never come from flags.

use clap::{Parser, Subcommand};

use super::backup::BackupArgs;
use super::context::Global;
use super::copy::CopyArgs;
use super::dump::DumpArgs;
use super::find::{FindArgs, LogArgs};
use super::init::InitArgs;
use super::key::KeyCommand;
use super::prune::{ForgetArgs, PruneArgs};
use super::repair::{RepairPacksArgs, RepairSnapshotsArgs};
use super::restore::RestoreArgs;
use super::show::{DiffArgs, LsArgs, SnapshotsArgs};
use super::stats::{StatsArgs, StatusArgs};
use super::unlock::UnlockArgs;
use super::verify::VerifyArgs;
use super::watch::WatchArgs;

/// A content-addressed, deduplicating snapshot store.
#[derive(Debug, Parser)]
#[command(
    name = "snap",
    version,
    about,
    max_term_width = 100,
    long_about = "\
A content-addressed, deduplicating snapshot store.

snap keeps snapshots of files and directories in a repository: a directory on a local file \
system, or a key prefix in an S3-compatible bucket (s3://BUCKET/PREFIX). Files are cut into content-defined chunks, and each chunk is stored once, compressed \
(and encrypted, when the repository is), however many files and snapshots hold it. Each \
snapshot records a whole tree, so it never depends on another one being kept.

Every command works on one repository: the one --repo names, else SNAP_REPO, else the default \
repository in $XDG_DATA_HOME/snap (~/.local/share/snap), which the first backup creates. \
Backups, restores and the read commands share the repository, so several may run at once; \
prune, repair, key remove and key passwd take it exclusively. A command that cannot get the \
lock it needs fails at once: none waits.

Results go to standard output; warnings and errors go to standard error, as lines starting \
with `snap:`. --json prints one JSON document instead of text, and a progress bar is drawn on \
standard error when it is a terminal. `snap help COMMAND` (or `snap COMMAND --help`) describes \
a command, with examples; -h gives the short form.",
    after_long_help = "\
Examples:
  # Back up a directory into the default repository (created on first use)
  snap backup ~/projects
  # List the snapshots, then bring one directory back under /tmp/r
  snap snapshots
  snap restore latest --target /tmp/r --include /home/me/projects/app
  # Work with an encrypted repository on another disk
  snap --repo /mnt/offsite init --encryption xchacha20-poly1305
  SNAP_PASSWORD_FILE=~/.offsite-pw snap --repo /mnt/offsite backup ~/projects
  # A repository in a bucket (credentials from the AWS_* variables)
  snap --repo s3://backups/laptop init --encryption xchacha20-poly1305

Snapshot names (wherever a command takes a SNAPSHOT):
  1a2b3c4d    a unique prefix of a snapshot id, as `snap snapshots` shows it
  latest      the newest snapshot, whatever its host and paths
  latest~N    the Nth snapshot before the newest (latest~1: the one before it)
  2026-11-20  the newest snapshot taken on or before that day (local time)
  Names by time pass over the safety snapshots restore takes (tag `safety`); an id prefix \
still names one.

Environment:
  SNAP_REPO
      The repository (a directory or s3://BUCKET/PREFIX), when --repo is not given.
  XDG_DATA_HOME
      The default repository is $XDG_DATA_HOME/snap, or ~/.local/share/snap when it is unset.
  SNAP_PASSWORD
      The password of an encrypted repository.
  SNAP_PASSWORD_FILE
      A file whose first line is the password.
  SNAP_PASSWORD_COMMAND
      A command, run with `sh -c`, whose first line of output is the password.
      The first of these three that is set is used; with none, the password is asked for \
without echo when standard input is a terminal. A password is never taken from a flag: flags \
show up in `ps` and in shell histories.
  SNAP_TO_PASSWORD, SNAP_TO_PASSWORD_FILE, SNAP_TO_PASSWORD_COMMAND
      The same, for the destination repository of `snap copy`.
  TMPDIR
      Where `snap dump --format zip` builds an archive bound for a pipe.
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
      Credentials for an s3:// repository. Without them snap refuses, rather than ask an
instance-metadata service, unless SNAP_S3_INSTANCE_METADATA=1.
  AWS_REGION (or AWS_DEFAULT_REGION), AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3)
      The region (default us-east-1) and the server, for S3-compatible stores other than AWS.
  SNAP_S3_RETRY_TIMEOUT
      How long a failing request is retried with backoff before the command gives up
(default 2min).
  XDG_CACHE_HOME
      The index of an s3:// repository is kept in $XDG_CACHE_HOME/snap/<repository id>
(~/.cache/snap/...); it is rebuilt from the repository whenever it is missing.

Exit status:
  0   success
  1   error, described in one line on standard error
  2   usage error: an unknown command or option, or a bad value
  3   incomplete: a backup or restore left out files (named on standard
      error), or `ls --sha256` met files without a recorded checksum
  4   `verify` found damage
  5   `status --max-age` found no snapshot, or a host and paths whose newest
      snapshot is older than the limit
  12  wrong or missing password

See also:
  README.md  everyday use, by example
  DESIGN.md  the repository format, write ordering, locking and encryption"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

// A command's doc comment is its help: the first paragraph is what `-h` and
// the command list show, the whole comment the description `--help` shows.
// It stays on the variant, since a variant's doc comment replaces any about
// text set on its arguments' struct. Examples and exit codes are the
// struct's `after_long_help`, next to the options they use.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a repository (unencrypted unless --encryption is given)
    ///
    /// Creates an empty repository in the directory --repo or SNAP_REPO names (made if missing),
    /// or in the default location. An existing repository is never touched: init fails if there
    /// is one. It is needed only for a named repository or for encryption, since the first
    /// `snap backup` into the default repository creates it, unencrypted.
    ///
    /// With --encryption xchacha20-poly1305 everything stored is sealed with a random master key,
    /// which the password unlocks; `snap key` adds more passwords later. The password comes from
    /// SNAP_PASSWORD, SNAP_PASSWORD_FILE or SNAP_PASSWORD_COMMAND, or is asked for twice on the
    /// terminal. A repository stays the kind it was made: there is no conversion, but
    /// `snap copy` moves snapshots between an unencrypted and an encrypted repository.
    Init(InitArgs),
    /// Take a new snapshot of files and directories
    ///
    /// Reads the given files and directories, with everything below them, and stores them as a
    /// new snapshot: contents cut into chunks, each stored once however many files and snapshots
    /// share it, and each entry's metadata (type, mode, owner, times, extended attributes,
    /// symlink targets, hardlinks). Paths are recorded absolute; a relative one is taken from
    /// the current directory. When a source lies in a git work tree, the snapshot also records
    /// its commit, its branch and whether it had uncommitted changes.
    ///
    /// Only files whose size, mtime, ctime or inode differ from the parent snapshot are read.
    /// The parent is the newest snapshot of the same host and the same set of paths, or the one
    /// --parent names; --force reads everything. Nothing is left out unless an exclude option
    /// says so, and a path named on the command line is always backed up. The repository itself
    /// is skipped when a source contains it.
    ///
    /// Backup reads the sources and never writes to them, and it never changes or removes what
    /// the repository already holds. It takes the shared lock, so other backups, restores and
    /// read commands may run at the same time; it fails at once while prune, repair, key remove
    /// or key passwd holds the lock. New data is written first, in pack files, and the snapshot
    /// last: until then nothing is visible, so an interrupted backup leaves no snapshot, and
    /// the data it stored is used again by the next backup.
    ///
    /// The first backup into the default repository creates it; a repository named with --repo
    /// or SNAP_REPO must have been made with `snap init`. Files that cannot be read, or that
    /// vanish meanwhile, are left out and named in warnings: the snapshot is still written,
    /// with everything else, and the exit status is 3.
    Backup(BackupArgs),
    /// List snapshots
    ///
    /// Lists the snapshots, oldest first, one per line: short id, local time, host, number of
    /// files, total size of the files, paths, [tags] and, for a source in a git work tree, the
    /// commit (`+dirty` when it had uncommitted changes). A last line counts them and says
    /// whether the repository is encrypted. --tree groups them by year, month and ISO week
    /// instead, newest first.
    ///
    /// The filters combine: a snapshot is listed when it has one of the --tag tags, was made on
    /// one of the --host hosts, and has a source path at or below one of the --path paths
    /// (relative paths are taken from the current directory). Snapshot files that cannot be
    /// read are named in warnings, and the exit status is then 1. Takes the shared lock.
    Snapshots(SnapshotsArgs),
    /// List the files in a snapshot
    ///
    /// Lists every entry of the snapshot, or PATH and what is below it, one per line: type and
    /// mode as `ls -l` shows them, owner uid:gid, size, modification time and path, with
    /// `-> target` after a symlink. PATH is a path inside the snapshot, as it was on the
    /// machine backed up; a relative one is taken from `/`.
    ///
    /// With --sha256 it prints instead one line per file in the format `sha256sum -c` reads,
    /// for the files whose SHA-256 was recorded (`snap backup --sha256`). Paths in these lines
    /// are relative, as `snap restore` lays them out under its target, so running
    /// `sha256sum -c` in a restore's target directory checks the restore. Files without a
    /// recorded checksum are counted in a warning, and the exit status is then 3. With --json
    /// the entries are listed as JSON either way, each with its `sha256` when there is one.
    Ls(LsArgs),
    /// Show what changed between two snapshots
    ///
    /// Compares snapshot A with snapshot B (any two, not only two of the same paths) and prints
    /// one line per path that differs: `+` only in B, `-` only in A, `M` different contents (a
    /// file's data, a symlink's target, a device number), `T` a different type, `m` only the
    /// metadata differs (mode, owner, mtime, extended attributes, link count). Directories end
    /// in `/`. A summary counts each kind and the bytes of file data added and removed.
    ///
    /// With `-- PATH` only that path inside the snapshots and what is below it are compared. A
    /// directory that is the same in both snapshots is skipped without being read, so a diff
    /// costs what the change costs, not what the snapshots hold. Takes the shared lock.
    Diff(DiffArgs),
    /// Which snapshots hold paths matching a pattern
    ///
    /// Searches every snapshot, or those --snapshot names, for entries whose name matches the
    /// glob PATTERN, or whose whole path does when PATTERN contains a `/`. Prints one line per
    /// match: the snapshot, its time, the entry's type, mode, size and mtime, and its path;
    /// then how many matches were found in how many snapshots. A directory that is the same in
    /// several snapshots is searched once.
    ///
    /// Snapshots or directories that cannot be read are named in warnings, after the matches,
    /// and the exit status is then 1. Takes the shared lock.
    Find(FindArgs),
    /// The history of one path across snapshots
    ///
    /// Lists each snapshot holding PATH, oldest first, with how it compares with the version
    /// before it: added, changed (different contents: a file's data, a symlink's target, the
    /// type), unchanged (the same contents; the mode or mtime may differ), or removed (the
    /// previous snapshot of the same host and paths held it, this one does not). The last line
    /// is the `snap restore` command that brings back the newest version.
    ///
    /// Unlike the paths of ls, diff and restore, PATH is taken from the current directory when
    /// it is relative, as a path on this machine. The exit status is 1 when no snapshot holds
    /// PATH, or when some snapshot could not be read (named in a warning, after the history).
    /// Takes the shared lock.
    Log(LogArgs),
    /// Back up whenever something changes, at most once per interval, until stopped
    ///
    /// Runs `snap backup` with the given paths and options, and --skip-if-unchanged: once at
    /// the start, then whenever a file-system notification (inotify) says something below the
    /// sources changed, but at most once per --interval. Every --rescan it backs up even
    /// without a notification, since notifications can be lost and some file systems send
    /// none; when they cannot be set up at all it says so and looks every --interval instead.
    /// Changes inside the repository are ignored.
    ///
    /// Each backup opens and closes the repository, so the shared lock is held only while one
    /// runs, and prune can work in between. An encrypted repository's password is read once.
    /// If the first backup fails, watch stops with its error; a later failure (prune holding
    /// the lock, a full disk) is a warning, and the next backup is tried as usual. Files a
    /// backup cannot read are named in warnings, as by `snap backup`.
    ///
    /// Ctrl-C or SIGTERM stops it: at once while it waits, after the running backup otherwise.
    /// A second signal stops it at once, which is as safe as any interrupted backup.
    Watch(WatchArgs),
    /// Copy snapshots into another repository, storing only what it lacks
    ///
    /// Copies the named snapshots, or all of them, from this repository into the one --to
    /// names, which must exist (`snap --repo DEST init`). Snapshots the destination already
    /// has, copied before or copied from it, are skipped, so running the same copy again copies
    /// nothing. A copy keeps the original's time, host, paths, tags and message, and records
    /// which snapshot it came from.
    ///
    /// Between two unencrypted repositories the stored chunks move as they are. When either
    /// side is encrypted every file is read again and cut with the destination's own chunker,
    /// so it deduplicates against the destination's own backups. Either way the source is
    /// only read, both repositories are opened with the shared lock, and a snapshot appears in
    /// the destination only once all the data it needs is stored there.
    ///
    /// The source's password comes from SNAP_PASSWORD, SNAP_PASSWORD_FILE or
    /// SNAP_PASSWORD_COMMAND, the destination's from SNAP_TO_PASSWORD, SNAP_TO_PASSWORD_FILE or
    /// SNAP_TO_PASSWORD_COMMAND; either is asked for on the terminal when not set.
    Copy(CopyArgs),
    /// Restore a snapshot, or part of it, into a directory
    ///
    /// Writes the snapshot, or only the path --include names and what is below it, under the
    /// target directory (created if missing), at its full original path: /home/me/notes.txt
    /// comes back as TARGET/home/me/notes.txt. Contents, modes, times, symlinks, hardlinks,
    /// fifos, devices and extended attributes are restored; owners only when run as root,
    /// and devices need root too. Without root, setuid and setgid bits are left off files (one
    /// warning), since those files would run as you. Directories already in the target are
    /// merged into: restore never removes anything the snapshot does not hold.
    ///
    /// A file, symlink or other non-directory already at a restored path is replaced
    /// (--overwrite always, the default), left alone when its contents already match
    /// (if-changed; its metadata is still applied), or left untouched (never). Before anything
    /// is replaced, restore backs up exactly what it replaces (no other file of the target)
    /// into the repository it restores from, as a snapshot tagged `safety` and `pre-restore`
    /// (unless --no-safety-snapshot): whoever can read that repository can read those files; `latest`, `latest~N` and dates pass over such snapshots, so
    /// restoring `latest` twice brings back the backup, not the safety copy. --dry-run lists
    /// what would be done and writes nothing, not even the target directory.
    ///
    /// The snapshot is not trusted: its names cannot lead outside the target, nothing is
    /// written through a symlink, and a non-directory where the snapshot has a directory stops
    /// the restore before any file is written. A restore into the repository is refused.
    /// Restore takes the shared lock and writes to the repository only the safety snapshot.
    ///
    /// A file whose data is missing or damaged in the repository is not written (what was at
    /// its path stays, a partial file is removed) and is named in a warning; the rest is
    /// restored, and the exit status is 3. --verify reads back every
    /// file written and checks it against the snapshot; a mismatch is reported the same way.
    Restore(RestoreArgs),
    /// Write a snapshot, or part of it, as a tar or zip archive (stdout or --output)
    ///
    /// Paths in the archive are relative: the snapshot's absolute paths without the leading
    /// `/` (as `snap restore` lays them out), or, with PATH, relative to PATH's parent
    /// directory. Entries are streamed as the snapshot is read; only a zip for standard output
    /// or a pipe is built in a temporary file ($TMPDIR) first, as zip goes back to complete
    /// each entry's header. An archive is never written to a terminal, and --json needs
    /// --output, since standard output carries the archive.
    ///
    /// tar keeps modes (with setuid, setgid and sticky bits), numeric owners, mtimes to the
    /// second, symlinks, hardlinks, fifos and devices; names and link targets byte for byte.
    /// zip keeps modes, mtimes (a local time in two-second steps, plus UTC seconds for unzip),
    /// symlinks, and names byte for byte (flagged UTF-8 when they are); hardlinked files are
    /// stored once per name, and fifos, devices and sockets are left out with a warning, as
    /// are sockets in a tar.
    ///
    /// A file whose data is damaged or missing ends the dump with an error naming it (exit
    /// status 1): an archive cannot leave a hole. A failed dump to --output leaves no file
    /// behind. Takes the shared lock; the repository is only read.
    Dump(DumpArgs),
    /// Check that every snapshot is whole; optionally read and re-hash the data
    ///
    /// Checks that every snapshot file decodes and matches its name, that every directory a
    /// snapshot refers to can be loaded, that every chunk a snapshot needs is in the index, and
    /// that each pack's own table of contents agrees with the index. Packs no snapshot uses
    /// are counted (harmless: prune removes them).
    ///
    /// --read-data also reads every pack in full, checks it against its name, and decompresses
    /// and re-hashes every chunk. --read-data-subset reads only a share of the packs: `10%` a
    /// random tenth, `2/5` the second of five fixed parts, so runs with 1/5 to 5/5 read every
    /// pack once.
    ///
    /// Every problem is listed with the snapshots and paths it affects, and the exit status is
    /// then 4. What helps: `snap repair index` when the index disagrees with the packs, a new
    /// backup to store missing data again, `snap repair snapshots` to drop what is lost. Verify
    /// writes nothing to the repository (opening it may bring the index up to date with the
    /// packs, as every command does) and takes the shared lock, so backups may run meanwhile.
    Verify(VerifyArgs),
    /// Remove snapshots (their space is freed by the next prune)
    ///
    /// Deletes the named snapshots, and nothing else: the data they used stays in the
    /// repository until `snap prune` removes what no remaining snapshot needs. Other snapshots
    /// are not affected, since each holds its whole tree. Every name is resolved before
    /// anything is deleted, so a name that matches no snapshot deletes nothing. There is no
    /// undo. Takes the shared lock.
    Forget(ForgetArgs),
    /// Apply a retention policy and free the space of unused data
    ///
    /// Removes the snapshots that no --keep option keeps, then frees the space of data no
    /// remaining snapshot uses: packs holding nothing in use are deleted, and packs whose
    /// unused share reaches --repack-threshold are rewritten with only the data in use.
    /// Without any --keep option every snapshot is kept, and prune frees only what forgotten
    /// snapshots and interrupted backups left behind.
    ///
    /// The rules are restic's. Snapshots are grouped by host and paths, and each group is
    /// judged on its own, newest first: --keep N keeps the newest N; --keep-hourly, -daily,
    /// -weekly, -monthly and -yearly N keep the newest snapshot of each of the last N hours
    /// (days, ISO weeks, months, years) that have one; --keep-within SPAN keeps every snapshot
    /// less than SPAN older than the group's newest; --keep-tag keeps those with the tag. A
    /// snapshot any rule keeps is kept, and the output says which rules kept it.
    ///
    /// Prune takes the exclusive lock, so it fails at once while any other snap command uses
    /// the repository, and any that starts meanwhile fails. It refuses, changing nothing, when
    /// a snapshot file cannot be read or a kept snapshot needs data that is missing (see
    /// `snap verify`), and when a policy that would forget something meets a snapshot dated
    /// more than a day after this machine's clock: the rules would count it as the newest
    /// (forget it by id, or correct the clock). Data in use is in a durable, indexed pack at every moment, so an
    /// interrupted prune leaves a consistent repository. --dry-run shows the decisions and
    /// what would be freed, takes only the shared lock, and changes nothing.
    Prune(PruneArgs),
    /// Show sizes, dedup and compression ratios, and counts
    ///
    /// For all snapshots, or only those named, shows: the files, directories and other entries
    /// they hold; their logical size (the sizes of their files, summed over the snapshots);
    /// the unique data they need (each chunk once) and what it takes stored, with the
    /// directory trees; the dedup ratio (logical size over unique data) and the compression
    /// ratio (unique data over its stored size); the packs they use; and the totals of the
    /// whole repository. Each distinct directory is read once, however many snapshots hold it.
    ///
    /// Snapshots or directories that cannot be read, and chunks in no pack, are left out of
    /// the figures and named in warnings; the exit status is then 1. Takes the shared lock.
    Stats(StatsArgs),
    /// Show the last backup's age per host and paths, the lock and the index health
    ///
    /// Shows the repository (location, id, format, encryption); whether another snap process
    /// is using it, and how (shared: a backup, restore or reader; exclusive: prune or repair);
    /// the health of the index (packs missing or unreadable, new packs indexed); the number of
    /// snapshots; and, for every host and set of paths, the newest snapshot, its age and how
    /// many snapshots there are.
    ///
    /// Status never waits for the lock: it tries it and lets it go at once. While no exclusive
    /// operation runs it opens the repository as a reader, bringing the index up to date as
    /// every command does; while prune or repair holds the lock it reads only the snapshot
    /// files, which never change, and leaves the index alone.
    ///
    /// With --max-age SPAN the exit status is 5 when there is no snapshot at all, or when the
    /// newest snapshot of some host and paths is older than SPAN (marked OVERDUE and named in
    /// a warning): a check for cron or a monitoring system.
    Status(StatusArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    ///
    /// Prints on standard output a script with which the shell completes snap's commands,
    /// options and values. Save it where the shell looks for completions. No repository is
    /// opened.
    #[command(after_long_help = "\
Examples:
  # bash (bash-completion loads it when `snap` is first completed)
  snap completions bash > ~/.local/share/bash-completion/completions/snap
  # zsh: into a directory on $fpath (e.g. ~/.zfunc, with fpath+=~/.zfunc)
  snap completions zsh > ~/.zfunc/_snap
  # fish
  snap completions fish > ~/.config/fish/completions/snap.fish")]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Repair the repository
    ///
    /// Two repairs: `repair index` rebuilds the index from the packs, when it is lost,
    /// damaged or disagrees with them; `repair snapshots` rewrites the snapshots that use lost
    /// or damaged data, so that everything else in them can still be restored. Both take the
    /// exclusive lock. `snap verify` says which one is needed.
    #[command(
        subcommand,
        after_long_help = "\
Examples:
  # Find out what is wrong first
  snap verify --read-data
  # The index disagrees with the packs, or cannot be opened
  snap repair index
  # Snapshots use lost data: see what would be dropped, then drop it
  snap repair snapshots --dry-run
  snap repair snapshots"
    )]
    Repair(RepairCommand),
    /// Remove the locks of snap processes that are gone
    ///
    /// A repository in a bucket is locked with lock objects (locks/ beside the data), which
    /// name their host, process and user and are rewritten every 5 minutes while held. One
    /// whose process is gone (same kernel and pid namespace, no such process) or that the
    /// store shows not rewritten for 30 minutes is stale: it blocks nobody, and `unlock`
    /// removes it and says which. A process that could not rewrite its lock for 15 minutes
    /// (paused, suspended, cut off) commits nothing, since its lock may look stale. --all
    /// removes every lock, for when you know no snap is running (a lock from another host
    /// that is not yet stale). A local repository is locked with flock, which the system
    /// releases when a process ends, so it never has stale locks.
    #[command(after_long_help = "\
Examples:
  # See why a prune refuses, then clear what a crashed host left
  snap --repo s3://backups/laptop prune
  snap --repo s3://backups/laptop unlock
  # Every lock, once you are sure no snap uses the repository
  snap --repo s3://backups/laptop unlock --all")]
    Unlock(UnlockArgs),
    /// Manage the passwords of an encrypted repository
    ///
    /// An encrypted repository has one random master key, stored once per password in a key
    /// file (under keys/ in the repository), each copy sealed with a key derived from its
    /// password (Argon2id). Any of the passwords opens the repository. Adding, changing or
    /// removing a password writes or deletes key files only, never the data.
    ///
    /// The password in use comes from SNAP_PASSWORD, SNAP_PASSWORD_FILE or
    /// SNAP_PASSWORD_COMMAND, or is asked for on the terminal; a new one from
    /// --new-password-file, or is asked for twice. An unencrypted repository has no keys, and
    /// these commands fail on it.
    #[command(
        subcommand,
        after_long_help = "\
Examples:
  # Who made each key, and which one this password opens
  snap --repo /mnt/offsite key list
  # A second password, say for a sealed envelope in a drawer
  snap --repo /mnt/offsite key add
  # Change the password in use; the others keep working
  snap --repo /mnt/offsite key passwd
  # Remove another password's key by its id
  snap --repo /mnt/offsite key remove 3f2a9c01"
    )]
    Key(KeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum RepairCommand {
    /// Rebuild the index from the packs alone
    ///
    /// Deletes this host's index (index.sqlite under ~/.cache/snap/REPOSITORY-ID/, never in the
    /// repository, whose readers must not learn blob sizes from it) and builds it again from the table
    /// of contents at the end of every pack. The index only caches what the packs say, so
    /// nothing is lost. Run it when a command reports that the index database is damaged, or
    /// when `snap verify` finds that the index and the packs disagree.
    ///
    /// The password is checked first, so a wrong one deletes nothing; then the exclusive lock
    /// is taken, so it fails at once while any other snap command uses the repository. Packs
    /// whose table of contents cannot be read are named and left out of the index, and the
    /// exit status is then 1.
    #[command(after_long_help = "\
Examples:
  snap repair index
  # A repository on another disk, then check every pack against the new index
  snap --repo /mnt/usb/snap repair index
  snap --repo /mnt/usb/snap verify --read-data")]
    Index,
    /// Rewrite snapshots that use lost or damaged data, dropping only what is lost
    ///
    /// Runs verify's checks (with --read-data, reading all data too), then rewrites every
    /// snapshot that uses missing or damaged data: a file with a bad chunk is left out, a
    /// directory whose listing is lost becomes empty (its own metadata kept), and nothing else
    /// changes. Each new snapshot is tagged `repaired`, records the id of the one it replaces,
    /// and is written before that one is removed. Snapshot files that do not match their name
    /// or cannot be decoded are removed. Every lost path is listed.
    ///
    /// Back up again first: data still on disk is then stored anew, the snapshots using it are
    /// whole again, and repair drops only what is really gone. Takes the exclusive lock;
    /// --dry-run takes the shared lock and changes nothing.
    Snapshots(RepairSnapshotsArgs),
    /// Move the intact data out of damaged packs, then delete them
    ///
    /// `verify --read-data`, restore and prune mark every stored copy whose bytes they proved
    /// damaged; such a copy is never used again, so the next backup stores that data anew.
    /// `verify --read-data` also marks a pack whose padding (format 3) it proved damaged.
    /// This moves every other blob of those packs into new packs and deletes the damaged
    /// packs. A damaged blob with no intact copy is lost with its pack and listed: run
    /// `snap repair snapshots` afterwards to drop what uses it. Takes the exclusive lock;
    /// --dry-run takes the shared lock and changes nothing.
    #[command(after_long_help = "\
Examples:
  snap verify --read-data
  snap backup ~            # stores anew what is still on disk
  snap repair packs --dry-run
  snap repair packs
  snap repair snapshots    # drops what is really lost")]
    Packs(RepairPacksArgs),
}
