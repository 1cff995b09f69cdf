"""Table-upload contenders: one bundle table sent through omero-py's real OMERO.tables servant on loopback.

`python upload_contenders.py NAME TABLE.h5` runs one in a fresh process; each prints one RESULT line.
The servant is `omero.tables.TableI` (tests/real_tables.py): it runs in this process on its own Ice
communicator and adapter, the client talks to it over TCP on 127.0.0.1, so every row is marshalled and
unmarshalled by Ice and written to HDF5 by the servant's own code, as on a server. Its CPU is this
process's CPU, so the figures compare clients on equal terms, not servers.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from harness import report

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
warnings.simplefilter("ignore")


class _Update:
    """Hands out ids, as a server's update service would (nothing is stored)."""

    def __init__(self) -> None:
        self.next_id = 1000

    def saveAndReturnObject(self, obj: Any, ctx: Any = None) -> Any:
        from omero.rtypes import rlong

        self.next_id += 1
        obj.setId(rlong(self.next_id))
        return obj

    def saveArray(self, objs: list[Any], ctx: Any = None) -> None:
        pass


class _Store:
    """A raw file store writing to a local file (file mode's upload target)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.fh: Any = None

    def setFileId(self, file_id: int) -> None:
        self.path = self.folder / f"{file_id}.h5"
        self.fh = open(self.path, "wb")  # noqa: SIM115 - closed by close(), as the server's store

    def write(self, data: bytes, offset: int, length: int) -> None:
        self.fh.seek(offset)
        self.fh.write(data[:length])

    def save(self) -> None:
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


class _Resources:
    def __init__(self, service: Any) -> None:
        self.service = service

    def repositories(self, ctx: Any = None) -> Any:
        import omero.grid
        from omero.model import OriginalFileI

        return omero.grid.RepositoryMap([OriginalFileI(9999, False)], [None])

    def newTable(self, repo: int, name: str, ctx: Any = None) -> Any:
        from omero.model import OriginalFileI
        from omero.rtypes import rstring

        f = OriginalFileI(7, True)
        f.name = rstring(name)
        self.path = self.service.new_path()
        return self.service.open(f, self.path)


class _Session:
    def __init__(self, service: Any, folder: Path) -> None:
        self.resources = _Resources(service)
        self.update = _Update()
        self.folder = folder
        self.store: _Store | None = None

    def sharedResources(self, ctx: Any = None) -> _Resources:
        return self.resources

    def getUpdateService(self) -> _Update:
        return self.update

    def createRawFileStore(self) -> _Store:
        self.store = _Store(self.folder)
        return self.store


def _ids(table: Any) -> dict[str, np.ndarray]:
    return {name: np.arange(1, table.rows + 1, dtype=np.int64) for name in ("Image", "Roi", "Well")
            if name in table.names}


def _served_rows(service: Any, path: Path) -> int:
    """Rows of `path` as the real servant reads them (a fresh read-only TableI)."""
    from omero.model import OriginalFileI
    from omero.rtypes import rstring

    f = OriginalFileI(8, True)
    f.name = rstring(path.name)
    table = service.open(f, path, read_only=True)
    try:
        return int(table.getNumberOfRows())
    finally:
        table.close()


def server_mode(h5: str) -> None:
    """hcs-import's server-side table: initialize with empty columns, addData in batches, metadata."""
    from hcs_import.omero.tables import create_server_table, read_local_table
    from real_tables import TablesService

    service = TablesService()
    table = read_local_table(Path(h5))
    ids = _ids(table)
    with tempfile.TemporaryDirectory() as tmp:
        sf = _Session(service, Path(tmp))
        t0 = time.perf_counter()
        create_server_table(sf, "bench", table, ids, lambda kind, i: None)
        wall = time.perf_counter() - t0
        rows = _served_rows(service, sf.resources.path)
    service.destroy()
    report({"wall_s": wall, "info": {"rows": rows, "columns": len(table.names), "rows_per_s": rows / wall}})


def file_mode(h5: str) -> None:
    """hcs-import's file mode: the bundle's .h5 copied with ids filled, uploaded as bytes, opened by the servant."""
    from hcs_import.omero.tables import read_local_table, upload_table_file
    from real_tables import TablesService

    service = TablesService()
    table = read_local_table(Path(h5))
    ids = _ids(table)
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as work:
        sf = _Session(service, Path(tmp))
        t0 = time.perf_counter()
        upload_table_file(sf, "bench", table, ids, Path(work), lambda kind, i: None)
        assert sf.store is not None
        rows = _served_rows(service, sf.store.path)
        wall = time.perf_counter() - t0
    service.destroy()
    report({"wall_s": wall, "info": {"rows": rows, "columns": len(table.names), "rows_per_s": rows / wall}})


def omero2pandas_mode(h5: str) -> None:
    """omero2pandas' upload_table path (create_table) on the same rows as a DataFrame (read first, not timed)."""
    import pandas as pd
    from omero2pandas import upload as o2p

    from hcs_import.omero.tables import read_local_table
    from real_tables import TablesService

    service = TablesService()
    table = read_local_table(Path(h5))
    frame = pd.DataFrame(table.columns(table.names))
    for name in frame.columns:
        if frame[name].dtype == object:
            frame[name] = frame[name].map(lambda b: b.decode("utf-8") if isinstance(b, bytes) else b)
    for name, values in _ids(table).items():
        frame[name] = values

    class Conn:
        """The parts of a BlitzGateway connection create_table calls."""

        class _Opts:
            def setOmeroGroup(self, group: Any) -> None:
                pass

        def __init__(self, sf: _Session) -> None:
            self.SERVICE_OPTS = self._Opts()
            self.c = type("Client", (), {"sf": sf})()
            self.sf = sf

        def getUpdateService(self) -> _Update:
            return self.sf.update

    with tempfile.TemporaryDirectory() as tmp:
        sf = _Session(service, Path(tmp))
        t0 = time.perf_counter()
        o2p.create_table(frame, "bench", [], Conn(sf), None)
        wall = time.perf_counter() - t0
        rows = _served_rows(service, sf.resources.path)
    service.destroy()
    report({"wall_s": wall, "info": {"rows": rows, "columns": len(frame.columns), "rows_per_s": rows / wall}})


CONTENDERS = {"server": server_mode, "file": file_mode, "omero2pandas": omero2pandas_mode}

if __name__ == "__main__":
    CONTENDERS[sys.argv[1]](*sys.argv[2:])
