"""Streamed tables (FrameStream): the same results as in-memory frames, through bounded batches.

The memory figures themselves are measured by benchmarks/bench_incell.py; these tests pin what makes
them possible: every consumer reads batches, batches come out exactly sized, a well split across
batches is still summarised whole, and InCell's spill folder never outlives its tables.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bundle_check import assert_bundle_matches
from hcs_import.assemble import concat_rois, finish, point_rois
from hcs_import.errors import InputError, OutputError
from hcs_import.issues_log import WarningLog
from hcs_import.model import FrameStream, MeasurementTable, Plate, iter_batches, object_keys_frame
from hcs_import.parsers.base import ParseOptions, SynthSpec
from hcs_import.parsers.incell import parse
from hcs_import.spill import PREFIX, SpillDir
from hcs_import.summary import summarise_objects
from hcs_import.synth.incell import write_incell_plate
from hcs_import.writers import omero_tables
from hcs_import.writers.bundle import write_bundle


def stream_of(frame: pd.DataFrame, sizes: Sequence[int]) -> FrameStream:
    """`frame` as a stream whose batches have the given lengths (cycled), counting how often it is read."""

    def read(columns: Sequence[str] | None) -> Iterator[pd.DataFrame]:
        stream_of.reads += 1  # type: ignore[attr-defined]
        start, i = 0, 0
        while start < len(frame):
            stop = start + sizes[i % len(sizes)]
            part = frame.iloc[start:stop].reset_index(drop=True)
            yield part if columns is None else part[list(columns)]
            start, i = stop, i + 1

    return FrameStream(frame.iloc[:0].copy(), len(frame), read)


stream_of.reads = 0  # type: ignore[attr-defined]


def objects_frame(n: int, seed: int = 0, interleaved: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    wells = np.sort(rng.integers(0, 24, n)) if not interleaved else rng.integers(0, 24, n)
    keys = object_keys_frame(wells // 6, wells % 6, rng.integers(0, 3, n), np.arange(n), 6)
    values = pd.DataFrame({"Area": rng.normal(100, 10, n), "Intensity": rng.exponential(5, n),
                           "x": rng.uniform(0, 500, n), "y": rng.uniform(0, 500, n)})
    values.loc[::17, "Intensity"] = np.nan
    values.loc[::29, "x"] = np.nan
    return pd.concat([keys, values], axis=1)


@pytest.mark.parametrize("size", [1, 7, 100, 1000])
def test_rebatching_gives_exact_sizes_and_every_row_once(size: int) -> None:
    frame = objects_frame(523)
    batches = list(iter_batches(stream_of(frame, [3, 50, 1, 211]), ["object", "Area"], size))
    assert all(len(b) == size for b in batches[:-1]) and 0 < len(batches[-1]) <= size
    joined = pd.concat(batches, ignore_index=True)
    pd.testing.assert_frame_equal(joined, frame[["object", "Area"]])


@pytest.mark.parametrize("interleaved", [False, True])
def test_summary_of_a_stream_equals_the_summary_in_memory(interleaved: bool) -> None:
    """Wells split across batches (and, interleaved, spread over all of them) are summarised whole."""
    frame = objects_frame(2000, seed=4, interleaved=interleaved)
    in_memory = summarise_objects([MeasurementTable("Cells", "objects", frame)], 6)
    streamed = summarise_objects([MeasurementTable("Cells", "objects", stream_of(frame, [37, 150, 5]))], 6)
    assert in_memory is not None and streamed is not None
    assert in_memory.rows == 24
    pd.testing.assert_frame_equal(streamed.data, in_memory.data)


def test_point_rois_of_a_stream_number_rows_across_batches() -> None:
    frame = objects_frame(700, seed=2)
    table = MeasurementTable("Cells", "objects", stream_of(frame, [64, 3]))
    warnings = WarningLog()
    rois = point_rois(table, "x", "y", warnings)
    assert isinstance(rois, FrameStream)
    expected = point_rois(MeasurementTable("Cells", "objects", frame), "x", "y", WarningLog())
    assert len(rois) == len(expected) == int(frame["x"].notna().sum())
    pd.testing.assert_frame_equal(rois.frame(), expected)
    assert "objects without x/y" in warnings.lines()[0]
    both = concat_rois([expected, rois])
    assert len(both) == 2 * len(expected) and len(both.frame()) == 2 * len(expected)


def test_a_streamed_plate_writes_the_same_bundle_in_any_batch_sizes(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(omero_tables, "ROWS_PER_APPEND", 256)  # many HDF5 blocks from few rows
    frame = objects_frame(3001, seed=9)
    table = MeasurementTable("Cells", "objects", stream_of(frame, [1000, 1, 333]))
    plate = Plate("streamed", 4, 6)
    warnings = WarningLog()
    rois = point_rois(table, "x", "y", warnings)
    source = tmp_path / "results.csv"
    source.write_text("stand-in source\n")
    analysis = finish(fmt="test", version="0", root=tmp_path, plate=plate, tables=[table], rois=rois,
                      sources=[source], warnings=warnings)
    bundle = write_bundle(analysis, tmp_path / "out")
    manifest = assert_bundle_matches(bundle, analysis)
    assert manifest["tables"][0]["rows"] == 3001
    assert manifest["rois"]["count"] == len(rois) and manifest["rois"]["by_population"] == {"Cells": len(rois)}


def test_a_stream_shorter_than_announced_is_an_error_not_a_short_table(tmp_path: Path) -> None:
    frame = objects_frame(50)
    short = FrameStream(frame.iloc[:0], 60, stream_of(frame, [50]).read)
    analysis = finish(fmt="test", version="0", root=tmp_path, plate=Plate("short", 4, 6),
                      tables=[MeasurementTable("Cells", "objects", short)], rois=concat_rois([]), sources=[],
                      warnings=WarningLog())
    with pytest.raises(ValueError, match="50 rows read back, 60 expected"):
        write_bundle(analysis, tmp_path / "out")
    assert not list((tmp_path / "out").iterdir())  # nothing half-written left behind


def _spill_folders(root: Path) -> list[Path]:
    return sorted(root.glob("hcs-import-spill-*"))


@pytest.fixture
def spill_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private temporary folder for the test's spill (tempfile caches the system's one)."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def small_incell_plate(tmp_path: Path) -> Path:
    return write_incell_plate(tmp_path / "p", SynthSpec(wells=24, fields=2, objects=5, seed=1))


def test_incell_tables_are_streams_and_their_spill_goes_with_them(spill_root: Path, small_incell_plate: Path) -> None:
    plate = small_incell_plate
    analysis = parse(plate, ParseOptions())
    cells = analysis.table("Cells")
    assert cells.streamed and isinstance(analysis.rois, FrameStream)
    assert len(_spill_folders(spill_root)) == 1
    frame = cells.frame()
    assert len(frame) == cells.rows > 0 and frame["well"].str.match(r"^[A-D]\d\d$").all()
    del analysis, cells
    assert _spill_folders(spill_root) == []


def test_a_failed_incell_parse_leaves_no_spill(spill_root: Path, small_incell_plate: Path) -> None:
    plate = small_incell_plate
    xml = next(plate.glob("*_analysis.xml"))
    text = xml.read_text()
    xml.write_text(re.sub(r'(<Measure [^>]*value=")', r"\1x", text, count=1))
    with pytest.raises(InputError, match="is not a number"):
        parse(plate, ParseOptions())
    assert _spill_folders(spill_root) == []


def test_a_killed_runs_spill_is_removed_by_the_next_run(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    orphan = tmp_path / f"{PREFIX}{gone.pid}-plate-abc"
    orphan.mkdir()
    (orphan / "000001-0-values.npy").write_bytes(b"x" * 100)
    live = tmp_path / f"{PREFIX}{os.getpid()}-other-run"
    live.mkdir()
    spill = SpillDir("next-", tmp_path)
    assert not orphan.exists() and live.exists() and spill.path.exists()
    spill.remove()
    assert spill.removed and not spill.path.exists()


def test_a_full_spill_disk_is_one_clear_error_and_leaves_nothing(spill_root: Path, small_incell_plate: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    plate = small_incell_plate

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "save", full)
    with pytest.raises(OutputError) as err:
        parse(plate, ParseOptions(workers=1))
    message = str(err.value)
    assert "No space left on device" in message and "TMPDIR" in message and "\n" not in message
    assert _spill_folders(spill_root) == []
