"""Per-well summaries computed from object tables, for formats whose files carry none.

OMERO.web's plate view and omero-parade want one row per well with numeric columns; a per-object table
of a million rows is no use to them. Each numeric measurement gets its mean and median per well, plus
the object count per population. Time-lapse plates get one row per (well, t): pooling 18 frames into one
count would report ~850 objects for a well holding ~75 at any time.

Which columns are summarised (the rule, see `summarised`): numeric, not boolean, not a key, and neither
marked an identifier by its parser nor named like an identifier, a position or a code
(NOT_SUMMARISED_NAMES): the mean of object numbers, field numbers, pixel positions or class codes
would be noise that looks like data.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import numpy as np
import pandas as pd

from .model import (
    WELL_COLUMN,
    WELL_KEYS,
    WELL_ROW,
    ColumnInfo,
    MeasurementTable,
    T,
    well_keys_frame,
)

# Column names (vendor spelling, case-insensitive) that are identifiers, positions or codes, never
# averaged. Each was seen in a real export: Harmony `Object No`, `Object No in Nuclei`, `Field`, `Plane`,
# `Timepoint`, `X`, `Y`, `Position X [µm]`, `Bounding Box`, `Track Point X`; IN Carta `OBJECT ID`, `FOV`,
# `Row`, `Column`, `Z`, `T`, `... Max left border wv1`, `... Max top border`, `... cg X wv1`, `Class Color`;
# ScanR `Center X`, `Parent Object ID (MO)`; InCell `Cell: cgX`; CellProfiler `ImageNumber`,
# `ObjectNumber`, `Number_Object_Number`, `Location_Center_X`, `AreaShape_Center_X`,
# `AreaShape_BoundingBoxMinimum_X`, `Parent_Nuclei`, `Children_Cells_Count`.
NOT_SUMMARISED_NAMES: tuple[re.Pattern[str], ...] = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"^(row|column|col|field|fov|plane|timepoint|time ?point|z|t|well|position|site|measurement)$",
    r"\bobject (no|id|number|index)\b", r"^(object|id|cell id|object id)$", r"\bparent\b", r"\btrack (id|no)\b",
    r"^[xy]$", r"^[xy] ?(\[.*\]|\(.*\))$", r"\bposition [xyz]\b", r"\b(cg|center|centre|centroid) ?[xyz]\b",
    r"\bcg[xyz]\b", r"\b(left|top|right|bottom) border\b", r"\bbounding box\b", r"\btrack point [xyz]\b",
    r"\bclass\b", r"\bcolou?r\b", r"\b(code|label)\b",
    r"(^|_)(Image|Object)Number$", r"(^|_)Number_Object_Number$", r"(^|_)Location_", r"(^|_)Center_[XYZ]$",
    r"BoundingBox", r"(^|_)(Parent|Children)_",
))


def summarised(table: MeasurementTable, column: str, dtype: object) -> bool:
    """Whether a per-well mean and median of `column` mean anything (see the module docstring)."""
    if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        return False
    info = table.info(column)
    if info.identifier:
        return False
    return not any(p.search(name) for name in (column, info.source_name) for p in NOT_SUMMARISED_NAMES)


def summarise_objects(tables: list[MeasurementTable] | tuple[MeasurementTable, ...], columns: int,
                       name: str = "Wells") -> MeasurementTable | None:
    """One row per well that has objects in any table: `<population> count`, then mean and median.

    Without object tables, per-field tables are summarised the same way (count = fields per well), so a
    format that only exports per-field results still gets its one row per well.
    """
    object_tables = [t for t in tables if t.kind == "objects"] or [t for t in tables if t.kind == "fields"]
    if not object_tables:
        return None
    by_time = any(_timepoints(t) > 1 for t in object_tables)
    group = [WELL_ROW, WELL_COLUMN, T] if by_time else [WELL_ROW, WELL_COLUMN]
    parts: list[pd.DataFrame] = []
    infos: dict[str, ColumnInfo] = {}
    for table in object_tables:
        dtypes = table.data.dtypes
        numeric = [str(c) for c in table.data.columns[len(table.keys):] if summarised(table, str(c), dtypes[c])]
        keys = [k for k in group if k in table.data.columns]
        count_name = f"{table.name} count"
        infos[count_name] = ColumnInfo(count_name, None, f"{table.kind} per well")
        for c in numeric:
            info = table.info(c)
            infos[f"{table.name} {c} mean"] = ColumnInfo(info.source_name, info.unit, "per-well mean")
            infos[f"{table.name} {c} median"] = ColumnInfo(info.source_name, info.unit, "per-well median")
        pieces = [_per_well(rows, table.name, numeric, group)
                  for rows in _rows_by_complete_wells(table, [*numeric, *keys[2:]])]
        empty = pd.DataFrame({c: pd.Series(dtype=dtypes[c]) for c in [*keys, *numeric]})
        if by_time and T not in empty:
            empty[T] = pd.Series(dtype=np.int64)
        parts.append(pd.concat(pieces) if pieces else _per_well(empty, table.name, numeric, group))
    merged = pd.concat(parts, axis=1).sort_index()
    for c in merged.columns:
        if str(c).endswith(" count"):
            merged[c] = merged[c].fillna(0).astype(np.int64)
    idx = merged.index.to_frame(index=False)
    keys_frame = well_keys_frame(idx[WELL_ROW].to_numpy(), idx[WELL_COLUMN].to_numpy(), columns)
    if by_time:
        keys_frame[T] = idx[T].to_numpy(dtype=np.int64)
    data = pd.concat([keys_frame, merged.reset_index(drop=True)], axis=1)
    assert tuple(data.columns[:3]) == WELL_KEYS
    note = "computed by hcs-import from object tables" + (", one row per well and timepoint" if by_time else "")
    return MeasurementTable(name, "wells", data, infos, {"summary": note})


def _timepoints(table: MeasurementTable) -> int:
    """Distinct `t` of a table (1 when it has no t key)."""
    if T not in table.data.columns:
        return 1
    seen: set[int] = set()
    for batch in table.batches([T]):
        seen.update(pd.unique(batch[T].to_numpy()).tolist())
        if len(seen) > 1:
            return len(seen)
    return max(len(seen), 1)


def _per_well(data: pd.DataFrame, name: str, numeric: list[str], group: list[str]) -> pd.DataFrame:
    """Count, then mean and median of each numeric column, per `group` (well, and t for time-lapse)."""
    if T in group and T not in data.columns:
        data = data.assign(**{T: 0})
    grouped = data.groupby(group, sort=True)
    counts = grouped.size().rename(f"{name} count").astype(np.int64)
    frames = [counts.to_frame()]
    if numeric:
        g = grouped[numeric]
        mean = g.mean()
        median = g.median()
        mean.columns = [f"{name} {c} mean" for c in numeric]
        median.columns = [f"{name} {c} median" for c in numeric]
        # interleave so each measurement's mean and median stand together
        order = [col for pair in zip(mean.columns, median.columns) for col in pair]
        frames.append(pd.concat([mean, median], axis=1)[order].astype(np.float64))
    return pd.concat(frames, axis=1)


# Rows of unfinished wells the summary holds at most before it partitions the table by well instead (on
# disk). Real IN Carta object exports are written object number by object number across every field of
# the plate (object 1 of each field, then object 2, ...: seen in the CytoTable test exports), so no well
# is complete before the last block; held in memory, the summary of a million-cell plate costs the table.
PARTITION_ROWS = 250_000
_WIDTH = 1 << 20  # well columns never reach this: (row, column) -> one integer code


def _codes(batch: pd.DataFrame) -> np.ndarray:
    codes: np.ndarray = batch[WELL_ROW].to_numpy(np.int64) * _WIDTH + batch[WELL_COLUMN].to_numpy(np.int64)
    return codes


def _rows_by_complete_wells(table: MeasurementTable, numeric: list[str]) -> Iterator[pd.DataFrame]:
    """The table's rows (keys and `numeric`), handed out a well at a time once every row of it is read.

    Medians need all of a well's values at once, but not all wells at once: a first pass over the two
    well columns finds the batch holding each well's first and last row, and the second pass keeps only
    the rows of wells not yet complete. Files written well by well (ScanR, Harmony, InCell, and every
    format read whole) thus hold at most a batch and a well. When the wells of a streamed table
    interleave so that more than PARTITION_ROWS rows would be held, the rows are partitioned by well into
    files on disk first, and handed out a partition at a time (`_by_partition`).
    Rows keep their file order within a well, so results equal one groupby over the whole table.
    """
    keys = [WELL_ROW, WELL_COLUMN]
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    count: dict[int, int] = {}
    batches = 0
    for i, batch in enumerate(table.batches(keys)):
        found, n = np.unique(_codes(batch), return_counts=True)
        for code, k in zip(found.tolist(), n.tolist(), strict=True):
            first.setdefault(code, i)
            last[code] = i
            count[code] = count.get(code, 0) + k
        batches = i + 1
    if not isinstance(table.data, pd.DataFrame) and _held(first, last, count, batches) > PARTITION_ROWS:
        yield from _by_partition(table, [*keys, *numeric], count)
        return
    done_after: dict[int, list[int]] = {}
    for code, i in last.items():
        done_after.setdefault(i, []).append(code)
    pending: list[pd.DataFrame] = []  # rows of wells not yet complete, joined only when one completes
    for i, batch in enumerate(table.batches([*keys, *numeric])):
        finished = done_after.get(i)
        pending.append(batch)
        if not finished:
            continue
        rows = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
        complete = np.isin(_codes(rows), np.asarray(finished, dtype=np.int64))
        if complete.all():
            yield rows
            pending = []
        else:
            yield rows[complete]
            pending = [rows[~complete].reset_index(drop=True)]


def _held(first: dict[int, int], last: dict[int, int], count: dict[int, int], batches: int) -> int:
    """Most rows of wells begun and not complete after any one batch (an upper bound: whole wells)."""
    open_rows = np.zeros(batches + 1, dtype=np.int64)
    for code, n in count.items():
        if last[code] > first[code]:
            open_rows[first[code]] += n
            open_rows[last[code]] -= n
    return int(np.cumsum(open_rows).max()) if batches else 0


def _by_partition(table: MeasurementTable, columns: list[str], count: dict[int, int]) -> Iterator[pd.DataFrame]:
    """The rows, partitioned by well into Arrow files of about PARTITION_ROWS rows (whole wells), handed out
    a partition at a time; file order is kept within each well."""
    import pyarrow as pa

    from .spill import SpillDir

    wells = np.asarray(sorted(count), dtype=np.int64)
    sizes = np.asarray([count[int(c)] for c in wells], dtype=np.int64)
    part_of = (np.cumsum(sizes) - sizes) // PARTITION_ROWS  # by each well's first row
    spill = SpillDir("summary-")
    writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
    schema: pa.Schema | None = None
    try:
        for batch in table.batches(columns):
            parts = part_of[np.searchsorted(wells, _codes(batch))]
            order = np.argsort(parts, kind="stable")
            sorted_parts = parts[order]
            starts = np.flatnonzero(np.r_[True, sorted_parts[1:] != sorted_parts[:-1]])
            for a, b in zip(starts.tolist(), [*starts[1:].tolist(), len(order)], strict=True):
                rows = batch.iloc[order[a:b]]
                chunk = pa.Table.from_pandas(rows, preserve_index=False)
                schema = schema or chunk.schema
                part = int(sorted_parts[a])
                if part not in writers:
                    writers[part] = pa.ipc.new_stream(str(spill.path / f"part-{part:05d}.arrow"), schema)
                writers[part].write_table(chunk.cast(schema))
        for w in writers.values():
            w.close()
        written, writers = sorted(writers), {}
        for part in written:
            with pa.memory_map(str(spill.path / f"part-{part:05d}.arrow")) as source:
                yield pa.ipc.open_stream(source).read_all().to_pandas()
    finally:
        for w in writers.values():  # left open by an error
            with contextlib.suppress(OSError, pa.ArrowInvalid):
                w.close()
        spill.remove()
