"""The OMERO.script's work, importable and testable without the script runner.

Server-side the analysis files are already in OMERO: either in the plate's fileset (imported with the
images) or attached to the Plate (ns .../bulk_annotations/raw, or a Companion/* mimetype). They are
downloaded into a temporary plate folder, parsed, and uploaded like any other bundle.
"""

from __future__ import annotations

import posixpath
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FormatNotDetected, HcsImportError
from ..parsers.base import ParseOptions
from ..pipeline import import_plate
from . import NS_RAW
from .upload import Mode, UploadReport, _params, upload_bundle

SCREEN_PLATES_QUERY = "select l.child.id from ScreenPlateLink l where l.parent.id in (:ids) order by l.child.id"
FILESET_FILES_QUERY = (
    "select distinct fe.originalFile.id, fe.clientPath from FilesetEntry fe where fe.fileset.id in "
    "(select img.fileset.id from WellSample ws join ws.image img where ws.well.plate.id = :pid)"
)
ATTACHED_FILES_QUERY = (
    "select a.file.id, a.file.name from FileAnnotation a where a.id in "
    "(select l.child.id from PlateAnnotationLink l where l.parent.id = :pid) "
    "and (a.ns = :raw or a.file.mimetype like 'Companion/%')"
)
READ_BLOCK = 4 * 1024 * 1024


@dataclass
class PlateOutcome:
    plate_id: int
    report: UploadReport | None
    error: str | None


def plate_ids(query: Any, data_type: str, ids: list[int]) -> list[int]:
    """The Plates a script run covers: the given Plates, or every Plate of the given Screens."""
    if data_type == "Plate":
        return list(ids)
    if data_type != "Screen":
        raise HcsImportError(f"Data_Type must be Plate or Screen, not {data_type!r}")
    return [int(r[0].getValue()) for r in query.projection(SCREEN_PLATES_QUERY, _params(ids=list(ids)))]


def download(sf: Any, file_id: int, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    store = sf.createRawFileStore()
    try:
        store.setFileId(file_id)
        size = store.size()
        with open(target, "wb") as fh:
            for offset in range(0, size, READ_BLOCK):
                fh.write(store.read(offset, min(READ_BLOCK, size - offset)))
    finally:
        store.close()


def fetch_analysis_files(sf: Any, plate_id: int, folder: Path) -> list[Path]:
    """Download the plate's fileset files (keeping their relative layout) and its attached result files."""
    query = sf.getQueryService()
    rows = [(int(r[0].getValue()), str(r[1].getValue())) for r in
            query.projection(FILESET_FILES_QUERY, _params(pid=plate_id))]
    files = []
    if rows:
        common = posixpath.commonpath([p for _, p in rows]) if len(rows) > 1 else posixpath.dirname(rows[0][1])
        for fid, client_path in rows:
            rel = posixpath.relpath(client_path, common) if common else client_path
            files.append((fid, folder / Path(rel)))
    for r in query.projection(ATTACHED_FILES_QUERY, _params(pid=plate_id, raw=NS_RAW)):
        files.append((int(r[0].getValue()), folder / Path(str(r[1].getValue())).name))
    for fid, path in files:
        download(sf, fid, path)
    return [p for _, p in files]


def run(sf: Any, data_type: str, ids: list[int], *, mode: Mode = "server", dry_run: bool = False,
        allow_missing: bool = False, log: Callable[[str], None] | None = None) -> tuple[str, int | None]:
    """Import the analysis of every Plate; returns (message, id of the last per-well table's FileAnnotation)."""
    outcomes: list[PlateOutcome] = []
    for pid in plate_ids(sf.getQueryService(), data_type, ids):
        with tempfile.TemporaryDirectory(prefix="hcs-import-script-") as tmp:
            folder = Path(tmp) / "plate"
            folder.mkdir()
            try:
                if not fetch_analysis_files(sf, pid, folder):
                    raise HcsImportError("no fileset files or attached result files")
                bundle = import_plate(folder, Path(tmp) / "out", ParseOptions()).bundle
                # The files are in OMERO already (fileset or attachment): not attached a second time.
                report = upload_bundle(bundle, sf, plate_id=pid, dry_run=dry_run, mode=mode, sources=None,
                                       allow_missing=allow_missing, log=log)
                outcomes.append(PlateOutcome(pid, report, None))
            except (HcsImportError, FormatNotDetected) as exc:
                outcomes.append(PlateOutcome(pid, None, str(exc)))
    done = [o for o in outcomes if o.report]
    failed = [o for o in outcomes if o.error]
    parts = []
    if done:
        verb = "would import" if dry_run else "imported"
        parts.append(f"{verb} analysis for {len(done)} plate(s): "
                     + ", ".join(f"Plate {o.plate_id} ({o.report.created['Roi']} ROIs, "
                                 f"{len(o.report.tables)} tables)" for o in done if o.report))
    parts += [f"Plate {o.plate_id}: {o.error}" for o in failed]
    wells = [o.report.well_table for o in done if o.report and o.report.well_table]
    ann = wells[-1].annotation_id if wells and wells[-1].annotation_id > 0 else None
    return "; ".join(parts) or "no plates", ann
