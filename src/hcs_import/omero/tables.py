"""OMERO.tables on the server, from a bundle's local .h5 file: server-side (newTable / initialize /
addData in batches) or, as a fast path, the local file itself uploaded as an OriginalFile.

The bundle's file is the single source of columns, types, descriptions and metadata, so both modes
produce the same table; only the id columns (Image / Roi / Well, -1 locally) are filled at upload.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import TABLES_MIMETYPE
from .connect import OmeroError

ICE_PREFIX = "::omero::grid::"
# Bytes of column data per addData call: far below Ice.MessageSizeMax (OMERO clients default to ~250 MB),
# so a call never fails for size and a batch never holds much memory.
BATCH_BYTES = 16 * 1024 * 1024
MAX_BATCH_ROWS = 100_000
FILL_BYTES = 64 * 1024 * 1024  # rows read and rewritten at a time when the id columns of a copy are filled
UPLOAD_BLOCK = 4 * 1024 * 1024  # bytes per RawFileStore.write


@dataclass
class LocalTable:
    """A bundle table: column names, Ice kinds, descriptions, row type and count, metadata.

    The rows stay in the file: `columns` reads whole columns, `slices` one addData batch at a time, so an
    upload holds a batch of a table with millions of rows, not the table.
    """

    path: Path
    names: list[str]
    kinds: list[str]  # e.g. "LongColumn"
    descriptions: list[str]
    dtype: np.dtype
    rows: int
    metadata: dict[str, str | int | float]

    def string_size(self, name: str) -> int:
        return int(self.dtype[name].itemsize)

    def columns(self, names: list[str]) -> dict[str, np.ndarray]:
        """Whole columns, read in one opening of the file."""
        import tables

        with tables.open_file(str(self.path), mode="r") as h5:
            mea = h5.root.OME.Measurements
            return {name: mea.col(name) for name in names}

    def slices(self, step: int) -> Iterator[tuple[int, np.ndarray]]:
        """(start, rows as a structured array) for consecutive row ranges of at most `step` rows."""
        import tables

        with tables.open_file(str(self.path), mode="r") as h5:
            mea = h5.root.OME.Measurements
            for start in range(0, self.rows, step):
                yield start, mea.read(start, min(self.rows, start + step))


def with_plate_column(table: LocalTable) -> LocalTable:
    """The table with a leading `Plate` PlateColumn (values given as ids at upload): a Screen-level table.

    omero-parade and IDR tooling read a Screen's per-well table through its `Plate` and `Well` columns.
    The rows still come from the bundle's file; only the column list and row type grow.
    """
    dtype = np.dtype([("Plate", "<i8"), *((n, table.dtype.fields[n][0]) for n in table.names)])
    return LocalTable(table.path, ["Plate", *table.names], ["PlateColumn", *table.kinds],
                      ["OMERO Plate", *table.descriptions], dtype, table.rows, dict(table.metadata))


def _text(x: Any) -> str:
    return x.decode("utf-8") if isinstance(x, bytes) else str(x)


# Column kinds whose values IcePy marshals straight from a numpy array of this dtype (checked against
# the real servant: tests/test_omero_upload.py reads every value back); a list costs a Python object per
# value. Others (bools, strings, arrays) go as lists.
_NUMPY_KINDS = {"LongColumn": np.int64, "DoubleColumn": np.float64, "ImageColumn": np.int64, "RoiColumn": np.int64,
                "WellColumn": np.int64, "PlateColumn": np.int64}


def _ice_values(chunk: np.ndarray, kind: str) -> Any:
    dtype = _NUMPY_KINDS.get(kind)
    if dtype is not None and chunk.ndim == 1 and chunk.dtype == dtype:
        return np.ascontiguousarray(chunk)
    return chunk.tolist()


def _texts(chunk: np.ndarray) -> list[str]:
    """Decoded strings; each distinct value decoded once (a well label column repeats a few hundred)."""
    import pandas as pd

    codes, uniques = pd.factorize(chunk.astype(object) if chunk.dtype.kind == "S" else chunk)
    decoded = np.asarray([_text(u) for u in uniques] + [""], dtype=object)
    texts: list[str] = decoded[codes].tolist()  # code -1 (a missing value) takes the trailing ""
    return texts


def read_local_table(path: Path) -> LocalTable:
    """Read a bundle's OMERO.tables v2 file with PyTables (the layout omero.hdfstorageV2 writes)."""
    import tables

    with tables.open_file(str(path), mode="r") as h5:
        mea = h5.root.OME.Measurements
        kinds = [_text(t).removeprefix(ICE_PREFIX) for t in h5.root.OME.ColumnTypes.read()]
        descriptions = [_text(d) for d in h5.root.OME.ColumnDescriptions.read()]
        dtype, rows = mea.dtype, int(mea.nrows)
        metadata: dict[str, str | int | float] = {}
        for key in mea.attrs._f_list("user"):
            if key.startswith("__"):
                continue
            value = mea.attrs[key]
            if isinstance(value, (bytes, np.bytes_)):
                value = value.decode("utf-8")
            elif isinstance(value, np.integer):
                value = int(value)
            elif isinstance(value, np.floating):
                value = float(value)
            elif isinstance(value, np.ndarray) and value.shape == ():
                value = value.item()
            metadata[key] = value
    return LocalTable(path, list(dtype.names or ()), kinds, descriptions, dtype, rows, metadata)


def check_ids(table: LocalTable, ids: Mapping[str, np.ndarray]) -> None:
    for name, values in ids.items():
        if len(values) != table.rows:
            raise ValueError(f"{table.path.name}: {len(values)} ids for column {name!r}, {table.rows} rows")


def filled_values(table: LocalTable, rows: np.ndarray, start: int, ids: Mapping[str, np.ndarray]
                  ) -> dict[str, np.ndarray]:
    """The values of `rows` (table rows from `start` on), id columns named in `ids` replaced by the ids."""
    stop = start + len(rows)
    return {name: np.asarray(ids[name][start:stop], dtype=np.int64) if name in ids else rows[name]
            for name in table.names}


def make_columns(table: LocalTable, values: Mapping[str, np.ndarray] | None) -> list[Any]:
    """omero.grid columns holding `values`; with `values` None, empty columns for initialize()."""
    import omero.columns
    import omero.grid

    cols = []
    for name, kind, desc in zip(table.names, table.kinds, table.descriptions):
        cls = getattr(omero.grid, kind, None)
        if cls is None:
            raise OmeroError(f"{table.path.name}: column {name!r}: unsupported type {kind}")
        chunk = None if values is None else values[name]
        if kind == "StringColumn":
            col = cls(name, desc, table.string_size(name), [])
            if chunk is not None:
                col.values = _texts(chunk)
        else:
            col = cls(name, desc, [])
            if chunk is not None:
                col.values = _ice_values(chunk, kind)
        cols.append(col)
    return cols


def batch_rows(table: LocalTable, budget: int = BATCH_BYTES) -> int:
    """Rows per addData so one message carries at most `budget` bytes of values."""
    row_bytes = sum(table.dtype[n].itemsize + (5 if k == "StringColumn" else 0)
                    for n, k in zip(table.names, table.kinds))
    return int(max(1, min(MAX_BATCH_ROWS, budget // max(1, row_bytes))))


def rtype_metadata(metadata: Mapping[str, str | int | float]) -> dict[str, Any]:
    """Table metadata as the rtypes the tables service accepts: RString, RLong (RInt, RFloat).

    The server's storage refuses RDouble ("Unsupported type", checked against omero-py's own servant), and
    RFloat travels as a 32-bit Ice float, which would cut a double's digits: a float is sent as the
    RString of its repr, which keeps every digit.
    """
    from omero.rtypes import rlong, rstring

    out = {}
    for key, value in metadata.items():
        if isinstance(value, (bool, int)):
            out[key] = rlong(int(value))
        elif isinstance(value, float):
            out[key] = rstring(repr(value))
        else:
            out[key] = rstring(str(value))
    return out


def create_server_table(sf: Any, name: str, table: LocalTable, ids: Mapping[str, np.ndarray],
                        created: Callable[[str, int], None], budget: int = BATCH_BYTES) -> int:
    """Create the table through the tables service; returns its OriginalFile id.

    initialize() gets empty columns (no data sent twice, unlike populate_roi), then addData in
    batches sized by `budget`. `created` hears the OriginalFile id before any data is sent.
    """
    resources = sf.sharedResources()
    repos = resources.repositories()
    if not repos.descriptions:
        raise OmeroError("the server offers no repository for OMERO.tables")
    repo_id = repos.descriptions[0].getId().getValue()
    remote = resources.newTable(repo_id, name)
    if remote is None:
        raise OmeroError("OMERO.tables is not available on this server (newTable returned nothing)")
    try:
        file_id = int(remote.getOriginalFile().getId().getValue())
        created("OriginalFile", file_id)
        check_ids(table, ids)
        remote.initialize(make_columns(table, None))
        for start, rows in table.slices(batch_rows(table, budget)):
            remote.addData(make_columns(table, filled_values(table, rows, start, ids)))
        remote.setAllMetadata(rtype_metadata(table.metadata))
    finally:
        remote.close()
    return file_id


def write_filled_copy(table: LocalTable, ids: Mapping[str, np.ndarray], target: Path) -> Path:
    """A copy of the bundle's file with the id columns filled in (the bundle itself is never modified)."""
    import tables

    shutil.copyfile(table.path, target)
    with tables.open_file(str(target), mode="a") as h5:
        mea = h5.root.OME.Measurements
        step = batch_rows(table, FILL_BYTES)
        for start in range(0, table.rows, step):  # one pass, a block of whole rows at a time
            stop = min(table.rows, start + step)
            rows = mea.read(start, stop)
            for name, values in ids.items():
                rows[name] = np.asarray(values[start:stop], dtype=np.int64)
            mea.modify_rows(start, stop, rows=rows)
        mea.flush()
    return target


def upload_file(sf: Any, path: Path, name: str, mimetype: str | None, created: Callable[[str, int], None],
                file_path: str = "") -> int:
    """Upload a local file as an OriginalFile (SHA1-checked as omero.client.upload does); returns its id."""
    from omero.model import ChecksumAlgorithmI, OriginalFileI
    from omero.rtypes import rlong, rstring

    sha1 = hashlib.sha1()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha1.update(block)
    ofile = OriginalFileI()
    ofile.name = rstring(name)
    ofile.path = rstring(file_path)
    ofile.size = rlong(path.stat().st_size)
    ofile.hash = rstring(sha1.hexdigest())
    hasher = ChecksumAlgorithmI()
    hasher.value = rstring("SHA1-160")
    ofile.hasher = hasher
    if mimetype:
        ofile.mimetype = rstring(mimetype)
    saved = sf.getUpdateService().saveAndReturnObject(ofile)
    file_id = int(saved.getId().getValue())
    created("OriginalFile", file_id)
    store = sf.createRawFileStore()
    try:
        store.setFileId(file_id)
        offset = 0
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(UPLOAD_BLOCK), b""):
                store.write(block, offset, len(block))
                offset += len(block)
        store.save()
    finally:
        store.close()
    return file_id


def upload_table_file(sf: Any, name: str, table: LocalTable, ids: Mapping[str, np.ndarray], workdir: Path,
                      created: Callable[[str, int], None]) -> int:
    """The fast path: the filled local .h5 uploaded in one stream, mimetype OMERO.tables."""
    copy = write_filled_copy(table, ids, workdir / table.path.name)
    try:
        return upload_file(sf, copy, name, TABLES_MIMETYPE, created)
    finally:
        copy.unlink(missing_ok=True)
