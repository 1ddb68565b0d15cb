//! What a snapshot records about itself, and how `snapshots` filters by it:
//! tags, message, host, paths, and the state of a git work tree.

use crate::common;

use std::fs;
use std::process::Command;

use common::{TempRepo, s};
use serde_json::Value;

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .expect("git is installed");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_git_work_tree_records_commit_branch_and_dirtiness() {
    let r = TempRepo::init();
    git(&r.src, &["init", "-q", "-b", "main"]);
    fs::write(r.src.join("code.rs"), "fn main() {}\n").unwrap();
    git(&r.src, &["add", "."]);
    git(&r.src, &["commit", "-q", "-m", "first"]);
    let commit = git(&r.src, &["rev-parse", "HEAD"]);
    r.backup(&[]);
    fs::write(r.src.join("code.rs"), "fn main() { todo() }\n").unwrap();
    r.backup(&[]);
    let list = r.snapshots();
    let extra = |i: usize| list[i]["extra"].clone();
    assert_eq!(extra(0)["git.commit"], Value::from(commit.clone()));
    assert_eq!(extra(0)["git.branch"], "main");
    assert_eq!(extra(0)["git.dirty"], "false");
    assert_eq!(extra(0)["git.root"], Value::from(s(&r.src)));
    assert_eq!(extra(1)["git.dirty"], "true");
    let text = r.snap(["snapshots"]);
    assert!(text.stdout.contains(&format!("git {}+dirty", &commit[..8])), "{}", text.stdout);
}

#[test]
fn outside_a_git_work_tree_nothing_is_recorded() {
    let r = TempRepo::init();
    fs::write(r.src.join("f"), "x").unwrap();
    r.backup(&[]);
    assert_eq!(r.snapshots()[0]["extra"], serde_json::json!({}));
}

#[test]
fn snapshots_filter_by_tag_host_and_path() {
    let r = TempRepo::init();
    let (a, b) = (r.src.join("a"), r.src.join("b"));
    fs::create_dir(&a).unwrap();
    fs::create_dir(&b).unwrap();
    r.json(["backup", s(&a), "--tag", "daily", "--message", "first of a"]);
    r.json(["backup", s(&b), "--tag", "weekly"]);
    r.json(["backup", s(&a)]);
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["snapshots"];
        all.extend_from_slice(args);
        r.json(all)
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["message"].to_string() + &s["tags"].to_string())
            .collect()
    };
    assert_eq!(ids(&["--tag", "daily"]), ["\"first of a\"[\"daily\"]"]);
    assert_eq!(ids(&["--tag", "daily", "--tag", "weekly"]).len(), 2);
    assert_eq!(ids(&["--path", s(&a)]).len(), 2);
    assert_eq!(ids(&["--path", s(&r.src)]).len(), 3, "a path matches the snapshots of paths below it");
    let host = r.snapshots()[0]["hostname"].as_str().unwrap().to_owned();
    assert_eq!(ids(&["--host", &host]).len(), 3);
    assert!(ids(&["--host", "no-such-host"]).is_empty());
}
