//! Where passwords come from: `SNAP_PASSWORD`, `SNAP_PASSWORD_FILE`,
//! `SNAP_PASSWORD_COMMAND` (first one set wins), else a prompt without echo
//! when stdin is a terminal. Never from a flag: flags show up in `ps` and
//! shell history. New passwords (for `init` and `key add|passwd`) come from
//! `--new-password-file` or a prompt asked twice; `init` also takes the
//! same variables as every other command, so scripts need only one. The
//! destination of `snap copy` has its own: `SNAP_TO_PASSWORD`,
//! `SNAP_TO_PASSWORD_FILE`, `SNAP_TO_PASSWORD_COMMAND`.

use std::io::IsTerminal;
use std::path::Path;
use std::process::Stdio;

use zeroize::Zeroizing;

use snap::Error;
use snap::crypto::keyfile::{KeyOwner, Password};

/// The password of an encrypted repository being opened.
pub fn current() -> snap::Result<Password> {
    from_env_or_prompt("SNAP_PASSWORD", "password: ")
}

/// The password of `snap copy`'s destination.
pub fn destination() -> snap::Result<Password> {
    from_env_or_prompt("SNAP_TO_PASSWORD", "password of the destination repository: ")
}

fn from_env_or_prompt(var: &str, question: &str) -> snap::Result<Password> {
    if let Some(p) = from_env(var)? {
        return Ok(p);
    }
    match prompt(question) {
        Err(Error::PasswordRequired(_)) => Err(Error::PasswordRequired(format!(
            "the repository is encrypted; set {var}, {var}_FILE or {var}_COMMAND, or run in a terminal"
        ))),
        other => non_empty(other?),
    }
}

/// A password given by the variables `var`, `var_FILE` or `var_COMMAND`.
fn from_env(var: &str) -> snap::Result<Option<Password>> {
    if let Some(p) = std::env::var_os(var) {
        let p = p.into_string().map_err(|_| Error::InvalidInput(format!("{var} is not UTF-8")))?;
        return non_empty(Password::new(p)).map(Some);
    }
    let file_var = format!("{var}_FILE");
    if let Some(path) = std::env::var_os(&file_var) {
        return read_file(Path::new(&path), &file_var).map(Some);
    }
    let command_var = format!("{var}_COMMAND");
    if let Some(cmd) = std::env::var_os(&command_var) {
        return run_command(&cmd, &command_var).map(Some);
    }
    Ok(None)
}

fn non_empty(p: Password) -> snap::Result<Password> {
    if p.is_empty() { Err(Error::InvalidInput("the password is empty".into())) } else { Ok(p) }
}

/// The first line of a file (a trailing newline is not part of it).
fn read_file(path: &Path, what: &str) -> snap::Result<Password> {
    let text = Password::new(std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?);
    first_line(&text).map_err(|_| Error::InvalidInput(format!("{what} {} is empty", path.display())))
}

/// The first line a shell command prints.
fn run_command(cmd: &std::ffi::OsStr, var: &str) -> snap::Result<Password> {
    let out = super::env::child_command("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::InvalidInput(format!("{var} could not run: {e}")))?;
    // Wiped on every way out, a failed run's output too.
    let printed = Zeroizing::new(out.stdout);
    if !out.status.success() {
        return Err(Error::InvalidInput(format!("{var} failed ({})", out.status)));
    }
    let text = std::str::from_utf8(&printed)
        .map_err(|_| Error::InvalidInput(format!("{var} printed bytes that are not UTF-8")))?;
    first_line(text)
}

fn first_line(text: &str) -> snap::Result<Password> {
    non_empty(Password::new(text.lines().next().unwrap_or_default().to_owned()))
}

fn prompt(question: &str) -> snap::Result<Password> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::PasswordRequired("not asking: stdin is not a terminal".into()));
    }
    rpassword::prompt_password(question)
        .map(Password::new)
        .map_err(|e| Error::InvalidInput(format!("cannot read the password: {e}")))
}

/// The password for a new repository: the environment, else asked twice.
pub fn for_init() -> snap::Result<Password> {
    match from_env("SNAP_PASSWORD")? {
        Some(p) => Ok(p),
        None => new(None).map_err(|e| match e {
            Error::PasswordRequired(_) => Error::PasswordRequired(
                "set SNAP_PASSWORD, SNAP_PASSWORD_FILE or SNAP_PASSWORD_COMMAND, or run in a terminal".into(),
            ),
            other => other,
        }),
    }
}

/// A new password: the first line of `file`, else asked twice.
pub fn new(file: Option<&Path>) -> snap::Result<Password> {
    if let Some(path) = file {
        return read_file(path, "new password file");
    }
    let first = match prompt("new password: ") {
        Err(Error::PasswordRequired(_)) => {
            return Err(Error::PasswordRequired(
                "give --new-password-file FILE, or run in a terminal".into(),
            ));
        }
        other => non_empty(other?)?,
    };
    let again = prompt("repeat the new password: ")?;
    if *first != *again {
        return Err(Error::InvalidInput("the passwords do not match".into()));
    }
    Ok(first)
}

/// Who is adding a key, for `snap key list`.
pub fn owner() -> KeyOwner {
    KeyOwner { hostname: super::env::hostname(), username: super::env::username() }
}
