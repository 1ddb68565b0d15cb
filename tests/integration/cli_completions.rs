//! `snap completions SHELL` prints a script the shell accepts.

use std::process::Command;

fn completions(shell: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_snap")).args(["completions", shell]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_completion_is_valid_bash_and_knows_the_commands() {
    let script = completions("bash");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap.bash");
    std::fs::write(&path, &script).unwrap();
    let check = Command::new("bash").arg("-n").arg(&path).status().unwrap();
    assert!(check.success(), "bash -n rejected the script");
    for word in ["backup", "restore", "prune", "--exclude-preset", "--keep-daily"] {
        assert!(script.contains(word), "{word} missing from the bash completion");
    }
}

#[test]
fn zsh_and_fish_scripts_are_generated() {
    assert!(completions("zsh").starts_with("#compdef snap"));
    assert!(completions("fish").contains("complete -c snap"));
}
