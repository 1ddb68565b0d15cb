//! `backup --sha256` and `ls --sha256`: checksums anyone can check with
//! `sha256sum -c` against a restore, without snap and without reading the
//! data from the repository again.

use crate::common;

use std::fs;
use std::process::Command;

use common::*;

/// Runs `sha256sum -c LIST` in `dir`; returns (success, output).
fn sha256sum_check(dir: &std::path::Path, list: &std::path::Path) -> (bool, String) {
    let out = Command::new("sha256sum").arg("-c").arg(list).current_dir(dir).output().unwrap();
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

#[test]
fn checksums_recorded_at_backup_verify_a_restore_with_sha256sum() {
    let r = TempRepo::init();
    write_random_tree(&r.src, 41, 25, 100_000);
    let mut rng = Rng::new(42);
    write_random(&r.src.join("big.bin"), &mut rng, 40 << 20); // streamed, not read whole
    fs::write(r.src.join("odd\nname\\with.txt"), b"escaped names\n").unwrap();
    fs::write(r.src.join("empty"), b"").unwrap();
    r.backup(&["--sha256"]);

    let run = r.snap(["ls", "latest", "--sha256"]);
    run.assert_clean();
    let files = list_tree(&r.src).into_iter().filter(|p| r.src.join(p).is_file()).count();
    assert_eq!(run.stdout.lines().count(), files, "{}", run.stdout);
    let list = r.root.join("SHA256SUMS");
    fs::write(&list, &run.stdout).unwrap();

    r.snap(["restore", "latest", "--target", s(&r.target)]).assert_clean();
    let (ok, out) = sha256sum_check(&r.target, &list);
    assert!(ok, "{out}");

    // A changed byte in the restore is caught by sha256sum alone.
    let victim = r.restored(&r.target, &r.src).join("big.bin");
    let mut bytes = fs::read(&victim).unwrap();
    bytes[12345] ^= 1;
    fs::write(&victim, bytes).unwrap();
    let (ok, out) = sha256sum_check(&r.target, &list);
    assert!(!ok && out.contains("big.bin: FAILED"), "{out}");

    // JSON carries the checksum too, and it is the file's real SHA-256.
    let ls = r.json(["ls", "latest", s(&r.src.join("empty"))]);
    assert_eq!(
        ls["entries"][0]["sha256"], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "{ls}"
    );
}

#[test]
fn files_without_checksums_are_reported_and_a_later_sha256_backup_adds_them() {
    let r = TempRepo::init();
    write_random_tree(&r.src, 43, 10, 50_000);
    r.backup(&[]);
    let run = r.snap(["ls", "latest", "--sha256"]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.stderr.contains("no recorded SHA-256"), "{}", run.stderr);
    assert!(run.stdout.is_empty());

    // The parent has no checksums, so unchanged files are read once more...
    let second = r.backup(&["--sha256"]);
    assert_eq!(summary(&second, "files_read"), summary(&second, "files"), "{second}");
    r.snap(["ls", "latest", "--sha256"]).assert_clean();
    // ...and after that, unchanged files keep their checksums without being read.
    let third = r.backup(&["--sha256"]);
    assert_eq!(summary(&third, "files_read"), 0, "{third}");
    r.snap(["ls", "latest", "--sha256"]).assert_clean();
    // Without the flag, unchanged files keep the checksums they have.
    r.backup(&[]);
    r.snap(["ls", "latest", "--sha256"]).assert_clean();
}
