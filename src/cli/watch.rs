//! `snap watch PATH... --interval 1h`: a backup whenever something below the
//! sources changed, at most once per interval. File-system notifications say
//! when to look; every `--rescan` a backup runs even without one (events can
//! be lost, and some file systems send none). Each run is an ordinary backup
//! with `--skip-if-unchanged`, opened and closed each time, so the lock is
//! held only while a backup runs and prune can work in between. Ctrl-C or
//! SIGTERM stops it cleanly: at once while waiting, after the running backup
//! otherwise; a second signal stops it at once (a backup interrupted
//! anywhere leaves a consistent repository).

use std::cell::RefCell;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use snap::crypto::keyfile::Password;
use snap::walk::{Change, ChangeWatcher};

// watch runs backups: the one handler that uses another.
use super::backup::{self, BackupArgs};
use super::context::Global;
use super::{output, password};

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  # Back up ~/projects within an hour of a change, and at least once a day
  snap watch ~/projects --interval 1h --exclude-preset dev
  # At most every 10 minutes, and at least every 6 hours without a notification
  snap watch ~/notes ~/.config --interval 10m --rescan 6h
  # Into an encrypted repository; the password is read once, at the first backup
  SNAP_PASSWORD_FILE=~/.offsite-pw snap --repo /mnt/offsite watch ~/projects

Exit status:
  0   stopped by Ctrl-C or SIGTERM
  1   error (such as a failed first backup), or a second signal stopped it
  2   usage error
  12  wrong or missing password")]
pub struct WatchArgs {
    /// Least time between two backups (30s, 10m, 1h, 1day)
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub interval: String,
    /// Back up at least this often even when no change was notified
    #[arg(long, default_value = "1day", value_name = "DURATION")]
    pub rescan: String,
    #[command(flatten)]
    pub backup: BackupArgs,
}

/// How often the stop flag is looked at while waiting.
const TICK: Duration = Duration::from_millis(250);

pub fn run(g: &Global, a: &WatchArgs) -> Result<ExitCode> {
    let interval = parse_duration(&a.interval, "--interval")?;
    let mut rescan = parse_duration(&a.rescan, "--rescan")?.max(interval);
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The second signal ends the process at once (exit code 1).
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))?;
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    for path in &a.backup.paths {
        std::fs::symlink_metadata(path).with_context(|| format!("cannot watch {}", path.display()))?;
    }
    let repo_dir = super::context::location(g)?.dir();
    let watcher = match ChangeWatcher::new(&a.backup.paths, repo_dir.as_deref()) {
        Ok(w) => Some(w),
        Err(e) => {
            output::warn(&format!("{e:#}; checking every interval instead"));
            rescan = interval;
            None
        }
    };
    let args = BackupArgs { skip_if_unchanged: true, ..a.backup.clone() };
    // Asked once: a prompt (or a password command) every hour would not do.
    let cached: RefCell<Option<Password>> = RefCell::new(None);
    let password = || -> snap::Result<Password> {
        if let Some(p) = cached.borrow().as_ref() {
            return Ok(p.clone());
        }
        let p = password::current()?;
        *cached.borrow_mut() = Some(p.clone());
        Ok(p)
    };
    let mut last: Option<Instant> = None;
    let mut changed = true;
    // With --json, stdout holds one document: every backup's report, given
    // when the watch stops.
    let mut reports = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let since = last.map(|t| t.elapsed());
        let due = since.is_none_or(|s| s >= interval);
        if due && (changed || since.is_none_or(|s| s >= rescan)) {
            let first = last.is_none();
            match backup::perform(g, &args, &password) {
                Ok(report) if g.json => reports.push(report),
                Ok(report) => backup::print_summary(&report)?,
                // A first failure is a setup mistake: stop. Later ones (a
                // prune holding the lock, a full disk) may pass: retry.
                Err(e) if first => return Err(e).context("the first backup failed"),
                Err(e) => output::warn(&format!("backup failed, will retry: {e:#}")),
            }
            last = Some(Instant::now());
            changed = false;
        }
        match &watcher {
            Some(w) => match w.wait(TICK) {
                Change::Seen => changed = true,
                Change::Quiet => {}
                Change::Lost(why) => {
                    output::warn(&format!(
                        "change notifications lost ({why}); backing up at the next interval"
                    ));
                    changed = true;
                }
            },
            None => std::thread::sleep(TICK),
        }
    }
    if g.json {
        output::json(&serde_json::json!({ "backups": reports, "stopped": true }))?;
    } else {
        output::line("stopped")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_duration(text: &str, flag: &str) -> Result<Duration> {
    let d = humantime::parse_duration(text)
        .with_context(|| format!("{flag} {text:?} is not a duration (30s, 10m, 1h)"))?;
    anyhow::ensure!(!d.is_zero(), "{flag} must be longer than zero");
    Ok(d)
}
