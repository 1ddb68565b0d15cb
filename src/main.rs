//! The `snap` command: parses arguments, runs one command through the
//! library, and turns any error into one line on stderr and an exit code.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    fixed_mmap_threshold();
    let args = cli::args::Cli::parse();
    // Repository files (and SQLite's -wal/-shm) must be private to their owner.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    match cli::run(&args) {
        Ok(code) => code,
        Err(e) if cli::context::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            cli::output::error_line(&format!("{e:#}"));
            ExitCode::from(cli::context::exit_code_of(&e))
        }
    }
}

/// glibc serves large allocations from its heap once it has seen them
/// freed (it raises the mmap threshold up to 32 MiB as it goes), and the
/// multi-megabyte buffers of a backup (file data, chunks, packs) then stay
/// resident in fragmented per-thread arenas: a first backup of 2.2 GB
/// peaked at 120-130 MiB. A fixed threshold keeps buffers of 4 MiB and up
/// in their own mappings, returned on free: 80 MiB, at no measurable cost
/// in time (BENCHMARKS.md).
#[cfg(target_env = "gnu")]
fn fixed_mmap_threshold() {
    // SAFETY: mallopt only sets an allocator parameter; it is called before
    // any thread exists, and a refusal (return 0) just keeps the default.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

#[cfg(not(target_env = "gnu"))]
fn fixed_mmap_threshold() {}
