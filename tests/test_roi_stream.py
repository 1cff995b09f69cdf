"""The uploader reads rois.parquet a row group at a time (omero.rois.scan_rois / RoiSource.plans):
the same ROIs, shapes and order as planning the whole frame in memory, whatever the batch size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hcs_import.model import make_rois
from hcs_import.omero.rois import plan_rois, scan_rois
from hcs_import.writers.rois_file import write_rois


def _lookup(rows: np.ndarray, cols: np.ndarray, fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image id = 100 * well_row + field; field 9 has no Image."""
    ids = np.where(fields == 9, -1, 100 * rows + fields).astype(np.int64)
    return ids, ids < 0


def _frame(seed: int = 0) -> pd.DataFrame:
    """Two populations, ROIs of 1 to 3 shapes, a few shapes on a field without an Image."""
    rng = np.random.default_rng(seed)
    parts = []
    for pop in ("Cells", "Nuclei"):
        per_roi = rng.integers(1, 4, size=60)
        table_row = np.repeat(np.arange(60), per_roi)
        n = len(table_row)
        field = np.where(rng.random(60) < 0.05, 9, rng.integers(0, 3, size=60))[table_row]
        parts.append(make_rois(n, population=pop, table_row=table_row, object=table_row + 1,
                               well_row=table_row % 4, well_column=1, field=field, shape="point",
                               x=rng.random(n), y=rng.random(n)))
    return pd.concat(parts, ignore_index=True)


def _flatten(pairs: list) -> list[tuple[str, int, int, int]]:
    """(population, table row, image id, shapes) of every ROI, in order."""
    out = []
    for plan, images in pairs:
        sizes = np.diff(plan.starts)
        out += [(plan.population, int(r), int(i), int(s)) for r, i, s in zip(plan.table_rows, images, sizes)]
    return out


@pytest.mark.parametrize("rows", [1, 2, 7, 50, 100_000])
def test_streamed_plans_match_the_in_memory_plan(tmp_path: Path, rows: int) -> None:
    frame = _frame()
    path = tmp_path / "rois.parquet"
    write_rois(path, frame)
    source = scan_rois(path, _lookup, rows=rows)
    ids, lost = _lookup(frame["well_row"].to_numpy(), frame["well_column"].to_numpy(), frame["field"].to_numpy())
    kept = frame[~lost].reset_index(drop=True).assign(_image=ids[~lost])
    expected = [(p, p.frame["_image"].to_numpy()[p.starts[:-1]]) for p in plan_rois(kept)]
    assert source.grouped
    assert source.lost_shapes == int(lost.sum()) > 0
    assert [(p.population, p.rois, p.shapes) for p in source.populations] == [
        (p.population, p.count, len(p.frame)) for p, _ in expected]
    streamed = list(source.plans())
    assert _flatten(streamed) == _flatten(expected)
    xs = np.concatenate([p.frame["x"].to_numpy() for p, _ in streamed])
    assert np.array_equal(xs, np.concatenate([p.frame["x"].to_numpy() for p, _ in expected]))


def test_a_file_in_another_order_is_planned_whole(tmp_path: Path) -> None:
    frame = _frame(1)
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    path = tmp_path / "rois.parquet"
    write_rois(path, shuffled)
    source = scan_rois(path, _lookup, rows=16)
    assert not source.grouped
    ids, lost = _lookup(frame["well_row"].to_numpy(), frame["well_column"].to_numpy(), frame["field"].to_numpy())
    kept = frame[~lost]
    assert source.count == int(kept.groupby("population")["table_row"].nunique().sum())
    assert source.shapes == len(kept)
    got = sorted(_flatten(list(source.plans())))
    expected = sorted(_flatten([(p, p.frame["_image"].to_numpy()[p.starts[:-1]])
                                for p in plan_rois(kept.reset_index(drop=True).assign(_image=ids[~lost]))]))
    assert got == expected


@pytest.mark.parametrize("fmt", ["incarta", "columbus"])
def test_several_shapes_per_object_are_written_grouped_so_the_upload_streams(fmt: str, tmp_path: Path) -> None:
    """IN Carta rows carry a box per population and Columbus objects a box or a point: the shapes of one row
    sit together in table-row order (assemble.selected_rois), so scan_rois finds the file grouped and the
    uploader streams it instead of planning it in memory."""
    from hcs_import.parsers.base import ParseOptions, SynthSpec
    from hcs_import.parsers.registry import get
    from hcs_import.pipeline import parse_plate
    from hcs_import.writers.bundle import write_bundle

    plate = get(fmt).synthesize(tmp_path / "plate", SynthSpec(wells=24, objects=40))  # type: ignore[misc]
    bundle = write_bundle(parse_plate(plate, ParseOptions(), fmt), tmp_path / "out")

    def lookup(r: np.ndarray, c: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (r * 100 + c) * 100 + f + 1, np.zeros(len(r), dtype=bool)

    source = scan_rois(bundle / "rois.parquet", lookup, rows=500)
    assert source.grouped and source.count > 100
