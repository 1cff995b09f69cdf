"""A plate's local bundle: OMERO.tables files, ROIs and a manifest, appearing atomically.

Layout of DIR/<plate>/:
  manifest.json          what is here (format, plate, tables, rois, sources, warnings, provenance)
  <table>.h5             one OMERO.tables v2 file per object population, plus the per-well table
  <table>.part<N>.h5     further parts of a table too wide for one HDF5 header (see omero_columns)
  rois.parquet           every ROI shape, one row per shape
  layout.parquet         the images the plate layout lists (when the format has a layout file)

Everything is written into a hidden sibling folder first and renamed into place at the end, so an
interrupted run leaves no half bundle; a previous bundle of the same plate is replaced only then.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import tables

from .. import __version__
from ..errors import OutputError
from ..manifest import MANIFEST, SCHEMA_VERSION, Manifest, TableEntry, write_manifest
from ..model import MeasurementTable, PlateAnalysis
from .hdf5_flush import disk_nearly_full
from .omero_columns import plan_columns, split_columns
from .omero_tables import write_table
from .rois_file import RoisWritten, write_rois

# HDF5 prints its whole error stack on stderr before PyTables raises; the raised error is what we report,
# as one line (OutputError), so the stack would only be noise around it.
tables.silence_hdf5_messages()

ROIS_FILE = "rois.parquet"
LAYOUT_FILE = "layout.parquet"
PLATEMAP_FILE = "platemap.parquet"  # the plate map given with --platemap (see platemap.py)
PARTIAL_MARK = ".partial-"
OLD_MARK = ".old-"
PARALLEL_ROIS = 100_000  # ROIs from which rois.parquet is written beside the tables
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


MAX_NAME = 100  # characters of a file or folder name taken from a vendor's name (file systems allow 255 bytes)


def safe_name(name: str) -> str:
    """A file-system-safe name: runs of other characters become `_`; never empty or hidden; a name longer
    than MAX_NAME is cut and given a short hash of the whole, so two long names stay apart."""
    slug = _UNSAFE.sub("_", name).strip("._") or "plate"
    if len(slug) > MAX_NAME:
        import hashlib

        slug = f"{slug[: MAX_NAME - 9]}-{hashlib.sha256(name.encode('utf-8', 'replace')).hexdigest()[:8]}"
    return slug


def table_metadata(analysis: PlateAnalysis, table: MeasurementTable, part: int, parts: int) -> dict[str, Any]:
    prov = analysis.provenance
    meta: dict[str, Any] = {str(k): v for k, v in table.metadata.items()}
    meta.update(
        {
            "hcs_import.version": __version__,
            "hcs_import.format": analysis.format,
            "hcs_import.parser": prov.parser,
            "hcs_import.parser_version": prov.parser_version,
            "hcs_import.provenance_key": prov.key,
            "hcs_import.created": prov.created,
            "hcs_import.plate": analysis.plate.name,
            "hcs_import.table": table.name,
            "hcs_import.kind": table.kind,
            "hcs_import.part": part,
            "hcs_import.parts": parts,
        }
    )
    meta.update(sources_metadata(analysis))
    return meta


# One HDF5 attribute must fit a 64 KiB object-header message; a 384-well MIAS plate has ~800 source
# files (~80 KB of JSON). The list is therefore split into attributes of at most this many characters.
SOURCES_ATTR_CHARS = 16_000


def sources_metadata(analysis: PlateAnalysis) -> dict[str, str | int]:
    """Source paths and sha256 as JSON: `hcs_import.sources`, or `hcs_import.sources.1` .. `.N` when long.

    Each attribute holds a valid JSON list; concatenating the lists in order gives every source.
    """
    items = [json.dumps({"path": s.path, "sha256": s.sha256}) for s in analysis.provenance.sources]
    chunks: list[list[str]] = [[]]
    size = 2
    for item in items:
        if chunks[-1] and size + len(item) + 2 > SOURCES_ATTR_CHARS:
            chunks.append([])
            size = 2
        chunks[-1].append(item)
        size += len(item) + 2
    texts = ["[" + ", ".join(chunk) + "]" for chunk in chunks]
    out: dict[str, str | int] = {"hcs_import.sources_count": len(items)}
    if len(texts) == 1:
        out["hcs_import.sources"] = texts[0]
    else:
        out.update({f"hcs_import.sources.{i}": text for i, text in enumerate(texts, start=1)})
    return out


def _unique_file(stem: str, taken: set[str]) -> str:
    name, n = stem, 2
    while name.lower() in taken:
        name = f"{stem}_{n}"
        n += 1
    taken.add(name.lower())
    return name


WRITE_ERRORS = (OSError, tables.HDF5ExtError, pa.ArrowException)


class _WriteFailed(Exception):
    """A write of one bundle file failed; carries that file's name for the one-line error."""

    def __init__(self, name: str, cause: BaseException) -> None:
        super().__init__(name)
        self.name, self.cause = name, cause


@contextmanager
def _writing(name: str) -> Iterator[None]:
    """Name the bundle file being written, so a full disk says which file it stopped at."""
    try:
        yield
    except WRITE_ERRORS as exc:
        raise _WriteFailed(name, exc) from exc


def _write_rois(path: Path, analysis: PlateAnalysis) -> RoisWritten:
    with _writing(ROIS_FILE):
        return write_rois(path, analysis.rois)


def _write_into(folder: Path, analysis: PlateAnalysis, tick: Callable[[str], None]) -> Manifest:
    # A large rois.parquet is written on a thread beside the tables: both mostly wait on compression and
    # the disk with the GIL released (pyarrow, zlib), so on two cores the bundle takes about as long as the
    # larger of the two instead of their sum (ScanR 1M rows: 2.7 s -> 2.0 s, measured). Both only read
    # the analysis. Small ones are written after the tables, so files are written in manifest order.
    if len(analysis.rois) < PARALLEL_ROIS:
        table_entries = _write_tables(folder, analysis, tick)
        rois = _write_rois(folder / ROIS_FILE, analysis)
    else:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hcs-rois") as pool:
            pending = pool.submit(_write_rois, folder / ROIS_FILE, analysis)
            try:
                table_entries = _write_tables(folder, analysis, tick)
            except BaseException:
                pending.cancel()
                raise
            rois = pending.result()
    tick(ROIS_FILE)
    return _finish_manifest(folder, analysis, table_entries, rois)


def _write_tables(folder: Path, analysis: PlateAnalysis, tick: Callable[[str], None]) -> list[TableEntry]:
    taken: set[str] = set()
    table_entries: list[TableEntry] = []
    for table in analysis.tables:
        stem = _unique_file(safe_name(table.name), taken)
        parts = split_columns(plan_columns(table))
        for i, specs in enumerate(parts, start=1):
            rel = f"{stem}.h5" if i == 1 else f"{stem}.part{i}.h5"
            with _writing(rel):
                rows = write_table(folder / rel, table, specs, table_metadata(analysis, table, i, len(parts)))
            table_entries.append(
                {
                    "path": rel,
                    "population": table.name,
                    "kind": table.kind,
                    "rows": rows,
                    "columns": len(specs),
                    "part": i,
                    "parts": len(parts),
                    "column_names": [s.name for s in specs],
                }
            )
            tick(rel)
    return table_entries


def _finish_manifest(folder: Path, analysis: PlateAnalysis, table_entries: list[TableEntry],
                     rois: RoisWritten) -> Manifest:
    manifest: Manifest = {
        "schema_version": SCHEMA_VERSION,
        "hcs_import_version": __version__,
        "format": analysis.format,
        "plate": {
            "name": analysis.plate.name,
            "rows": analysis.plate.rows,
            "columns": analysis.plate.columns,
            "row_labels": list(analysis.plate.row_labels),
            "column_labels": list(analysis.plate.column_labels),
            "barcode": analysis.plate.barcode,
            "channels": list(analysis.plate.channels),
            "pixel_size_um": list(analysis.plate.pixel_size_um) if analysis.plate.pixel_size_um else None,
            "fields_per_well": analysis.plate.fields_per_well,
        },
        "tables": table_entries,
        "rois": {
            "path": ROIS_FILE,
            "count": rois.count,
            "by_shape": rois.by_shape,
            "by_population": rois.by_population,
        },
        "sources": [{"path": s.path, "sha256": s.sha256, "size": s.size} for s in analysis.provenance.sources],
        "provenance": {
            "parser": analysis.provenance.parser,
            "parser_version": analysis.provenance.parser_version,
            "key": analysis.provenance.key,
            "created": analysis.provenance.created,
            "analysis": dict(analysis.provenance.analysis),
            "located": dict(analysis.provenance.located) if analysis.provenance.located is not None else None,
        },
        "warnings": list(analysis.warnings),
    }
    if analysis.plate.images is not None:
        with _writing(LAYOUT_FILE):
            analysis.plate.images.to_parquet(folder / LAYOUT_FILE, engine="pyarrow", index=False)
        manifest["layout"] = {"path": LAYOUT_FILE, "images": len(analysis.plate.images)}
    if analysis.platemap is not None:
        with _writing(PLATEMAP_FILE):
            analysis.platemap.to_parquet(folder / PLATEMAP_FILE, engine="pyarrow", index=False)
        manifest["platemap"] = {"path": PLATEMAP_FILE, "wells": len(analysis.platemap),
                                "columns": [str(c) for c in analysis.platemap.columns[2:]]}
    with _writing(MANIFEST):
        write_manifest(folder / MANIFEST, manifest)
    return manifest


def _alive(pid: int) -> bool:
    """Whether process `pid` still runs. A zombie does not: a killed worker whose parent is gone may stay
    one where nothing reaps it (containers without an init), and it will never finish its bundle."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _owner(folder: Path, mark: str) -> int | None:
    """The process id a staging or old folder's name carries (`.<plate><mark><pid>-<random>`), if any."""
    tail = folder.name.rsplit(mark, 1)[-1]
    head = tail.split("-", 1)[0]
    return int(head) if head.isdigit() and "-" in tail else None


def clean_stale(out: Path, name: str) -> None:
    """Remove hidden leftovers of runs of this plate that were killed before they could clean up.

    Only folders of processes that are gone: another run writing the same plate right now keeps its
    staging folder (removing it made that run fail). A folder named the older way (no process id) is left
    by a run of an earlier version and removed."""
    for mark in (PARTIAL_MARK, OLD_MARK):
        for p in out.glob(f".{name}{mark}*"):
            pid = _owner(p, mark)
            if pid is None or not _alive(pid):
                shutil.rmtree(p, ignore_errors=True)


@contextmanager
def _folder_lock(out: Path) -> Iterator[None]:
    """One bundle put in place at a time in DIR: a second run of the same plate waits for the first's
    rename, then replaces its bundle (both end with a complete bundle; the later one wins). The lock is
    taken on the folder itself, so no lock file is left among the bundles."""
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def write_bundle(analysis: PlateAnalysis, out: Path, tick: Callable[[str], None] | None = None,
                 finalize: Callable[[Path], object] | None = None) -> Path:
    """Write DIR/<plate>/ atomically; returns its path. Replaces an earlier bundle of the same plate.

    `finalize` runs on the complete folder before it is put in place (the report is written so), so a
    failure there leaves no bundle either.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create output folder: {exc.strerror}") from exc
    name = safe_name(analysis.plate.name)
    final = out / name
    clean_stale(out, name)
    staging = out / f".{name}{PARTIAL_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir()
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the staging folder: {exc.strerror}") from exc
    try:
        try:
            _write_into(staging, analysis, tick or (lambda _: None))
            if finalize is not None:
                with _writing("the report"):
                    finalize(staging)
            with _writing(f"{name} (putting the bundle in place)"), _folder_lock(out):
                if final.exists():
                    old = out / f".{name}{OLD_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"
                    final.rename(old)
                    try:
                        staging.rename(final)
                    except OSError:
                        old.rename(final)  # the previous bundle goes back: never no bundle at all
                        raise
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    staging.rename(final)
        except _WriteFailed as exc:
            # Disk full, permissions, a file system refusing a name: the user's to fix, so one line.
            raise OutputError(f"{out}: cannot write the bundle of plate {analysis.plate.name!r}: "
                              f"{_cause(exc.cause, out)} while writing {exc.name}") from exc.cause
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _cause(exc: BaseException, out: Path) -> str:
    """Why a write failed. HDF5 and Arrow report a full disk in their own words ("Problems writing chunk"),
    so when the output's file system has (almost) no space left, that is named as the cause."""
    if not (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) and disk_nearly_full(out):
        return f"{os.strerror(errno.ENOSPC)} ({_first_line(exc)[:100]})"
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    """The cause of a write failure in one line: HDF5 errors carry their whole back trace in the message;
    an OS error's own text is its cause (the file is named by the caller)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not ln.startswith(("HDF5-DIAG", "  #"))]
    last = next((ln for ln in reversed(lines) if not ln.startswith("End of HDF5")), type(exc).__name__)
    return last[:200]
