"""The shared, columnar model every parser produces and every writer consumes.

Measurements are pandas DataFrames (one column per measurement, numpy-backed) and ROIs one DataFrame of
shapes: nothing here holds one Python object per cell, so a million-object plate costs arrays, not
millions of objects. A table (or the ROIs) may instead be a FrameStream: the same columns, kept outside
memory and read back batch by batch, so a plate of any size is written with flat memory.
Parsers know nothing of OMERO; writers know nothing of vendors: this module is the whole contract between
them.

Conventions (the same for every format, whatever the vendor counts from):
- `well_row`, `well_column`, `field` are 0-based, as OMERO's Well.row / Well.column and WellSample index;
  `well` is the human label (`B03`) so the 0-based numbers are never ambiguous to a reader.
- `object` is the vendor's own object number, unchanged.
- `z`, `t` are 0-based plane indices (0 where the vendor gives none).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd

# Key columns, in the order they lead every table.
WELL_ROW = "well_row"
WELL_COLUMN = "well_column"
WELL = "well"
FIELD = "field"
OBJECT = "object"
Z = "z"
T = "t"

WELL_KEYS: tuple[str, ...] = (WELL_ROW, WELL_COLUMN, WELL)
FIELD_KEYS: tuple[str, ...] = (*WELL_KEYS, FIELD)
OBJECT_KEYS: tuple[str, ...] = (*FIELD_KEYS, OBJECT, Z, T)

TableKind = Literal["objects", "wells", "fields"]
KEYS_BY_KIND: dict[str, tuple[str, ...]] = {
    "objects": OBJECT_KEYS,
    "wells": WELL_KEYS,
    "fields": FIELD_KEYS,
}
# Per-well and per-field tables of time-lapse or z-stack data carry `z` and/or `t` right after their keys
# (in that order), so one row per (well, t) is not mistaken for a repeated well. Optional because a plate
# with one timepoint and one plane would only gain a column of zeros.
OPTIONAL_KEYS: tuple[str, ...] = (Z, T)

ShapeKind = Literal["point", "ellipse", "rectangle", "polygon", "mask", "line"]
SHAPE_KINDS: tuple[str, ...] = ("point", "ellipse", "rectangle", "polygon", "mask", "line")

# Columns of a ROI shape frame. Geometry columns unused by a shape kind are NaN / empty.
# x, y: point; ellipse centre; rectangle / mask top-left; line start.  x2, y2: line end.
ROI_COLUMNS: dict[str, str] = {
    "population": "object",  # which object table the shape belongs to
    "table_row": "int64",  # row of that object table (0-based): the shape's object
    OBJECT: "int64",
    WELL_ROW: "int64",
    WELL_COLUMN: "int64",
    FIELD: "int64",
    Z: "int64",
    T: "int64",
    "c": "int64",  # -1: not tied to a channel
    "shape": "object",
    "x": "float64",
    "y": "float64",
    "radius_x": "float64",
    "radius_y": "float64",
    "width": "float64",
    "height": "float64",
    "x2": "float64",
    "y2": "float64",
    "points": "object",  # polygon "x,y x,y ..." (OMERO's form)
    "mask": "object",  # bit-packed bytes, row-major, width*height bits
    "text": "object",
}


BatchReader = Callable[[Sequence[str] | None], Iterator[pd.DataFrame]]


@dataclass(frozen=True)
class FrameStream:
    """Rows kept outside memory: read back in row order, a batch at a time, as often as needed.

    Why it exists: a plate of millions of objects held as DataFrames costs memory in proportion to its
    size (~1.5 GB per million InCell objects measured), so a parser whose files can be that large hands
    its tables over as streams instead (InCell spills each parsed chunk to disk). Every consumer in
    this package (summary, ROI building, the writers) reads tables through `batches`, so it works the
    same on either form; only `frame()` loads everything, and is meant for tests and small tables.

    `template` is a zero-row frame with every column and dtype; `rows` the total number of rows;
    `read(columns)` yields DataFrames of those columns (all when None), in order, of any length.
    """

    template: pd.DataFrame
    rows: int
    read: BatchReader

    @property
    def columns(self) -> pd.Index:
        return self.template.columns

    @property
    def dtypes(self) -> pd.Series:
        return self.template.dtypes

    def __len__(self) -> int:
        return self.rows

    def frame(self) -> pd.DataFrame:
        parts = list(self.read(None))
        return pd.concat(parts, ignore_index=True) if parts else self.template.copy()


Frame: TypeAlias = pd.DataFrame | FrameStream


def iter_batches(data: Frame, columns: Sequence[str] | None = None, size: int | None = None
                 ) -> Iterator[pd.DataFrame]:
    """Rows of `data` in order, as DataFrames of `columns` (all when None).

    With `size`, every batch but the last has exactly `size` rows (writers that compress fixed-size
    chunks need that); without it, a DataFrame comes whole and a stream in the batches it keeps.
    """
    cols = list(columns) if columns is not None else None
    if isinstance(data, pd.DataFrame):
        frame = data if cols is None else data[cols]
        if size is None or len(frame) <= size:
            yield frame
        else:
            for start in range(0, len(frame), size):
                yield frame.iloc[start : start + size]
        return
    if size is None:
        yield from data.read(cols)
        return
    pending: list[pd.DataFrame] = []
    held = 0
    for batch in data.read(cols):
        pending.append(batch)
        held += len(batch)
        if held < size:
            continue
        joined = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
        start = 0
        while held - start >= size:
            yield joined.iloc[start : start + size]
            start += size
        pending = [joined.iloc[start:]] if start < held else []
        held -= start
    if held:
        yield pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]


def arrays_frame(arrays: Mapping[Any, Any]) -> pd.DataFrame:
    """A DataFrame of numpy arrays without copies, object arrays kept as object.

    Why: pandas 3 turns every object array of strings into an Arrow string column on construction, one
    Python string at a time (0.3 s for the well labels of a million rows, measured on ScanR), and the
    writers turn them back into Python strings; a Series of dtype object is taken as it is."""
    return pd.DataFrame({k: pd.Series(v, dtype=object, copy=False)
                         if isinstance(v, np.ndarray) and v.dtype == object else v
                         for k, v in arrays.items()}, copy=False)


def as_frame(data: Frame) -> pd.DataFrame:
    """The whole table in memory (a stream is read completely): for tests and small tables."""
    return data if isinstance(data, pd.DataFrame) else data.frame()


@dataclass(frozen=True)
class ColumnInfo:
    """What a measurement column is: its name as the vendor wrote it, and its unit when known."""

    source_name: str
    unit: str | None = None
    note: str | None = None
    # An identifier the vendor wrote as a number (object or parent ids, well or position numbers): kept
    # in the table like any column, but a per-well mean or median of it would be noise.
    identifier: bool = False

    def description(self) -> str:
        text = self.source_name
        if self.unit:
            text += f" [{self.unit}]"
        if self.note:
            text += f" ({self.note})"
        return text


@dataclass(frozen=True)
class MeasurementTable:
    """One table of measurements: the objects of one population, or one row per well (or field).

    `data` (a DataFrame, or a FrameStream for tables too large to hold) has the key columns for its
    kind first (see KEYS_BY_KIND), then one column per measurement. `columns` describes the measurement
    columns (a key column needs no entry).
    `metadata` is kept as the table's metadata (str, int or float values only, as OMERO.tables allows).
    """

    name: str
    kind: TableKind
    data: Frame
    columns: Mapping[str, ColumnInfo] = field(default_factory=dict)
    metadata: Mapping[str, str | int | float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        keys = KEYS_BY_KIND[self.kind]
        missing = [k for k in keys if k not in self.data.columns]
        if missing:
            raise ValueError(f"table {self.name!r} ({self.kind}) lacks key columns {missing}")
        if list(self.data.columns[: len(keys)]) != list(keys):
            raise ValueError(f"table {self.name!r}: key columns must come first, in order {keys}")
        if self.data.columns.has_duplicates:
            raise ValueError(f"table {self.name!r} has duplicate column names")

    @property
    def keys(self) -> tuple[str, ...]:
        """The table's key columns: those of its kind, plus `z`/`t` where a per-well or per-field table has them."""
        base = KEYS_BY_KIND[self.kind]
        if self.kind == "objects":
            return base
        extra = []
        following = list(self.data.columns[len(base) : len(base) + len(OPTIONAL_KEYS)])
        for key in OPTIONAL_KEYS:
            if following and following[0] == key:
                extra.append(key)
                following.pop(0)
        return (*base, *extra)

    @property
    def measurement_names(self) -> list[str]:
        return [str(c) for c in self.data.columns[len(self.keys) :]]

    def info(self, column: str) -> ColumnInfo:
        return self.columns.get(column, ColumnInfo(column))

    @property
    def rows(self) -> int:
        return len(self.data)

    @property
    def streamed(self) -> bool:
        return isinstance(self.data, FrameStream)

    def batches(self, columns: Sequence[str] | None = None, size: int | None = None) -> Iterator[pd.DataFrame]:
        return iter_batches(self.data, columns, size)

    def frame(self) -> pd.DataFrame:
        """Every row in memory (reads a stream completely): for tests and small tables."""
        return as_frame(self.data)


@dataclass(frozen=True)
class Plate:
    """Plate layout: geometry, labels and, when the vendor's layout file says so, its images."""

    name: str
    rows: int
    columns: int
    row_labels: tuple[str, ...] = ()
    column_labels: tuple[str, ...] = ()
    barcode: str | None = None
    channels: tuple[str, ...] = ()
    pixel_size_um: tuple[float, float] | None = None
    fields_per_well: int | None = None
    # One row per image plane the layout lists: well_row, well_column, field, z, t, c, path.
    images: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        from .wells import row_letters

        if self.rows < 1 or self.columns < 1:
            from .errors import GeometryError

            raise GeometryError(f"plate {self.name!r}: geometry {self.rows}x{self.columns} is not a plate")
        if not self.row_labels:
            object.__setattr__(self, "row_labels", row_letters(self.rows))
        if not self.column_labels:
            object.__setattr__(self, "column_labels", tuple(str(i + 1) for i in range(self.columns)))


@dataclass(frozen=True)
class SourceFile:
    """One input file: its path relative to the plate folder, checksum and size."""

    path: str
    sha256: str
    size: int

    @classmethod
    def of(cls, path: Path, root: Path) -> SourceFile:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        try:
            rel = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            rel = path.name
        return cls(rel, digest.hexdigest(), path.stat().st_size)


@dataclass(frozen=True)
class Provenance:
    """Where a result came from. `key` identifies the source files' content (for safe re-import)."""

    parser: str
    parser_version: str
    sources: tuple[SourceFile, ...]
    # What the vendor files say of the analysis that made them (protocol, assay, software), as
    # (name, value) pairs: kept with the bundle because no table shows it.
    analysis: tuple[tuple[str, str], ...] = ()
    # The plate source it was located as (PlateSource.describe(): format, root, files by role, evidence),
    # set by the pipeline; parsers leave it None.
    located: Mapping[str, Any] | None = None
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def key(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.parser.encode())
        for s in sorted(self.sources, key=lambda s: s.path):
            digest.update(f"{s.path}\0{s.sha256}\n".encode())
        return digest.hexdigest()[:32]


@dataclass(frozen=True)
class PlateAnalysis:
    """Everything one parser read from one plate's analysis results."""

    format: str
    plate: Plate
    tables: tuple[MeasurementTable, ...]
    rois: Frame  # ROI_COLUMNS, one row per shape
    provenance: Provenance
    warnings: tuple[str, ...] = ()
    # What is in each well (compound, concentration, control, ...), when a plate map was given:
    # well_row, well_column (0-based), then the map's columns (see platemap.py).
    platemap: pd.DataFrame | None = None

    def table(self, name: str) -> MeasurementTable:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

    @property
    def object_tables(self) -> tuple[MeasurementTable, ...]:
        return tuple(t for t in self.tables if t.kind == "objects")

    @property
    def well_table(self) -> MeasurementTable | None:
        return next((t for t in self.tables if t.kind == "wells"), None)

    def roi_frame(self) -> pd.DataFrame:
        """Every ROI in memory (reads a stream completely): for tests and small plates."""
        return as_frame(self.rois)


def empty_rois() -> pd.DataFrame:
    """A ROI frame with no shapes and every column typed."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in ROI_COLUMNS.items()})


def make_rois(n: int, **columns: object) -> pd.DataFrame:
    """A ROI frame of `n` shapes: given columns (scalars broadcast), the rest at their 'unused' value."""
    data: dict[str, object] = {}
    for name, dtype in ROI_COLUMNS.items():
        if name in columns:
            value = columns.pop(name)
            if dtype == "object":
                data[name] = np.asarray(value, dtype=object) if not np.isscalar(value) else np.full(
                    n, value, dtype=object
                )
            else:
                data[name] = np.broadcast_to(np.asarray(value, dtype=dtype), (n,)).copy()
        elif dtype == "float64":
            data[name] = np.full(n, np.nan)
        elif dtype == "int64":
            data[name] = np.full(n, -1 if name == "c" else 0, dtype=np.int64)
        else:
            data[name] = np.full(n, None, dtype=object)
    if columns:
        raise ValueError(f"unknown ROI columns: {sorted(columns)}")
    # object columns kept as object (see object_keys_frame: no per-row Arrow string copy)
    return pd.DataFrame({k: pd.Series(v, dtype=object, copy=False) if ROI_COLUMNS[k] == "object" else v
                         for k, v in data.items()})


def object_keys_frame(
    well_row: np.ndarray,
    well_column: np.ndarray,
    field_: np.ndarray,
    object_: np.ndarray,
    columns: int,
    z: np.ndarray | int = 0,
    t: np.ndarray | int = 0,
) -> pd.DataFrame:
    """The leading key columns of an object table, built from arrays (labels vectorised)."""
    from .wells import well_labels

    n = len(well_row)
    return pd.DataFrame(
        {
            WELL_ROW: np.asarray(well_row, dtype=np.int64),
            WELL_COLUMN: np.asarray(well_column, dtype=np.int64),
            # object dtype said outright: pandas 3 would otherwise copy every label into an Arrow string
            # column (0.7 s a million rows, measured), and the writers turn it back into Python strings
            WELL: pd.Series(well_labels(np.asarray(well_row), np.asarray(well_column), columns)
                            if n else np.array([], dtype=object), dtype=object, copy=False),
            FIELD: np.asarray(field_, dtype=np.int64),
            OBJECT: np.asarray(object_, dtype=np.int64),
            Z: np.broadcast_to(np.asarray(z, dtype=np.int64), (n,)).copy(),
            T: np.broadcast_to(np.asarray(t, dtype=np.int64), (n,)).copy(),
        }
    )


def well_keys_frame(well_row: np.ndarray, well_column: np.ndarray, columns: int) -> pd.DataFrame:
    from .wells import well_labels

    return pd.DataFrame(
        {
            WELL_ROW: np.asarray(well_row, dtype=np.int64),
            WELL_COLUMN: np.asarray(well_column, dtype=np.int64),
            WELL: well_labels(np.asarray(well_row), np.asarray(well_column), columns)
            if len(well_row)
            else np.array([], dtype=object),
        }
    )
