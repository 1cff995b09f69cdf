"""Has a plate changed since it was imported?

Two levels, as rsync and git's index do, so an unchanged tree of thousands of plates costs only stats:

- `scan` lists the files the plate's parser reads (its located source: an image, a thumbnail or a
  log the parser ignores is not among them) with their size and mtime (no reading). If that list is
  what the ledger holds, the plate is unchanged. Locating is re-done on every pass, so a result file
  that appears is in the new list.
- Otherwise the result files (the `sources` the parser read, with the sha256 it recorded in the
  manifest) whose size or mtime moved are hashed again. A file that was only touched does not cause a
  re-import; a changed, added or removed result file does.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..parsers.base import PlateSource

# relative path -> [size, mtime_ns]
Stats = dict[str, list[int]]
# relative path -> sha256 (the result files the parser read)
Hashes = dict[str, str]


def _stat_files(folder: Path, paths: Iterable[str | Path]) -> Stats:
    """Size and mtime of each of `paths`, keyed by its path relative to `folder` (relpath, not
    relative_to: a MIAS plate's batch results sit beside it, in its experiment folder)."""
    stats: Stats = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue  # vanished between listing and stat: the next scan will see the change
        rel = os.path.relpath(path, folder).replace(os.sep, "/")
        stats[rel] = [st.st_size, st.st_mtime_ns]
    return dict(sorted(stats.items()))


def scan_source(folder: Path, source: PlateSource) -> Stats:
    """Size and mtime of each file of `source`, keyed by its path relative to `folder`."""
    return _stat_files(folder, source.all_files())


def _walk_files(folder: Path) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            yield os.path.join(dirpath, name)


def scan(folder: Path) -> Stats:
    """Size and mtime of every regular file below `folder` (not following symlinked folders)."""
    return _stat_files(folder, _walk_files(folder))


def digest(stats: Mapping[str, list[int]]) -> str:
    """A short key of a scan, to compare two scans or show in the ledger."""
    h = hashlib.sha256()
    for rel, (size, mtime) in sorted(stats.items()):
        h.update(f"{rel}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Verdict:
    """changed: re-import. stats: the current scan (store it when unchanged so the next check is cheap)."""

    changed: bool
    reason: str
    stats: Stats


def compare(folder: Path, old_stats: Mapping[str, list[int]], old_hashes: Mapping[str, str],
            stats: Stats | None = None) -> Verdict:
    """Compare the plate folder now with what the ledger recorded at its last import."""
    now = scan(folder) if stats is None else stats
    if now == dict(old_stats):
        return Verdict(False, "unchanged", now)
    added = sorted(set(now) - set(old_stats))
    removed = sorted(set(old_stats) - set(now))
    if added or removed:
        what = ", ".join([f"+{p}" for p in added[:3]] + [f"-{p}" for p in removed[:3]])
        return Verdict(True, f"files added/removed: {what}", now)
    for rel, stat in now.items():
        if stat == list(old_stats[rel]) or rel not in old_hashes:
            continue
        try:
            if sha256_file(folder / rel) != old_hashes[rel]:
                return Verdict(True, f"content changed: {rel}", now)
        except OSError as exc:
            return Verdict(True, f"cannot read {rel}: {exc.strerror}", now)
    return Verdict(False, "touched, content unchanged", now)
