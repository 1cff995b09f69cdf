"""InCell Investigator XML parsing: sparse keys, summaries, ROIs, special numbers, chunked parallel parse."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hcs_import.errors import InputError
from hcs_import.parsers import incell_results
from hcs_import.parsers.base import ParseOptions, SynthSpec
from hcs_import.parsers.incell import parse
from hcs_import.synth.incell import write_incell_plate

HAND_WRITTEN = """<?xml version="1.0" encoding="utf-8"?>
<InCellAnalysisResults>
  <Results>
    <WellData row="2" col="3" field="1" cell="1">
      <Measure source="Cells" key="Cell: cgX" value="10.5"/>
      <Measure source="Cells" key="Cell: cgY" value="20.25"/>
      <Measure source="Cells" key="Cell: Area" value="100" unit="um2"/>
      <Measure source="Nuclei" key="Nucleus: cgX" value="11"/>
      <Measure source="Nuclei" key="Nucleus: cgY" value="21"/>
    </WellData>
    <WellData row="2" col="3" field="2" cell="7">
      <Measure source="Cells" key="Cell: cgX" value="1.#INF"/>
      <Measure source="Cells" key="Cell: Form" value="0.5"/>
    </WellData>
    <WellData row="2" col="3" field="2" cell="8">
      <Measure source="Cells" key="Cell: cgX" value="5"/>
      <Measure source="Cells" key="Cell: cgY" value="NaN"/>
      <Measure source="Cells" key="Cell: Area" value="-1.#IND"/>
    </WellData>
    <WellData row="2" col="3" field="1" cell="Summary">
      <Measure source="Cells" key="Cell Count" value="3"/>
    </WellData>
  </Results>
</InCellAnalysisResults>
"""


def write(tmp_path: Path, text: str, name: str = "results.xml") -> Path:
    folder = tmp_path / "plate"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_sparse_keys_align_by_object_and_specials_parse(tmp_path: Path) -> None:
    analysis = parse(write(tmp_path, HAND_WRITTEN), ParseOptions(plate_geometry=(8, 12)))
    cells = analysis.table("Cells").frame()
    assert list(cells["object"]) == [1, 7, 8]
    assert list(cells["well"]) == ["B03"] * 3
    assert list(cells["well_row"]) == [1, 1, 1] and list(cells["well_column"]) == [2, 2, 2]
    assert list(cells["field"]) == [0, 1, 1]
    assert cells["Cell: cgX"].tolist()[0] == 10.5 and math.isinf(cells["Cell: cgX"].tolist()[1])
    assert np.isnan(cells["Cell: cgY"].tolist()[1]) and np.isnan(cells["Cell: cgY"].tolist()[2])
    assert cells["Cell: Area"].tolist()[0] == 100 and np.isnan(cells["Cell: Area"].tolist()[1:]).all()
    assert np.isnan(cells["Cell: Form"].tolist()[0]) and cells["Cell: Form"].tolist()[1] == 0.5
    assert analysis.table("Cells").info("Cell: Area").unit == "um2"
    nuclei = analysis.table("Nuclei").frame()
    assert list(nuclei["object"]) == [1]


def test_summary_rows_become_the_well_table(tmp_path: Path) -> None:
    analysis = parse(write(tmp_path, HAND_WRITTEN), ParseOptions(plate_geometry=(8, 12)))
    wells = analysis.well_table
    assert wells is not None and wells.name == "Wells"
    assert wells.data.to_dict("records") == [
        {"well_row": 1, "well_column": 2, "well": "B03", "Cell Count": 3.0}
    ]


def test_point_rois_only_for_objects_with_both_centres(tmp_path: Path) -> None:
    analysis = parse(write(tmp_path, HAND_WRITTEN), ParseOptions(plate_geometry=(8, 12)))
    rois = analysis.roi_frame()
    cells = rois[rois["population"] == "Cells"]
    # object 7 has cgX = inf and no cgY, object 8 has cgY NaN: neither gets a point; both are counted.
    assert cells[["object", "x", "y", "table_row"]].to_dict("records") == [
        {"object": 1, "x": 10.5, "y": 20.25, "table_row": 0}
    ]
    assert set(rois["shape"]) == {"point"}
    assert rois[rois["population"] == "Nuclei"]["x"].tolist() == [11.0]
    assert any("objects without Cell: cgX/Cell: cgY" in w and "2 occurrences" in w for w in analysis.warnings)


def test_geometry_inferred_without_layout_is_a_warning(tmp_path: Path) -> None:
    analysis = parse(write(tmp_path, HAND_WRITTEN), ParseOptions())
    assert (analysis.plate.rows, analysis.plate.columns) == (8, 12)
    assert any("inferred" in w for w in analysis.warnings)


def test_synthetic_plate_matches_its_layout(incell_plate: Path) -> None:
    analysis = parse(incell_plate, ParseOptions())
    assert (analysis.plate.rows, analysis.plate.columns) == (8, 12)
    assert analysis.plate.fields_per_well == 2
    assert analysis.plate.channels == ("DAPI", "FITC")
    assert analysis.plate.images is not None and len(analysis.plate.images) == 96 * 2 * 2
    cells, nuclei = analysis.table("Cells"), analysis.table("Nuclei")
    assert cells.rows == nuclei.rows > 96 * 2 * 4
    assert len(cells.measurement_names) == 15
    wells = analysis.well_table
    assert wells is not None and wells.rows == 96
    # The Summary's "Cell Count" equals the number of objects the XML has for that well.
    counts = cells.frame().groupby("well").size()
    summary = wells.data.set_index("well")["Cell Count"]
    assert (summary.loc[counts.index].to_numpy() == counts.to_numpy()).all()
    assert [s.path for s in analysis.provenance.sources] == ["plateA.xdce", "plateA_analysis.xml"]


def test_parallel_chunks_equal_one_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plate = write_incell_plate(tmp_path / "big", SynthSpec(wells=96, fields=2, objects=8, seed=9))
    serial = parse(plate, ParseOptions(workers=1))
    monkeypatch.setattr(incell_results, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(incell_results, "CHUNK_BYTES", 64 * 1024)
    chunked = parse(plate, ParseOptions(workers=2))
    for a, b in zip(serial.tables, chunked.tables, strict=True):
        pd.testing.assert_frame_equal(a.frame(), b.frame())
    pd.testing.assert_frame_equal(serial.roi_frame(), chunked.roi_frame())


def test_ranges_cover_every_welldata_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plate = write_incell_plate(tmp_path / "p", SynthSpec(wells=96, fields=1, objects=5, seed=1))
    xml = next(plate.glob("*_analysis.xml"))
    monkeypatch.setattr(incell_results, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(incell_results, "CHUNK_BYTES", 10_000)
    result = incell_results.parse_results(xml, workers=2)
    assert result.welldata == xml.read_text().count("<WellData ")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda t: t[: len(t) // 2], "line"),
        (lambda t: t.replace('<WellData row="2" col="3" field="2" cell="7">', '<WellData col="3" field="2" cell="7">'),
         "missing attribute 'row'"),
        (lambda t: t.replace('value="0.5"', 'value="zero point five"'), "'zero point five' is not a number"),
        (lambda t: t.replace('cell="8"', 'cell="eight"'), "neither an object number nor 'Summary'"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path: Path, mutate, expected: str) -> None:  # type: ignore[no-untyped-def]
    folder = write(tmp_path, mutate(HAND_WRITTEN))
    with pytest.raises(InputError) as err:
        parse(folder, ParseOptions(plate_geometry=(8, 12)))
    message = str(err.value)
    assert "results.xml" in message and expected in message
    assert "\n" not in message


def test_non_numeric_value_error_gives_the_real_line(tmp_path: Path) -> None:
    folder = write(tmp_path, HAND_WRITTEN.replace('value="0.5"', 'value="abc"'))
    with pytest.raises(InputError) as err:
        parse(folder, ParseOptions(plate_geometry=(8, 12)))
    line = next(i for i, t in enumerate(HAND_WRITTEN.splitlines(), 1) if 'value="0.5"' in t)
    assert f"line {line}," in str(err.value)


def test_bad_values_nan_counts_instead_of_failing(tmp_path: Path) -> None:
    folder = write(tmp_path, HAND_WRITTEN.replace('value="0.5"', 'value="abc"'))
    analysis = parse(folder, ParseOptions(plate_geometry=(8, 12), bad_values="nan"))
    assert np.isnan(analysis.table("Cells").frame()["Cell: Form"]).all()
    assert any("non-numeric values stored as NaN" in w for w in analysis.warnings)


def test_entities_are_refused_not_expanded(tmp_path: Path) -> None:
    text = HAND_WRITTEN.replace(
        '<?xml version="1.0" encoding="utf-8"?>',
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
    ).replace('value="0.5"', 'value="&e;"')
    with pytest.raises(InputError, match="declares XML entities"):
        parse(write(tmp_path, text), ParseOptions(plate_geometry=(8, 12)))


@pytest.mark.parametrize("value", ["1_000", "\u0661\u0662", "0x1A", "#DIV/0!"])
def test_numbers_no_instrument_writes_are_bad_values(incell_plate: Path, value: str) -> None:
    """Python's float() takes `1_000` and Arabic-Indic digits; an Investigator file never holds them."""
    xml = next(incell_plate.glob("*_analysis.xml"))
    text = xml.read_text(encoding="utf-8")
    first = text.index('value="', text.index("<WellData")) + len('value="')
    end = text.index('"', first)
    xml.write_text(text[:first] + value + text[end:], encoding="utf-8")
    with pytest.raises(InputError, match="is not a number"):
        parse(incell_plate, ParseOptions())
    analysis = parse(incell_plate, ParseOptions(bad_values="nan"))
    assert any("non-numeric values stored as NaN" in w for w in analysis.warnings)
