//! Shared helpers for the integration tests: a temporary repository with
//! its own source and target directories, a runner for the real `snap`
//! binary, seeded tree generators, and a bit-for-bit tree comparison.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use filetime::FileTime;
use serde_json::Value;
use tempfile::TempDir;

/// Uid and gid given to some test files (we run as root).
pub const OTHER_UID: u32 = 1234;
pub const OTHER_GID: u32 = 5678;

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

/// One finished run of `snap`.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<OsString>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn describe(&self) -> String {
        format!(
            "snap {:?}\nexit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }

    /// Asserts exit code 0 and no panic; returns self for chaining.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert_no_panic(self);
        assert_eq!(self.code, Some(0), "expected success:\n{}", self.describe());
        self
    }

    /// Asserts exit code 0 and nothing at all on stderr (no warnings).
    #[track_caller]
    pub fn assert_clean(&self) -> &Self {
        self.assert_ok();
        assert!(self.stderr.is_empty(), "expected no output on stderr:\n{}", self.describe());
        self
    }

    /// Asserts a failure (non-zero exit, not killed by a signal) reported as
    /// exactly one line `snap: ...` on stderr, without a panic. Returns the line.
    #[track_caller]
    pub fn assert_one_line_error(&self) -> &str {
        assert_no_panic(self);
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "expected a non-zero exit code:\n{}",
            self.describe()
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected exactly one line on stderr:\n{}", self.describe());
        assert!(lines[0].starts_with("snap: "), "stderr must start with `snap: `:\n{}", self.describe());
        lines[0]
    }

    /// Parses stdout as the one JSON document of a `--json` run.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.describe()))
    }
}

#[track_caller]
fn assert_no_panic(run: &Run) {
    assert!(
        !run.stderr.contains("panicked") && !run.stdout.contains("panicked"),
        "snap panicked:\n{}",
        run.describe()
    );
    assert_ne!(run.code, Some(101), "exit code 101 is Rust's panic exit code:\n{}", run.describe());
}

/// A `snap` command with a private environment: HOME and XDG_DATA_HOME point
/// into `home`, so the real user's data directory is never touched.
pub fn snap_command(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_snap"));
    cmd.env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env_remove("SNAP_REPO")
        .env_remove("SNAP_PASSWORD")
        .env_remove("SNAP_PASSWORD_FILE")
        .env_remove("SNAP_PASSWORD_COMMAND")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("NO_COLOR", "1");
    cmd
}

/// Runs a prepared command to completion.
pub fn run_command<I, S>(mut cmd: Command, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = cmd.args(&args).output().expect("run the snap binary");
    Run {
        args,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A path as `&str` (temporary paths are always UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

// ---------------------------------------------------------------------------
// A temporary repository
// ---------------------------------------------------------------------------

/// Where a test repository lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// `repo/` in the temporary directory.
    Local,
    /// A fresh key prefix in the test S3 server's bucket.
    S3,
}

/// The test S3 server, from the SNAP_TEST_S3_* variables that
/// `scripts/s3-server.sh start` prints (scripts/test.sh sets them).
#[derive(Clone, Debug)]
pub struct S3Server {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

impl S3Server {
    /// The configured server. Without one a test on S3 is skipped when run
    /// by hand, but fails under CI=true: a server that did not start must
    /// never turn into "all passed".
    pub fn from_env() -> Option<Self> {
        let server = Self::from_vars(|name| std::env::var(name).ok());
        if server.is_none() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "SNAP_TEST_S3_ENDPOINT and the other SNAP_TEST_S3_* variables are not set under CI=true: \
                 the S3 test server did not start (scripts/test.sh starts it)"
            );
            eprintln!("skipping the S3 half of this test: no SNAP_TEST_S3_* server configured");
        }
        server
    }

    /// The server the SNAP_TEST_S3_* variables describe, each looked up with
    /// `var` (in the environment, or in what `s3-server.sh start` printed).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let var = |name: &str| var(&format!("SNAP_TEST_S3_{name}")).filter(|v| !v.is_empty());
        Some(S3Server {
            endpoint: var("ENDPOINT")?,
            bucket: var("BUCKET")?,
            access_key: var("ACCESS_KEY")?,
            secret_key: var("SECRET_KEY")?,
            region: var("REGION").unwrap_or_else(|| "us-east-1".into()),
        })
    }

    /// Sets the standard AWS variables snap reads.
    pub fn configure(&self, cmd: &mut Command) {
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", &self.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_key)
            .env("AWS_REGION", &self.region)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ENDPOINT_URL_S3");
    }

    /// A client of the server's bucket, for tests that read or plant
    /// objects behind snap's back.
    pub fn store(&self) -> object_store::aws::AmazonS3 {
        let _ = rustls::crypto::ring::default_provider().install_default();
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_access_key_id(&self.access_key)
            .with_secret_access_key(&self.secret_key)
            .build()
            .expect("an S3 client")
    }

    /// A key prefix no other test (or earlier run) uses.
    pub fn fresh_url(&self) -> String {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        format!("s3://{}/t/{}-{nanos}-{n}", self.bucket, std::process::id())
    }
}

/// The storages a scenario runs on: always local, and S3 when the test
/// server is configured.
pub fn storages() -> Vec<Storage> {
    let mut all = vec![Storage::Local];
    if S3Server::from_env().is_some() {
        all.push(Storage::S3);
    }
    all
}

/// A temporary directory holding `repo/`, `src/`, `target/` and `home/`.
/// `snap` sets SNAP_REPO to `location`: `repo` for a local repository, an
/// s3:// URL on the test server otherwise (an explicit `--repo` still wins).
pub struct TempRepo {
    _dir: TempDir,
    /// The temporary directory itself (canonical).
    pub root: PathBuf,
    pub repo: PathBuf,
    /// What SNAP_REPO says.
    pub location: OsString,
    /// The S3 server, for a repository on one.
    pub s3: Option<S3Server>,
    /// Source tree to back up (created empty).
    pub src: PathBuf,
    /// Restore target (not created).
    pub target: PathBuf,
    pub home: PathBuf,
    /// Given as SNAP_PASSWORD when set.
    pub password: Option<String>,
    /// More environment for every run (test hooks).
    pub env: Vec<(String, String)>,
}

impl Default for TempRepo {
    fn default() -> Self {
        Self::new()
    }
}

impl TempRepo {
    /// Directories only; the repository is not initialised.
    pub fn new() -> Self {
        Self::new_on(Storage::Local)
    }

    /// Directories only, the repository (not initialised) on `storage`.
    pub fn new_on(storage: Storage) -> Self {
        let dir = tempfile::Builder::new().prefix("snap-it-").tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical temp dir");
        let src = root.join("src");
        let home = root.join("home");
        fs::create_dir(&src).unwrap();
        fs::create_dir(&home).unwrap();
        let s3 = match storage {
            Storage::Local => None,
            Storage::S3 => Some(S3Server::from_env().expect("an S3 test server")),
        };
        let repo = root.join("repo");
        TempRepo {
            location: s3.as_ref().map_or_else(|| repo.clone().into(), |s3| s3.fresh_url().into()),
            s3,
            repo,
            target: root.join("target"),
            src,
            home,
            root,
            password: None,
            env: Vec::new(),
            _dir: dir,
        }
    }

    /// With an initialised repository.
    pub fn init() -> Self {
        Self::init_on(Storage::Local)
    }

    /// With an encrypted repository whose password is `password`.
    pub fn init_encrypted(password: &str) -> Self {
        Self::init_encrypted_on(Storage::Local, password)
    }

    /// With an initialised repository on `storage`.
    pub fn init_on(storage: Storage) -> Self {
        let r = Self::new_on(storage);
        r.snap(["init"]).assert_clean();
        r.assert_initialised();
        r
    }

    /// With an encrypted repository on `storage` whose password is `password`.
    pub fn init_encrypted_on(storage: Storage, password: &str) -> Self {
        let mut r = Self::new_on(storage);
        r.password = Some(password.to_owned());
        r.snap(["init", "--encryption", "xchacha20-poly1305"]).assert_ok();
        r.assert_initialised();
        r
    }

    #[track_caller]
    fn assert_initialised(&self) {
        if self.s3.is_none() {
            assert!(self.repo.join("config").is_file(), "init must create repo/config");
        } else {
            self.snap(["snapshots"]).assert_ok();
        }
    }

    /// The local repository as the library opens it, with the same index
    /// cache as this repository's `snap` commands.
    pub fn local_backend(&self) -> snap::backend::local::LocalBackend {
        snap::backend::local::LocalBackend::with_cache_dir(&self.repo, self.home.join("cache/snap"))
    }

    /// The index database the `snap` commands use, found in the private
    /// cache: `<repository id>/index.sqlite` for a store,
    /// `<repository id>/local-<hash>/index.sqlite` for a directory.
    #[track_caller]
    pub fn index_file(&self) -> PathBuf {
        let only = |dir: &Path| -> PathBuf {
            let entries: Vec<PathBuf> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
            assert_eq!(entries.len(), 1, "one cache directory in {}: {entries:?}", dir.display());
            entries.into_iter().next().unwrap()
        };
        let repo_cache = only(&self.home.join("cache/snap"));
        match self.s3 {
            Some(_) => repo_cache.join("index.sqlite"),
            None => only(&repo_cache).join("index.sqlite"),
        }
    }

    /// A command with the private environment, SNAP_REPO and, when the
    /// repository has one, SNAP_PASSWORD set.
    pub fn command(&self) -> Command {
        self.command_in(&self.home)
    }

    /// The same, with HOME and the XDG directories under `home`: another
    /// user or host, with its own cache, using the same repository.
    pub fn command_in(&self, home: &Path) -> Command {
        let mut cmd = snap_command(home);
        cmd.env("SNAP_REPO", &self.location);
        if let Some(p) = &self.password {
            cmd.env("SNAP_PASSWORD", p);
        }
        if let Some(s3) = &self.s3 {
            s3.configure(&mut cmd);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// This repository's `snap` command, started through `wrapper` (a
    /// program and its arguments, e.g. `setpriv ...` or `sh -c 'ulimit
    /// ...; exec "$0" "$@"'`), which is handed the snap binary and then the
    /// arguments. The environment is the same.
    pub fn command_through(&self, wrapper: &[&str]) -> Command {
        let snap = self.command();
        let mut cmd = Command::new(wrapper[0]);
        cmd.args(&wrapper[1..]).arg(snap.get_program());
        for (key, value) in snap.get_envs() {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        cmd
    }

    /// Runs `snap ARGS` against this repository.
    pub fn snap<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_command(self.command(), args)
    }

    /// Runs `snap --json ARGS`, asserts success and parses stdout.
    #[track_caller]
    pub fn json<I, S>(&self, args: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<OsString> = vec!["--json".into()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        let run = self.snap(&all);
        run.assert_ok();
        run.json()
    }

    /// `snap --json backup SRC EXTRA...`: the report, after asserting success.
    #[track_caller]
    pub fn backup(&self, extra: &[&str]) -> Value {
        let mut args = vec!["backup", s(&self.src)];
        args.extend_from_slice(extra);
        self.json(args)
    }

    /// `snap --json snapshots`: the array, oldest first.
    #[track_caller]
    pub fn snapshots(&self) -> Vec<Value> {
        match self.json(["snapshots"]) {
            Value::Array(list) => list,
            other => panic!("snapshots --json is not an array: {other}"),
        }
    }

    /// The key prefix of a repository on S3, within its bucket.
    pub fn s3_prefix(&self) -> String {
        let bucket = &self.s3.as_ref().expect("a repository on S3").bucket;
        let url = self.location.to_str().unwrap();
        url.strip_prefix(&format!("s3://{bucket}/")).expect("an s3:// location").to_owned()
    }

    /// Where an absolute source path lands when restored into `target`.
    pub fn restored(&self, target: &Path, source: &Path) -> PathBuf {
        target.join(source.strip_prefix("/").expect("absolute source path"))
    }
}

/// `summary.<field>` of a backup report, as a number.
#[track_caller]
pub fn summary(report: &Value, field: &str) -> u64 {
    report["summary"][field].as_u64().unwrap_or_else(|| panic!("summary.{field} missing in {report:#}"))
}

/// Sum of the sizes of all files below `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = fs::symlink_metadata(entry.path()).unwrap();
        if meta.is_dir() {
            total += dir_size(&entry.path());
        } else {
            total += meta.len();
        }
    }
    total
}

/// Today's date in local time, as `snap` resolves `YYYY-MM-DD`.
pub fn local_date_of(unix_time: i64) -> chrono::DateTime<chrono::Local> {
    use chrono::TimeZone;
    chrono::Local.timestamp_opt(unix_time, 0).earliest().expect("valid local time")
}

// ---------------------------------------------------------------------------
// Seeded data
// ---------------------------------------------------------------------------

/// A small deterministic generator (SplitMix64): no `rand` needed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.fill(&mut v);
        v
    }
}

/// Writes a file of `len` random bytes.
pub fn write_random(path: &Path, rng: &mut Rng, len: usize) {
    let mut f = File::create(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len());
        rng.fill(&mut buf[..n]);
        f.write_all(&buf[..n]).unwrap();
        left -= n;
    }
}

/// A seeded tree of `files` small random files (0..=max_size bytes) spread
/// over a few nested directories, with assorted plain modes. Returns the
/// relative paths of the files written.
pub fn write_random_tree(root: &Path, seed: u64, files: usize, max_size: usize) -> Vec<PathBuf> {
    let mut rng = Rng::new(seed);
    let dirs = ["", "alpha", "alpha/beta", "alpha/beta/gamma", "delta", "delta/epsilon"];
    for d in &dirs {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    let modes = [0o644, 0o600, 0o755, 0o640, 0o444, 0o700];
    let mut written = Vec::new();
    for i in 0..files {
        let dir = dirs[rng.below(dirs.len() as u64) as usize];
        let rel = Path::new(dir).join(format!("file-{i:03}.bin"));
        let len = rng.below(max_size as u64 + 1) as usize;
        write_random(&root.join(&rel), &mut rng, len);
        let mode = modes[rng.below(modes.len() as u64) as usize];
        fs::set_permissions(root.join(&rel), fs::Permissions::from_mode(mode)).unwrap();
        written.push(rel);
    }
    written
}

/// Whether the filesystem at `dir` takes `user.*` extended attributes.
/// Only ENOTSUP counts as "no"; any other error fails the test.
pub fn xattrs_supported(dir: &Path) -> bool {
    let probe = dir.join(".xattr-probe");
    fs::write(&probe, b"").unwrap();
    let result = xattr::set(&probe, "user.probe", b"1");
    fs::remove_file(&probe).unwrap();
    match result {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTSUP.raw_os_error()) => false,
        Err(e) => panic!("setting a user xattr failed unexpectedly: {e}"),
    }
}

/// What the special-case generator could create on this system.
#[derive(Clone, Copy, Debug)]
pub struct Features {
    pub xattrs: bool,
    pub devices: bool,
}

fn mkfifo(path: &Path, mode: u32) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(mode),
        0,
    )
    .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("lchown {}: {e}", path.display()));
}

/// Every kind of file and metadata snap must restore, under `root/meta`:
/// empty file and dir, setuid/setgid/sticky bits, foreign owners, relative,
/// absolute, dangling and non-UTF-8 symlinks, hardlink groups across
/// directories, a fifo, user xattrs (values with every byte, and empty ones)
/// and, when the system allows it, a character device.
pub fn write_special_entries(root: &Path) -> Features {
    let m = root.join("meta");
    fs::create_dir_all(&m).unwrap();
    let xattrs = xattrs_supported(&m);

    fs::write(m.join("empty.txt"), b"").unwrap();
    fs::create_dir(m.join("empty_dir")).unwrap();
    fs::write(m.join("plain.txt"), b"plain contents\n").unwrap();

    // Special permission bits.
    for (name, mode) in [
        ("setuid", 0o4755),
        ("setgid", 0o2755),
        ("sticky_file", 0o1644),
        ("all_bits", 0o7777),
        ("no_perms", 0o000),
        ("read_only", 0o444),
        ("setuid_no_exec", 0o4644),
    ] {
        fs::write(m.join(name), name.as_bytes()).unwrap();
        chmod(&m.join(name), mode);
    }
    for (name, mode) in [("sticky_dir", 0o1777), ("setgid_dir", 0o2775), ("private_dir", 0o700)] {
        fs::create_dir(m.join(name)).unwrap();
        fs::write(m.join(name).join("inside"), name.as_bytes()).unwrap();
        chmod(&m.join(name), mode);
    }
    // A read-only directory with contents: restore must fill it before locking it.
    fs::create_dir(m.join("locked_dir")).unwrap();
    fs::write(m.join("locked_dir/inside"), b"locked").unwrap();
    chmod(&m.join("locked_dir"), 0o555);

    // Foreign owners: file, dir, symlink, fifo, and setuid after chown
    // (chown clears setuid, so the mode is set afterwards).
    fs::write(m.join("owned.txt"), b"owned").unwrap();
    chown(&m.join("owned.txt"), OTHER_UID, OTHER_GID);
    fs::create_dir(m.join("owned_dir")).unwrap();
    fs::write(m.join("owned_dir/child"), b"child").unwrap();
    chown(&m.join("owned_dir"), OTHER_UID, OTHER_GID);
    fs::write(m.join("owned_setuid"), b"owned setuid").unwrap();
    chown(&m.join("owned_setuid"), OTHER_UID, OTHER_GID);
    chmod(&m.join("owned_setuid"), 0o6750);
    std::os::unix::fs::symlink("owned.txt", m.join("owned_link")).unwrap();
    chown(&m.join("owned_link"), OTHER_UID, OTHER_GID);
    mkfifo(&m.join("owned_fifo"), 0o620);
    chown(&m.join("owned_fifo"), OTHER_UID, OTHER_GID);
    // Only the group differs.
    fs::write(m.join("group_only"), b"group").unwrap();
    chown(&m.join("group_only"), 0, OTHER_GID);

    // Symlinks: relative, to a directory, absolute, dangling, long, non-UTF-8.
    let l = m.join("links");
    fs::create_dir(&l).unwrap();
    std::os::unix::fs::symlink("../plain.txt", l.join("relative")).unwrap();
    std::os::unix::fs::symlink("../empty_dir", l.join("to_dir")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", l.join("absolute")).unwrap();
    std::os::unix::fs::symlink("does/not/exist", l.join("dangling")).unwrap();
    std::os::unix::fs::symlink("../../../../../../outside", l.join("dangling_up")).unwrap();
    std::os::unix::fs::symlink("x/".repeat(600), l.join("long_target")).unwrap();
    std::os::unix::fs::symlink(OsStr::from_bytes(b"bad\xfftarget"), l.join("non_utf8_target")).unwrap();

    // Hardlinks: a group of three across directories, a pair, and a file
    // with the same contents that is NOT linked (grouping is by inode).
    let h = m.join("hard");
    fs::create_dir_all(h.join("sub")).unwrap();
    fs::write(h.join("a"), b"shared contents").unwrap();
    fs::hard_link(h.join("a"), h.join("b")).unwrap();
    fs::hard_link(h.join("a"), h.join("sub/c")).unwrap();
    chmod(&h.join("a"), 0o640);
    fs::write(h.join("x"), b"pair").unwrap();
    fs::hard_link(h.join("x"), h.join("y")).unwrap();
    fs::write(h.join("same_contents_unlinked"), b"shared contents").unwrap();
    // An empty hardlinked pair.
    fs::write(h.join("empty1"), b"").unwrap();
    fs::hard_link(h.join("empty1"), h.join("empty2")).unwrap();

    mkfifo(&m.join("fifo"), 0o644);

    if xattrs {
        let all_bytes: Vec<u8> = (0..=255u8).collect();
        for p in [m.join("plain.txt"), m.join("empty_dir"), m.join("owned.txt"), h.join("a")] {
            xattr::set(&p, "user.comment", b"hello xattr").unwrap();
            xattr::set(&p, "user.binary", &all_bytes).unwrap();
            xattr::set(&p, "user.empty", b"").unwrap();
        }
        xattr::set(m.join("read_only"), "user.on_read_only", b"ro").unwrap();
        xattr::set(m.join("locked_dir"), "user.on_locked_dir", b"locked").unwrap();
    }

    // A character device like /dev/null; a container may forbid mknod.
    let dev = m.join("null_device");
    let devices = match rustix::fs::mknodat(
        rustix::fs::CWD,
        &dev,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o640),
        rustix::fs::makedev(1, 3),
    ) {
        Ok(()) => true,
        Err(rustix::io::Errno::PERM | rustix::io::Errno::ACCESS) => false,
        Err(e) => panic!("mknod {}: {e}", dev.display()),
    };

    Features { xattrs, devices }
}

/// Awkward names under `root/names`: non-UTF-8 bytes, newlines, tabs and
/// backslashes, a leading dash and space, 255-byte names (ASCII and
/// multi-byte UTF-8) and a 60-level deep directory chain.
pub fn write_name_cases(root: &Path) {
    let n = root.join("names");
    fs::create_dir_all(&n).unwrap();
    let names: [&[u8]; 7] = [
        b"bad\xffname",
        b"new\nline",
        b"tab\tand\\backslash",
        b"-leading dash",
        b" leading space",
        "caf\u{e9} \u{65e5}\u{672c}".as_bytes(),
        b"\xff\xfe\xfd",
    ];
    for (i, name) in names.iter().enumerate() {
        fs::write(n.join(OsStr::from_bytes(name)), format!("name case {i}")).unwrap();
    }
    let odd_dir = n.join(OsStr::from_bytes(b"dir\xffwith\nnewline"));
    fs::create_dir(&odd_dir).unwrap();
    fs::write(odd_dir.join(OsStr::from_bytes(b"inner\xfe")), b"inner").unwrap();

    let long_ascii = "L".repeat(255);
    fs::write(n.join(&long_ascii), b"255 ascii bytes").unwrap();
    let long_utf8 = format!("{}x", "\u{e9}".repeat(127));
    assert_eq!(long_utf8.len(), 255);
    fs::write(n.join(&long_utf8), b"255 utf-8 bytes").unwrap();

    let mut deep = n.join("deep");
    for i in 0..60 {
        deep.push(format!("level{i:02}"));
    }
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("bottom.txt"), b"sixty levels down").unwrap();
}

/// Large files under `root/big`: a multi-MiB random file, a compressible
/// one, one over 32 MiB (streamed by backup) and a 64 MiB sparse file with
/// a little data at two offsets. Returns the sparse file's path.
pub fn write_big_files(root: &Path, seed: u64) -> PathBuf {
    let b = root.join("big");
    fs::create_dir_all(&b).unwrap();
    let mut rng = Rng::new(seed);
    write_random(&b.join("random-3m.bin"), &mut rng, (3 << 20) + 123);
    let mut text = Vec::new();
    let mut i = 0u64;
    while text.len() < 2 << 20 {
        writeln!(text, "line {i:08} of a very compressible file; the same words again and again").unwrap();
        i += 1;
    }
    fs::write(b.join("compressible.txt"), &text).unwrap();
    write_random(&b.join("over-32m.bin"), &mut rng, (33 << 20) + 4567);

    let sparse = b.join("sparse.img");
    write_sparse(&sparse, seed + 1);
    sparse
}

/// A 64 MiB sparse file with 4 KiB and 5000 bytes of data at two offsets.
pub fn write_sparse(path: &Path, seed: u64) {
    use std::os::unix::fs::FileExt;
    let mut rng = Rng::new(seed);
    let f = File::create(path).unwrap();
    f.set_len(64 << 20).unwrap();
    f.write_all_at(&rng.bytes(4096), 1 << 20).unwrap();
    f.write_all_at(&rng.bytes(5000), (40 << 20) + 7).unwrap();
}

/// Gives every entry below and including `root` an explicit mtime (and
/// atime) with odd nanoseconds, children before their directory so that
/// directory times stick. Call after the tree is complete.
pub fn stamp_times(root: &Path, seed: u64) {
    let mut counter = 0u64;
    stamp(root, seed, &mut counter);
}

fn stamp(path: &Path, seed: u64, counter: &mut u64) {
    let meta = fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        for name in sorted_names(path) {
            stamp(&path.join(name), seed, counter);
        }
    }
    *counter += 1;
    let secs = 1_500_000_000 + (seed % 1000) as i64 * 100_000 + *counter as i64 * 37;
    let nanos = ((*counter * 2_654_435_761 + seed) % 500_000_000) as u32 * 2 + 1; // odd, < 1e9
    let t = FileTime::from_unix_time(secs, nanos);
    filetime::set_symlink_file_times(path, t, t).unwrap_or_else(|e| panic!("utimes {}: {e}", path.display()));
}

/// Names in a directory, sorted by bytes.
pub fn sorted_names(dir: &Path) -> Vec<OsString> {
    let mut names: Vec<OsString> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    names
}

/// Every path below `root` (relative, sorted), directories included.
pub fn list_tree(root: &Path) -> Vec<PathBuf> {
    fn go(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
        for name in sorted_names(&root.join(rel)) {
            let child = rel.join(&name);
            out.push(child.clone());
            if fs::symlink_metadata(root.join(&child)).unwrap().is_dir() {
                go(root, &child, out);
            }
        }
    }
    let mut out = Vec::new();
    go(root, Path::new(""), &mut out);
    out
}

/// Number of distinct regular-file inodes below `root`.
pub fn distinct_file_inodes(root: &Path) -> usize {
    let mut seen = std::collections::HashSet::new();
    for rel in list_tree(root) {
        let m = fs::symlink_metadata(root.join(rel)).unwrap();
        if m.is_file() {
            seen.insert((m.dev(), m.ino()));
        }
    }
    seen.len()
}

// ---------------------------------------------------------------------------
// Comparing trees
// ---------------------------------------------------------------------------

/// Asserts that `b` reproduces `a` bit for bit: the same names; for every
/// entry the same file type, permission bits (incl. setuid/setgid/sticky),
/// owner, mtime to the nanosecond (directories and symlinks too), extended
/// attributes (except `security.*`, which the kernel may assign); the same
/// contents, symlink targets and device numbers; and hardlinks grouped
/// exactly as in `a`. `a` and `b` may also be single files.
#[track_caller]
pub fn assert_trees_equal(a: &Path, b: &Path) {
    let mut errors = Vec::new();
    let mut groups_a = HashMap::new();
    let mut groups_b = HashMap::new();
    compare(a, b, Path::new(""), &mut errors, &mut groups_a, &mut groups_b);
    // Hardlink grouping: each file's "leader" is the first path (in walk
    // order) with the same inode; the leaders must agree.
    let leaders = |groups: &HashMap<(u64, u64), Vec<PathBuf>>| -> BTreeMap<PathBuf, PathBuf> {
        let mut out = BTreeMap::new();
        for paths in groups.values() {
            for p in paths {
                out.insert(p.clone(), paths[0].clone());
            }
        }
        out
    };
    let (la, lb) = (leaders(&groups_a), leaders(&groups_b));
    for (path, leader) in &la {
        match lb.get(path) {
            Some(other) if other == leader => {}
            other => errors.push(format!(
                "{}: hardlink grouping differs (source shares its inode with {}, restored with {:?})",
                path.display(),
                leader.display(),
                other
            )),
        }
    }
    if !errors.is_empty() {
        let shown = errors.len().min(40);
        panic!(
            "{} differs from {} in {} way(s):\n  {}{}",
            b.display(),
            a.display(),
            errors.len(),
            errors[..shown].join("\n  "),
            if errors.len() > shown { "\n  ..." } else { "" }
        );
    }
}

type Groups = HashMap<(u64, u64), Vec<PathBuf>>;

fn compare(a: &Path, b: &Path, rel: &Path, errors: &mut Vec<String>, ga: &mut Groups, gb: &mut Groups) {
    let shown = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    let err = |errors: &mut Vec<String>, what: String| errors.push(format!("{}: {what}", shown.display()));
    let ma = fs::symlink_metadata(a).unwrap_or_else(|e| panic!("lstat {}: {e}", a.display()));
    let mb = match fs::symlink_metadata(b) {
        Ok(m) => m,
        Err(e) => return err(errors, format!("missing from the restored tree ({e})")),
    };
    let (ta, tb) = (kind(&ma), kind(&mb));
    if ta != tb {
        return err(errors, format!("type {ta} restored as {tb}"));
    }
    if ma.mode() & 0o7777 != mb.mode() & 0o7777 {
        err(errors, format!("mode {:o} restored as {:o}", ma.mode() & 0o7777, mb.mode() & 0o7777));
    }
    if (ma.uid(), ma.gid()) != (mb.uid(), mb.gid()) {
        err(errors, format!("owner {}:{} restored as {}:{}", ma.uid(), ma.gid(), mb.uid(), mb.gid()));
    }
    if (ma.mtime(), ma.mtime_nsec()) != (mb.mtime(), mb.mtime_nsec()) {
        err(
            errors,
            format!(
                "mtime {}.{:09} restored as {}.{:09}",
                ma.mtime(),
                ma.mtime_nsec(),
                mb.mtime(),
                mb.mtime_nsec()
            ),
        );
    }
    let (xa, xb) = (xattrs_of(a), xattrs_of(b));
    if xa != xb {
        err(errors, format!("xattrs {xa:?} restored as {xb:?}"));
    }
    match ta {
        "file" => {
            if ma.len() != mb.len() {
                err(errors, format!("size {} restored as {}", ma.len(), mb.len()));
            } else if let Some(offset) = first_difference(a, b) {
                err(errors, format!("contents differ at byte {offset}"));
            }
            ga.entry((ma.dev(), ma.ino())).or_default().push(rel.to_path_buf());
            gb.entry((mb.dev(), mb.ino())).or_default().push(rel.to_path_buf());
        }
        "symlink" => {
            let (la, lb) = (fs::read_link(a).unwrap(), fs::read_link(b).unwrap());
            if la != lb {
                err(errors, format!("symlink target {la:?} restored as {lb:?}"));
            }
        }
        "char device" | "block device" if ma.rdev() != mb.rdev() => {
            err(errors, format!("device {:x} restored as {:x}", ma.rdev(), mb.rdev()));
        }
        "dir" => {
            let (na, nb) = (sorted_names(a), sorted_names(b));
            for extra in nb.iter().filter(|n| !na.contains(n)) {
                err(errors, format!("restored tree has an extra entry {extra:?}"));
            }
            for name in na {
                compare(&a.join(&name), &b.join(&name), &rel.join(&name), errors, ga, gb);
            }
        }
        _ => {}
    }
}

fn kind(m: &fs::Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_file() {
        "file"
    } else if t.is_dir() {
        "dir"
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_fifo() {
        "fifo"
    } else if t.is_char_device() {
        "char device"
    } else if t.is_block_device() {
        "block device"
    } else {
        "socket"
    }
}

/// Extended attributes of a path (not following symlinks), without
/// `security.*`; none where the filesystem has no xattr support.
pub fn xattrs_of(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTSUP.raw_os_error()) => return out,
        Err(e) => panic!("listxattr {}: {e}", path.display()),
    };
    for name in names {
        if name.as_bytes().starts_with(b"security.") {
            continue;
        }
        if let Some(value) = xattr::get(path, &name).unwrap() {
            out.insert(name.into_vec(), value);
        }
    }
    out
}

/// Offset of the first differing byte of two equally long files.
fn first_difference(a: &Path, b: &Path) -> Option<u64> {
    let (mut fa, mut fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        if ba[..na] != bb[..nb] {
            let i = ba[..na].iter().zip(&bb[..nb]).position(|(x, y)| x != y).unwrap_or(na.min(nb));
            return Some(offset + i as u64);
        }
        if na == 0 {
            return None;
        }
        offset += na as u64;
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    n
}

/// Asserts that `target` holds nothing but the chain of directories down
/// to `path` (absolute, as in the snapshot) and `path` itself: every
/// directory above it has exactly one entry.
#[track_caller]
pub fn assert_only_chain_to(target: &Path, path: &Path) {
    let mut dir = target.to_path_buf();
    for comp in path.strip_prefix("/").unwrap().components() {
        let names = sorted_names(&dir);
        assert_eq!(
            names,
            vec![comp.as_os_str().to_owned()],
            "{} should contain only {:?} on the way to {}",
            dir.display(),
            comp.as_os_str(),
            path.display()
        );
        dir.push(comp);
    }
}

// ---------------------------------------------------------------------------
// Repository files
// ---------------------------------------------------------------------------

/// Every pack file of a repository: id -> path.
pub fn pack_files(repo: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for prefix in fs::read_dir(repo.join("data")).unwrap() {
        for pack in fs::read_dir(prefix.unwrap().path()).unwrap() {
            let path = pack.unwrap().path();
            out.insert(path.file_name().unwrap().to_str().unwrap().to_owned(), path);
        }
    }
    out
}

/// Lets the owner write a (read-only) repository file.
pub fn make_writable(path: &Path) {
    let mode = fs::metadata(path).unwrap().permissions().mode();
    fs::set_permissions(path, fs::Permissions::from_mode(mode | 0o200)).unwrap();
}

/// Flips the byte at `offset` of a repository file.
pub fn flip_byte(path: &Path, offset: u64) {
    make_writable(path);
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x55;
    fs::write(path, bytes).unwrap();
}

/// The largest pack file (in these tests, the one holding file data).
pub fn largest_pack(repo: &Path) -> PathBuf {
    pack_files(repo).into_values().max_by_key(|p| fs::metadata(p).unwrap().len()).expect("a pack")
}

/// Every file under config, data/, snapshots/ and tmp/ with a hash of its
/// contents (directories as "dir"): to prove a command changed nothing.
pub fn repo_files(repo: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for top in ["config", "data", "snapshots", "tmp"] {
        let base = repo.join(top);
        if !base.exists() {
            continue;
        }
        let rels = if base.is_dir() { list_tree(&base) } else { vec![PathBuf::new()] };
        for rel in rels {
            let path = if rel.as_os_str().is_empty() { base.clone() } else { base.join(&rel) };
            let value = if path.is_dir() {
                "dir".to_owned()
            } else {
                blake3::hash(&fs::read(&path).unwrap()).to_hex().to_string()
            };
            out.insert(Path::new(top).join(rel), value);
        }
    }
    out
}

/// Commits `snapshot` as a test plants it, naming blobs already committed:
/// an empty write is the proof that they are durable.
pub fn save_snapshot(
    repo: &snap::Repository,
    snapshot: &snap::format::snapshot::Snapshot,
) -> snap::id::SnapshotId {
    let ((), _, durable) = snap::repo::BlobWriter::write(repo, |_| Ok(())).unwrap();
    durable.save_snapshot(snapshot).unwrap()
}
