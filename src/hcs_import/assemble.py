"""Helpers parsers use to turn their columns into model objects (tables, ROI frames, the result).

Kept apart from model.py so the model stays a plain contract and these conveniences can grow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
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
    Frame,
    FrameStream,
    MeasurementTable,
    Plate,
    PlateAnalysis,
    Provenance,
    SourceFile,
    T,
    TableKind,
    Z,
    arrays_frame,
    empty_rois,
    iter_batches,
    make_rois,
)
from .summary import summarise_objects

MEASURED_SUFFIX = " (measured)"  # appended to a vendor column whose name collides with a key column
MAX_TABLE_NAME = 1000  # characters: far above any population name seen, far below HDF5's attribute limit


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
    for target, col in measurement_targets(list(keys.columns), measurements).items():
        values = measurements[col]
        data[target] = values.to_numpy() if isinstance(values, pd.Series) else values
        out_infos[target] = infos.get(col, ColumnInfo(col))
    frame = arrays_frame(data)
    return MeasurementTable(name, kind, frame, out_infos, dict(metadata or {}))


def measurement_targets(keys: Iterable[str], measurements: Iterable[str]) -> dict[str, str]:
    """Table column name -> measurement name, in order; a measurement named like a key is renamed."""
    taken = set(keys)
    out: dict[str, str] = {}
    for col in measurements:
        target = col
        while target in taken:
            target += MEASURED_SUFFIX
        taken.add(target)
        out[target] = col
    return out


def point_rois(table: MeasurementTable, x_col: str, y_col: str, warnings: WarningLog,
               c: int = -1) -> Frame:
    """One Point per object row with both coordinates present; rows lacking one are counted, not lost.

    For a streamed table the ROIs are a stream too, built batch by batch when written; only the count
    (and the warning for objects without coordinates) is worked out now, from the two columns.
    """
    if isinstance(table.data, pd.DataFrame):
        x, y, ok = _finite_xy(table.data, x_col, y_col)
        _warn_missing(table, x_col, y_col, warnings, int((~ok).sum()), len(ok))
        return shapes_for_rows(table, np.flatnonzero(ok), "point", x=x[ok], y=y[ok], c=c)
    total = present = 0
    for batch in table.batches([x_col, y_col]):
        total += len(batch)
        present += int(_finite_xy(batch, x_col, y_col)[2].sum())
    _warn_missing(table, x_col, y_col, warnings, total - present, total)

    def read(columns: Sequence[str] | None) -> Iterator[pd.DataFrame]:
        offset = 0
        for batch in table.batches([*_SHAPE_KEYS, x_col, y_col]):
            x, y, ok = _finite_xy(batch, x_col, y_col)
            frame = _shapes(batch, table.name, np.flatnonzero(ok), offset, "point", x=x[ok], y=y[ok], c=c)
            offset += len(batch)
            yield frame if columns is None else frame[list(columns)]

    return FrameStream(empty_rois(), present, read)


def _finite_xy(data: pd.DataFrame, x_col: str, y_col: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y as float64 and where both are finite (a Point needs both)."""
    x = data[x_col].to_numpy(dtype=np.float64)
    y = data[y_col].to_numpy(dtype=np.float64)
    return x, y, np.isfinite(x) & np.isfinite(y)


def _warn_missing(table: MeasurementTable, x_col: str, y_col: str, warnings: WarningLog, missing: int,
                  total: int) -> None:
    if missing:
        warnings.add(f"{table.name}: objects without {x_col}/{y_col}, no ROI made",
                     f"{missing} of {total} objects", missing)


_SHAPE_KEYS = (OBJECT, WELL_ROW, WELL_COLUMN, FIELD, Z, T)


def shapes_for_rows(table: MeasurementTable, rows: np.ndarray, shape: str, **geometry: object) -> pd.DataFrame:
    """A ROI frame for the given rows of an in-memory object table, keys copied from the table."""
    if not isinstance(table.data, pd.DataFrame):
        raise TypeError(f"table {table.name!r} is streamed: build its shapes batch by batch (see point_rois)")
    return _shapes(table.data, table.name, rows, 0, shape, **geometry)


def _shapes(data: pd.DataFrame, population: str, rows: np.ndarray, offset: int, shape: str,
            **geometry: object) -> pd.DataFrame:
    """Shapes for `rows` of `data`, whose first row is row `offset` of the population's table."""
    n = len(rows)
    objects = data[OBJECT].to_numpy()[rows]
    return make_rois(
        n,
        population=population,
        table_row=rows.astype(np.int64) + offset,
        object=objects,
        well_row=data[WELL_ROW].to_numpy()[rows],
        well_column=data[WELL_COLUMN].to_numpy()[rows],
        field=data[FIELD].to_numpy()[rows],
        z=data[Z].to_numpy()[rows],
        t=data[T].to_numpy()[rows],
        shape=shape,
        text=_labels(f"{population} ", objects),
        **geometry,
    )


def _labels(prefix: str, objects: np.ndarray) -> np.ndarray:
    """`prefix + str(object)` for every object, as an object array (twice as fast as numpy's char.add)."""
    out = np.empty(len(objects), dtype=object)
    out[:] = [prefix + str(o) for o in objects.tolist()]
    return out


@dataclass(frozen=True)
class Shapes:
    """Shapes of one kind for some rows of a batch: `rows` index the batch; geometry arrays run with rows."""

    shape: str
    rows: np.ndarray
    geometry: Mapping[str, np.ndarray]
    c: int = -1


# A batch -> the shapes picked from it, and objects left without a shape: warning text -> (count, the first
# example, or None for "<count> of <rows> objects").
Lost = dict[str, tuple[int, str | None]]
ShapeSelector = Callable[[pd.DataFrame], tuple[list[Shapes], Lost]]


def selected_rois(table: MeasurementTable, columns: Sequence[str], select: ShapeSelector,
                  warnings: WarningLog) -> Frame:
    """The ROIs `select` picks from each batch of `columns` of an object table, in table-row order.

    `select` is a pure function of a batch (the rows it picks, their geometry, the objects it could not
    give a shape), so one function serves a table in memory and a streamed one: for a stream the ROIs are
    a stream too, counted by one pass over the geometry columns now and built batch by batch when
    written. The shapes of one row sit together, in table-row order, however many kinds `select`
    returns: that is the order the uploader streams without holding a population in memory.
    """
    if isinstance(table.data, pd.DataFrame):
        picked, lost = select(table.data[list(columns)])
        _warn_lost(table, lost, warnings)
        return _selected(table.data, table.name, 0, picked)
    count = 0
    lost = {}
    for batch in table.batches(list(columns)):
        picked, gone = select(batch)
        count += sum(len(s.rows) for s in picked)
        for text, (n, example) in gone.items():
            before, first = lost.get(text, (0, None))
            lost[text] = (before + n, first if first is not None or not n else example)
    _warn_lost(table, lost, warnings)
    keys = [k for k in _SHAPE_KEYS if k not in columns]

    def read(wanted: Sequence[str] | None) -> Iterator[pd.DataFrame]:
        offset = 0
        for batch in table.batches([*keys, *columns]):
            out = _selected(batch, table.name, offset, select(batch[list(columns)])[0])
            offset += len(batch)
            yield out if wanted is None else out[list(wanted)]

    return FrameStream(empty_rois(), count, read)


def _warn_lost(table: MeasurementTable, lost: Lost, warnings: WarningLog) -> None:
    for text, (n, example) in lost.items():
        if n:
            warnings.add(f"{table.name}: {text}", example if example is not None else f"{n} of {table.rows} objects",
                         n)


def _selected(data: pd.DataFrame, population: str, offset: int, picked: list[Shapes]) -> pd.DataFrame:
    frames = [_shapes(data, population, s.rows, offset, s.shape, c=s.c, **s.geometry) for s in picked if len(s.rows)]
    if len(frames) <= 1:
        return frames[0] if frames else empty_rois()
    frame = pd.concat(frames, ignore_index=True)
    return frame.iloc[np.argsort(frame["table_row"].to_numpy(), kind="stable")].reset_index(drop=True)


def concat_rois(frames: Iterable[Frame]) -> Frame:
    """All ROI frames as one; when any is a stream, one stream that reads them in turn."""
    parts = [f for f in frames if len(f)]
    if not parts:
        return empty_rois()
    if all(isinstance(f, pd.DataFrame) for f in parts):
        return pd.concat(parts, ignore_index=True)

    def read(columns: Sequence[str] | None) -> Iterator[pd.DataFrame]:
        for part in parts:
            yield from iter_batches(part, columns)

    return FrameStream(empty_rois(), sum(len(f) for f in parts), read)


def _check_wells_fit(table: MeasurementTable, plate: Plate, root: Path) -> None:
    for batch in table.batches([WELL_ROW, WELL_COLUMN]):
        bad = (batch[WELL_ROW] >= plate.rows) | (batch[WELL_COLUMN] >= plate.columns)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            r, c = int(batch[WELL_ROW].iloc[i]), int(batch[WELL_COLUMN].iloc[i])
            raise InputError(root, f"table {table.name!r}",
                             f"well row {r + 1}, column {c + 1} lies outside the "
                             f"{plate.rows}x{plate.columns} plate")


def finish(
    *,
    fmt: str,
    version: str,
    root: Path,
    plate: Plate,
    tables: list[MeasurementTable],
    rois: Frame,
    sources: Iterable[Path],
    warnings: WarningLog,
    analysis: Mapping[str, str] | None = None,
) -> PlateAnalysis:
    """Add a computed per-well table when the vendor gave none, hash the sources, check wells fit."""
    for t in tables:
        if len(t.name) > MAX_TABLE_NAME:  # a population or file name no instrument writes: a damaged file
            raise InputError(root, None, f"a table name of {len(t.name)} characters ({t.name[:40]!r}...): "
                             f"expected a population or file name of at most {MAX_TABLE_NAME}")
        _check_wells_fit(t, plate, root)
    if not any(t.kind == "wells" for t in tables):
        computed = summarise_objects(tables, plate.columns)
        if computed is not None:
            tables = [*tables, computed]
    provenance = Provenance(
        parser=fmt,
        parser_version=version,
        sources=tuple(SourceFile.of(p, root) for p in sorted(set(sources))),
        analysis=tuple(sorted((analysis or {}).items())),
    )
    return PlateAnalysis(fmt, plate, tuple(tables), rois, provenance, warnings.lines())
