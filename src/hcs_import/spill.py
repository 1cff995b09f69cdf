"""A private temporary folder for parsed rows that are read back later instead of held in memory.

Parsers that stream (InCell) spill each parsed chunk here; the FrameStreams of their tables read it back
while the bundle is written. The folder lives exactly as long as the objects that read from it: it is
removed when the last reference goes (or at interpreter exit), or at once with `remove()` when a parse
fails, so neither an error nor a finished run leaves spill files behind. A run killed outright (SIGKILL,
power loss) cannot clean up: its folder carries its process id, and the next SpillDir removes folders
whose process is gone. Its place is the system's temporary folder: set TMPDIR to put it on a larger or
faster disk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from pathlib import Path

from .errors import OutputError

PREFIX = "hcs-import-spill-"


def spill_failure(folder: Path, exc: OSError) -> OutputError:
    """The one-line error for a spill folder that cannot be made or written (full disk, permissions)."""
    return OutputError(f"{folder}: cannot write temporary spill files ({exc.strerror or exc}); "
                       "set TMPDIR to a folder with free space")


class SpillDir:
    """A temporary folder owned by this object (see the module's docstring)."""

    def __init__(self, label: str = "", parent: Path | None = None) -> None:
        where = Path(parent or tempfile.gettempdir())
        remove_orphans(where)
        try:
            self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-{label}", dir=where))
        except OSError as exc:
            raise spill_failure(where, exc) from None
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)

    def remove(self) -> None:
        self._finalizer()

    @property
    def removed(self) -> bool:
        return not self._finalizer.alive


class LazySpill:
    """A SpillDir made on first use (most plates never need one), removed by `remove`."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._made: SpillDir | None = None

    def __call__(self) -> SpillDir:
        if self._made is None:
            self._made = SpillDir(self._label)
        return self._made

    def remove(self) -> None:
        if self._made is not None:
            self._made.remove()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, and not ours to judge
        return True
    return True


def remove_orphans(parent: Path) -> list[Path]:
    """Remove spill folders under `parent` whose process no longer runs; returns those removed."""
    removed = []
    for folder in parent.glob(PREFIX + "*"):
        pid = folder.name[len(PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
