"""Read a written .h5 back through omero-py's own OMERO.tables storage class (the server's reader).

Used by every format's tests: what HdfStorage serves is what OMERO.web and the API will show.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

try:
    import omero.clients
    import omero.columns
    import omero.hdfstorageV2 as hdfstorage
    from omero.rtypes import unwrap
except ImportError:  # the parsers' tests run without omero-py; only reading a bundle back needs it
    hdfstorage = None
    _FACTORIES: dict[str, Any] = {}
else:
    _FACTORIES = {f.id: f for f in omero.columns.ObjectFactories.values()}

NO_OMERO = "omero-py is not installed (pip install 'hcs-import[omero]'): a bundle is read back through its HdfStorage"


def _current() -> SimpleNamespace:
    communicator = SimpleNamespace(findObjectFactory=lambda type_id: _FACTORIES[type_id])
    return SimpleNamespace(adapter=SimpleNamespace(getCommunicator=lambda: communicator), ctx={})


@dataclass
class ServedColumn:
    name: str
    type_id: str
    description: str
    values: list[Any]


@dataclass
class ServedTable:
    rows: int
    columns: list[ServedColumn]
    metadata: dict[str, Any]

    def column(self, name: str) -> ServedColumn:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def read_table(path: Path) -> ServedTable:
    if hdfstorage is None:
        pytest.skip(NO_OMERO)
    storage = hdfstorage.HdfStorage(str(path), threading.RLock(), read_only=True)
    try:
        current = _current()
        rows = storage.rows()
        cols = storage.cols(None, current)
        data = storage.read(time.time() + 1, list(range(len(cols))), 0, rows, current)
        metadata = {k: unwrap(v) for k, v in storage.get_meta_map().items()}
        served = [
            ServedColumn(c.name, c.ice_id(), c.description, list(c.values)) for c in data.columns
        ]
        return ServedTable(rows, served, metadata)
    finally:
        storage.cleanup()
