//! Text and JSON output. Writes go through `io::Result` so a closed pipe
//! ends the program quietly instead of panicking.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

/// Prints one line on stdout.
pub fn line(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(())
}

/// Prints raw bytes on stdout (file names need not be UTF-8).
pub fn raw(bytes: &[u8]) -> Result<()> {
    std::io::stdout().lock().write_all(bytes)?;
    Ok(())
}

/// Prints `value` as the command's one JSON document.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Prints a warning on stderr.
pub fn warn(text: &str) {
    error_line(&format!("warning: {text}"));
}

/// Writes `snap: LINE` to stderr. A stderr that cannot be written (closed,
/// a full disk) is given up on quietly: `eprintln!` would panic there, and
/// the exit code still tells.
pub fn error_line(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "snap: {line}");
}

/// Prints per-path warnings from a report.
pub fn warnings(list: &[snap::ops::Warning]) {
    for w in list {
        warn(&format!("{}: {}", w.path, w.message));
    }
}

/// Bytes for people: `1.5 MiB`.
pub fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// A time for people, in the local time zone: `2026-11-22 07:40:00`.
pub fn time(secs: i64) -> String {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_opt(secs, 0)
        .earliest()
        .map_or_else(|| secs.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}
