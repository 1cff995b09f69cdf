"""A private temporary folder for parsed rows that are read back later instead of held in memory.

Parsers that stream (InCell) spill each parsed chunk here; the FrameStreams of their tables read it back
while the bundle is written. The folder lives exactly as long as the objects that read from it: it is
removed when the last reference goes (or at interpreter exit), or at once with `remove()` when a parse
fails, so neither an error nor a finished run leaves spill files behind. Its place is the system's
temporary folder: set TMPDIR to put it on a larger or faster disk.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path

PREFIX = "hcs-import-spill-"


class SpillDir:
    """A temporary folder owned by this object (see the module's docstring)."""

    def __init__(self, label: str = "", parent: Path | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=PREFIX + label, dir=parent))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)

    def file(self, name: str) -> Path:
        return self.path / name

    def remove(self) -> None:
        self._finalizer()

    @property
    def removed(self) -> bool:
        return not self._finalizer.alive
