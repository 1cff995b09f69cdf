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
