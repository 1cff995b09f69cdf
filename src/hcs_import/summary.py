"""Per-well summaries computed from object tables, for formats whose files carry none.

OMERO.web's plate view and omero-parade want one row per well with numeric columns; a per-object table
of a million rows is no use to them. Each numeric measurement gets its mean and median per well, plus
the object count per population.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .model import (
    WELL_COLUMN,
    WELL_KEYS,
    WELL_ROW,
    ColumnInfo,
    MeasurementTable,
    well_keys_frame,
)


def summarise_objects(tables: list[MeasurementTable] | tuple[MeasurementTable, ...], columns: int,
                       name: str = "Wells") -> MeasurementTable | None:
    """One row per well that has objects in any table: `<population> count`, then mean and median.

    Without object tables, per-field tables are summarised the same way (count = fields per well), so a
    format that only exports per-field results still gets its one row per well.
    """
    object_tables = [t for t in tables if t.kind == "objects"] or [t for t in tables if t.kind == "fields"]
    if not object_tables:
        return None
    parts: list[pd.DataFrame] = []
    infos: dict[str, ColumnInfo] = {}
    for table in object_tables:
        data = table.data
        grouped = data.groupby([WELL_ROW, WELL_COLUMN], sort=True)
        counts = grouped.size().rename(f"{table.name} count").astype(np.int64)
        infos[str(counts.name)] = ColumnInfo(f"{table.name} count", None, f"{table.kind} per well")
        frames = [counts.to_frame()]
        numeric = [
            c for c in data.columns[len(table.keys):]
            if pd.api.types.is_numeric_dtype(data[c]) and not pd.api.types.is_bool_dtype(data[c])
            and not table.info(str(c)).identifier
        ]
        if numeric:
            g = data.groupby([WELL_ROW, WELL_COLUMN], sort=True)[numeric]
            mean = g.mean()
            median = g.median()
            mean.columns = [f"{table.name} {c} mean" for c in numeric]
            median.columns = [f"{table.name} {c} median" for c in numeric]
            for c in numeric:
                info = table.info(c)
                infos[f"{table.name} {c} mean"] = ColumnInfo(info.source_name, info.unit, "per-well mean")
                infos[f"{table.name} {c} median"] = ColumnInfo(info.source_name, info.unit, "per-well median")
            # interleave so each measurement's mean and median stand together
            order = [col for pair in zip(mean.columns, median.columns) for col in pair]
            frames.append(pd.concat([mean, median], axis=1)[order].astype(np.float64))
        parts.append(pd.concat(frames, axis=1))
    merged = pd.concat(parts, axis=1).sort_index()
    for c in merged.columns:
        if str(c).endswith(" count"):
            merged[c] = merged[c].fillna(0).astype(np.int64)
    idx = merged.index.to_frame(index=False)
    keys = well_keys_frame(idx[WELL_ROW].to_numpy(), idx[WELL_COLUMN].to_numpy(), columns)
    data = pd.concat([keys, merged.reset_index(drop=True)], axis=1)
    assert tuple(data.columns[:3]) == WELL_KEYS
    return MeasurementTable(name, "wells", data, infos, {"summary": "computed by hcs-import from object tables"})
