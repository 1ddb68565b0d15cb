//! `--help` is each command's manual: a description, examples of the command
//! itself and its special exit codes, within 100 columns however wide the
//! terminal; `-h` stays a short summary.

use std::process::Command;

/// Clap's `max_term_width`: no help line may be wider.
const MAX_WIDTH: usize = 100;

/// Commands that end with a code of their own, and that code.
const SPECIAL_EXIT_CODES: [(&str, &str); 5] =
    [("backup", "3"), ("restore", "3"), ("ls", "3"), ("verify", "4"), ("status", "5")];

/// Output of a successful `snap ARGS`, as on a terminal wider than the help may be.
fn snap(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_snap")).args(args).env("COLUMNS", "200").output().unwrap();
    assert!(out.status.success(), "snap {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `snap COMMAND... FLAG`, e.g. `snap key add --help`.
fn help_of(command: &[String], flag: &str) -> String {
    snap(&command.iter().map(String::as_str).chain([flag]).collect::<Vec<_>>())
}

/// The commands listed under `Commands:`, without `help`. Wrapped summaries
/// continue on lines indented further, so only two-space lines start a name.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.strip_prefix("  ").filter(|rest| !rest.starts_with(' ')))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// The lines of the section headed `heading`, up to the next blank line.
fn section<'a>(help: &'a str, heading: &str) -> Vec<&'a str> {
    let mut lines = help.lines().skip_while(|l| *l != heading);
    assert!(lines.next().is_some(), "no {heading} section in:\n{help}");
    lines.take_while(|l| !l.is_empty()).collect()
}

#[track_caller]
fn assert_fits(help: &str, what: &str) {
    for line in help.lines() {
        assert!(
            line.chars().count() <= MAX_WIDTH,
            "`{what}` has a line of {} columns:\n{line}",
            line.chars().count()
        );
    }
}

/// Every command path, nested ones (`key add`) included, with its long help.
fn every_command() -> Vec<(Vec<String>, String)> {
    let mut pending: Vec<Vec<String>> =
        subcommands(&snap(&["--help"])).into_iter().map(|c| vec![c]).collect();
    let mut out = Vec::new();
    while let Some(path) = pending.pop() {
        let help = help_of(&path, "--help");
        let via_help: Vec<&str> = ["help"].into_iter().chain(path.iter().map(String::as_str)).collect();
        assert_eq!(help, snap(&via_help), "`snap help {}` differs from --help", path.join(" "));
        pending.extend(subcommands(&help).into_iter().map(|c| [path.clone(), vec![c]].concat()));
        out.push((path, help));
    }
    out
}

#[test]
fn every_command_has_a_manual_with_examples_of_itself() {
    let commands = every_command();
    for name in ["backup", "restore", "key add", "repair snapshots", "completions"] {
        assert!(commands.iter().any(|(path, _)| path.join(" ") == name), "{name} was not found");
    }
    for (path, help) in &commands {
        let name = path.join(" ");
        assert_fits(help, &format!("snap {name} --help"));
        // The summary, then at least one paragraph of description before the usage.
        let description = help.split("\nUsage:").next().unwrap();
        assert!(description.trim().split("\n\n").count() >= 2, "`snap {name} --help` has no description");
        let examples = section(help, "Examples:");
        let runs_itself =
            examples.iter().any(|l| l.trim_start().contains("snap ") && l.contains(&format!(" {name}")));
        assert!(runs_itself, "the examples of `snap {name}` never run it:\n{}", examples.join("\n"));

        let short = help_of(path, "-h");
        assert_fits(&short, &format!("snap {name} -h"));
        assert!(!short.contains("Examples:"), "`snap {name} -h` shows the examples");
        assert!(short.lines().count() < help.lines().count(), "`snap {name} -h` is not shorter than --help");
    }
}

#[test]
fn special_exit_codes_are_in_their_commands_help() {
    for (command, code) in SPECIAL_EXIT_CODES {
        let status = section(&snap(&[command, "--help"]), "Exit status:")
            .into_iter()
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
            .collect::<Vec<_>>();
        for listed in ["0", "1", "2", code, "12"] {
            assert!(status.iter().any(|c| c == listed), "`snap {command} --help` does not explain {listed}");
        }
    }
}

#[test]
fn top_level_help_lists_the_environment_exit_codes_and_documents() {
    let help = snap(&["--help"]);
    assert_fits(&help, "snap --help");
    let environment = section(&help, "Environment:").join("\n");
    for var in [
        "SNAP_REPO",
        "XDG_DATA_HOME",
        "SNAP_PASSWORD",
        "SNAP_PASSWORD_FILE",
        "SNAP_PASSWORD_COMMAND",
        "SNAP_TO_PASSWORD",
        "SNAP_TO_PASSWORD_FILE",
        "SNAP_TO_PASSWORD_COMMAND",
    ] {
        assert!(environment.split([' ', ',', '\n']).any(|w| w == var), "{var} is not explained");
    }
    let codes: Vec<&str> =
        section(&help, "Exit status:").iter().filter_map(|l| l.split_whitespace().next()).collect();
    for code in ["0", "1", "2", "3", "4", "5", "12"] {
        assert!(codes.contains(&code), "exit code {code} is not explained");
    }
    assert!(help.contains("README.md") && help.contains("DESIGN.md"));
    let short = snap(&["-h"]);
    assert!(!short.contains("Environment:"));
    assert!(short.lines().count() < help.lines().count());
}
