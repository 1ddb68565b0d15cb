#!/usr/bin/env python3
"""Source trees of the compatibility fixtures (tests/compat/format*).

    tree.py populate DIR STATE   write state 1 or 2 of the source tree into DIR
    tree.py describe DIR         print what restoring DIR must give, as JSON

Everything is deterministic: contents come from SHA-256 chains, every
entry's mtime is fixed, and modes are set explicitly, so the same commands
make the same tree on any machine. `describe` reads the tree back from the
disk (lstat, readlink, SHA-256), it does not repeat what `populate` meant to
write. Paths are relative to DIR; names are raw bytes, so every entry has
`path_hex` (the exact bytes) beside `path` (lossy, for people).
"""

import hashlib
import json
import os
import shutil
import stat
import sys

# 2026-01-02T03:04:05Z and later, whole seconds.
BASE_TIME = 1767323045


def pseudo_random(seed: bytes, length: int) -> bytes:
    out = bytearray()
    block = hashlib.sha256(seed).digest()
    while len(out) < length:
        out += block
        block = hashlib.sha256(block).digest()
    return bytes(out[:length])


def text(lines: int, word: str) -> bytes:
    return "".join(f"{word} line {i:04} of a compressible text file\n" for i in range(lines)).encode()


# name (bytes, relative), kind, payload
STATE_1 = [
    (b"README.txt", "file", text(60, "readme"), 0o644),
    (b"data/random.bin", "file", pseudo_random(b"snap compat random", 24 * 1024), 0o600),
    # The same bytes again: stored once (one chunk, deduplicated).
    (b"data/copy-of-random.bin", "file", pseudo_random(b"snap compat random", 24 * 1024), 0o640),
    (b"empty", "file", b"", 0o644),
    (b"bin/run.sh", "file", b"#!/bin/sh\necho snap compat fixture\n", 0o755),
    (b"nested/a/b/c/deep.txt", "file", b"four directories down\n", 0o644),
    (b"emptydir", "dir", None, 0o750),
    (b"link-to-readme", "symlink", b"README.txt", None),
    (b"nested/link-up", "symlink", b"../data/random.bin", None),
    (b"dangling", "symlink", b"/nonexistent/snap compat/target", None),
    # Names are bytes: UTF-8 beyond ASCII, bytes that are not UTF-8 at all,
    # and a tab and a newline inside a name.
    ("names/café-naïve.txt".encode(), "file", b"utf-8 name\n", 0o644),
    (b"names/latin1-\xe9\xff\xfe", "file", b"not utf-8\n", 0o644),
    (b"names/tab\tand\nnewline", "file", b"control characters in the name\n", 0o644),
    (b"names/ leading and trailing space ", "file", b"spaces\n", 0o644),
]

# The second backup: README changed, one file gone, one new (whose bytes
# dedup against nothing), the rest unchanged.
STATE_2_CHANGES = {
    "remove": [b"nested/a/b/c/deep.txt"],
    "write": [
        (b"README.txt", "file", text(61, "readme v2"), 0o644),
        (b"data/new.txt", "file", text(20, "new in the second snapshot"), 0o644),
    ],
}


def entries_for(state: int):
    if state == 1:
        return STATE_1, []
    if state == 2:
        names = {e[0] for e in STATE_2_CHANGES["write"]}
        kept = [e for e in STATE_1 if e[0] not in names and e[0] not in STATE_2_CHANGES["remove"]]
        return kept + STATE_2_CHANGES["write"], STATE_2_CHANGES["remove"]
    raise SystemExit(f"unknown state {state}")


def populate(root: bytes, state: int) -> None:
    entries, removed = entries_for(state)
    os.makedirs(root, exist_ok=True)
    for name in removed:
        p = os.path.join(root, name)
        if os.path.lexists(p):
            os.unlink(p)
    for i, (name, kind, payload, mode) in enumerate(entries):
        p = os.path.join(root, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if os.path.lexists(p) and not os.path.isdir(p):
            os.unlink(p)
        if kind == "file":
            with open(p, "wb") as f:
                f.write(payload)
            os.chmod(p, mode)
        elif kind == "dir":
            os.makedirs(p, exist_ok=True)
            os.chmod(p, mode)
        elif kind == "symlink":
            os.symlink(payload, p)
        t = BASE_TIME + 1000 * state + i
        os.utime(p, (t, t), follow_symlinks=False)
    # Directories last (writing into them changed their times), deepest first.
    dirs = []
    for dirpath, dirnames, _ in os.walk(root):
        for d in dirnames:
            dirs.append(os.path.join(dirpath, d))
    for d in sorted(dirs, key=len, reverse=True) + [root]:
        if not os.path.islink(d):
            os.chmod(d, 0o750 if d.endswith(b"emptydir") else 0o755)
            os.utime(d, (BASE_TIME, BASE_TIME), follow_symlinks=False)


def describe(root: bytes):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            entry = {"path": rel.decode("utf-8", "backslashreplace"), "path_hex": rel.hex()}
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(p)
                entry.update(kind="symlink", target=target.decode("utf-8", "backslashreplace"), target_hex=target.hex())
            elif stat.S_ISDIR(st.st_mode):
                entry.update(kind="dir", mode=f"{stat.S_IMODE(st.st_mode):o}")
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                entry.update(
                    kind="file",
                    size=st.st_size,
                    sha256=digest,
                    mode=f"{stat.S_IMODE(st.st_mode):o}",
                    mtime=int(st.st_mtime),
                )
            else:
                raise SystemExit(f"unexpected entry {p!r}")
            out.append(entry)
    out.sort(key=lambda e: bytes.fromhex(e["path_hex"]))
    return out


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "populate":
        populate(os.fsencode(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) == 3 and sys.argv[1] == "describe":
        json.dump(describe(os.fsencode(sys.argv[2])), sys.stdout, indent=1, ensure_ascii=True)
        sys.stdout.write("\n")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
