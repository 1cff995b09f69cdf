"""An in-memory OMERO server for tests: real omero-py model objects, rtypes and table columns; fake services.

It enforces what the real server enforces and a test can trip over: ids assigned on save, references
(unloaded objects) must exist, annotation links are unique and point at existing objects. Tables are not
faked: newTable / openTable hand out proxies to omero-py's own table servant (omero.tables.TableI over
hdfstorageV2) on a real Ice adapter on 127.0.0.1 (tests/real_tables.py), so every rule of the real
OMERO.tables (column types and sizes, metadata types, calls after close) is the real one.
Every call is recorded in `server.calls` as (service.method, summary) so tests can check what was sent.
Queries are matched against the exact HQL the uploader sends: an unexpected query fails the test.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("omero.clients", reason="needs omero-py: pip install 'hcs-import[omero]' (make setup does)")

import omero
import omero.clients
import omero.cmd
import omero.columns
import omero.grid
from omero.model import ImageI, OriginalFileI, PlateI, ScreenI, WellI, WellSampleI
from omero.rtypes import rint, rlong, rstring, unwrap

from hcs_import.omero.platemap_upload import PREVIOUS_WELL_ANNOTATIONS_QUERY
from hcs_import.omero.resolve import PLATE_BY_NAME_QUERY, PLATE_QUERY
from hcs_import.omero.server_side import ATTACHED_FILES_QUERY, FILESET_FILES_QUERY, SCREEN_PLATES_QUERY
from hcs_import.omero.status import PLATE_FILES_QUERY, ROIS_PER_IMAGE_QUERY, SCREEN_FILES_QUERY
from hcs_import.omero.upload import (
    PREVIOUS_ANNOTATIONS_QUERY,
    PREVIOUS_ROIS_QUERY,
    PREVIOUS_SCREEN_ANNOTATIONS_QUERY,
    SCREENS_OF_PLATE_QUERY,
)
from real_tables import TablesService, shared_service

SHAPES = ("Point", "Ellipse", "Rectangle", "Polygon", "Mask", "Line", "Label", "Polyline")
INT32 = (-(2**31), 2**31 - 1)


def kind(obj: Any) -> str:
    name = type(obj).__name__
    return name[:-1] if name.endswith("I") else name


def oid(obj: Any) -> int | None:
    return None if obj is None or obj.getId() is None else int(obj.getId().getValue())


class InjectedFailure(omero.InternalException):
    """Raised where a test asked the fake to fail."""


@dataclass
class RealTable:
    """A table of the fake server: a proxy to omero-py's real table servant (tests/real_tables.py), with the
    calls recorded and failures injectable, and readers that go through the real servant too."""

    server: FakeServer
    file: Any
    path: Path
    prx: Any
    batches: list[int] = field(default_factory=list)
    closed: bool = False

    def initialize(self, cols: list[Any], current: Any = None) -> None:
        self.server.record("table.initialize", [(type(c).__name__, c.name) for c in cols])
        self.prx.initialize(cols)

    def addData(self, cols: list[Any], current: Any = None) -> None:
        self.server.maybe_fail("table.addData")
        lengths = {len(c.values) for c in cols}
        self.server.record("table.addData", (len(cols), sorted(lengths)))
        self.prx.addData(cols)
        self.batches.append(max(lengths) if lengths else 0)

    def setAllMetadata(self, values: dict[str, Any], current: Any = None) -> None:
        self.server.record("table.setAllMetadata", sorted(values))
        self.prx.setAllMetadata(values)

    def getOriginalFile(self, current: Any = None) -> Any:
        return self.prx.getOriginalFile()

    def getNumberOfRows(self, current: Any = None) -> int:
        return self.prx.getNumberOfRows()

    def close(self, current: Any = None) -> None:
        self.closed = True
        self.prx.close()

    # read back through a fresh read-only servant ----------------------------------------------------
    def _read(self) -> tuple[list[Any], dict[str, Any], int]:
        return self.server.tables_service.read_all(self.file, self.path)

    @property
    def columns(self) -> list[Any]:
        return self._read()[0]

    @property
    def metadata(self) -> dict[str, Any]:
        return self._read()[1]

    def values(self) -> dict[str, list[Any]]:
        return {c.name: list(c.values) for c in self.columns}

    def types(self) -> dict[str, str]:
        return {c.name: c.ice_id().rsplit("::", 1)[-1] for c in self.columns}


class _Handle:
    def __init__(self, response: Any) -> None:
        self.response = response
        self.closed = False

    def getResponse(self, current: Any = None) -> Any:
        return self.response

    def close(self, current: Any = None) -> None:
        self.closed = True


class FakeServer:
    """The store plus the services; `sf()` is the ServiceFactory the uploader talks to."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[int, Any]] = {}
        self.ids = itertools.count(1)
        self.calls: list[tuple[str, Any]] = []
        self.tables: dict[int, RealTable] = {}
        self.file_bytes: dict[int, bytearray] = {}
        self.failures: dict[str, int] = {}  # method -> fail on its n-th call (1-based)
        self.counts: dict[str, int] = {}
        self.link_keys: set[tuple[str, int, int]] = set()  # (link type, parent id, child id)
        self.index: dict[tuple[int, ...], int] = {}  # (plate, row, col[, field]) -> Well / Image id
        self.screens: dict[int, list[int]] = {}  # screen id -> plate ids
        self.filesets: dict[int, list[tuple[int, str]]] = {}  # plate -> [(OriginalFile id, clientPath)]

    @property
    def tables_service(self) -> TablesService:
        return shared_service()

    # bookkeeping -------------------------------------------------------------------------------------
    def record(self, name: str, summary: Any) -> None:
        self.calls.append((name, summary))

    def calls_to(self, name: str) -> list[Any]:
        return [s for n, s in self.calls if n == name]

    def fail_on(self, method: str, nth: int = 1) -> None:
        self.failures[method] = nth

    def maybe_fail(self, method: str) -> None:
        self.counts[method] = self.counts.get(method, 0) + 1
        if self.failures.get(method) == self.counts[method]:
            raise InjectedFailure(None, None, f"injected failure in {method}")

    def new_id(self) -> int:
        return next(self.ids)

    def put(self, obj: Any) -> int:
        i = self.new_id()
        obj.setId(rlong(i))
        self.objects.setdefault(kind(obj), {})[i] = obj
        return i

    def all(self, k: str) -> dict[int, Any]:
        return self.objects.get(k, {})

    def exists(self, k: str, i: int) -> bool:
        if k == "Annotation":
            return any(i in self.all(x) for x in ("FileAnnotation",))
        return i in self.all(k)

    def counts_by_type(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.objects.items() if v}

    # fixtures -----------------------------------------------------------------------------------------
    def add_file(self, path: Path, name: str | None = None, mimetype: str | None = None) -> int:
        """An OriginalFile with the bytes of a local file (as an import would have stored it)."""
        f = OriginalFileI()
        f.name, f.path = rstring(name or path.name), rstring("/")
        if mimetype:
            f.mimetype = rstring(mimetype)
        i = self.put(f)
        self.file_bytes[i] = bytearray(path.read_bytes())
        return i

    def add_screen(self, name: str, plates: list[Any]) -> int:
        """A Screen holding the given Plates (ScreenPlateLinks as a plain mapping)."""
        screen = ScreenI()
        screen.name = rstring(name)
        sid = self.put(screen)
        self.screens[sid] = [oid(p) for p in plates]
        return sid

    def add_plate(self, name: str, rows: int, cols: int, fields: int,
                  without: set[tuple[int, int, int]] = frozenset()) -> Any:
        """A loaded Plate -> Wells -> WellSamples -> Images graph; `without`: (row, col, field) with no image."""
        plate = PlateI()
        plate.name = rstring(name)
        self.put(plate)
        for r in range(rows):
            for c in range(cols):
                well = WellI()
                well.row, well.column = rint(r), rint(c)
                well.plate = plate
                self.index[(oid(plate), r, c)] = self.put(well)
                plate.addWell(well)
                for f in range(fields):
                    if (r, c, f) in without:
                        continue
                    image = ImageI()
                    image.name = rstring(f"{name} {r}-{c}-{f}")
                    self.index[(oid(plate), r, c, f)] = self.put(image)
                    sample = WellSampleI()
                    sample.image = image
                    self.put(sample)
                    well.addWellSample(sample)
        return plate

    def image_id(self, plate: Any, row: int, col: int, field_: int) -> int:
        return self.index[(oid(plate), row, col, field_)]

    def well_id(self, plate: Any, row: int, col: int) -> int:
        return self.index[(oid(plate), row, col)]

    def links(self, k: str, child: int | None = None, parent: int | None = None) -> list[Any]:
        return [lk for lk in self.all(k).values()
                if (child is None or oid(lk.getChild()) == child) and (parent is None or oid(lk.getParent()) == parent)]

    def served_table(self, file_id: int) -> Any:
        """A file-mode table read back through omero-py's real table servant, as the server would open it."""
        from omero_reader import ServedColumn, ServedTable

        path = self.tables_service.new_path()
        path.write_bytes(bytes(self.file_bytes[file_id]))
        columns, meta, rows = self.tables_service.read_all(self.all("OriginalFile")[file_id], path)
        return ServedTable(rows, [ServedColumn(c.name, c.ice_id(), c.description, list(c.values)) for c in columns],
                           meta)

    # saving ---------------------------------------------------------------------------------------------
    def _reference(self, obj: Any) -> int:
        i = oid(obj)
        if i is None or not self.exists(kind(obj), i):
            raise omero.ValidationException(None, None, f"{kind(obj)}:{i} does not exist")
        return i

    def _save(self, obj: Any) -> Any:
        k = kind(obj)
        if obj.getId() is not None:
            if obj.isLoaded():
                raise omero.ApiUsageException(None, None, f"{k}:{oid(obj)}: the fake only creates objects")
            self._reference(obj)
            return obj
        if k == "Roi":
            if obj.getImage() is None:
                raise omero.ValidationException(None, None, "Roi without image")
            self._reference(obj.getImage())
            self.put(obj)
            for shape in obj.copyShapes():
                if kind(shape) not in SHAPES:
                    raise omero.ValidationException(None, None, f"unknown shape {kind(shape)}")
                colour = unwrap(shape.getStrokeColor())
                if colour is not None and not (INT32[0] <= colour <= INT32[1]):
                    raise omero.ValidationException(None, None, f"strokeColor {colour} is not an int32")
                i = self.new_id()
                shape.setId(rlong(i))
                self.objects.setdefault("Shape", {})[i] = shape
        elif k == "FileAnnotation":
            if obj.getFile() is None:
                raise omero.ValidationException(None, None, "FileAnnotation without file")
            self._reference(obj.getFile())
            self.put(obj)
        elif k == "MapAnnotation":
            self.put(obj)
        elif k == "OriginalFile":
            if obj.getName() is None or obj.getPath() is None:
                raise omero.ValidationException(None, None, "OriginalFile needs name and path")
            self.put(obj)
        elif k.endswith("AnnotationLink"):
            parent = self._save(obj.getParent())
            child = self._save(obj.getChild())
            if kind(parent) != k[: -len("AnnotationLink")] or kind(child) not in ("FileAnnotation", "MapAnnotation"):
                raise omero.ValidationException(None, None, f"{k}: {kind(parent)} -> {kind(child)}")
            key = (k, oid(parent), oid(child))
            if key in self.link_keys:
                raise omero.ValidationException(None, None, f"duplicate {k} {oid(parent)} -> {oid(child)}")
            self.link_keys.add(key)
            self.put(obj)
        else:
            raise omero.ApiUsageException(None, None, f"the fake does not save {k}")
        return obj

    # deleting -------------------------------------------------------------------------------------------
    def delete(self, targets: dict[str, list[int]]) -> None:
        """Delete2 as OMERO's graph policy does it: ROIs with their shapes and annotation links,
        FileAnnotations with their links and files, OriginalFiles with the annotations on them."""
        unknown = set(targets) - {"Roi", "FileAnnotation", "MapAnnotation", "OriginalFile"}
        if unknown:
            raise omero.ApiUsageException(None, None, f"fake cannot delete {sorted(unknown)}")
        files = set(targets.get("OriginalFile", []))
        anns = set(targets.get("FileAnnotation", []))
        anns |= {i for i, a in self.all("FileAnnotation").items() if oid(a.getFile()) in files}
        rois = set(targets.get("Roi", []))
        for i in rois & set(self.all("Roi")):
            for s in self.all("Roi").pop(i).copyShapes():
                self.all("Shape").pop(oid(s), None)
        for i in anns & set(self.all("FileAnnotation")):
            files.add(oid(self.all("FileAnnotation").pop(i).getFile()))
        maps = set(targets.get("MapAnnotation", [])) & set(self.all("MapAnnotation"))
        for i in maps:
            self.all("MapAnnotation").pop(i)
        anns |= maps
        for lk_kind in ("PlateAnnotationLink", "ScreenAnnotationLink", "WellAnnotationLink", "RoiAnnotationLink"):
            links = self.all(lk_kind)
            for i in [i for i, lk in links.items() if oid(lk.getChild()) in anns or
                      (lk_kind == "RoiAnnotationLink" and oid(lk.getParent()) in rois)]:
                lk = links.pop(i)
                self.link_keys.discard((lk_kind, oid(lk.getParent()), oid(lk.getChild())))
        for i in files:
            self._delete_file(i)

    def _delete_file(self, i: int | None) -> None:
        if i is not None:
            self.all("OriginalFile").pop(i, None)
            self.tables.pop(i, None)
            self.file_bytes.pop(i, None)

    def sf(self) -> FakeSession:
        return FakeSession(self)


def like(text: str | None, pattern: str) -> bool:
    """HQL's LIKE: `%` any run of characters, `_` any one character, the rest literal."""
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return text is not None and re.fullmatch(regex, text, re.S) is not None


class FakeQuery:
    def __init__(self, server: FakeServer) -> None:
        self.s = server

    def findAllByQuery(self, hql: str, params: Any, ctx: Any = None) -> list[Any]:
        self.s.record("query.findAllByQuery", (hql, {k: unwrap(v) for k, v in params.map.items()}))
        if hql != PLATE_QUERY:
            raise AssertionError(f"unexpected query {hql!r}")
        plate = self.s.all("Plate").get(unwrap(params.map["pid"]))
        return [plate] if plate is not None else []

    def projection(self, hql: str, params: Any, ctx: Any = None) -> list[list[Any]]:
        p = {k: unwrap(v) for k, v in params.map.items()}
        self.s.record("query.projection", (hql, p))
        if hql == PLATE_BY_NAME_QUERY:
            return [[rlong(i)] for i, pl in sorted(self.s.all("Plate").items()) if unwrap(pl.name) == p["name"]]
        if hql == PREVIOUS_ANNOTATIONS_QUERY:
            return [[rlong(oid(lk.getChild())), rstring(unwrap(self.s.all("FileAnnotation")[oid(lk.getChild())].ns))]
                    for lk in self.s.links("PlateAnnotationLink", parent=p["pid"])
                    if like(unwrap(self.s.all("FileAnnotation")[oid(lk.getChild())].description), p["tag"])]
        if hql == PREVIOUS_ROIS_QUERY:
            plate = self.s.all("Plate")[p["pid"]]
            images = {oid(ws.getImage()) for w in plate.copyWells() for ws in w.copyWellSamples()}
            return [[rlong(i)] for i, r in self.s.all("Roi").items()
                    if like(unwrap(r.description), p["tag"]) and oid(r.getImage()) in images]
        if hql in (PLATE_FILES_QUERY, SCREEN_FILES_QUERY):
            link_kind, parent = ("PlateAnnotationLink", p.get("pid")) if hql == PLATE_FILES_QUERY else (
                "ScreenAnnotationLink", p.get("sid"))
            rows = []
            for lk in sorted(self.s.links(link_kind, parent=parent), key=lambda lk: oid(lk.getChild())):
                a = self.s.all("FileAnnotation")[oid(lk.getChild())]
                f = self.s.all("OriginalFile")[oid(a.getFile())]
                rows.append([rlong(oid(a)), a.ns, a.description, rlong(oid(f)), f.mimetype, f.name])
            return rows
        if hql == ROIS_PER_IMAGE_QUERY:
            plate = self.s.all("Plate")[p["pid"]]
            images = {oid(ws.getImage()) for w in plate.copyWells() for ws in w.copyWellSamples()}
            counts: dict[int, int] = {}
            for r in self.s.all("Roi").values():
                if oid(r.getImage()) in images:
                    counts[oid(r.getImage())] = counts.get(oid(r.getImage()), 0) + 1
            return [[rlong(i), rlong(n)] for i, n in sorted(counts.items())]
        if hql == PREVIOUS_WELL_ANNOTATIONS_QUERY:
            wells = {oid(w) for w in self.s.all("Plate")[p["pid"]].copyWells()}
            return [[rlong(oid(lk.getChild()))] for lk in self.s.all("WellAnnotationLink").values()
                    if oid(lk.getParent()) in wells
                    and like(unwrap(self.s.all("MapAnnotation")[oid(lk.getChild())].description), p["tag"])]
        if hql == SCREENS_OF_PLATE_QUERY:
            return [[rlong(sid)] for sid, plates in sorted(self.s.screens.items()) if p["pid"] in plates]
        if hql == PREVIOUS_SCREEN_ANNOTATIONS_QUERY:
            return [[rlong(oid(lk.getChild())), rstring(unwrap(self.s.all("FileAnnotation")[oid(lk.getChild())].ns))]
                    for lk in self.s.links("ScreenAnnotationLink", parent=p["sid"])
                    if like(unwrap(self.s.all("FileAnnotation")[oid(lk.getChild())].description), p["tag"])]
        if hql == SCREEN_PLATES_QUERY:
            return [[rlong(i)] for i in sorted(i for sid in p["ids"] for i in self.s.screens.get(sid, []))]
        if hql == FILESET_FILES_QUERY:
            return [[rlong(fid), rstring(path)] for fid, path in self.s.filesets.get(p["pid"], [])]
        if hql == ATTACHED_FILES_QUERY:
            out = []
            for lk in self.s.links("PlateAnnotationLink", parent=p["pid"]):
                ann = self.s.all("FileAnnotation")[oid(lk.getChild())]
                f = self.s.all("OriginalFile")[oid(ann.getFile())]
                if unwrap(ann.ns) == p["raw"] or (unwrap(f.mimetype) or "").startswith("Companion/"):
                    out.append([rlong(oid(f)), rstring(unwrap(f.name))])
            return out
        raise AssertionError(f"unexpected query {hql!r}")


class FakeUpdate:
    def __init__(self, server: FakeServer) -> None:
        self.s = server

    def saveAndReturnObject(self, obj: Any, ctx: Any = None) -> Any:
        self.s.maybe_fail("update.saveAndReturnObject")
        self.s.record("update.saveAndReturnObject", kind(obj))
        return self.s._save(obj)

    def saveAndReturnIds(self, objs: list[Any], ctx: Any = None) -> list[int]:
        self.s.maybe_fail("update.saveAndReturnIds")
        self.s.record("update.saveAndReturnIds", (kind(objs[0]) if objs else None, len(objs)))
        return [oid(self.s._save(o)) for o in objs]

    def saveAndReturnArray(self, objs: list[Any], ctx: Any = None) -> list[Any]:
        self.s.record("update.saveAndReturnArray", len(objs))
        return [self.s._save(o) for o in objs]


class FakeResources:
    def __init__(self, server: FakeServer) -> None:
        self.s = server

    def repositories(self) -> Any:
        return omero.grid.RepositoryMap([OriginalFileI(9999, False)], [None])

    def newTable(self, repo: int, name: str) -> RealTable:
        self.s.record("sharedResources.newTable", (repo, name))
        f = OriginalFileI()
        f.name, f.path, f.mimetype = rstring(name), rstring("/"), rstring("OMERO.tables")
        i = self.s.put(f)
        service = self.s.tables_service
        path = service.new_path()
        table = RealTable(self.s, f, path, service.open(f, path))
        self.s.tables[i] = table
        return table

    def openTable(self, f: Any) -> Any:
        """The real servant over the stored file: a table made through newTable, or an uploaded .h5."""
        i = oid(f)
        if i in self.s.tables:
            return self.s.tables[i].prx if self.s.tables[i].closed else None
        if i in self.s.file_bytes:
            path = self.s.tables_service.new_path()
            path.write_bytes(bytes(self.s.file_bytes[i]))
            return self.s.tables_service.open(self.s.all("OriginalFile")[i], path, read_only=True)
        return None


class FakeRawFileStore:
    def __init__(self, server: FakeServer) -> None:
        self.s = server
        self.file_id: int | None = None

    def setFileId(self, i: int) -> None:
        if i not in self.s.all("OriginalFile"):
            raise omero.SecurityViolation(None, None, f"OriginalFile:{i} not found")
        self.file_id = i
        self.s.file_bytes.setdefault(i, bytearray())

    def write(self, data: bytes, offset: int, length: int) -> None:
        buf = self.s.file_bytes[self.file_id]
        if offset == 0:
            buf.clear()
        if offset != len(buf) or length != len(data):
            raise omero.ApiUsageException(None, None, "non-sequential write")
        buf.extend(data)

    def size(self) -> int:
        return len(self.s.file_bytes[self.file_id])

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self.s.file_bytes[self.file_id][offset : offset + length])

    def save(self) -> Any:
        self.s.record("rawFileStore.save", (self.file_id, len(self.s.file_bytes[self.file_id])))
        return self.s.all("OriginalFile")[self.file_id]

    def close(self) -> None:
        pass


class FakeSession:
    """The ServiceFactory: only the services the uploader uses."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server

    def getQueryService(self) -> FakeQuery:
        return FakeQuery(self.server)

    def getUpdateService(self) -> FakeUpdate:
        return FakeUpdate(self.server)

    def sharedResources(self) -> FakeResources:
        return FakeResources(self.server)

    def createRawFileStore(self) -> FakeRawFileStore:
        return FakeRawFileStore(self.server)

    def submit(self, request: Any) -> _Handle:
        self.server.record("submit", (type(request).__name__, {k: sorted(v) for k, v in request.targetObjects.items()}))
        if not isinstance(request, omero.cmd.Delete2):
            raise omero.ApiUsageException(None, None, f"fake cannot run {type(request).__name__}")
        self.server.delete(request.targetObjects)
        return _Handle(omero.cmd.OK())


class FakeClient:
    """Stands in for omero.client where code wants one (getSession / closeSession)."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.closed = False

    def getSession(self) -> FakeSession:
        return self.server.sf()

    def createSession(self, *args: Any) -> FakeSession:
        return self.server.sf()

    def getSessionId(self) -> str:
        return "fake-session-key"

    def closeSession(self) -> None:
        self.closed = True


Factory = Callable[[], FakeServer]
