"""Well naming and geometry helpers."""

from __future__ import annotations

import numpy as np
import pytest

from hcs_import.wells import (
    infer_geometry,
    infer_geometry_from_well_number,
    parse_geometry,
    parse_well_label,
    row_letters,
    well_label,
    well_labels,
    well_number_to_row_col,
)


def test_labels() -> None:
    assert well_label(1, 2, 12) == "B03"
    assert well_label(31, 47, 48) == "AF48"
    assert row_letters(28)[-3:] == ("Z", "AA", "AB")
    assert list(well_labels(np.array([0, 15]), np.array([0, 23]), 24)) == ["A01", "P24"]
    assert parse_well_label("B - 3") == (1, 2)
    assert parse_well_label("AF48") == (31, 47)
    with pytest.raises(ValueError):
        parse_well_label("3B")


def test_geometry() -> None:
    assert parse_geometry("16x24") == (16, 24)
    with pytest.raises(ValueError):
        parse_geometry("16 by 24")
    assert infer_geometry(7, 11) == (8, 12)
    assert infer_geometry(8, 0) == (16, 24)
    assert infer_geometry(20, 30) == (32, 48)
    assert infer_geometry_from_well_number(96) == (8, 12)
    assert infer_geometry_from_well_number(97) == (16, 24)
    assert infer_geometry_from_well_number(385) == (32, 48)
    rows, cols = well_number_to_row_col(np.array([1, 12, 13, 96]), 12)
    assert rows.tolist() == [0, 0, 1, 7] and cols.tolist() == [0, 11, 0, 11]


def test_row_labels_past_zz_and_back() -> None:
    from hcs_import.wells import row_index, row_letters

    labels = row_letters(1000)
    assert (labels[25], labels[26], labels[701], labels[702]) == ("Z", "AA", "ZZ", "AAA")
    assert [row_index(x) for x in labels] == list(range(1000))


def test_an_absurd_inferred_geometry_is_refused() -> None:
    import pytest

    from hcs_import.errors import GeometryError
    from hcs_import.wells import infer_geometry

    assert infer_geometry(40, 60) == (41, 61)
    with pytest.raises(GeometryError, match="no plate has more than 1000 rows or columns"):
        infer_geometry(10**20, 3)
