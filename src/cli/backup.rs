//! `snap backup`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};

use anyhow::Result;
use clap::Args;
use snap::Repository;
use snap::backend::LockMode;
use snap::ops::backup::{BackupOptions, BackupReport, ParentChoice, backup};
use snap::repo::PasswordFn;
use snap::walk::Selection;

use super::context::{EXIT_INCOMPLETE, Global};
use super::{output, progress::Bar};

#[derive(Clone, Debug, Args)]
#[command(after_long_help = "\
Examples:
  # Two directories, with a tag and a message
  snap backup ~/projects ~/.config --tag daily -m \"before upgrade\"
  # All of home, but no build output, caches, ISO images or files over 2 GiB
  snap backup ~ --exclude-preset dev --exclude '*.iso' --exclude-larger-than 2G
  # From cron: what git ignores left out, and no snapshot when nothing changed
  snap backup ~/projects --git-ignore --skip-if-unchanged --no-progress
  # The whole system disk, without /proc, /sys and other mounted file systems
  snap --repo /mnt/usb/snap backup / --one-file-system --exclude-caches
  # Also record SHA-256 checksums, for `snap ls --sha256`
  snap backup ~/photos --sha256

Exit status:
  0   the snapshot was written, or (--skip-if-unchanged) nothing had changed
  1   error
  2   usage error
  3   written, but files named on standard error could not be read
  12  wrong or missing password")]
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

pub fn run(g: &Global, a: &BackupArgs) -> Result<ExitCode> {
    let report = perform(g, a, &super::password::current)?;
    if g.json {
        output::json(&report)?;
    } else {
        print_summary(&report)?;
    }
    Ok(exit_code(&report))
}

/// 3 when some files could not be read.
pub fn exit_code(report: &BackupReport) -> ExitCode {
    if report.incomplete { ExitCode::from(EXIT_INCOMPLETE) } else { ExitCode::SUCCESS }
}

/// Runs a backup, its password (if the repository has one) from
/// `password`, and prints its warnings; the caller shows the report.
pub fn perform(g: &Global, a: &BackupArgs, password: PasswordFn<'_>) -> Result<BackupReport> {
    let loc = super::context::location(g)?;
    let backend = loc.at.backend()?;
    // The default repository is created on first use; a named one must exist.
    let repo = if loc.is_default && !backend.exists()? {
        let repo = Repository::init(backend, snap::repo::Protection::None)?;
        output::warn(&format!("created the default repository at {}", loc.at));
        repo
    } else {
        Repository::open_with(backend, LockMode::Shared, password)?
    };
    super::context::report_sync(&repo);
    let parent = match (&a.parent, a.force) {
        (_, true) => ParentChoice::Ignore,
        (Some(spec), false) => ParentChoice::Id(repo.resolve(spec)?.0),
        (None, false) => ParentChoice::Auto,
    };
    let opts = BackupOptions {
        paths: a.paths.clone(),
        tags: a.tags.clone(),
        message: a.message.clone(),
        parent,
        repository_dir: loc.dir(),
        hostname: super::env::hostname(),
        username: super::env::username(),
        selection: selection(a)?,
        skip_if_unchanged: a.skip_if_unchanged,
        sha256: a.sha256,
        extra: git_state(&a.paths),
    };
    let report = backup(&repo, &opts, &Bar::new(g))?;
    output::warnings(&report.warnings);
    Ok(report)
}

/// The state of the git work trees the sources lie in, as snapshot facts:
/// `git.root`, `git.commit`, `git.branch`, `git.dirty` for the first work
/// tree, `git2.*`, `git3.*` for further ones. Without git, nothing.
fn git_state(paths: &[PathBuf]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut roots = Vec::new();
    for path in paths {
        let dir = if path.is_dir() { path.as_path() } else { path.parent().unwrap_or(Path::new(".")) };
        let Some(root) = git(dir, &["rev-parse", "--show-toplevel"]) else { continue };
        if roots.contains(&root) {
            continue;
        }
        roots.push(root.clone());
        let prefix = if roots.len() == 1 { "git".to_owned() } else { format!("git{}", roots.len()) };
        let facts = [
            ("root", Some(root)),
            ("commit", git(dir, &["rev-parse", "HEAD"])),
            ("branch", git(dir, &["rev-parse", "--abbrev-ref", "HEAD"])),
            ("dirty", git(dir, &["status", "--porcelain"]).map(|s| (!s.is_empty()).to_string())),
        ];
        for (key, value) in facts {
            if let Some(value) = value {
                out.insert(format!("{prefix}.{key}"), value);
            }
        }
    }
    out
}

/// Output of a successful `git -C dir ARGS`, trimmed.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out =
        super::env::child_command("git").arg("-C").arg(dir).args(args).stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn selection(a: &BackupArgs) -> Result<Selection> {
    let mut excludes = a.excludes.clone();
    for name in &a.exclude_presets {
        excludes.extend(snap::walk::preset(name)?.iter().map(|p| p.to_string()));
    }
    Ok(Selection {
        excludes,
        exclude_files: a.exclude_files.clone(),
        exclude_larger_than: a.exclude_larger_than.as_deref().map(snap::walk::parse_size).transpose()?,
        exclude_caches: a.exclude_caches,
        one_file_system: a.one_file_system,
        git_ignore: a.git_ignore,
    })
}

pub fn print_summary(r: &BackupReport) -> Result<()> {
    let s = &r.summary;
    let parent = r.parent.map(|p| format!(" (parent {})", p.short())).unwrap_or_default();
    match r.snapshot {
        Some(id) => output::line(&format!("snapshot {} saved{parent}", id.short()))?,
        None => {
            output::line(&format!("nothing changed since the parent snapshot{parent}; no snapshot written"))?;
        }
    }
    output::line(&format!(
        "files: {} ({} read, {} unchanged), dirs: {}, others: {}",
        s.files,
        s.files_read,
        s.files - s.files_read,
        s.dirs,
        s.others
    ))?;
    output::line(&format!(
        "data: {} in files, {} read, {} new ({} stored) in {} pack(s), {:.1}s",
        output::bytes(s.bytes),
        output::bytes(s.bytes_read),
        output::bytes(s.new_bytes),
        output::bytes(s.new_stored_bytes),
        r.packs_written,
        s.duration_ms as f64 / 1000.0
    ))?;
    if r.incomplete {
        output::warn("some files could not be read; the snapshot lacks them (see above)");
    }
    Ok(())
}
