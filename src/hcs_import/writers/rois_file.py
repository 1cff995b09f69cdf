"""ROIs on disk: one Parquet file of shapes (columnar, typed), read back by the uploader."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..model import ROI_COLUMNS


def write_rois(path: Path, rois: pd.DataFrame) -> int:
    frame = rois[list(ROI_COLUMNS)]
    frame.to_parquet(path, engine="pyarrow", index=False, compression="zstd")
    return len(frame)


def read_rois(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path, engine="pyarrow")
    return frame[list(ROI_COLUMNS)]
