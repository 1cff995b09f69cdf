"""omero-py's own OMERO.tables servant (`omero.tables.TableI` over `omero.hdfstorageV2`), served on a real Ice
object adapter on 127.0.0.1, for the upload tests.

Why not a hand-written fake table: measured against the real servant, a fake differs in many details
(RDouble metadata refused, calls after close, setAllMetadata replacing rather than merging, addData
matched by position, ...). Here every table call is marshalled by Ice between two communicators (client
and server, so no collocation shortcut) and executed by the server's own code on a real HDF5 file.

What the servant needs of a server, stood in for here and nothing more: a session factory whose admin
service says the user may write, whose identity category starts with `session-` (TableI.close reads the
client uuid from it), and a raw file store that TableI.close uses to update the OriginalFile's size.
"""

from __future__ import annotations

import itertools
import tempfile
import threading
from pathlib import Path
from typing import Any

import Ice
import pytest

pytest.importorskip("omero.clients", reason="needs omero-py: pip install 'hcs-import[omero]' (make setup does)")

import omero
import omero.clients
import omero.columns
import omero.grid
import omero.hdfstorageV2 as hdfstorage
import omero.rtypes
import omero.tables
import omero.util
from omero.model import ExperimenterGroupI, OriginalFileI
from omero.rtypes import rlong, rstring

TEST_GROUP = 3


def communicator() -> Any:
    """An Ice communicator that can (un)marshal OMERO.tables columns and rtypes, as omero.client sets up."""
    from omero import ObjectFactoryRegistrar

    ic = Ice.initialize(["--Ice.MessageSizeMax=262144"])
    ObjectFactoryRegistrar.registerObjectFactory(ic)  # model objects (the OriginalFile of getOriginalFile)
    for factories in (omero.columns.ObjectFactories, omero.rtypes.ObjectFactories):
        for factory in factories.values():
            factory.register(ic)
    return ic


class _Admin:
    def canUpdate(self, obj: Any, ctx: Any = None) -> bool:
        return True


class _RawFileStore:
    """What TableI.close calls to refresh the OriginalFile after writing: size and hash are set here."""

    def __init__(self, service: TablesService) -> None:
        self.service = service
        self.file_id = 0

    def setFileId(self, file_id: int, ctx: Any = None) -> None:
        self.file_id = file_id

    def truncate(self, size: int, ctx: Any = None) -> bool:
        return True

    def write(self, data: bytes, offset: int, length: int, ctx: Any = None) -> None:
        pass

    def save(self, ctx: Any = None) -> Any:
        f = OriginalFileI(self.file_id, True)
        f.size, f.hash = rlong(0), rstring("")
        self.service.saved.append(self.file_id)
        return f

    def close(self, ctx: Any = None) -> None:
        pass


class _Identity:
    name = "hcs-import-test-session"
    category = "session-hcs-import-test"


class _SessionFactory:
    """The parts of a ServiceFactory that TableI itself calls."""

    def __init__(self, service: TablesService) -> None:
        self.service = service

    def getAdminService(self) -> _Admin:
        return _Admin()

    def ice_getIdentity(self) -> _Identity:
        return _Identity()

    def createRawFileStore(self, ctx: Any = None) -> _RawFileStore:
        return _RawFileStore(self.service)


class TablesService:
    """Real TableI servants over HDF5 files in a temporary folder, one per OriginalFile id."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="hcs-import-tables-")
        self.root = Path(self._tmp.name)
        self.server_ic = communicator()
        self.client_ic = communicator()
        self.adapter = self.server_ic.createObjectAdapterWithEndpoints("HcsImportTestTables", "tcp -h 127.0.0.1")
        self.adapter.activate()
        self.ctx = omero.util.ServerContext("hcs-import-test", self.server_ic, threading.Event())
        self.factory = _SessionFactory(self)
        self.saved: list[int] = []
        self._uuids = itertools.count(1)

    def new_path(self) -> Path:
        """A fresh path for one table's HDF5 file (tests of many fake servers share this service)."""
        return self.root / f"{next(self._uuids)}.h5"

    def open(self, file_obj: Any, path: Path, read_only: bool = False) -> Any:
        """A TablePrx to a new servant over `path`, the file of `file_obj` (created on first initialize)."""
        file_id = int(file_obj.getId().getValue())
        loaded = OriginalFileI(file_id, True)
        loaded.name = file_obj.name
        loaded.mimetype = rstring("OMERO.tables")
        loaded.details.group = ExperimenterGroupI(TEST_GROUP, False)
        servant = omero.tables.TableI(self.ctx, loaded, str(path), self.factory, hdfstorage.HDFLIST,
                                      read_only=read_only, uuid=f"table-{next(self._uuids)}", adapter=self.adapter)
        prx = self.adapter.add(servant, servant.id)
        remote = self.client_ic.stringToProxy(self.server_ic.proxyToString(prx))
        return omero.grid.TablePrx.uncheckedCast(remote)

    def read_all(self, file_obj: Any, path: Path) -> tuple[list[Any], dict[str, Any], int]:
        """(columns with every value, metadata unwrapped, rows), read through a fresh read-only servant."""
        table = self.open(file_obj, path, read_only=True)
        try:
            headers = table.getHeaders()
            rows = table.getNumberOfRows()
            data = table.read(list(range(len(headers))), 0, rows) if headers else None
            meta = {k: omero.rtypes.unwrap(v) for k, v in table.getAllMetadata().items()}
        finally:
            table.close()
        return (list(data.columns) if data is not None else []), meta, rows

    def destroy(self) -> None:
        for ic in (self.client_ic, self.server_ic):
            ic.destroy()
        self._tmp.cleanup()


_SERVICE: TablesService | None = None


def shared_service() -> TablesService:
    """One service per test process: each holds two communicators and an adapter, too many to make per test."""
    global _SERVICE
    if _SERVICE is None:
        import atexit

        _SERVICE = TablesService()
        atexit.register(_SERVICE.destroy)
    return _SERVICE
