"""Every table of a bundle as Parquet (or CSV), with the keys pycytominer and CytoTable expect.

Each output file holds one table (the parts of a table split for width are joined back), its columns as
the bundle has them (OMERO id columns, hcs-import's keys, measurements) led by `Metadata_Plate`,
`Metadata_Well` (`B03`), `Metadata_Site` (the 1-based field, as CellProfiler numbers sites) and, for
objects, `Metadata_ObjectNumber`. After an upload that recorded its ids in the bundle (OMERO_IDS_DIR), the
id columns hold the server's ids and an `OMERO_Plate` column is added.

Streamed: a table is read from its .h5 and written a batch of rows at a time (pyarrow's Parquet and CSV
writers), so a 4-million-object table exports in the memory of one batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import tables

from .errors import OutputError
from .manifest import read_manifest
from .writers.bundle import safe_name

ExportFormat = Literal["parquet", "csv"]
BATCH_ROWS = 65_536
OMERO_IDS_DIR = "omero-ids"  # written by an upload: <table path>.npz of the ids, upload.json
ID_NAMES = ("Image", "Roi", "Well")


def _open_parts(bundle: Path, entries: list[dict[str, Any]]) -> list[Any]:
    return [tables.open_file(str(bundle / e["path"]), mode="r") for e in entries]


def _ids(bundle: Path, entry: dict[str, Any]) -> dict[str, np.ndarray]:
    path = bundle / OMERO_IDS_DIR / f"{entry['path']}.npz"
    if not path.is_file():
        return {}
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _batches(bundle: Path, entries: list[dict[str, Any]], size: int) -> Iterator[dict[str, np.ndarray]]:
    """Rows of one table (all its parts side by side), a batch at a time; each column once."""
    files = _open_parts(bundle, entries)
    try:
        measurements = [h5.root.OME.Measurements for h5 in files]
        rows = int(measurements[0].nrows)
        for start in range(0, rows, size):
            stop = min(rows, start + size)
            out: dict[str, np.ndarray] = {}
            for mea in measurements:
                block = mea.read(start, stop)
                for name in block.dtype.names or ():
                    if name not in out:
                        out[name] = block[name]
            yield out
    finally:
        for h5 in files:
            h5.close()


def _column(values: np.ndarray) -> pa.Array:
    if values.dtype.kind == "S":
        return pa.array(np.char.decode(values, "utf-8").astype(object), type=pa.string())
    return pa.array(values)


def _record(batch: dict[str, np.ndarray], start: int, plate: str, kind: str, ids: dict[str, np.ndarray],
            omero_plate: int | None) -> pa.RecordBatch:
    n = len(next(iter(batch.values())))
    arrays: dict[str, pa.Array] = {"Metadata_Plate": pa.array([plate] * n, type=pa.string())}
    if "well" in batch:
        arrays["Metadata_Well"] = _column(batch["well"])
    if "field" in batch:
        arrays["Metadata_Site"] = pa.array(batch["field"].astype(np.int64) + 1)
    if kind == "objects" and "object" in batch:
        arrays["Metadata_ObjectNumber"] = pa.array(batch["object"].astype(np.int64))
    if omero_plate is not None:
        arrays["OMERO_Plate"] = pa.array(np.full(n, omero_plate, dtype=np.int64))
    for name, values in batch.items():
        if name in ids:
            values = ids[name][start : start + n]
        arrays[name] = _column(values)
    return pa.RecordBatch.from_pydict(arrays)


def export_bundle(bundle: Path, out: Path, fmt: ExportFormat = "parquet", batch_rows: int = BATCH_ROWS) -> list[Path]:
    """Write every table of `bundle` into `out` (one file per table); returns the files written."""
    manifest = read_manifest(bundle)
    plate = manifest["plate"]["name"]
    upload = bundle / OMERO_IDS_DIR / "upload.json"
    omero_plate = json.loads(upload.read_text())["plate_id"] if upload.is_file() else None
    grouped: dict[str, list[dict[str, Any]]] = {}
    for entry in manifest["tables"]:
        grouped.setdefault(entry["population"], []).append(entry)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the export folder ({exc.strerror})") from None
    written = []
    for population, entries in grouped.items():
        entries.sort(key=lambda e: e.get("part", 1))
        ids = _ids(bundle, entries[0])
        target = out / f"{safe_name(plate)}_{safe_name(population)}.{fmt}"
        partial = target.with_name(f".{target.name}.partial")
        writer: Any = None
        start = 0
        try:
            for batch in _batches(bundle, entries, batch_rows):
                record = _record(batch, start, plate, entries[0]["kind"], ids, omero_plate)
                start += record.num_rows
                if writer is None:
                    writer = (pq.ParquetWriter(str(partial), record.schema) if fmt == "parquet"
                              else pacsv.CSVWriter(str(partial), record.schema))
                writer.write_batch(record)
            if writer is None:  # a table with no rows: its columns still make a file
                empty = {k: np.zeros(0, dtype=v) for k, v in _dtypes(bundle, entries).items()}
                record = _record(empty, 0, plate, entries[0]["kind"], {}, omero_plate) if empty else None
                if record is not None:
                    writer = (pq.ParquetWriter(str(partial), record.schema) if fmt == "parquet"
                              else pacsv.CSVWriter(str(partial), record.schema))
                    writer.write_batch(record)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise OutputError(f"{target}: cannot write the export ({exc.strerror or exc})") from None
        finally:
            if writer is not None:
                writer.close()
        if partial.exists():
            partial.replace(target)
            written.append(target)
    return written


def _dtypes(bundle: Path, entries: list[dict[str, Any]]) -> dict[str, np.dtype]:
    out: dict[str, np.dtype] = {}
    for h5 in _open_parts(bundle, entries):
        try:
            dtype = h5.root.OME.Measurements.dtype
            for name in dtype.names or ():
                out.setdefault(name, dtype[name])
        finally:
            h5.close()
    return out


def record_upload_ids(bundle: Path, plate_id: int, tables_ids: dict[str, dict[str, np.ndarray]]) -> Path | None:
    """Keep the ids an upload gave each table's rows inside the bundle, for `export` (None when the bundle
    folder cannot be written, e.g. a read-only share: the upload itself is not affected)."""
    folder = bundle / OMERO_IDS_DIR
    try:
        folder.mkdir(exist_ok=True)
        for path, ids in tables_ids.items():
            np.savez(folder / f"{path}.npz", **{k: np.asarray(v, dtype=np.int64) for k, v in ids.items()})
        (folder / "upload.json").write_text(json.dumps({"plate_id": plate_id, "tables": sorted(tables_ids)}) + "\n")
    except OSError:
        return None
    return folder
