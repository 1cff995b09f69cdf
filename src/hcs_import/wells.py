"""Plate geometry and well naming: pure helpers shared by every parser."""

from __future__ import annotations

import re
import string

import numpy as np

from .errors import GeometryError

# Standard SBS plate formats, by well count: (rows, columns).
STANDARD_GEOMETRIES: dict[int, tuple[int, int]] = {
    6: (2, 3),
    12: (3, 4),
    24: (4, 6),
    48: (6, 8),
    96: (8, 12),
    384: (16, 24),
    1536: (32, 48),
}

_GEOMETRY_RE = re.compile(r"^\s*(\d+)\s*[xX*]\s*(\d+)\s*$")
_LABEL_RE = re.compile(r"^\s*([A-Za-z]{1,2})\s*[- ]*\s*0*(\d{1,3})\s*$")


def row_letters(n: int) -> tuple[str, ...]:
    """Row labels as vendors print them: A..Z, then AA, AB, ... (1536-well plates have 32 rows), and on
    past ZZ (AAA, ...) for the odd slide or grid layout: bijective base 26, never an IndexError."""
    letters = string.ascii_uppercase
    out = []
    for i in range(n):
        label, k = "", i + 1
        while k:
            k, rem = divmod(k - 1, 26)
            label = letters[rem] + label
        out.append(label)
    return tuple(out)


def row_index(letter: str) -> int:
    """0-based row of a row label (A -> 0, Z -> 25, AA -> 26)."""
    s = letter.strip().upper()
    if not s or not s.isascii() or not s.isalpha() or len(s) > 3:
        raise ValueError(f"not a row letter: {letter[:20]!r}")
    index = 0
    for ch in s:  # the inverse of row_letters' bijective base 26
        index = index * 26 + ord(ch) - 64
    return index - 1


def column_width(columns: int) -> int:
    """Digits used for column numbers in well labels: 2 up to 99 columns (B03), else 3."""
    return 2 if columns <= 99 else 3


def well_label(row: int, column: int, columns: int = 24) -> str:
    """Label of a 0-based (row, column): (1, 2) -> 'B03'."""
    return f"{row_letters(row + 1)[-1]}{column + 1:0{column_width(columns)}d}"


DENSE_LABELS = 1 << 16  # wells (rows x columns) up to which all labels are made up front (a 1536-well plate: 1,536)


def well_labels(rows: np.ndarray, cols: np.ndarray, columns: int) -> np.ndarray:
    """Vectorised well_label over arrays of 0-based rows and columns (object dtype array).

    Each distinct well's label is made once and shared by its rows (a plate has a few thousand wells at
    most, an object table millions of rows): a take from a small table, not a string per row.
    """
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    if not len(rows):
        return np.array([], dtype=object)
    span = max(int(cols.max()) + 1, columns)
    n_rows = int(rows.max()) + 1
    codes = rows * span + cols
    letters = row_letters(n_rows)
    width = column_width(columns)
    if n_rows * span <= DENSE_LABELS:  # every well of the plate labelled, then a plain take (no sort)
        wanted, index = np.arange(n_rows * span), codes
    else:
        wanted, inverse = np.unique(codes, return_inverse=True)
        index = inverse.reshape(-1)
    table = np.array([f"{letters[u // span]}{u % span + 1:0{width}d}" for u in wanted.tolist()], dtype=object)
    return table[index]


def parse_well_label(label: str) -> tuple[int, int]:
    """'B03', 'B3', 'B - 3', 'b 03' -> (1, 2), 0-based. Raises ValueError otherwise."""
    m = _LABEL_RE.match(label)
    if not m:
        raise ValueError(f"not a well label: {label!r}")
    return row_index(m.group(1)), int(m.group(2)) - 1


def parse_geometry(text: str) -> tuple[int, int]:
    """'16x24' -> (16, 24). Raises ValueError on anything else."""
    m = _GEOMETRY_RE.match(text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise ValueError(f"plate geometry must look like ROWSxCOLUMNS (e.g. 16x24), not {text!r}")
    return int(m.group(1)), int(m.group(2))


def geometry_for_well_count(count: int) -> tuple[int, int] | None:
    """(rows, columns) of a standard plate with exactly `count` wells, else None."""
    return STANDARD_GEOMETRIES.get(count)


# No plate has more rows or columns than this (1536-well: 32 x 48); a larger inferred geometry comes from a
# damaged or mis-read key, and sizing label arrays by it would be a memory bomb (a 25-digit well number).
MAX_INFERRED_SIDE = 1000


def infer_geometry(max_row: int, max_column: int) -> tuple[int, int]:
    """Smallest standard plate holding a 0-based (max_row, max_column): used when no layout exists.

    Raises GeometryError beyond MAX_INFERRED_SIDE (the pipeline names the plate folder)."""
    for rows, cols in (STANDARD_GEOMETRIES[n] for n in (96, 384, 1536)):
        if max_row < rows and max_column < cols:
            return rows, cols
    if max_row >= MAX_INFERRED_SIDE or max_column >= MAX_INFERRED_SIDE:
        raise GeometryError(f"a well in row {max_row + 1}, column {max_column + 1}: no plate has more than "
                         f"{MAX_INFERRED_SIDE} rows or columns (give --plate-geometry if this is right)")
    return max_row + 1, max_column + 1


def infer_geometry_from_well_number(max_well: int) -> tuple[int, int]:
    """Geometry from the largest 1-based row-major well number (<= 96: 8x12, <= 384: 16x24, else 32x48)."""
    if max_well <= 96:
        return 8, 12
    if max_well <= 384:
        return 16, 24
    return 32, 48


def well_number_to_row_col(number: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """1-based row-major well numbers -> 0-based (rows, columns)."""
    idx = np.asarray(number, dtype=np.int64) - 1
    return idx // columns, idx % columns
