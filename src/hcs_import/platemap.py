"""A plate map (what is in each well: compound, concentration, control, ...), checked and merged.

Input: a CSV whose first column names the well (`A01`, `A1` or `A - 1`) and whose other columns are
anything the facility records per well. It is checked against the plate: a well outside the plate is an
error; a well in the map without results, or with results but not in the map, is reported in the
manifest's warnings. The columns are added to the per-well table (names kept; one that collides with a
measurement gets ` (plate map)`), the map itself is kept in the bundle (`platemap.parquet`) and, on
upload, becomes key-value annotations on the Wells.
A pure function of the map and the parsed plate: it knows nothing of vendors or OMERO.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .model import WELL_COLUMN, WELL_ROW, ColumnInfo, MeasurementTable, PlateAnalysis, as_frame
from .wells import parse_well_label, well_label
from .writers.bundle import PLATEMAP_FILE

SUFFIX = " (plate map)"
# Values a `control` column may hold for the two control groups Z' compares (case-insensitive).
POSITIVE = frozenset({"positive", "pos", "+", "positive control", "pc", "max", "high"})
NEGATIVE = frozenset({"negative", "neg", "-", "negative control", "nc", "min", "low", "vehicle", "dmso"})
CONTROL_COLUMNS = ("control", "controls", "control type", "role", "type")
MAX_BYTES = 16 << 20  # a plate map is a few kilobytes; anything huge is not one


def read_platemap(path: Path) -> pd.DataFrame:
    """The map as a frame: `well_row`, `well_column` (0-based), `well` (as written), then its columns."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(path, None, f"{size} bytes: too large for a plate map (expected one row per well)")
        with open(path, newline="", encoding="utf-8-sig") as fh:
            text = fh.read()
        try:
            dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], ",;\t")
        except csv.Error:
            dialect = csv.excel  # one column, or nothing to tell: comma-separated
        rows = list(csv.reader(io.StringIO(text), dialect))
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot be read as a CSV plate map ({str(exc)[:80]})") from None
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror}") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise InputError(path, None, "expected a header line and one line per well")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header) or not all(header):
        raise InputError(path, "line 1", "every column needs a distinct, non-empty name")
    positions = []
    for line, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise InputError(path, f"line {line}", f"{len(r)} fields, the header has {len(header)}")
        try:
            positions.append(parse_well_label(r[0]))
        except ValueError:
            raise InputError(path, f"line {line}, column {header[0]!r}",
                             f"value {r[0][:40]!r}: expected a well such as A01, A1 or A - 1") from None
    frame = pd.DataFrame(rows[1:], columns=header)
    data = {WELL_ROW: [p[0] for p in positions], WELL_COLUMN: [p[1] for p in positions]}
    for name in header[1:]:
        values = frame[name].str.strip()
        numbers = pd.to_numeric(values.where(values != ""), errors="coerce")
        numeric = values.eq("") | numbers.notna()
        data[name] = numbers.to_numpy() if numeric.all() and numbers.notna().any() else values.to_numpy(object)
    out = pd.DataFrame(data)
    dup = out.duplicated([WELL_ROW, WELL_COLUMN])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(path, f"line {i + 2}", f"well {rows[i + 1][0]!r} is given twice")
    return out


def apply_platemap(analysis: PlateAnalysis, platemap: pd.DataFrame, source: Path) -> PlateAnalysis:
    """The analysis with the map checked against its plate and merged into its per-well table."""
    plate = analysis.plate
    outside = (platemap[WELL_ROW] >= plate.rows) | (platemap[WELL_COLUMN] >= plate.columns)
    if outside.any():
        i = int(np.flatnonzero(outside.to_numpy())[0])
        r, c = int(platemap[WELL_ROW].iloc[i]), int(platemap[WELL_COLUMN].iloc[i])
        raise InputError(source, f"line {i + 2}", f"well row {r + 1}, column {c + 1} lies outside the "
                         f"{plate.rows}x{plate.columns} plate")
    warnings = list(analysis.warnings)
    wells_table = analysis.well_table
    mapped = set(zip(platemap[WELL_ROW].tolist(), platemap[WELL_COLUMN].tolist(), strict=True))
    tables = list(analysis.tables)
    if wells_table is not None:
        frame = as_frame(wells_table.data)
        measured = set(zip(frame[WELL_ROW].tolist(), frame[WELL_COLUMN].tolist(), strict=True))
        _report(warnings, source, "wells in the plate map without results", mapped - measured, plate.columns)
        _report(warnings, source, "wells with results not in the plate map", measured - mapped, plate.columns)
        columns = [c for c in platemap.columns[2:]]
        renamed = {c: c + SUFFIX if c in frame.columns else c for c in columns}
        merged = frame.merge(platemap.rename(columns=renamed), on=[WELL_ROW, WELL_COLUMN], how="left", sort=False)
        infos = dict(wells_table.columns)
        for c in columns:
            infos[renamed[c]] = ColumnInfo(c, None, f"plate map {source.name}")
        metadata = {**wells_table.metadata, "platemap": source.name}
        tables[tables.index(wells_table)] = MeasurementTable(wells_table.name, "wells", merged, infos, metadata)
    else:
        warnings.append(f"{source.name}: no per-well table to merge the plate map into; kept as {PLATEMAP_FILE}")
    return replace(analysis, tables=tuple(tables), warnings=tuple(warnings), platemap=platemap)


def _report(warnings: list[str], source: Path, what: str, wells: set[tuple[int, int]], columns: int) -> None:
    if wells:
        shown = ", ".join(well_label(r, c, columns) for r, c in sorted(wells)[:8])
        more = f" and {len(wells) - 8} more" if len(wells) > 8 else ""
        warnings.append(f"{source.name}: {len(wells)} {what}: {shown}{more}")


def control_groups(platemap: pd.DataFrame) -> tuple[str, set[tuple[int, int]], set[tuple[int, int]]] | None:
    """(control column, positive wells, negative wells) when the map names both control groups."""
    lower = {str(c).strip().lower(): c for c in platemap.columns[2:]}
    column = next((lower[c] for c in CONTROL_COLUMNS if c in lower), None)
    if column is None:
        return None
    values = platemap[column].astype(str).str.strip().str.lower()
    wells = list(zip(platemap[WELL_ROW].tolist(), platemap[WELL_COLUMN].tolist(), strict=True))
    positive = {w for w, v in zip(wells, values, strict=True) if v in POSITIVE}
    negative = {w for w, v in zip(wells, values, strict=True) if v in NEGATIVE}
    if not positive or not negative:
        return None
    return str(column), positive, negative
