"""Find the plate folders under ROOT.

A plate folder is a folder that some registered parser detects. Detection is not always local: a
parser may look a few levels down (InCell finds results one or two folders below the `.xdce`), so a
folder holding several plates can itself be "detected". The rules, top-down, for a folder some parser detects:

- if its own files (those directly in it, looked at without its sub-folders) are detected, it is a plate
  (`plate/{plate.xdce, results/analysis.xml}` is one plate, however many analysis folders it has);
- else, if some sub-folder is detected on its own, it is a container and its sub-folders are searched
  (`screen/plate1/...`). "On its own" means without its parent (a link to it in a scratch folder): a
  MIAS `results/` folder is recognised only through its parent plate folder, so it is part of that plate;
- else it is a plate whose detection needs its sub-folders (results only in `results/`, ScanR `data/`).

We never descend into a plate folder, never follow a symlink that leads out of ROOT, visit each real
folder once (symlink loops, two links to one plate), and skip hidden folders and the output folder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..parsers import registry
from ..parsers.base import FormatParser


@dataclass(frozen=True)
class Found:
    """A plate: the folder as found under ROOT, its real path, its format and, for a folder holding the
    exports of several plates, which of them (the ledger keys it as `<real path>#<plate>`)."""

    path: Path
    real: Path
    format: str
    plate: str | None = None

    @property
    def key(self) -> str:
        return str(self.real) if self.plate is None else f"{self.real}#{self.plate}"


def _inside(path: Path, root: Path) -> bool:
    p, r = str(path), str(root)
    return p == r or p.startswith(r.rstrip(os.sep) + os.sep)


def _detect(path: Path, parsers: Iterable[FormatParser]) -> FormatParser | None:
    for parser in parsers:
        try:
            if parser.detect(path):
                return parser
        except Exception:  # a parser that chokes on an odd folder must not stop the walk
            continue
    return None


def _alone_detected(folder: Path, parsers: Iterable[FormatParser]) -> FormatParser | None:
    """Detect `folder` without its parent (a link to it in a scratch folder): a `results/` folder that a
    parser recognises only because its parent is a plate is part of that plate, not a plate itself."""
    with tempfile.TemporaryDirectory(prefix="hcs-discover-") as tmp:
        view = Path(tmp) / folder.name
        view.symlink_to(folder.resolve(), target_is_directory=True)
        return _detect(view, parsers)


def _own_files_detected(folder: Path, parsers: Iterable[FormatParser]) -> FormatParser | None:
    """Detect `folder` as if it had no sub-folders: a scratch folder of links to its own files."""
    with tempfile.TemporaryDirectory(prefix="hcs-discover-") as tmp:
        view = Path(tmp) / folder.name
        view.mkdir()
        for entry in os.scandir(folder):
            if entry.is_file():
                (view / entry.name).symlink_to(os.path.abspath(entry.path))
        return _detect(view, parsers)


class Walker:
    """One walk of ROOT; caches detection so each folder is asked once."""

    def __init__(self, root: Path, skip: Iterable[Path] = (), formats: Iterable[str] | None = None) -> None:
        self.root = root.resolve()
        self.skip = {p.resolve() for p in skip}
        parsers = registry.available()
        self.parsers = [p for name, p in parsers.items() if formats is None or name in set(formats)]
        self._seen: set[Path] = set()
        self._cache: dict[Path, FormatParser | None] = {}
        self._plates: list[Path] = []

    def detect(self, path: Path) -> FormatParser | None:
        real = path.resolve()
        if real not in self._cache:
            self._cache[real] = _detect(path, self.parsers)
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
        if self.detect(folder) is not None:
            own = _own_files_detected(folder, self.parsers)
            if own is None and not any(self._independent(s) for s in self.subfolders(folder)):
                own = self.detect(folder)  # a plate whose detection needs its sub-folders (results/, data/)
            if own is not None:
                self._plates.append(real)
                yield from self._each_plate(folder, real, own)
                return
        for sub in self.subfolders(folder):
            yield from self.walk(sub)

    def _each_plate(self, folder: Path, real: Path, parser: FormatParser) -> Iterator[Found]:
        """One Found per plate the folder holds: several when the format names them (see FormatParser.plates)."""
        names: list[str] = []
        if parser.plates is not None:
            try:
                names = parser.plates(folder)
            except Exception:  # the import will report what is wrong with the files; discovery goes on
                names = []
        if len(names) > 1:
            for name in names:
                yield Found(folder, real, parser.name, name)
        else:
            yield Found(folder, real, parser.name)

    def _independent(self, sub: Path) -> bool:
        return self.detect(sub) is not None and _alone_detected(sub, self.parsers) is not None


def discover(root: Path, skip: Iterable[Path] = (), formats: Iterable[str] | None = None) -> list[Found]:
    """Every plate folder under ROOT (ROOT itself when it is one plate), in path order."""
    return list(Walker(root, skip, formats).walk(root))
