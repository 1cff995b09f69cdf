"""OMERO.tables v2 HDF5 files, written locally with PyTables in the layout omero.hdfstorageV2 reads.

Layout (as omero-py's hdfstorageV2 reads it): group /OME; compound table /OME/Measurements with columns in client
order; /OME/ColumnTypes (Ice type id per column) and /OME/ColumnDescriptions (ASCII text per column),
created the way HdfStorage.initialize creates them; attributes `__version` = "2" (str) and
`__initialized` (float epoch) plus user metadata (str, int64 or float64 only).

Speed: zlib compression is nearly all of a write's cost, so rows are compressed chunk by chunk on all
cores (zlib releases the GIL) and stored with HDF5 direct chunk writes; the file is an ordinary chunked,
deflate-filtered table that any HDF5 build reads and appends to.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import tables

from ..model import MeasurementTable
from .hdf5_flush import flush_checked
from .omero_columns import ColumnSpec, column_values

VERSION = "2"
ROWS_PER_APPEND = 32_768  # rows built, compressed and written at a time: ~7 MB of 25 doubles; more saves no time
# zlib is in every HDF5 build, so the OMERO server can read and append whatever PyTables it has.
# No shuffle: on wide compound rows it costs a third more time and gives larger files, not smaller.
ZLIB_LEVEL = 1
FILTERS = tables.Filters(complevel=ZLIB_LEVEL, complib="zlib", shuffle=False)
COMPRESS_THREADS = max(1, min(4, os.cpu_count() or 1))

_DESCRIPTORS = {
    "ImageColumn": tables.Int64Col,
    "RoiColumn": tables.Int64Col,
    "WellColumn": tables.Int64Col,
    "PlateColumn": tables.Int64Col,
    "FileColumn": tables.Int64Col,
    "DatasetColumn": tables.Int64Col,
    "LongColumn": tables.Int64Col,
    "DoubleColumn": tables.Float64Col,
    "BoolColumn": tables.BoolCol,
}

Metadata = Mapping[str, str | int | float]


def descriptor(spec: ColumnSpec, pos: int) -> tables.Col:
    if spec.kind == "StringColumn":
        return tables.StringCol(itemsize=max(1, spec.size), pos=pos)
    try:
        return _DESCRIPTORS[spec.kind](pos=pos)
    except KeyError:
        raise ValueError(f"column {spec.name!r}: unsupported OMERO column type {spec.kind}") from None


def _metadata_value(key: str, value: object) -> str | int | float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"table metadata {key!r}: only str, int and float values are allowed, not {type(value)}")


def write_table(path: Path, table: MeasurementTable, specs: list[ColumnSpec], metadata: Metadata) -> int:
    """Write one OMERO.tables v2 file; returns the number of rows written."""
    import warnings

    definition = {spec.name: descriptor(spec, i) for i, spec in enumerate(specs)}
    n = len(table.data)
    with warnings.catch_warnings():
        # Column names with spaces are legal for OMERO; PyTables only warns they are not identifiers.
        warnings.simplefilter("ignore", tables.NaturalNameWarning)
        with tables.open_file(str(path), mode="w", title="OMERO HDF Measurement Storage") as h5:
            ome = h5.create_group("/", "OME")
            mea = h5.create_table(ome, "Measurements", definition, expectedrows=max(n, 1), filters=FILTERS)
            h5.create_array(ome, "ColumnTypes", [s.ice_type for s in specs])
            h5.create_array(ome, "ColumnDescriptions", [s.description for s in specs])
            attrs = mea.attrs
            for key, value in metadata.items():
                if key.startswith("__"):
                    raise ValueError(f"table metadata {key!r}: names starting with '__' are reserved")
                attrs[key] = _metadata_value(key, value)
            attrs["__version"] = VERSION
            attrs["__initialized"] = time.time()
            if n and _direct_chunks_possible(mea):
                written = _write_rows_direct(mea, table, specs, n)
            else:
                written = 0
                for batch in table.batches(_sources(specs), ROWS_PER_APPEND):
                    if len(batch):
                        mea.append(_records(batch, specs, mea.dtype, len(batch)))
                        written += len(batch)
            mea.flush()
            flush_checked(h5, path)  # PyTables ignores a failed HDF5 flush (a full disk): see hdf5_flush
    if written != n:  # a stream that ends early (or runs on) must never pass for a whole table
        raise ValueError(f"table {table.name!r}: {written} rows read back, {n} expected")
    return n


def _sources(specs: list[ColumnSpec]) -> list[str]:
    return [s.source for s in specs if s.source is not None]


def _records(batch: pd.DataFrame, specs: list[ColumnSpec], dtype: np.dtype, size: int) -> np.ndarray:
    """The batch's rows as the table's compound records, zero-padded to `size` rows."""
    rec = np.zeros(size, dtype=dtype) if size > len(batch) else np.empty(size, dtype=dtype)
    for spec in specs:
        rec[spec.name][: len(batch)] = column_values(batch, spec)
    return rec


def _direct_chunks_possible(mea: tables.Table) -> bool:
    f = mea.filters
    return (hasattr(mea, "write_chunk") and f.complib == "zlib" and f.complevel == ZLIB_LEVEL and not f.shuffle
            and not f.bitshuffle and not f.fletcher32 and mea.chunkshape is not None)


def _write_rows_direct(mea: tables.Table, table: MeasurementTable, specs: list[ColumnSpec], n: int) -> int:
    """Extend the table to n rows and write every chunk already deflated, compressing on all cores.

    HDF5's deflate filter stores each chunk (always the full chunk shape, the last one zero-padded) as
    one zlib stream of its bytes: exactly `zlib.compress(chunk_bytes, level)`.
    """
    chunk = int(mea.chunkshape[0])
    block = chunk * max(1, ROWS_PER_APPEND // chunk)
    mea.truncate(n)

    def deflate(rec: np.ndarray, i: int) -> bytes:
        return zlib.compress(rec[i : i + chunk].view(np.uint8).data, ZLIB_LEVEL)

    start = 0
    with ThreadPoolExecutor(COMPRESS_THREADS) as pool:
        for batch in table.batches(_sources(specs), block):
            if start + len(batch) > n:
                raise ValueError(f"table {table.name!r}: more rows than the {n} announced")
            padded = -(-len(batch) // chunk) * chunk
            rec = _records(batch, specs, mea.dtype, padded)
            offsets = range(0, padded, chunk)
            for i, payload in zip(offsets, pool.map(lambda i, rec=rec: deflate(rec, i), offsets)):
                mea.write_chunk((start + i,), payload)
            start += len(batch)
    return start
