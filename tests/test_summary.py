"""The computed per-well summary: counts, means and medians per well; identifiers are not averaged."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hcs_import.model import ColumnInfo, MeasurementTable, object_keys_frame
from hcs_import.summary import summarise_objects


def test_counts_means_medians_and_identifiers_left_out() -> None:
    keys = object_keys_frame(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 2]), np.zeros(4), np.arange(4), 12)
    data = pd.concat([keys, pd.DataFrame({"Area": [1.0, 2.0, 9.0, 4.0], "Parent ID": [7, 7, 8, 9],
                                          "Gate": [True, False, True, True]})], axis=1)
    infos = {"Area": ColumnInfo("Area ", "um2"), "Parent ID": ColumnInfo("Parent ID", identifier=True)}
    cells = MeasurementTable("Cells", "objects", data, infos)
    wells = summarise_objects([cells], 12)
    assert wells is not None and wells.kind == "wells"
    assert list(wells.data.columns) == ["well_row", "well_column", "well", "Cells count", "Cells Area mean",
                                        "Cells Area median"]
    assert wells.data["well"].tolist() == ["A01", "B03"]
    assert wells.data["Cells count"].tolist() == [3, 1]
    assert wells.data["Cells Area mean"].tolist() == [4.0, 4.0]
    assert wells.data["Cells Area median"].tolist() == [2.0, 4.0]
    assert wells.info("Cells Area mean").unit == "um2"


def test_per_field_tables_are_summarised_when_there_are_no_objects() -> None:
    keys = object_keys_frame(np.array([0, 0, 1]), np.array([0, 0, 0]), np.array([0, 1, 0]), np.zeros(3), 12)
    data = pd.concat([keys.iloc[:, :4], pd.DataFrame({"Intensity": [2.0, 4.0, 5.0]})], axis=1)
    wells = summarise_objects([MeasurementTable("Fields", "fields", data)], 12)
    assert wells is not None
    assert wells.data[["well", "Fields count", "Fields Intensity mean"]].to_dict("records") == [
        {"well": "A01", "Fields count": 2, "Fields Intensity mean": 3.0},
        {"well": "B01", "Fields count": 1, "Fields Intensity mean": 5.0},
    ]
    assert wells.info("Fields count").note == "fields per well"


def _interleaved(n: int, wells: int, batch: int) -> tuple[MeasurementTable, MeasurementTable]:
    """The same object table whole and as a stream of `batch`-row batches, its wells interleaved row by row
    (as real IN Carta exports are: object 1 of every field, then object 2, ...)."""
    from hcs_import.model import FrameStream

    rng = np.random.default_rng(3)
    w = np.arange(n) % wells
    keys = object_keys_frame(w // 12, w % 12, np.zeros(n), np.arange(n) // wells, 12)
    data = pd.concat([keys, pd.DataFrame({"Area": rng.normal(50, 9, n), "Count": rng.integers(0, 9, n)})], axis=1)

    def read(columns):  # type: ignore[no-untyped-def]
        for start in range(0, n, batch):
            part = data.iloc[start : start + batch].reset_index(drop=True)
            yield part if columns is None else part[list(columns)]

    stream = FrameStream(data.iloc[:0], n, read)
    return MeasurementTable("Cells", "objects", data), MeasurementTable("Cells", "objects", stream)


def test_interleaved_wells_of_a_stream_are_partitioned_on_disk_with_the_same_result(monkeypatch) -> None:
    import hcs_import.summary as summary

    whole, streamed = _interleaved(5000, 30, 128)
    monkeypatch.setattr(summary, "PARTITION_ROWS", 400)
    used = []
    real = summary._by_partition
    monkeypatch.setattr(summary, "_by_partition", lambda *a: used.append(1) or real(*a))
    expected = summarise_objects([whole], 12)
    got = summarise_objects([streamed], 12)
    assert used == [1]  # the stream took the partitioned path, the frame did not
    assert expected is not None and got is not None
    pd.testing.assert_frame_equal(expected.data, got.data)
    assert got.data["Cells count"].sum() == 5000 and len(got.data) == 30


def test_partitions_hold_whole_wells_of_about_the_partition_size(monkeypatch) -> None:
    import hcs_import.summary as summary

    _, streamed = _interleaved(6000, 30, 100)
    monkeypatch.setattr(summary, "PARTITION_ROWS", 1000)
    count = {int(r) * (1 << 20) + int(c): 200 for r, c in zip(np.arange(30) // 12, np.arange(30) % 12)}
    parts = list(summary._by_partition(streamed, ["well_row", "well_column", "Area"], count))
    assert [len(p) for p in parts] == [1000] * 6
    seen = [set(zip(p["well_row"], p["well_column"])) for p in parts]
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1:])  # no well split between parts
