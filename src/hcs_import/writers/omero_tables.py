"""OMERO.tables v2 HDF5 files, written locally with PyTables in the layout omero.hdfstorageV2 reads.

Layout (see shared/OMERO.md): group /OME; compound table /OME/Measurements with columns in client
order; /OME/ColumnTypes (Ice type id per column) and /OME/ColumnDescriptions (ASCII text per column),
created the way HdfStorage.initialize creates them; attributes `__version` = "2" (str) and
`__initialized` (float epoch) plus user metadata (str, int64 or float64 only).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tables

from ..model import MeasurementTable
from .omero_columns import ColumnSpec, column_values

VERSION = "2"
ROWS_PER_APPEND = 100_000
# zlib is in every HDF5 build, so the OMERO server can read and append whatever PyTables it has.
FILTERS = tables.Filters(complevel=1, complib="zlib", shuffle=True)

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
            for start in range(0, n, ROWS_PER_APPEND):
                stop = min(n, start + ROWS_PER_APPEND)
                rec = np.empty(stop - start, dtype=mea.dtype)
                for spec in specs:
                    rec[spec.name] = column_values(table, spec, start, stop)
                mea.append(rec)
            mea.flush()
    return n
