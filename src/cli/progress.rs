//! Draws library progress with indicatif, on a terminal only.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar on stderr, or nothing when stderr is not a terminal.
pub struct Bar {
    enabled: bool,
    state: Mutex<Option<State>>,
}

struct State {
    bar: ProgressBar,
    phase: String,
    files: u64,
    bytes: u64,
}

impl Bar {
    /// Draws only when stderr is a terminal and the user did not opt out.
    pub fn new(global: &super::context::Global) -> Self {
        let enabled = !global.no_progress && !global.json && std::io::stderr().is_terminal();
        Bar { enabled, state: Mutex::new(None) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Option<State>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl snap::Progress for Bar {
    fn begin(&self, phase: &str, total_bytes: Option<u64>) {
        if !self.enabled {
            return;
        }
        let bar = match total_bytes {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"),
            ),
        };
        bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        bar.set_message(phase.to_owned());
        *self.state() = Some(State { bar, phase: phase.to_owned(), files: 0, bytes: 0 });
    }

    fn advance(&self, files: u64, bytes: u64) {
        let mut guard = self.state();
        let Some(s) = guard.as_mut() else { return };
        if s.bar.length().is_some() {
            s.bar.inc(bytes);
            return;
        }
        s.files += files;
        s.bytes += bytes;
        s.bar.set_message(format!("{}: {} files, {} read", s.phase, s.files, super::output::bytes(s.bytes)));
    }

    fn end(&self) {
        if let Some(s) = self.state().take() {
            s.bar.finish_and_clear();
        }
    }
}
