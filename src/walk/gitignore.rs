//! `--git-ignore`: the `.gitignore` files of the directories being backed
//! up, applied as git applies them. Each directory's file is matched against
//! paths below it; a deeper file overrides a shallower one (its `!pattern`
//! re-includes what a parent excluded), and a work tree's
//! `.git/info/exclude` applies like a `.gitignore` at its root. A source
//! inside a work tree also gets the files of its parent directories up to
//! the work tree's root, so `snap backup proj/src --git-ignore` leaves out
//! what `git status` in `proj` would.

use std::path::Path;
use std::sync::Arc;

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::dirfd::Dir;

/// The ignore files of a directory, as the names that lead to them from it.
const IGNORE_FILES: [&[&str]; 2] = [&[".gitignore"], &[".git", "info", "exclude"]];

/// The ignore files in force for one directory, innermost first. Cheap to
/// clone: directories share their parents' matchers.
#[derive(Clone, Debug, Default)]
pub struct GitIgnores(Option<Arc<Level>>);

#[derive(Debug)]
struct Level {
    matcher: Gitignore,
    parent: Option<Arc<Level>>,
}

impl GitIgnores {
    /// The ignore files above a source: when it lies inside a work tree,
    /// those from the work tree root down to its parent directory (the
    /// source's own is read when it is entered). Problems reading a file (a
    /// bad pattern) are returned, not fatal.
    pub fn above_source(source: &Path) -> (Self, Vec<String>) {
        let chain: Vec<&Path> = source.ancestors().collect();
        let top = chain.iter().position(|d| d.join(".git").exists()).unwrap_or(0);
        let mut ignores = GitIgnores::default();
        let mut problems = Vec::new();
        let above: &[&Path] = if top > 0 { &chain[1..=top] } else { &[] };
        for d in above.iter().rev() {
            let Ok(open) = Dir::open_root(d, true) else { continue };
            let (next, problem) = ignores.enter(d, &open);
            ignores = next;
            problems.extend(problem);
        }
        (ignores, problems)
    }

    /// The ignore files for `dir` (open as `open`), a directory below the
    /// current one. They are read through the directory's descriptor.
    pub fn enter(&self, dir: &Path, open: &Arc<Dir>) -> (Self, Option<String>) {
        let mut b = GitignoreBuilder::new(dir);
        let mut found = false;
        let mut problem = None;
        for names in IGNORE_FILES {
            let Some(read) = super::read_small_file(open, names) else { continue };
            found = true;
            let file = names.iter().fold(dir.to_path_buf(), |p, n| p.join(n));
            let bytes = match read {
                Ok(bytes) => bytes,
                Err(e) => {
                    problem = Some(format!("{}: {e}", file.display()));
                    continue;
                }
            };
            // As git reads it: UTF-8, a byte order mark at the start ignored.
            let text = String::from_utf8_lossy(&bytes);
            for line in text.trim_start_matches('\u{feff}').lines() {
                if let Err(e) = b.add_line(Some(file.clone()), line) {
                    problem = Some(format!("{}: {e}", file.display()));
                }
            }
        }
        if !found {
            return (self.clone(), None);
        }
        match b.build() {
            Ok(matcher) => (GitIgnores(Some(Arc::new(Level { matcher, parent: self.0.clone() }))), problem),
            Err(e) => (self.clone(), Some(format!("{}: {e}", dir.display()))),
        }
    }

    /// Whether `path` (inside the directory these apply to) is ignored.
    pub fn ignores(&self, path: &Path, is_dir: bool) -> bool {
        let mut level = self.0.as_deref();
        while let Some(l) = level {
            match l.matcher.matched(path, is_dir) {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => level = l.parent.as_deref(),
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn open(dir: &Path) -> Arc<Dir> {
        Dir::open_root(dir, false).unwrap()
    }

    #[test]
    fn deeper_files_override_and_work_tree_parents_apply() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join(".git/info")).unwrap();
        fs::create_dir_all(root.join("src/gen")).unwrap();
        fs::write(root.join(".gitignore"), "*.o\nbuild/\n").unwrap();
        fs::write(root.join(".git/info/exclude"), "secret.txt\n").unwrap();
        fs::write(root.join("src/gen/.gitignore"), "!keep.o\n").unwrap();

        // A source inside the work tree sees the root's patterns.
        let (above, problems) = GitIgnores::above_source(&root.join("src"));
        let (src, _) = above.enter(&root.join("src"), &open(&root.join("src")));
        assert!(problems.is_empty(), "{problems:?}");
        assert!(src.ignores(&root.join("src/a.o"), false));
        assert!(src.ignores(&root.join("src/build"), true));
        assert!(!src.ignores(&root.join("src/build"), false), "build/ names directories only");
        assert!(src.ignores(&root.join("src/secret.txt"), false));
        assert!(!src.ignores(&root.join("src/a.c"), false));

        let (gen_dir, _) = src.enter(&root.join("src/gen"), &open(&root.join("src/gen")));
        assert!(!gen_dir.ignores(&root.join("src/gen/keep.o"), false), "re-included deeper");
        assert!(gen_dir.ignores(&root.join("src/gen/other.o"), false));
    }

    #[test]
    fn outside_a_work_tree_only_the_directory_s_own_file_counts() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("a")).unwrap();
        fs::write(dir.path().join(".gitignore"), "*.log\n").unwrap();
        let (above, _) = GitIgnores::above_source(&dir.path().join("a"));
        let (a, _) = above.enter(&dir.path().join("a"), &open(&dir.path().join("a")));
        assert!(!a.ignores(&dir.path().join("a/x.log"), false));
        // A work tree root as the source: nothing above it applies.
        fs::create_dir(dir.path().join("a/.git")).unwrap();
        let (above, _) = GitIgnores::above_source(&dir.path().join("a"));
        assert!(!above.ignores(&dir.path().join("a/x.log"), false));
    }
}
