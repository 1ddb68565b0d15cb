//! What snap takes from and gives to its surroundings: this machine's and
//! the user's names, and the programs it starts.

/// Variables that hold passwords themselves: never passed on.
const SECRET_VARS: &[&str] = &["SNAP_PASSWORD", "SNAP_TO_PASSWORD"];

/// A program snap starts (git, a password command): everything of snap's
/// environment but the passwords, which it has no business seeing.
pub fn child_command(program: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    for var in SECRET_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// This machine's name, as recorded in snapshots and key files.
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// The user's name, as recorded in snapshots and key files.
pub fn username() -> String {
    std::env::var("USER").unwrap_or_default()
}
