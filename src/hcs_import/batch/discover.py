"""Find the plate folders under ROOT.

Every folder is asked once what it is (`registry.locate_all`), and the answers, typed plate sources
that say which files each format would read and where the plate's root is, decide the walk. For a
folder some format locates:

- if the best source reads a file lying directly in the folder, the folder is a plate
  (`plate/{plate.xdce, results/analysis.xml}` is one plate, however many analysis folders it has);
- else, if some sub-folder is located as a plate rooted in that sub-folder, the folder is a container
  and its sub-folders are searched (`screen/plate1/...`). A source rooted elsewhere does not count: MIAS
  given `plate/results` answers with `plate` as the root, so `results/` is part of its plate;
- else it is a plate whose files all sit in its sub-folders (results only in `results/`, ScanR `data/`).

A folder whose files name several plates (Columbus, IN Carta, CellProfiler) yields one Found per plate.
We never descend into a plate folder, never follow a symlink that leads out of ROOT, visit each real
folder once (symlink loops, two links to one plate), and skip hidden folders and the output folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..parsers import registry
from ..parsers.base import PlateSource


@dataclass(frozen=True)
class Found:
    """A plate: the folder as found under ROOT, its real path and the source located there (for a
    folder holding the exports of several plates, `source.plate` says which; the ledger keys it as
    `<real path>#<plate>`)."""

    path: Path
    real: Path
    source: PlateSource

    @property
    def format(self) -> str:
        return self.source.format

    @property
    def plate(self) -> str | None:
        return self.source.plate

    @property
    def key(self) -> str:
        return str(self.real) if self.plate is None else f"{self.real}#{self.plate}"


def _inside(path: Path, root: Path) -> bool:
    p, r = str(path), str(root)
    return p == r or p.startswith(r.rstrip(os.sep) + os.sep)


def _rooted_in(source: PlateSource, folder: Path) -> bool:
    return _inside(source.root.resolve(), folder.resolve())


class Walker:
    """One walk of ROOT; caches what each folder was located as, so each folder is asked once."""

    def __init__(self, root: Path, skip: Iterable[Path] = (), formats: Iterable[str] | None = None) -> None:
        self.root = root.resolve()
        self.skip = {p.resolve() for p in skip}
        self.formats = None if formats is None else list(formats)
        self._seen: set[Path] = set()
        self._cache: dict[Path, list[PlateSource]] = {}
        self._plates: list[Path] = []

    def located(self, path: Path) -> list[PlateSource]:
        real = path.resolve()
        if real not in self._cache:
            self._cache[real] = registry.locate_all(path, self.formats)[0]
        return self._cache[real]

    def subfolders(self, folder: Path) -> list[Path]:
        """Sub-folders worth visiting: not hidden, not skipped, not leading out of ROOT, not seen."""
        out = []
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return []
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=True):
                continue
            real = Path(entry.path).resolve()
            if not _inside(real, self.root) or real in self.skip or real in self._seen:
                continue
            out.append(Path(entry.path))
        return out

    def walk(self, folder: Path) -> Iterator[Found]:
        real = folder.resolve()
        if real in self._seen or any(_inside(real, p) for p in self._plates):
            return  # a second way into a folder already visited, or into a plate already found
        self._seen.add(real)
        sources = [s for s in self.located(folder) if _rooted_in(s, folder)]
        if sources:
            best = sources[0]
            own = any(p.parent.resolve() == real for p in best.all_files())
            if own or not any(self._independent(sub) for sub in self.subfolders(folder)):
                self._plates.append(real)
                for one in best.split():
                    yield Found(folder, real, one)
                return
        for sub in self.subfolders(folder):
            yield from self.walk(sub)

    def _independent(self, sub: Path) -> bool:
        """Whether `sub` holds a plate of its own (a source rooted in it), not a part of its parent's."""
        return any(_rooted_in(s, sub) for s in self.located(sub))


def discover(root: Path, skip: Iterable[Path] = (), formats: Iterable[str] | None = None) -> list[Found]:
    """Every plate folder under ROOT (ROOT itself when it is one plate), in path order."""
    return list(Walker(root, skip, formats).walk(root))
