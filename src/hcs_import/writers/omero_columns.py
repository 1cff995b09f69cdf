"""How a model table becomes OMERO.tables columns: names, Ice types, descriptions, values.

Shared by the local HDF5 writer and the server uploader, so a table has the same columns whichever
way it reaches OMERO. Pure: no HDF5, no Ice.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..model import FIELD, OBJECT, WELL, WELL_COLUMN, WELL_ROW, MeasurementTable, T, Z

ICE_PREFIX = "::omero::grid::"
ID_KINDS = ("ImageColumn", "RoiColumn", "WellColumn", "PlateColumn", "FileColumn", "DatasetColumn")
UNKNOWN_ID = -1  # an OMERO id not known until upload

# Id columns leading each kind of table: (name, Ice type, description).
ID_COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "objects": (
        ("Image", "ImageColumn", "OMERO Image of the object's field; -1 until uploaded"),
        ("Roi", "RoiColumn", "OMERO ROI of the object; -1 until uploaded"),
        ("Well", "WellColumn", "OMERO Well; -1 until uploaded"),
    ),
    "fields": (
        ("Image", "ImageColumn", "OMERO Image of the field; -1 until uploaded"),
        ("Well", "WellColumn", "OMERO Well; -1 until uploaded"),
    ),
    # OMERO.web and omero-parade find per-well rows through a WellColumn named exactly "Well".
    "wells": (("Well", "WellColumn", "OMERO Well; -1 until uploaded"),),
}

KEY_DESCRIPTIONS: dict[str, str] = {
    WELL_ROW: "well row, 0-based (A = 0), as OMERO Well.row",
    WELL_COLUMN: "well column, 0-based (1 = 0), as OMERO Well.column",
    WELL: "well label",
    FIELD: "field (well sample), 0-based",
    OBJECT: "object number as the analysis software wrote it",
    Z: "z plane, 0-based",
    T: "time point, 0-based",
}

# HDF5 keeps a table's compound type in one object-header message of at most 64 KiB; measured here
# with PyTables 3.11: 600 columns of 36-byte names load, 800 fail ("Problems creating the table").
# Each member costs its name (8-byte aligned) plus ~48 bytes; stay well under the limit.
HEADER_BUDGET_BYTES = 40_000
MAX_COLUMNS_PER_FILE = 500


@dataclass(frozen=True)
class ColumnSpec:
    """One OMERO.tables column. `source` is the model column it carries; None for an id column."""

    name: str
    kind: str  # OMERO column class without the Ice prefix, e.g. "DoubleColumn"
    description: str
    size: int = 0  # StringColumn: width in UTF-8 bytes (>= 1)
    source: str | None = None

    @property
    def ice_type(self) -> str:
        return ICE_PREFIX + self.kind


def ascii_description(text: str) -> str:
    """Descriptions must be ASCII (PyTables fails on anything else): `µm²` -> `um2`, rest escaped."""
    text = text.replace("\u00b5", "u").replace("\u03bc", "u").replace("\u00b0", "deg")
    folded = unicodedata.normalize("NFKD", text)
    return folded.encode("ascii", "ignore" if folded.isascii() else "backslashreplace").decode("ascii")


def legal_name(name: str, position: int) -> str:
    """OMERO.tables column names: not empty, no leading `__` / `_v_`, no `/` (`\\` as populate_metadata)."""
    # NUL and other control characters would cut or break the HDF5 field name (HdfStorage then cannot
    # read the file): they become spaces, which the vendor name in the description still shows.
    name = "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in str(name)).strip().replace("/", "\\")
    if not name:
        name = f"column {position + 1}"
    if name.startswith("__") or name.startswith("_v_"):
        name = "col" + name
    return name


def column_kind(series: pd.Series) -> str:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        if series.hasnans:
            return "DoubleColumn"
        return "BoolColumn"
    if pd.api.types.is_integer_dtype(dtype):
        if series.hasnans:  # nullable integers with gaps: NaN keeps the gap visible
            return "DoubleColumn"
        if dtype == np.uint64 and len(series) and int(series.max()) >= 2**63:
            return "DoubleColumn"
        return "LongColumn"
    if pd.api.types.is_float_dtype(dtype):
        return "DoubleColumn"
    return "StringColumn"


def _utf8_coded(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(codes, encoded): every value as UTF-8 bytes is `encoded[codes]` ("" where missing).

    A column of strings is encoded once per distinct value (a well label column has a few hundred among
    millions of rows); any other mix value by value, since 1, 1.0 and True would share one hash slot but
    not one text.
    """
    values = series.astype(object).where(series.notna(), "").to_numpy(dtype=object)
    if pd.api.types.infer_dtype(values, skipna=False) == "string":
        codes, uniques = pd.factorize(values)
        return codes, np.array([u.encode("utf-8") for u in uniques.tolist()], dtype=object)
    return np.arange(len(values)), np.array([str(v).encode("utf-8") for v in values], dtype=object)


def _utf8(series: pd.Series) -> np.ndarray:
    """Every value as UTF-8 bytes ("" where missing)."""
    codes, encoded = _utf8_coded(series)
    return encoded[codes] if len(codes) else np.array([], dtype=object)


def _arrow_text(series: pd.Series) -> Any:
    """The column as a pyarrow string array (missing values null), or None when it holds anything but text.

    Why: a column of a distinct text per row (Harmony's bounding boxes) costs a Python object per row and
    a hash per row in `_utf8_coded`; measured and copied by pyarrow, it costs neither."""
    import pyarrow as pa

    values = series.to_numpy(dtype=object) if series.dtype != object else series.to_numpy()
    try:
        return pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return None


def _fixed_width(text: Any, size: int) -> np.ndarray | None:
    """A pyarrow string array as numpy `S{size}` (UTF-8, nulls as ""), copied byte-wise without a Python
    object per value; None when a value is longer than `size` (the caller's path then says so)."""
    n = len(text)
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32, count=n + 1, offset=text.offset * 4)
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8) if text.buffers()[2] is not None else \
        np.zeros(0, dtype=np.uint8)
    starts, lengths = offsets[:-1].astype(np.int64), np.diff(offsets).astype(np.int64)
    if text.null_count:
        lengths = np.where(text.is_null().to_numpy(zero_copy_only=False), 0, lengths)
    if n and int(lengths.max()) > size:
        return None
    out = np.zeros((n, max(size, 1)), dtype=np.uint8)
    total = int(lengths.sum())
    if total:
        rows = np.repeat(np.arange(n), lengths)
        within = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        out[rows, within] = data[np.repeat(starts, lengths) + within]
    return out.view(f"S{max(size, 1)}").reshape(n)


def string_size(series: pd.Series) -> int:
    """The widest value in UTF-8 bytes (at least 1): measured by pyarrow for a column of text, else on the
    distinct encoded values."""
    if not len(series):
        return 1
    text = _arrow_text(series)
    if text is not None:
        import pyarrow.compute as pc

        return max(1, int(pc.max(pc.binary_length(text)).as_py() or 0))
    return max(1, max((len(b) for b in _utf8_coded(series)[1]), default=0))


def _needs_scan(dtype: object) -> bool:
    """Plain numpy float, signed int and bool columns have their OMERO type in the dtype; others need values.

    Strings need their widest value, nullable integers and booleans whether a gap occurs (then they are
    stored as doubles), uint64 whether a value exceeds int64.
    """
    return not (isinstance(dtype, np.dtype) and dtype.kind in "fib")


def _scan(table: MeasurementTable, names: list[str]) -> dict[str, tuple[str, int]]:
    """(kind, string width) of the given columns, from one pass over their values batch by batch."""
    found: dict[str, tuple[str, int]] = {}
    if not names:
        return found
    for batch in table.batches(names):
        for col in names:
            kind = column_kind(batch[col])
            size = string_size(batch[col]) if kind == "StringColumn" else 1
            before = found.get(col)
            if before is not None:
                kind = "DoubleColumn" if "DoubleColumn" in (kind, before[0]) else kind
                size = max(size, before[1])
            found[col] = (kind, size)
    return found


def plan_columns(table: MeasurementTable) -> list[ColumnSpec]:
    """Every column of the table in order: id columns, key columns, then measurements."""
    specs: list[ColumnSpec] = []
    used: set[str] = set()

    def unique(name: str) -> str:
        base, n = name, 2
        while name in used:
            name = f"{base} ({n})"
            n += 1
        used.add(name)
        return name

    for name, kind, desc in ID_COLUMNS[table.kind]:
        specs.append(ColumnSpec(unique(name), kind, desc))
    dtypes = table.data.dtypes
    scanned = _scan(table, [str(c) for c in table.data.columns if _needs_scan(dtypes[c])])
    for i, col in enumerate(table.data.columns):
        kind, size = scanned.get(str(col)) or (column_kind(pd.Series(dtype=dtypes[col])), 1)
        desc = KEY_DESCRIPTIONS[col] if col in KEY_DESCRIPTIONS else table.info(col).description()
        size = size if kind == "StringColumn" else 0
        specs.append(ColumnSpec(unique(legal_name(col, i)), kind, ascii_description(desc), size, str(col)))
    return specs


def _header_cost(spec: ColumnSpec) -> int:
    return (len(spec.name.encode("utf-8")) // 8 + 1) * 8 + 48


def split_columns(specs: list[ColumnSpec]) -> list[list[ColumnSpec]]:
    """Split a too-wide table into parts that each repeat the id and key columns.

    Splitting (not a long format) keeps every column typed and every part a normal wide table that
    OMERO.web can show; the manifest lists the parts, and each part's metadata names its siblings.
    """
    lead = [s for s in specs if s.source is None or s.source in KEY_DESCRIPTIONS]
    rest = [s for s in specs if s not in lead]
    lead_cost = sum(_header_cost(s) for s in lead)
    parts: list[list[ColumnSpec]] = []
    current: list[ColumnSpec] = []
    cost = lead_cost
    for spec in rest:
        c = _header_cost(spec)
        if current and (cost + c > HEADER_BUDGET_BYTES or len(lead) + len(current) >= MAX_COLUMNS_PER_FILE):
            parts.append(lead + current)
            current, cost = [], lead_cost
        current.append(spec)
        cost += c
    parts.append(lead + current)
    return parts


def column_values(data: pd.DataFrame, spec: ColumnSpec) -> np.ndarray:
    """Values of one column for the rows of `data` (a batch of the table), in the type OMERO.tables stores."""
    if spec.source is None:
        return np.full(len(data), UNKNOWN_ID, dtype=np.int64)
    series = data[spec.source]
    if spec.kind == "StringColumn":
        text = _arrow_text(series)
        fixed = _fixed_width(text, spec.size) if text is not None else None
        return fixed if fixed is not None else _utf8(series).astype(f"S{spec.size}")
    if spec.kind == "BoolColumn":
        return np.asarray(series.to_numpy(dtype=bool))
    if spec.kind == "LongColumn":
        return np.asarray(series.to_numpy(dtype=np.int64))
    return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan))
