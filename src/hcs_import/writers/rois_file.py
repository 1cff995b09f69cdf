"""ROIs on disk: one Parquet file of shapes (columnar, typed), read back by the uploader.

Written batch by batch with a fixed schema, so a streamed ROI set of any size passes through bounded
memory; an in-memory frame is the one-batch case.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..model import ROI_COLUMNS, Frame, iter_batches

ROWS_PER_GROUP = 65_536  # ROIs converted and written at a time (one row group): ~20 MB in memory
_ARROW_TYPES = {"int64": pa.int64(), "float64": pa.float64()}
_BINARY_COLUMNS = ("mask",)  # bit-packed bytes; every other object column holds text
SCHEMA = pa.schema([
    (name, _ARROW_TYPES.get(dtype) or (pa.binary() if name in _BINARY_COLUMNS else pa.string()))
    for name, dtype in ROI_COLUMNS.items()
])
_TEXT_COLUMNS = [name for name, dtype in ROI_COLUMNS.items() if dtype == "object"]


@dataclass(frozen=True)
class RoisWritten:
    count: int
    by_shape: dict[str, int]
    by_population: dict[str, int]


def write_rois(path: Path, rois: Frame) -> RoisWritten:
    by_shape: Counter[str] = Counter()
    by_population: Counter[str] = Counter()
    count = 0
    with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer:
        for batch in iter_batches(rois, list(ROI_COLUMNS), ROWS_PER_GROUP):
            if not len(batch):
                continue
            writer.write_table(pa.Table.from_pandas(batch, schema=SCHEMA, preserve_index=False))
            count += len(batch)
            by_shape.update({str(k): int(v) for k, v in batch["shape"].value_counts().items()})
            by_population.update({str(k): int(v) for k, v in batch["population"].value_counts().items()})
    if count != len(rois):
        raise ValueError(f"{path.name}: {count} ROIs read back, {len(rois)} expected")
    return RoisWritten(count, dict(by_shape), dict(by_population))


def read_rois(path: Path) -> pd.DataFrame:
    """The whole ROI frame in memory (tests, small bundles; the uploader streams with `iter_rois`)."""
    parts = list(iter_rois(path))
    return pd.concat(parts, ignore_index=True) if parts else _objects(pd.read_parquet(path)[list(ROI_COLUMNS)])


def iter_rois(path: Path, columns: Sequence[str] | None = None, rows: int = ROWS_PER_GROUP
              ) -> Iterator[pd.DataFrame]:
    """The ROI frame in file order, `rows` shapes at a time (row groups read one after another), with text
    and byte columns as Python objects and None where a shape has none: memory bounded by `rows`, not by
    the number of ROIs in the file."""
    wanted = list(columns) if columns is not None else list(ROI_COLUMNS)
    with pq.ParquetFile(path) as source:
        for batch in source.iter_batches(batch_size=rows, columns=wanted):
            yield _objects(batch.to_pandas())


def _objects(frame: pd.DataFrame) -> pd.DataFrame:
    for name in _TEXT_COLUMNS:
        if name in frame.columns:
            column = frame[name]
            frame[name] = column.astype(object).where(column.notna(), None)
    return frame
