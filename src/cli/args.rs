//! Command-line arguments (clap derive). Secrets never come from flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A content-addressed, deduplicating snapshot store.
#[derive(Debug, Parser)]
#[command(name = "snap", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Repository directory [default: $XDG_DATA_HOME/snap or ~/.local/share/snap]
    #[arg(long, global = true, env = "SNAP_REPO", value_name = "PATH")]
    pub repo: Option<PathBuf>,
    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Never draw a progress bar
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a repository (unencrypted unless --encryption is given)
    Init(InitArgs),
    /// Take a new snapshot of files and directories
    Backup(BackupArgs),
    /// List snapshots
    Snapshots(SnapshotsArgs),
    /// List the files in a snapshot
    Ls(LsArgs),
    /// Show what changed between two snapshots
    Diff(DiffArgs),
    /// Which snapshots hold paths matching a pattern
    Find(super::find::FindArgs),
    /// The history of one path across snapshots
    Log(super::find::LogArgs),
    /// Back up whenever something changes, at most once per interval, until stopped
    Watch(super::watch::WatchArgs),
    /// Copy snapshots into another repository, storing only what it lacks
    Copy(super::copy::CopyArgs),
    /// Restore a snapshot, or part of it, into a directory
    Restore(RestoreArgs),
    /// Write a snapshot, or part of it, as a tar or zip archive (stdout or --output)
    Dump(super::dump::DumpArgs),
    /// Check that every snapshot is whole; optionally read and re-hash the data
    Verify(VerifyArgs),
    /// Remove snapshots (their space is freed by the next prune)
    Forget(ForgetArgs),
    /// Apply a retention policy and free the space of unused data
    Prune(PruneArgs),
    /// Show sizes, dedup and compression ratios, and counts
    Stats(super::stats::StatsArgs),
    /// Show the last backup's age per host and paths, the lock and the index health
    Status(super::stats::StatusArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Repair the repository
    #[command(subcommand)]
    Repair(RepairCommand),
    /// Manage the passwords of an encrypted repository
    #[command(subcommand)]
    Key(super::key::KeyCommand),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Encrypt everything stored, with a password (from SNAP_PASSWORD,
    /// SNAP_PASSWORD_FILE, SNAP_PASSWORD_COMMAND, or asked twice)
    #[arg(long, value_enum, default_value = "none", value_name = "SCHEME")]
    pub encryption: EncryptionArg,
}

/// Encryption schemes `init` offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EncryptionArg {
    /// No encryption (format 1)
    None,
    /// XChaCha20-Poly1305 with Argon2id password keys (format 2)
    #[value(name = "xchacha20-poly1305", alias = "chacha20poly1305", alias = "chacha20-poly1305")]
    XChaCha20Poly1305,
}

#[derive(Clone, Debug, Args)]
pub struct BackupArgs {
    /// Files and directories to back up
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Tag the snapshot (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Describe the snapshot
    #[arg(long, short)]
    pub message: Option<String>,
    /// Take unchanged files from this snapshot instead of the latest matching one
    #[arg(long, value_name = "SNAPSHOT", conflicts_with = "force")]
    pub parent: Option<String>,
    /// Read every file, even those unchanged since the parent snapshot
    #[arg(long)]
    pub force: bool,
    /// Leave out paths matching a gitignore-style pattern, relative to `/`
    /// (`*.log`, `node_modules/`, `/home/me/big`; `!pattern` re-includes; repeatable)
    #[arg(long = "exclude", short = 'e', value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Read exclude patterns from a file, one per line (repeatable)
    #[arg(long = "exclude-file", value_name = "FILE")]
    pub exclude_files: Vec<PathBuf>,
    /// Leave out a named set of patterns; `dev`: build output, caches, virtualenvs,
    /// node_modules, target, .DS_Store, ... (repeatable)
    #[arg(long = "exclude-preset", value_name = "NAME")]
    pub exclude_presets: Vec<String>,
    /// Leave out files larger than SIZE (500K, 10M, 2G)
    #[arg(long, value_name = "SIZE")]
    pub exclude_larger_than: Option<String>,
    /// Leave out the contents of directories marked with a CACHEDIR.TAG file
    #[arg(long)]
    pub exclude_caches: bool,
    /// Do not descend into other file systems mounted below a source
    #[arg(long, short = 'x')]
    pub one_file_system: bool,
    /// Leave out what .gitignore files (and .git/info/exclude) ignore, as git does;
    /// a source inside a work tree also follows the work tree's files above it
    #[arg(long)]
    pub git_ignore: bool,
    /// Write no snapshot when nothing changed since the parent snapshot
    #[arg(long, conflicts_with = "force")]
    pub skip_if_unchanged: bool,
    /// Also record each file's SHA-256, for `snap ls --sha256` (files unchanged
    /// since a parent without checksums are read once more)
    #[arg(long)]
    pub sha256: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// Group by year, month and ISO week
    #[arg(long)]
    pub tree: bool,
    /// Only snapshots with this tag (repeatable: any of them)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Only snapshots made on this host (repeatable)
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Only snapshots of this path or of paths below it (repeatable)
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Snapshot: id prefix, latest, latest~N or YYYY-MM-DD
    pub snapshot: String,
    /// Only this path and what is below it
    pub path: Option<PathBuf>,
    /// Print `sha256sum -c` lines (paths relative, as restored under a target)
    /// for the files that have a recorded SHA-256 (`backup --sha256`)
    #[arg(long)]
    pub sha256: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The older snapshot
    pub a: String,
    /// The newer snapshot
    pub b: String,
    /// Compare only this path (give it after `--`)
    #[arg(last = true, value_name = "PATH")]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Snapshot: id prefix, latest, latest~N or YYYY-MM-DD
    pub snapshot: String,
    /// Directory to restore into (created if missing)
    #[arg(long, short, value_name = "DIR")]
    pub target: PathBuf,
    /// Restore only this path of the snapshot
    #[arg(long, value_name = "PATH")]
    pub include: Option<PathBuf>,
    /// Re-read every restored file and check it against the snapshot
    #[arg(long)]
    pub verify: bool,
    /// What to do with a file, symlink or other non-directory already at a restored path
    #[arg(long, value_enum, default_value = "always", value_name = "WHEN")]
    pub overwrite: super::restore::OverwriteArg,
    /// Do not first back up (tagged safety, pre-restore) what the restore replaces in the target
    #[arg(long)]
    pub no_safety_snapshot: bool,
    /// List what would be created (+), replaced (M), left unchanged (=) or skipped (s); write nothing
    #[arg(long, conflicts_with = "verify")]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Also read every pack, decompress and re-hash every chunk
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Read only a share of the packs: a percentage (10%) or a part (2/5)
    #[arg(long, value_name = "SUBSET")]
    pub read_data_subset: Option<String>,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Snapshots: id prefix, latest, latest~N or YYYY-MM-DD
    #[arg(required = true, value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Keep the newest N snapshots
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep: u32,
    /// Keep the newest snapshot of each of the last N hours
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_hourly: u32,
    /// Keep the newest snapshot of each of the last N days
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_daily: u32,
    /// Keep the newest snapshot of each of the last N ISO weeks
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_weekly: u32,
    /// Keep the newest snapshot of each of the last N months
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_monthly: u32,
    /// Keep the newest snapshot of each of the last N years
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_yearly: u32,
    /// Keep snapshots younger than this span before the newest one (30d, 2w, 6m, 1y)
    #[arg(long, value_name = "SPAN")]
    pub keep_within: Option<String>,
    /// Keep snapshots with this tag (repeatable)
    #[arg(long, value_name = "TAG")]
    pub keep_tag: Vec<String>,
    /// Show what would be removed, and why the rest is kept; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Repack packs whose unused share is at least this percentage
    #[arg(long, value_name = "PERCENT", default_value_t = 50, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub repack_threshold: u8,
}

#[derive(Debug, Subcommand)]
pub enum RepairCommand {
    /// Rebuild the index from the packs alone
    Index,
    /// Rewrite snapshots that use lost or damaged data, dropping only what is lost
    Snapshots(RepairSnapshotsArgs),
}

#[derive(Debug, Args)]
pub struct RepairSnapshotsArgs {
    /// Also read all data to find damaged chunks (otherwise: missing data only)
    #[arg(long)]
    pub read_data: bool,
    /// Show what would be dropped; change nothing
    #[arg(long)]
    pub dry_run: bool,
}
