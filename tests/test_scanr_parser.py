"""ScanR: ParameterData exports (names, keys, gates, MO links, geometry), descriptor, log, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hcs_import.errors import InputError
from hcs_import.parsers import registry, scanr
from hcs_import.parsers.base import ParseOptions, SynthSpec
from hcs_import.parsers.scanr_layout import parse_descriptor
from hcs_import.synth.incell import write_incell_plate
from hcs_import.synth.scanr import write_parameter_data, write_scanr_plate

SMALL = SynthSpec(wells=96, fields=2, objects=4, seed=7, measurements=12)


def _write(folder: Path, name: str, text: str, newline: str = "\r\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text.replace("\n", newline).encode("iso-8859-1"))
    return path


HAND = (
    "Object ID\tWell \tPosition \tArea \tCenter X \tCenter Y \tMean Intensity GFP\tCells\tR01\n"
    "0\t1\t1\t100.5\t10\t20\t5.5\t1\t0\n"
    "1\t1\t2\t90\t11\t21\t6.5\t0\t0\n"
    "2\t14\t1\t80\t12\t22\t7.5\t1\t1\n"
)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("big") / "run"
    folder.mkdir()
    frame = write_parameter_data(folder / "ParameterData_Main.txt", 100_000, wells=96, fields=4, seed=11)
    return folder, frame


def test_100000_rows_every_row_and_column_kept(big: tuple[Path, pd.DataFrame]) -> None:
    folder, written = big
    raw = (folder / "ParameterData_Main.txt").read_bytes()
    assert raw.count(b"\r\n") == 100_001  # header + 100,000 CRLF rows
    analysis = scanr.parse(folder, ParseOptions())
    main = analysis.table("Main")
    assert main.rows == 100_000
    assert main.measurement_names == [c.strip() for c in written.columns]
    for vendor in written.columns:
        got = main.data[vendor.strip()].to_numpy()
        expected = written[vendor].to_numpy(dtype=np.float64)
        assert np.array_equal(got.astype(np.float64), expected, equal_nan=True), vendor
        assert main.info(vendor.strip()).source_name == vendor
    assert np.array_equal(main.data["object"], written["Object ID"])
    assert np.array_equal(main.data["field"], written["Position "] - 1)
    assert (analysis.rois["shape"] == "point").sum() == 100_000
    wells = analysis.well_table
    assert wells is not None and wells.rows == written["Well "].nunique()
    assert wells.data["Main count"].sum() == 100_000


def test_trailing_spaces_are_trimmed_and_vendor_names_kept(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    _write(folder, "ParameterData_Main.txt", HAND)
    main = scanr.parse(folder, ParseOptions()).table("Main")
    assert "Area" in main.data.columns and "Area " not in main.data.columns
    assert main.info("Area").source_name == "Area "
    assert "ends in a space" in main.info("Area").description()
    assert main.info("Mean Intensity GFP").source_name == "Mean Intensity GFP"
    assert main.info("Mean Intensity GFP").note is None


def test_keys_from_well_position_object(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    _write(folder, "ParameterData_Main.txt", HAND)
    d = scanr.parse(folder, ParseOptions()).table("Main").data
    assert d["well"].tolist() == ["A01", "A01", "B02"]  # well 14 on a 12-column plate is B02
    assert d["well_row"].tolist() == [0, 0, 1] and d["well_column"].tolist() == [0, 0, 1]
    assert d["field"].tolist() == [0, 1, 0]
    assert d["object"].tolist() == [0, 1, 2]
    assert d["Well"].tolist() == [1, 1, 14] and d["Position"].tolist() == [1, 2, 1]  # kept as columns too


def test_gates_become_bool_and_measurements_do_not(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    _write(folder, "ParameterData_Main.txt", HAND)
    main = scanr.parse(folder, ParseOptions()).table("Main")
    assert main.data["Cells"].dtype == bool and main.data["Cells"].tolist() == [True, False, True]
    assert main.data["R01"].dtype == bool and main.data["R01"].tolist() == [False, False, True]
    assert "gate" in (main.info("Cells").note or "")
    for measurement in ("Well", "Position", "Object ID", "Area"):
        assert main.data[measurement].dtype != bool


def test_sub_population_keeps_its_mo_link(tmp_path: Path) -> None:
    folder = write_scanr_plate(tmp_path / "plate", SMALL)
    analysis = scanr.parse(folder, ParseOptions())
    main, spots = analysis.table("Main"), analysis.table("Spots")
    link = spots.data["Parent Object ID (MO)"]
    assert pd.api.types.is_integer_dtype(link)
    assert set(link) <= set(main.data["Object ID"])
    assert spots.metadata["parent_population"] == "Main"
    assert "'Main'" in (spots.info("Parent Object ID (MO)").note or "")
    assert spots.data["MO.Cells"].dtype == bool
    # each spot carries its parent's gate
    parent_gate = main.data.set_index("Object ID")["Cells"]
    assert (spots.data["MO.Cells"].to_numpy() == parent_gate.loc[link].to_numpy()).all()
    assert not analysis.warnings


def test_unknown_parents_are_counted(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    _write(folder, "ParameterData_Main.txt", HAND)
    _write(folder, "ParameterData_Spots.txt",
           "Object ID\tWell \tParent Object ID (MO)\tArea \n0\t1\t0\t3\n1\t1\t2\t4\n2\t1\t99\t5\n")
    analysis = scanr.parse(folder, ParseOptions())
    assert any("not found among the Object IDs of 'Main'" in w and "1 occurrence" in w for w in analysis.warnings)


def test_geometry_is_inferred_from_the_largest_well_and_noted(tmp_path: Path) -> None:
    for max_well, geometry in ((96, (8, 12)), (97, (16, 24)), (384, (16, 24)), (385, (32, 48))):
        folder = tmp_path / f"w{max_well}"
        _write(folder, "ParameterData_Main.txt", f"Object ID\tWell \n0\t1\n1\t{max_well}\n")
        analysis = scanr.parse(folder, ParseOptions())
        assert (analysis.plate.rows, analysis.plate.columns) == geometry
        note = [w for w in analysis.warnings if "inferred" in w]
        assert len(note) == 1 and f"{geometry[0]}x{geometry[1]}" in note[0] and f"({max_well})" in note[0]


def test_plate_geometry_option_overrides_inference(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    _write(folder, "ParameterData_Main.txt", HAND)
    analysis = scanr.parse(folder, ParseOptions(plate_geometry=(16, 24)))
    assert (analysis.plate.rows, analysis.plate.columns) == (16, 24)
    assert not any("inferred" in w for w in analysis.warnings)
    assert analysis.table("Main").data["well"].tolist() == ["A01", "A01", "A14"]


def test_plate_geometry_too_small_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    _write(folder, "ParameterData_Main.txt", HAND)
    with pytest.raises(InputError, match="outside the 2x4 plate"):
        scanr.parse(folder, ParseOptions(plate_geometry=(2, 4)))


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_crlf_and_lf_read_alike(tmp_path: Path, newline: str) -> None:
    folder = tmp_path / "p"
    path = _write(folder, "ParameterData_Main.txt", HAND, newline)
    assert (b"\r\n" in path.read_bytes()) == (newline == "\r\n")
    main = scanr.parse(folder, ParseOptions()).table("Main")
    assert main.measurement_names[-1] == "R01"  # no stray carriage return in the last name
    assert main.data["R01"].tolist() == [False, False, True]


def test_csv_and_txt_exports_give_the_same_tables(tmp_path: Path) -> None:
    txt = scanr.parse(write_scanr_plate(tmp_path / "t", SMALL), ParseOptions())
    csv = scanr.parse(write_scanr_plate(tmp_path / "c", SMALL, csv=True), ParseOptions())
    assert (tmp_path / "c" / "ParameterData_Main.csv").read_bytes().count(b",") > 100
    for name in ("Main", "Spots"):
        pd.testing.assert_frame_equal(txt.table(name).data, csv.table(name).data)
    assert len(txt.rois) == len(csv.rois) > 0


def test_descriptor_layout_undeclared_latin1(tmp_path: Path) -> None:
    folder = write_scanr_plate(tmp_path / "myplate", SMALL)
    raw = (folder / "experiment_descriptor.xml").read_bytes()
    assert b"encoding" not in raw[:100] and b"\xb5m" in raw  # µ as one latin-1 byte, nothing declared
    d = parse_descriptor(folder / "experiment_descriptor.xml")
    assert (d.rows, d.columns) == (8, 12)
    assert d.channels == ("DAPI", "GFP")  # Autofocus and the idle Cy5 are not channels
    assert d.pixel_size_um == 0.645 and d.fields_per_well == 2 and d.plate_name == "myplate"
    assert d.wells == tuple(range(1, 97)) and d.well_labels[14] == "B2"
    analysis = scanr.parse(folder, ParseOptions())
    assert analysis.plate.channels == ("DAPI", "GFP") and analysis.plate.pixel_size_um == (0.645, 0.645)
    assert not any("inferred" in w for w in analysis.warnings)


def test_latin1_column_name(tmp_path: Path) -> None:
    main = scanr.parse(write_scanr_plate(tmp_path / "p", SMALL), ParseOptions()).table("Main")
    assert "Equivalent Diameter µm" in main.data.columns


def test_acquisition_log_becomes_an_image_positions_table(tmp_path: Path) -> None:
    analysis = scanr.parse(write_scanr_plate(tmp_path / "p", SMALL), ParseOptions())
    positions = analysis.table("Image positions")
    assert positions.kind == "fields" and positions.rows == 96 * 2
    assert positions.measurement_names == ["W", "P", "T", "Z", "IMAGEX", "IMAGEY"]
    assert positions.data["field"].max() == 1 and positions.data["well"].iloc[-1] == "H12"


def test_one_computed_summary_row_per_well(tmp_path: Path) -> None:
    analysis = scanr.parse(write_scanr_plate(tmp_path / "p", SMALL), ParseOptions())
    wells = analysis.well_table
    assert wells is not None and wells.kind == "wells"
    assert wells.rows == 96 and not wells.data["well"].duplicated().any()
    assert wells.data["Main count"].sum() == analysis.table("Main").rows
    assert "Main Area mean" in wells.data.columns and "Spots Area median" in wells.data.columns


def test_time_column_gives_t(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    _write(folder, "ParameterData_Main.txt", "Object ID\tWell \tTime\n0\t1\t1\n1\t1\t3\n")
    d = scanr.parse(folder, ParseOptions()).table("Main").data
    assert d["t"].tolist() == [0, 2] and d["Time"].tolist() == [1, 3]


def test_images_listed_from_data_folder(tmp_path: Path) -> None:
    folder = write_scanr_plate(tmp_path / "p", SMALL)
    (folder / "data").mkdir()
    for name in ("p--W00014--P00002--Z00000--T00000--GFP.tif", "p--W00001--P00001--Z00000--T00000--DAPI.tif"):
        (folder / "data" / name).write_bytes(b"")
    images = scanr.parse(folder, ParseOptions()).plate.images
    assert images is not None
    assert images.to_dict("records") == [
        {"well_row": 0, "well_column": 0, "field": 0, "z": 0, "t": 0, "c": 0,
         "path": "data/p--W00001--P00001--Z00000--T00000--DAPI.tif"},
        {"well_row": 1, "well_column": 1, "field": 1, "z": 0, "t": 0, "c": 1,
         "path": "data/p--W00014--P00002--Z00000--T00000--GFP.tif"},
    ]


def test_detection_is_specific(tmp_path: Path) -> None:
    sc = write_scanr_plate(tmp_path / "sc", SMALL)
    ic = write_incell_plate(tmp_path / "ic", SynthSpec(wells=96, fields=1, objects=2))
    assert scanr.PARSER.matches(sc) and not scanr.PARSER.matches(ic)
    assert registry.locate(sc).format == "scanr"
    only_descriptor = tmp_path / "d"
    only_descriptor.mkdir()
    (only_descriptor / "experiment_descriptor.xml").write_bytes((sc / "experiment_descriptor.xml").read_bytes())
    assert scanr.PARSER.matches(only_descriptor)
    with pytest.raises(InputError, match="no ScanR analysis export"):
        scanr.parse(only_descriptor, ParseOptions())


# --- bad input: one InputError naming the file and the place ---------------------------------------------


def test_truncated_file(tmp_path: Path) -> None:
    folder = write_scanr_plate(tmp_path / "p", SMALL, descriptor=False, acquisition_log=False)
    path = folder / "ParameterData_Main.txt"
    data = path.read_bytes()
    cut = data.rindex(b"\t", 0, len(data) - 200)
    path.write_bytes(data[:cut])
    lines = data[:cut].count(b"\n") + 1
    with pytest.raises(InputError) as err:
        scanr.parse(folder, ParseOptions())
    text = str(err.value)
    assert "ParameterData_Main.txt" in text and f"line {lines}" in text and "truncated" in text
    assert "\n" not in text


def test_missing_required_column(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    _write(folder, "ParameterData_Main.txt", "Well \tArea \n1\t2\n")
    with pytest.raises(InputError, match=r"ParameterData_Main.txt: line 1 \(header\): no 'Object ID' column"):
        scanr.parse(folder, ParseOptions())
    _write(folder, "ParameterData_Main.txt", "Object ID\tArea \n1\t2\n")
    with pytest.raises(InputError, match="no 'Well' or 'Parent Object ID \\(Well\\)' column"):
        scanr.parse(folder, ParseOptions())


def test_well_from_parent_object_id_well(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    _write(folder, "ParameterData_Main.txt", "Object ID\tParent Object ID (Well)\n0\t0\n1\t13\n")
    assert scanr.parse(folder, ParseOptions()).table("Main").data["well"].tolist() == ["A01", "B02"]


def test_non_numeric_value(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    _write(folder, "ParameterData_Main.txt", HAND.replace("90\t11", "9O\t11"))
    with pytest.raises(InputError) as err:
        scanr.parse(folder, ParseOptions())
    assert str(err.value).startswith(f"{folder / 'ParameterData_Main.txt'}: line 3, column 'Area '")
    assert "'9O' is not a number" in str(err.value)
    analysis = scanr.parse(folder, ParseOptions(bad_values="nan"))
    assert np.isnan(analysis.table("Main").data["Area"].iloc[1])
    assert any("stored as NaN: 1 occurrence" in w and "line 3" in w for w in analysis.warnings)


def test_special_numbers_are_not_bad_values(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    _write(folder, "ParameterData_Main.txt",
           "Object ID\tWell \tArea \n0\t1\t1.#INF\n1\t1\tNaN\n2\t1\t-1.#IND\n3\t1\t7\n")
    area = scanr.parse(folder, ParseOptions()).table("Main").data["Area"].tolist()
    assert np.isinf(area[0]) and np.isnan(area[1]) and np.isnan(area[2]) and area[3] == 7


def test_bad_well_number(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    _write(folder, "ParameterData_Main.txt", "Object ID\tWell \n0\t1\n1\t0\n")
    with pytest.raises(InputError, match=r"line 3, column 'Well ': value .* expected a 1-based well number"):
        scanr.parse(folder, ParseOptions(bad_values="nan"))


def test_empty_file_and_empty_folder(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    _write(folder, "ParameterData_Main.txt", "")
    with pytest.raises(InputError, match=r"ParameterData_Main\.txt: file is empty"):
        scanr.parse(folder, ParseOptions())
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not scanr.PARSER.matches(empty)
    with pytest.raises(InputError, match="no ScanR analysis export"):
        scanr.parse(empty, ParseOptions())


def test_header_only_file_is_an_empty_population(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    _write(folder, "ParameterData_Main.txt", HAND)
    _write(folder, "ParameterData_Spots.txt", "Object ID\tWell \tParent Object ID (MO)\n")
    analysis = scanr.parse(folder, ParseOptions())
    assert analysis.table("Spots").rows == 0 and analysis.table("Main").rows == 3


def test_malformed_descriptor(tmp_path: Path) -> None:
    folder = write_scanr_plate(tmp_path / "p", SMALL)
    path = folder / "experiment_descriptor.xml"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(InputError, match=r"experiment_descriptor.xml: line \d+: malformed XML"):
        scanr.parse(folder, ParseOptions())


def test_well_and_parent_well_disagreeing_is_counted(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    _write(folder, "ParameterData_Main.txt", "Object ID\tWell \tParent Object ID (Well)\n0\t1\t0\n1\t2\t5\n")
    analysis = scanr.parse(folder, ParseOptions())
    assert analysis.table("Main").data["well"].tolist() == ["A01", "A02"]
    assert any("is not 'Well ' - 1" in w and "1 occurrence" in w for w in analysis.warnings)
