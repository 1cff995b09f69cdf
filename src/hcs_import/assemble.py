"""Helpers parsers use to turn their columns into model objects (tables, ROI frames, the result).

Kept apart from model.py so the model stays a plain contract and these conveniences can grow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .issues_log import WarningLog
from .model import (
    FIELD,
    OBJECT,
    WELL_COLUMN,
    WELL_ROW,
    ColumnInfo,
    MeasurementTable,
    Plate,
    PlateAnalysis,
    Provenance,
    SourceFile,
    T,
    TableKind,
    Z,
    empty_rois,
    make_rois,
)
from .summary import summarise_objects

MEASURED_SUFFIX = " (measured)"  # appended to a vendor column whose name collides with a key column


def build_table(
    name: str,
    kind: TableKind,
    keys: pd.DataFrame,
    measurements: Mapping[str, np.ndarray | pd.Series],
    infos: Mapping[str, ColumnInfo] | None = None,
    metadata: Mapping[str, str | int | float] | None = None,
) -> MeasurementTable:
    """Keys first, then measurements in the given order; a measurement named like a key is renamed."""
    infos = dict(infos or {})
    data = {c: keys[c].to_numpy() for c in keys.columns}
    out_infos: dict[str, ColumnInfo] = {}
    for col, values in measurements.items():
        target = col
        while target in data:
            target += MEASURED_SUFFIX
        data[target] = values.to_numpy() if isinstance(values, pd.Series) else values
        out_infos[target] = infos.get(col, ColumnInfo(col))
    frame = pd.DataFrame(data, copy=False)
    return MeasurementTable(name, kind, frame, out_infos, dict(metadata or {}))


def point_rois(table: MeasurementTable, x_col: str, y_col: str, warnings: WarningLog,
               c: int = -1) -> pd.DataFrame:
    """One Point per object row with both coordinates present; rows lacking one are counted, not lost."""
    x = table.data[x_col].to_numpy(dtype=np.float64)
    y = table.data[y_col].to_numpy(dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    missing = int((~ok).sum())
    if missing:
        warnings.add(f"{table.name}: objects without {x_col}/{y_col}, no ROI made",
                     f"{missing} of {len(ok)} objects", missing)
    return shapes_for_rows(table, np.flatnonzero(ok), "point", x=x[ok], y=y[ok], c=c)


def shapes_for_rows(table: MeasurementTable, rows: np.ndarray, shape: str, **geometry: object) -> pd.DataFrame:
    """A ROI frame for the given object-table rows, keys copied from the table."""
    d = table.data
    n = len(rows)
    objects = d[OBJECT].to_numpy()[rows]
    return make_rois(
        n,
        population=table.name,
        table_row=rows.astype(np.int64),
        object=objects,
        well_row=d[WELL_ROW].to_numpy()[rows],
        well_column=d[WELL_COLUMN].to_numpy()[rows],
        field=d[FIELD].to_numpy()[rows],
        z=d[Z].to_numpy()[rows],
        t=d[T].to_numpy()[rows],
        shape=shape,
        text=_labels(f"{table.name} ", objects),
        **geometry,
    )


def _labels(prefix: str, objects: np.ndarray) -> np.ndarray:
    """`prefix + str(object)` for every object, as an object array (twice as fast as numpy's char.add)."""
    out = np.empty(len(objects), dtype=object)
    out[:] = [prefix + str(o) for o in objects.tolist()]
    return out


def concat_rois(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_rois()
    return pd.concat(frames, ignore_index=True)


def finish(
    *,
    fmt: str,
    version: str,
    root: Path,
    plate: Plate,
    tables: list[MeasurementTable],
    rois: pd.DataFrame,
    sources: Iterable[Path],
    warnings: WarningLog,
) -> PlateAnalysis:
    """Add a computed per-well table when the vendor gave none, hash the sources, check wells fit."""
    for t in tables:
        if len(t.data):
            bad = (t.data[WELL_ROW] >= plate.rows) | (t.data[WELL_COLUMN] >= plate.columns)
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                r, c = int(t.data[WELL_ROW].iloc[i]), int(t.data[WELL_COLUMN].iloc[i])
                raise InputError(root, f"table {t.name!r}",
                                 f"well row {r + 1}, column {c + 1} lies outside the "
                                 f"{plate.rows}x{plate.columns} plate")
    if not any(t.kind == "wells" for t in tables):
        computed = summarise_objects(tables, plate.columns)
        if computed is not None:
            tables = [*tables, computed]
    provenance = Provenance(
        parser=fmt,
        parser_version=version,
        sources=tuple(SourceFile.of(p, root) for p in sorted(set(sources))),
    )
    return PlateAnalysis(fmt, plate, tuple(tables), rois, provenance, warnings.lines())
