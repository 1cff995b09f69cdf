"""What hcs-import put on a Plate or Screen, which table each OMERO viewer will show, and removing it.

`status` reads; `remove` deletes (ROIs, tables, attached source files of every hcs-import upload, found by
the markers every description carries) and touches nothing else. Targets are written as the omero CLI
writes them: `Plate:51`, `Screen:3`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import HcsImportError
from . import FORMAT_TAG, NS_BULK, NS_MEASUREMENT, PROVENANCE_TAG, TABLES_MIMETYPE
from .server_side import plate_ids
from .upload import _params, delete_objects, find_previous, find_previous_on_screens, screens_of

TARGET_RE = re.compile(r"^\s*(Plate|Screen):(\d+)\s*$", re.IGNORECASE)
# OMERO.web's image viewer draws at most this many ROIs of an image (its `omero.client.viewer.roi_limit`
# setting, 2000 unless the server changes it); an image with more shows only part of its objects.
VIEWER_ROI_LIMIT = 2000
PLATE_FILES_QUERY = (
    "select a.id, a.ns, a.description, f.id, f.mimetype, f.name from PlateAnnotationLink l "
    "join l.child a join a.file f where l.parent.id = :pid order by a.id"
)
SCREEN_FILES_QUERY = (
    "select a.id, a.ns, a.description, f.id, f.mimetype, f.name from ScreenAnnotationLink l "
    "join l.child a join a.file f where l.parent.id = :sid order by a.id"
)
ROIS_PER_IMAGE_QUERY = (
    "select r.image.id, count(r.id) from Roi r where r.image.id in "
    "(select ws.image.id from WellSample ws where ws.well.plate.id = :pid) group by r.image.id"
)
_KEY_RE = re.compile(re.escape(PROVENANCE_TAG) + r"([0-9a-f]+)")
_FORMAT_RE = re.compile(re.escape(FORMAT_TAG) + r"([\w.-]+)")


def parse_target(text: str) -> tuple[str, int]:
    """`Plate:51` -> ("Plate", 51); anything else is a clear error."""
    m = TARGET_RE.match(text)
    if not m:
        raise HcsImportError(f"target {text[:60]!r}: expected Plate:ID or Screen:ID (e.g. Plate:51)")
    return m.group(1).capitalize(), int(m.group(2))


@dataclass(frozen=True)
class AttachedFile:
    """A FileAnnotation on a Plate or Screen and its file."""

    annotation_id: int
    ns: str
    description: str
    file_id: int
    mimetype: str
    name: str

    @property
    def is_table(self) -> bool:
        return self.mimetype == TABLES_MIMETYPE or self.ns in (NS_BULK, NS_MEASUREMENT)

    @property
    def key(self) -> str | None:
        m = _KEY_RE.search(self.description)
        return m.group(1) if m else None

    @property
    def format(self) -> str:
        m = _FORMAT_RE.search(self.description)
        return m.group(1) if m else "?"

    def label(self) -> str:
        return f"FileAnnotation {self.annotation_id} ({self.description.split(' [')[0] or self.name})"


@dataclass
class PlateStatus:
    plate_id: int
    files: list[AttachedFile]
    rois_per_image: dict[int, int]
    hcs_rois: int
    screen_files: list[AttachedFile] = field(default_factory=list)

    def imports(self) -> dict[tuple[str, str], list[AttachedFile]]:
        """hcs-import uploads on the Plate, by (format, provenance key), oldest first."""
        out: dict[tuple[str, str], list[AttachedFile]] = {}
        for f in self.files:
            if f.key:
                out.setdefault((f.format, f.key), []).append(f)
        return out

    def viewers(self) -> Iterator[tuple[str, str]]:
        """(viewer, what it shows) by each viewer's lookup rule (see README, "Which table each viewer shows")."""
        tables = [f for f in self.files if f.is_table]
        bulk = [f for f in tables if f.ns != NS_MEASUREMENT]
        yield "OMERO.web (Well)", bulk[-1].label() if bulk else "no table"
        parade = [f for f in self.screen_files if f.is_table] or tables
        where = "Screen" if self.screen_files and any(f.is_table for f in self.screen_files) else "Plate"
        if parade:
            first = parade[0]
            note = "" if first.ns != NS_MEASUREMENT else " -- an object table: wells show one object's values"
            yield "omero-parade", f"{first.label()} on the {where}{note}"
        else:
            yield "omero-parade", "no table"
        measured = [f.label() for f in tables if f.ns == NS_MEASUREMENT]
        yield "OMERO.insight (measurements)", ", ".join(measured) if measured else "no measurement table"

    def lines(self) -> list[str]:
        imports = self.imports()
        out = [f"Plate {self.plate_id}: {len(imports)} hcs-import upload{'s' if len(imports) != 1 else ''}, "
               f"{self.hcs_rois} hcs-import ROIs"]
        for (fmt, key), files in imports.items():
            tables = [f for f in files if f.is_table]
            out.append(f"  {fmt}, provenance {key}: {len(tables)} tables, {len(files) - len(tables)} source files")
            out.extend(f"    {f.label()}, ns {f.ns}" for f in tables)
        out.extend(f"  {viewer}: {shows}" for viewer, shows in self.viewers())
        over = sorted((n, i) for i, n in self.rois_per_image.items() if n > VIEWER_ROI_LIMIT)
        if over:
            shown = ", ".join(f"Image {i} ({n} ROIs)" for n, i in over[-5:][::-1])
            out.append(f"  images over OMERO.web's ROI limit ({VIEWER_ROI_LIMIT}): {len(over)}: {shown}")
        else:
            out.append(f"  no image over OMERO.web's ROI limit ({VIEWER_ROI_LIMIT})")
        return out


def _files(query: Any, hql: str, **params: Any) -> list[AttachedFile]:
    rows = query.projection(hql, _params(**params))
    return [AttachedFile(int(r[0].getValue()), str(_v(r[1])), str(_v(r[2])), int(r[3].getValue()), str(_v(r[4])),
                         str(_v(r[5]))) for r in rows]


def _v(x: Any) -> Any:
    return "" if x is None or x.getValue() is None else x.getValue()


def plate_status(query: Any, plate_id: int) -> PlateStatus:
    files = _files(query, PLATE_FILES_QUERY, pid=plate_id)
    rois = {int(r[0].getValue()): int(r[1].getValue())
            for r in query.projection(ROIS_PER_IMAGE_QUERY, _params(pid=plate_id))}
    hcs_rois = len(find_previous(query, plate_id, [PROVENANCE_TAG.strip()])["Roi"])
    screen_files = [f for sid in screens_of(query, plate_id) for f in _files(query, SCREEN_FILES_QUERY, sid=sid)
                    if f"hcs-import plate {plate_id};" in f.description]
    return PlateStatus(plate_id, files, rois, hcs_rois, screen_files)


def status(sf: Any, target: str) -> list[str]:
    kind, target_id = parse_target(target)
    query = sf.getQueryService()
    ids = plate_ids(query, kind, [target_id])
    if not ids:
        return [f"{kind} {target_id}: no plates"]
    out = [] if kind == "Plate" else [f"Screen {target_id}: {len(ids)} plates"]
    for pid in ids:
        out.extend(plate_status(query, pid).lines())
    return out


def remove(sf: Any, target: str, dry_run: bool = False) -> list[str]:
    """Delete every hcs-import upload on the target's plates (ROIs, tables, source files); nothing else."""
    kind, target_id = parse_target(target)
    query = sf.getQueryService()
    out = []
    for pid in plate_ids(query, kind, [target_id]):
        found = find_previous(query, pid, [PROVENANCE_TAG.strip()])
        screen = find_previous_on_screens(query, screens_of(query, pid), pid, [PROVENANCE_TAG.strip()])
        found["FileAnnotation"] = sorted({*found["FileAnnotation"], *screen})
        verb = "would delete" if dry_run else "deleted"
        out.append(f"Plate {pid}: {verb} {len(found['FileAnnotation'])} FileAnnotations (tables, source files) "
                   f"and {len(found['Roi'])} ROIs made by hcs-import")
        if not dry_run:
            delete_objects(sf, found)
    return out
