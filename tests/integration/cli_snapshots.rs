//! `snap snapshots`: the list and the calendar view, as JSON and text.

use crate::common;

use std::fs;

use chrono::Datelike;
use common::*;
use serde_json::Value;

/// Year, month and ISO week labels of a snapshot's local time.
fn labels(unix_time: i64) -> (i64, String, String) {
    let t = local_date_of(unix_time);
    let iso = t.iso_week();
    (
        i64::from(t.year()),
        format!("{:04}-{:02}", t.year(), t.month()),
        format!("{:04}-W{:02}", iso.year(), iso.week()),
    )
}

#[test]
fn snapshots_json_is_empty_array_for_a_new_repository() {
    let r = TempRepo::init();
    assert_eq!(r.json(["snapshots"]), Value::Array(vec![]));
    assert_eq!(r.json(["snapshots", "--tree"]), Value::Array(vec![]));
    r.snap(["snapshots"]).assert_clean();
}

#[test]
fn snapshots_json_lists_tags_message_paths_and_summary() {
    let r = TempRepo::init();
    fs::write(r.src.join("a.txt"), b"first").unwrap();
    r.backup(&["--tag", "daily", "--tag", "work", "--message", "first run: with spaces & symbols"]);
    fs::write(r.src.join("b.txt"), b"second file").unwrap();
    r.backup(&["-m", "second"]);
    r.backup(&[]);

    let list = r.snapshots();
    assert_eq!(list.len(), 3, "{list:#?}");
    let (first, second, third) = (&list[0], &list[1], &list[2]);
    assert_eq!(first["tags"], serde_json::json!(["daily", "work"]));
    assert_eq!(first["message"], "first run: with spaces & symbols");
    assert_eq!(second["tags"], serde_json::json!([]));
    assert_eq!(second["message"], "second");
    assert!(third["message"].is_null(), "{third:#}");

    for s in &list {
        let id = s["id"].as_str().unwrap();
        assert_eq!(id.len(), 64, "{s:#}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{s:#}");
        assert_eq!(s["short_id"].as_str().unwrap(), &id[..8]);
        assert_eq!(s["paths"], serde_json::json!([s_path(&r)]));
        assert!(s["unix_time"].as_i64().is_some());
    }
    assert_eq!(first["summary"]["files"], 1);
    assert_eq!(first["summary"]["bytes"], 5);
    assert_eq!(second["summary"]["files"], 2);
    assert_eq!(second["summary"]["files_read"], 1, "a.txt comes from the parent");
    assert_eq!(second["parent"], first["id"]);
    assert_eq!(third["parent"], second["id"]);
    // Oldest first.
    assert!(first["unix_time"].as_i64() <= second["unix_time"].as_i64());
    assert!(second["unix_time"].as_i64() <= third["unix_time"].as_i64());

    // The text listing names each snapshot by its short id, with its tags.
    let run = r.snap(["snapshots"]);
    run.assert_clean();
    for s in &list {
        assert!(run.stdout.contains(s["short_id"].as_str().unwrap()), "{}", run.stdout);
    }
    assert!(run.stdout.contains("daily"), "{}", run.stdout);
}

fn s_path(r: &TempRepo) -> String {
    s(&r.src).to_owned()
}

#[test]
fn snapshots_tree_json_nests_year_month_and_iso_week() {
    let r = TempRepo::init();
    fs::write(r.src.join("a.txt"), b"data").unwrap();
    r.backup(&["--tag", "one"]);
    r.backup(&["--tag", "two"]);
    let list = r.snapshots();
    let tree = r.json(["snapshots", "--tree"]);
    let years = tree.as_array().unwrap_or_else(|| panic!("not an array: {tree:#}"));

    // Every snapshot appears exactly once, under its own year, month and week.
    let mut found = Vec::new();
    for year in years {
        let y = year["year"].as_i64().unwrap_or_else(|| panic!("year is not a number: {year:#}"));
        for month in year["months"].as_array().unwrap() {
            let m = month["month"].as_str().unwrap();
            for week in month["weeks"].as_array().unwrap() {
                let w = week["week"].as_str().unwrap();
                for snap in week["snapshots"].as_array().unwrap() {
                    let (ey, em, ew) = labels(snap["unix_time"].as_i64().unwrap());
                    assert_eq!((y, m, w), (ey, em.as_str(), ew.as_str()), "{snap:#}");
                    found.push(snap["id"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    let mut expected: Vec<String> = list.iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
    found.sort();
    expected.sort();
    assert_eq!(found, expected, "{tree:#}");
    // Tags survive into the calendar view.
    let all = tree.to_string();
    assert!(all.contains("\"one\"") && all.contains("\"two\""), "{tree:#}");
}

#[test]
fn snapshots_tree_text_shows_the_iso_week() {
    let r = TempRepo::init();
    fs::write(r.src.join("a.txt"), b"data").unwrap();
    r.backup(&[]);
    let list = r.snapshots();
    let (year, month, week) = labels(list[0]["unix_time"].as_i64().unwrap());
    assert!(week.len() == 8 && week.contains("-W"), "{week}");
    let run = r.snap(["snapshots", "--tree"]);
    run.assert_clean();
    let out = &run.stdout;
    assert!(out.lines().any(|l| l.trim() == year.to_string()), "year {year} missing:\n{out}");
    assert!(out.lines().any(|l| l.trim() == month), "month {month} missing:\n{out}");
    assert!(out.lines().any(|l| l.trim() == week), "ISO week {week} missing:\n{out}");
    assert!(out.contains(list[0]["short_id"].as_str().unwrap()), "{out}");
    // Nesting shows as indentation: year, then month, then week, then snapshots.
    let indent = |label: &str| {
        let line = out.lines().find(|l| l.trim() == label).unwrap();
        line.len() - line.trim_start().len()
    };
    assert!(indent(&year.to_string()) < indent(&month), "{out}");
    assert!(indent(&month) < indent(&week), "{out}");
}
