"""Upload one bundle to one OMERO Plate: ROIs, tables, annotations, links, raw source files.

Safe to repeat: everything a run creates carries the source's provenance key and its format (in the
FileAnnotation and ROI descriptions); a re-import finds what an earlier import of the same plate and
format created (the same source, or by default also a re-analysis with other checksums) and deletes it
only after the new objects are all saved. A failure midway deletes what this run created, so the server
is left as it was. Nothing is created before every result row has resolved to a Well and an Image.
"""

from __future__ import annotations

import mimetypes
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import HcsImportError
from ..export import record_upload_ids
from ..manifest import read_manifest
from ..model import FIELD, WELL, WELL_COLUMN, WELL_ROW
from ..writers.bundle import ROIS_FILE
from . import (
    NS_BULK,
    NS_MEASUREMENT,
    NS_RAW,
    NS_REPORT,
    annotation_description,
    format_tag,
    markers,
    plate_tag,
    provenance_tag,
)
from .connect import OmeroError, ServerOptions, open_session, require_omero, service_factory
from .platemap_upload import NS_CONFIG, PREVIOUS_WELL_ANNOTATIONS_QUERY, config_file, save_well_annotations
from .resolve import PlateIds, find_plate_id, load_plate
from .rois import ROI_BATCH, RoiSource, batches, population_colours, save_rois, scan_rois
from .tables import (
    BATCH_BYTES,
    LocalTable,
    create_server_table,
    read_local_table,
    upload_file,
    upload_table_file,
    with_plate_column,
)

Mode = Literal["server", "file"]
Log = Callable[[str], None]

# `:tag` is a LIKE pattern: `%<marker>%` (a description ends with both markers; older imports wrote
# the provenance tag alone).
PREVIOUS_ANNOTATIONS_QUERY = (
    "select l.child.id, l.child.ns from PlateAnnotationLink l "
    "where l.parent.id = :pid and l.child.description like :tag"
)
PREVIOUS_ROIS_QUERY = (
    "select r.id from Roi r where r.description like :tag and r.image.id in "
    "(select ws.image.id from WellSample ws where ws.well.plate.id = :pid)"
)
SCREENS_OF_PLATE_QUERY = "select l.parent.id from ScreenPlateLink l where l.child.id = :pid order by l.parent.id"
PREVIOUS_SCREEN_ANNOTATIONS_QUERY = (
    "select l.child.id, l.child.ns from ScreenAnnotationLink l "
    "where l.parent.id = :sid and l.child.description like :tag"
)
DELETE_TIMEOUT_S = 600.0


class UploadError(HcsImportError):
    """The upload could not be done; nothing this run created was left on the server."""


@dataclass
class TableUpload:
    """One table as uploaded: where it is on the server and what it holds."""

    name: str
    kind: str
    namespace: str
    rows: int
    columns: int
    file_id: int = -1
    annotation_id: int = -1


@dataclass
class UploadReport:
    """What one upload did (or, for a dry run, would do). Counts are by OMERO type."""

    plate_id: int
    plate_name: str
    mode: str
    dry_run: bool
    provenance_key: str
    created: Counter[str] = field(default_factory=Counter)
    deleted: dict[str, list[int]] = field(default_factory=dict)
    tables: list[TableUpload] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    replaces: str = "plate and format"  # what earlier imports it replaces: "source", or "plate and format"
    screens: list[int] = field(default_factory=list)  # Screens that get the plate's per-well table
    row_ids: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # table path -> id column -> ids
    screen_tables: list[TableUpload] = field(default_factory=list)

    @property
    def well_table(self) -> TableUpload | None:
        return next((t for t in self.tables if t.kind == "wells"), None)

    def lines(self) -> list[str]:
        """Human summary, as the CLI prints it."""
        verb = "would create" if self.dry_run else "created"
        how = "server-side tables" if self.mode == "server" else "tables uploaded as files"
        out = [f"Plate {self.plate_id} ({self.plate_name}): {how}, provenance {self.provenance_key}"]
        for t in self.tables:
            where = "" if self.dry_run else f" -> FileAnnotation {t.annotation_id} (OriginalFile {t.file_id})"
            out.append(f"  table {t.name}: {t.kind}, {t.rows} rows x {t.columns} columns, ns {t.namespace}{where}")
        for t in self.screen_tables:
            where = "" if self.dry_run else f" -> FileAnnotation {t.annotation_id} (OriginalFile {t.file_id})"
            out.append(f"  screen table {t.name}: {t.rows} rows x {t.columns} columns, ns {t.namespace}{where}")
        out.append(f"  {verb}: " + ", ".join(f"{n} {k}" for k, n in sorted(self.created.items())))
        dverb = "would delete" if self.dry_run else "deleted"
        if any(self.deleted.values()):
            out.append(f"  {dverb} (previous import of this {self.replaces}): "
                       + ", ".join(f"{len(v)} {k}" for k, v in sorted(self.deleted.items()) if v))
        else:
            out.append(f"  no previous import of this {self.replaces} on this plate")
        out.extend(f"  warning: {w}" for w in self.warnings)
        return out


class _Created:
    """Ids this run created, by type, for rollback."""

    def __init__(self) -> None:
        self.ids: dict[str, list[int]] = {}

    def add(self, kind: str, ids: int | list[int]) -> None:
        self.ids.setdefault(kind, []).extend([ids] if isinstance(ids, int) else ids)


def _params(**values: Any) -> Any:
    """Query parameters: ints as RLong, lists of ints as RList of RLong, the rest as RString."""
    from omero.rtypes import rlist, rlong, rstring
    from omero.sys import ParametersI

    params = ParametersI()
    for key, value in values.items():
        if isinstance(value, list):
            params.add(key, rlist([rlong(x) for x in value]))
        else:
            params.add(key, rlong(value) if isinstance(value, int) else rstring(value))
    return params


def like_pattern(*markers_: str) -> str:
    """A LIKE pattern matching descriptions that contain the markers in this order (HQL's wildcards in
    them made single-character wildcards, which still match themselves)."""
    return "%" + "%".join(m.replace("%", "_").replace("\\", "_") for m in markers_) + "%"


def screens_of(query: Any, plate_id: int) -> list[int]:
    return [int(r[0].getValue()) for r in query.projection(SCREENS_OF_PLATE_QUERY, _params(pid=plate_id))]


def find_previous_on_screens(query: Any, screen_ids: list[int], plate_id: int, markers_: list[str]) -> list[int]:
    """Screen-level tables an earlier import of this plate wrote (their descriptions carry the plate's id)."""
    found: set[int] = set()
    for sid in screen_ids:
        for marker in markers_:
            params = _params(sid=sid, tag=like_pattern(marker, plate_tag(plate_id)))
            found.update(int(r[0].getValue()) for r in query.projection(PREVIOUS_SCREEN_ANNOTATIONS_QUERY, params))
    return sorted(found)


def find_previous(query: Any, plate_id: int, markers_: list[str]) -> dict[str, list[int]]:
    """What earlier imports created on this plate whose descriptions carry any of `markers_`."""
    annotations: set[int] = set()
    rois: set[int] = set()
    maps: set[int] = set()
    for marker in markers_:
        params = _params(pid=plate_id, tag=like_pattern(marker))
        annotations.update(int(r[0].getValue()) for r in query.projection(PREVIOUS_ANNOTATIONS_QUERY, params))
        rois.update(int(r[0].getValue()) for r in query.projection(PREVIOUS_ROIS_QUERY, params))
        maps.update(int(r[0].getValue()) for r in query.projection(PREVIOUS_WELL_ANNOTATIONS_QUERY, params))
    return {"FileAnnotation": sorted(annotations), "Roi": sorted(rois), "MapAnnotation": sorted(maps)}


def delete_objects(sf: Any, targets: dict[str, list[int]], timeout: float = DELETE_TIMEOUT_S) -> None:
    """Delete objects (and what OMERO deletes with them: shapes, links, annotation files) with Delete2."""
    import omero.cmd

    targets = {k: list(v) for k, v in targets.items() if v}
    if not targets:
        return
    handle = sf.submit(omero.cmd.Delete2(targetObjects=targets))
    try:
        deadline = time.monotonic() + timeout
        response = handle.getResponse()
        while response is None:
            if time.monotonic() > deadline:
                raise OmeroError(f"deleting {sum(map(len, targets.values()))} objects timed out")
            time.sleep(0.2)
            response = handle.getResponse()
        if isinstance(response, omero.cmd.ERR):
            raise OmeroError(f"delete failed: {response.category} {response.name}")
    finally:
        handle.close()


@contextmanager
def _session(server: Any) -> Iterator[Any]:
    if isinstance(server, ServerOptions):
        with open_session(server) as client:
            yield client.getSession()
    else:
        yield service_factory(server)


def _labels(table: LocalTable, frame: pd.DataFrame, missing: np.ndarray, with_field: bool) -> list[str]:
    """Names of the wells (or well fields) at the `missing` rows, as the table writes them.

    The label column is read here, only when something did not resolve: an upload of a table that
    resolves whole holds its key numbers, never a string per row.
    """
    sub = frame.loc[missing, [WELL_ROW, WELL_COLUMN, FIELD] if with_field else [WELL_ROW, WELL_COLUMN]]
    sub = sub.drop_duplicates()
    if WELL in table.names:
        labels = table.columns([WELL])[WELL][sub.index.to_numpy()]
        names = [b.decode("utf-8") if isinstance(b, bytes) else str(b) for b in labels.tolist()]
    else:
        names = [f"row {r + 1} column {c + 1}" for r, c in zip(sub[WELL_ROW], sub[WELL_COLUMN])]
    if with_field:
        return [f"{w} field {f + 1}" for w, f in zip(names, sub[FIELD])]
    return names


@dataclass
class _Prepared:
    """Everything resolved before the first object is created."""

    entries: list[tuple[dict[str, Any], LocalTable, dict[str, np.ndarray]]]
    rois: RoiSource | None
    missing: list[str]
    platemap: tuple[pd.DataFrame, np.ndarray] | None = None  # the map and each row's Well id (-1: none)
    report: Path | None = None  # the bundle's HTML report, attached to the Plate

    @property
    def well_entry(self) -> tuple[dict[str, Any], LocalTable, dict[str, np.ndarray]] | None:
        """The per-well table (its first part), the one a Screen-level table repeats."""
        return next((e for e in self.entries if e[0]["kind"] == "wells" and e[0].get("part", 1) == 1), None)


def _prepare(bundle: Path, manifest: dict[str, Any], plate: PlateIds, object_tables: bool = True) -> _Prepared:
    missing: list[str] = []
    entries = []
    for entry in manifest["tables"]:
        if entry["kind"] == "objects" and not object_tables:
            continue
        table = read_local_table(bundle / entry["path"])
        # Key numbers only (8 bytes a row); the well labels are read only to name wells that did not resolve.
        frame = pd.DataFrame(table.columns([k for k in (WELL_ROW, WELL_COLUMN, FIELD) if k in table.names]))
        rows, cols = frame[WELL_ROW].to_numpy(np.int64), frame[WELL_COLUMN].to_numpy(np.int64)
        ids: dict[str, np.ndarray] = {}
        if "Well" in table.names:
            ids["Well"], lost = plate.well_ids(rows, cols)
            if lost.any():
                missing += [f"{entry['path']}: well {w} has results but no Well in the Plate"
                            for w in _labels(table, frame, lost, False)]
        if "Image" in table.names:
            ids["Image"], lost = plate.image_ids(rows, cols, frame[FIELD].to_numpy(np.int64))
            if lost.any():
                missing += [f"{entry['path']}: {w} has results but no Image"
                            for w in _labels(table, frame, lost & ~(ids.get("Well", np.zeros(len(lost))) < 0), True)]
        entries.append((entry, table, ids))
    rois = None
    rois_path = bundle / manifest.get("rois", {}).get("path", ROIS_FILE)
    if manifest.get("rois", {}).get("count", 0) and rois_path.exists():
        rois = scan_rois(rois_path, plate.image_ids)
        if rois.lost_shapes:
            missing.append(f"{ROIS_FILE}: {rois.lost_shapes} shapes lie on fields with no Image")
    platemap = None
    if "platemap" in manifest:
        frame = pd.read_parquet(bundle / manifest["platemap"]["path"])
        well_ids, _ = plate.well_ids(frame[WELL_ROW].to_numpy(np.int64), frame[WELL_COLUMN].to_numpy(np.int64))
        platemap = (frame, well_ids)
    report = bundle / manifest["report"] if manifest.get("report") else None
    return _Prepared(entries, rois, list(dict.fromkeys(missing)), platemap,
                     report if report is not None and report.is_file() else None)


def _namespace(kind: str) -> str:
    return NS_MEASUREMENT if kind == "objects" else NS_BULK


def _order(entries: list[Any]) -> list[Any]:
    """Object tables, then field tables, then the per-well table last: OMERO.web tries the newest first."""
    rank = {"objects": 0, "fields": 1, "wells": 2}
    return sorted(entries, key=lambda e: rank.get(e[0]["kind"], 1))


def upload_bundle(bundle: Path, server: ServerOptions | Any, *, plate_id: int | None = None,
                  plate_name: str | None = None, dry_run: bool = False, mode: Mode = "server",
                  sources: Path | None = None, allow_missing: bool = False, log: Log | None = None,
                  batch_bytes: int = BATCH_BYTES, roi_batch: int = ROI_BATCH,
                  keep_previous: bool = False, object_tables: bool = True,
                  screen_table: bool = True) -> UploadReport:
    """Upload a bundle (DIR/<plate>/ with manifest.json) to a Plate, given by id or unique name.

    `server` is ServerOptions (a session is opened and closed here) or an open session (omero.client,
    BlitzGateway or ServiceFactory). `sources`: the plate folder the bundle was parsed from, so the raw
    result files are attached too (skipped with a warning when None). `allow_missing`: write results
    whose well or field has no image with id -1 instead of refusing (always reported). What an earlier
    import of the same source created is always replaced; so is, unless `keep_previous`, what an earlier
    hcs-import upload of the same plate and format created from other files (a re-analysis).
    `object_tables` False keeps the per-object tables off the Plate (ROIs and per-well / per-field tables
    are still uploaded): a viewer that takes the first OMERO.tables file on a Plate (omero-parade) then
    finds the per-well one; OMERO.insight's measurement tool, which needs the object tables, shows nothing.
    `screen_table`: when the Plate is in a Screen, also write its per-well table to the Screen with a
    leading `Plate` column (what omero-parade and IDR tooling read there); always built server-side.
    """
    require_omero()
    started = time.perf_counter()
    say = log or (lambda _: None)
    if (plate_id is None) == (plate_name is None):
        raise UploadError("give exactly one of plate_id / plate_name")
    if mode not in ("server", "file"):
        raise UploadError(f"mode must be 'server' or 'file', not {mode!r}")
    manifest = read_manifest(bundle)
    key = manifest["provenance"]["key"]
    fmt = str(manifest.get("format", ""))
    tag = f"{provenance_tag(key)} {markers(key, fmt)}"  # ROI descriptions: both markers
    with _session(server) as sf:
        query = sf.getQueryService()
        pid = plate_id if plate_id is not None else find_plate_id(query, str(plate_name))
        plate = load_plate(query, pid)
        say(f"Plate {pid} ({plate.name}): {len(plate.wells)} wells, {len(plate.images)} images")
        prepared = _prepare(bundle, manifest, plate, object_tables)
        report = UploadReport(pid, plate.name, mode, dry_run, key)
        if prepared.missing:
            if not allow_missing:
                shown = "; ".join(prepared.missing[:10])
                more = f" (and {len(prepared.missing) - 10} more)" if len(prepared.missing) > 10 else ""
                raise UploadError(f"Plate {pid}: results without images: {shown}{more}. "
                                  "Check --plate-id, or use --allow-missing to store them with id -1")
            report.warnings += prepared.missing
        report.replaces = "source" if keep_previous else "plate and format"
        wanted = [provenance_tag(key)] + ([] if keep_previous else [format_tag(fmt)])
        report.deleted = find_previous(query, pid, wanted)
        report.screens = screens_of(query, pid) if screen_table and prepared.well_entry is not None else []
        on_screens = find_previous_on_screens(query, report.screens, pid, wanted)
        report.deleted["FileAnnotation"] = sorted({*report.deleted["FileAnnotation"], *on_screens})
        raw_files = _raw_files(manifest, sources, report)
        _plan(report, prepared, raw_files)
        if dry_run:
            report.seconds = time.perf_counter() - started
            return report
        created = _Created()
        try:
            _execute(sf, report, prepared, plate, tag, (key, fmt), mode, raw_files, created, say, batch_bytes,
                     roi_batch)
        except BaseException as exc:
            say(f"upload failed ({type(exc).__name__}); deleting the {sum(map(len, created.ids.values()))} "
                "objects this run created")
            try:
                delete_objects(sf, {k: created.ids.get(k, []) for k in ("Roi", "FileAnnotation", "MapAnnotation",
                                                                        "OriginalFile")})
            except Exception as cleanup:  # report both; the original failure matters most
                raise UploadError(f"upload failed: {exc}; cleanup also failed: {cleanup}; objects left: "
                                  f"{ {k: v[:20] for k, v in created.ids.items()} }") from exc
            if isinstance(exc, HcsImportError):
                raise
            if isinstance(exc, Exception):
                raise UploadError(f"upload to Plate {pid} failed and was rolled back: "
                                  f"{type(exc).__name__}: {exc}") from exc
            raise
        delete_objects(sf, report.deleted)
        if record_upload_ids(bundle, pid, report.row_ids) is None:
            report.warnings.append(f"{bundle}: not writable; the OMERO ids were not kept for `hcs-import export`")
        report.seconds = time.perf_counter() - started
        return report


def _raw_files(manifest: dict[str, Any], sources: Path | None, report: UploadReport) -> list[Path]:
    if sources is None:
        if manifest.get("sources"):
            report.warnings.append("source files not attached: the plate folder is unknown (pass it as sources)")
        return []
    files = []
    for s in manifest.get("sources", []):
        path = sources / s["path"]
        if path.is_file():
            files.append(path)
        else:
            report.warnings.append(f"source file {s['path']} not found under {sources}; not attached")
    return files


def _plan(report: UploadReport, prepared: _Prepared, raw_files: list[Path]) -> None:
    """Fill the report with what the run will create (also the dry-run output)."""
    c = report.created
    for entry, table, _ in _order(prepared.entries):
        report.tables.append(TableUpload(entry["path"], entry["kind"], _namespace(entry["kind"]), table.rows,
                                         len(table.names)))
    rois_by_pop = {p.population: p for p in (prepared.rois.populations if prepared.rois else ())}
    c["Roi"] = sum(p.rois for p in rois_by_pop.values())
    c["Shape"] = sum(p.shapes for p in rois_by_pop.values())
    c["Table (OriginalFile OMERO.tables)"] = len(prepared.entries) + len(report.screens)
    c["FileAnnotation"] = len(prepared.entries) + len(raw_files) + len(report.screens)
    c["PlateAnnotationLink"] = len(prepared.entries) + len(raw_files)
    if report.screens and prepared.well_entry is not None:
        entry, table, _ = prepared.well_entry
        c["ScreenAnnotationLink"] = len(report.screens)
        for sid in report.screens:
            report.screen_tables.append(TableUpload(f"Screen {sid}: {entry['path']}", "wells", NS_BULK, table.rows,
                                                    len(table.names) + 1))
    c["OriginalFile (raw source)"] = len(raw_files)
    if prepared.report is not None:
        c["FileAnnotation"] += 1
        c["PlateAnnotationLink"] += 1
        c["OriginalFile (report)"] = 1
    if prepared.platemap is not None:
        c["MapAnnotation (plate map)"] = int((prepared.platemap[1] >= 0).sum())
        c["WellAnnotationLink"] = c["MapAnnotation (plate map)"]
        c["FileAnnotation"] += 1
        c["PlateAnnotationLink"] += 1
    c["RoiAnnotationLink"] = sum(rois_by_pop[e["population"]].rois for e, _, _ in prepared.entries
                                 if e["kind"] == "objects" and e["population"] in rois_by_pop)


def _annotate(update: Any, plate_id: int, file_id: int, ns: str, description: str, created: _Created,
              screen_id: int | None = None) -> int:
    """FileAnnotation on the file, linked to the Plate (or, given `screen_id`, the Screen) in one save;
    returns the annotation id."""
    from omero.model import (
        FileAnnotationI,
        OriginalFileI,
        PlateAnnotationLinkI,
        PlateI,
        ScreenAnnotationLinkI,
        ScreenI,
    )
    from omero.rtypes import rstring

    ann = FileAnnotationI()
    ann.ns = rstring(ns)
    ann.description = rstring(description)
    ann.file = OriginalFileI(file_id, False)
    if screen_id is None:
        link = PlateAnnotationLinkI()
        link.parent = PlateI(plate_id, False)
    else:
        link = ScreenAnnotationLinkI()
        link.parent = ScreenI(screen_id, False)
    link.child = ann
    saved = update.saveAndReturnObject(link)
    ann_id = int(saved.getChild().getId().getValue())
    created.add("FileAnnotation", ann_id)
    return ann_id


def _link_rois(update: Any, roi_ids: np.ndarray, ann_id: int, batch: int) -> None:
    """RoiAnnotationLinks: OMERO.insight's measurement tool finds tables through ROIs linked to them."""
    from omero.model import FileAnnotationI, RoiAnnotationLinkI, RoiI

    roi_ids = roi_ids[roi_ids >= 0]
    ann = FileAnnotationI(ann_id, False)  # one shared reference per call: Ice sends it once
    for start, stop in batches(len(roi_ids), batch):
        links = []
        for rid in roi_ids[start:stop].tolist():
            link = RoiAnnotationLinkI()
            link.setParent(RoiI(rid, False))
            link.setChild(ann)
            links.append(link)
        update.saveAndReturnIds(links)


def table_label(plate_name: str, entry: dict[str, Any], table: LocalTable) -> str:
    """What a table is, in words: OMERO.insight lists measurement tables by this (see README, viewers)."""
    part = f", part {entry['part']} of {entry['parts']}" if entry.get("parts", 1) > 1 else ""
    what = {"objects": "objects", "fields": "per field", "wells": "per well"}.get(entry["kind"], entry["kind"])
    return (f"{plate_name} {entry['population']}: {what}, {table.rows} rows x {len(table.names)} columns{part} "
            "(hcs-import)")


def _save_rois(update: Any, rois: RoiSource | None, tag: str, created: _Created, say: Log, roi_batch: int
               ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Save every ROI, a row group of the ROI file at a time; returns each population's (table rows, ROI ids).

    Only the two id arrays per population stay (16 bytes a ROI, for the table's Roi column and the
    links); the shapes and model objects of a batch are gone once it is saved.
    """
    if rois is None:
        return {}
    colours = population_colours([p.population for p in rois.populations])
    counts = {p.population: p.rois for p in rois.populations}
    rows: dict[str, list[np.ndarray]] = {}
    ids: dict[str, list[np.ndarray]] = {}
    for plan, image_ids in rois.plans():
        if plan.population not in rows:
            say(f"saving {counts.get(plan.population, plan.count)} ROIs of {plan.population}")
        saved = save_rois(update, plan, image_ids, colours[plan.population], tag,
                          lambda batch_ids: created.add("Roi", batch_ids), roi_batch)
        rows.setdefault(plan.population, []).append(plan.table_rows)
        ids.setdefault(plan.population, []).append(saved)
    return {p: (np.concatenate(rows[p]), np.concatenate(ids[p])) for p in rows}


def _execute(sf: Any, report: UploadReport, prepared: _Prepared, plate: PlateIds, tag: str,
             source: tuple[str, str], mode: Mode, raw_files: list[Path], created: _Created, say: Log,
             batch_bytes: int, roi_batch: int) -> None:
    key, fmt = source
    update = sf.getUpdateService()
    roi_ids = _save_rois(update, prepared.rois, tag, created, say, roi_batch)
    track = created.add
    with tempfile.TemporaryDirectory(prefix="hcs-import-") as tmp:
        for (entry, table, ids), planned in zip(_order(prepared.entries), report.tables):
            ids = dict(ids)
            roi_for_rows = np.full(table.rows, -1, dtype=np.int64)
            if entry["kind"] == "objects" and entry["population"] in roi_ids:
                table_rows, rids = roi_ids[entry["population"]]
                roi_for_rows[table_rows] = rids
            if "Roi" in table.names:
                ids["Roi"] = roi_for_rows
            report.row_ids[entry["path"]] = {k: v for k, v in ids.items() if k in ("Image", "Roi", "Well")}
            name = f"{plate.name} {entry['path']}"
            say(f"writing table {name} ({table.rows} rows, {mode}-side)")
            if mode == "server":
                file_id = create_server_table(sf, name, table, ids, track, batch_bytes)
            else:
                file_id = upload_table_file(sf, name, table, ids, Path(tmp), track)
            planned.file_id = file_id
            description = annotation_description(table_label(plate.name, entry, table), key, fmt)
            planned.annotation_id = _annotate(update, plate.plate_id, file_id, planned.namespace, description,
                                              created)
            if entry["kind"] == "objects":
                _link_rois(update, roi_for_rows, planned.annotation_id, roi_batch)
        if report.screen_tables and prepared.well_entry is not None:
            entry, table, ids = prepared.well_entry
            screen_view = with_plate_column(table)
            screen_ids = {**ids, "Plate": np.full(table.rows, plate.plate_id, dtype=np.int64)}
            for sid, planned in zip(report.screens, report.screen_tables):
                name = f"{plate.name} {entry['path']} (Screen {sid})"
                say(f"writing table {name} ({table.rows} rows, server-side)")
                planned.file_id = create_server_table(sf, name, screen_view, screen_ids, track, batch_bytes)
                label = table_label(plate.name, entry, screen_view).replace(" (hcs-import)",
                                                                            ", Screen-level (hcs-import)")
                description = f"{label} [{format_tag(fmt)}; {provenance_tag(key)}; {plate_tag(plate.plate_id)}]"
                planned.annotation_id = _annotate(update, plate.plate_id, planned.file_id, NS_BULK, description,
                                                  created, screen_id=sid)
    if prepared.platemap is not None:
        platemap, well_ids = prepared.platemap
        say(f"annotating {int((well_ids >= 0).sum())} wells from the plate map")
        columns = [str(c) for c in platemap.columns[2:]]
        save_well_annotations(update, platemap, well_ids, f"{plate.name} plate map (hcs-import) {markers(key, fmt)}",
                              track)
        with tempfile.TemporaryDirectory(prefix="hcs-import-") as tmp:
            config = config_file(columns, Path(tmp))
            file_id = upload_file(sf, config, config.name, "text/x-yaml", track)
            _annotate(update, plate.plate_id, file_id, NS_CONFIG,
                      annotation_description(f"{plate.name} plate map: omero-metadata bulkmap config (hcs-import)",
                                             key, fmt), created)
    if prepared.report is not None:
        say("attaching the report")
        file_id = upload_file(sf, prepared.report, f"{plate.name} {prepared.report.name}", "text/html", track)
        _annotate(update, plate.plate_id, file_id, NS_REPORT,
                  annotation_description(f"{plate.name} report: heatmaps, missing wells, warnings (hcs-import)",
                                         key, fmt), created)
    for path in raw_files:
        say(f"attaching {path.name}")
        mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        file_id = upload_file(sf, path, path.name, mimetype, track, file_path="")
        _annotate(update, plate.plate_id, file_id, NS_RAW,
                  annotation_description(f"{plate.name} source file {path.name} (hcs-import)", key, fmt), created)
