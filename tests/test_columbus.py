"""Columbus/Harmony text exports: tables per file, keys, text columns, units, ROIs, bad input, round trip."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bundle_check import assert_bundle_matches
from hcs_import.errors import InputError
from hcs_import.parsers import registry
from hcs_import.parsers.base import ParseOptions, SynthSpec
from hcs_import.parsers.columbus import parse
from hcs_import.synth.columbus import EVALUATION, PLATE_NAME, write_columbus_export

SPEC = SynthSpec(wells=96, fields=2, objects=4, seed=5, populations=2, measurements=4)


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    return write_columbus_export(tmp_path_factory.mktemp("columbus") / "plate", SPEC)


@pytest.fixture(scope="module")
def analysis(export: Path):
    return parse(export, ParseOptions())


@pytest.fixture
def copy(export: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(export, tmp_path / "plate"))


def objects_file(root: Path, population: str = "Nuclei") -> Path:
    return root / EVALUATION / f"Objects_Population - {population}.txt"


def read_export(path: Path) -> pd.DataFrame:
    lines = path.read_text(encoding="utf-8").splitlines()
    h = lines.index("[Data]") + 1
    return pd.DataFrame([t.split("\t") for t in lines[h + 1 :] if t], columns=lines[h].split("\t"))


def test_tables_keys_and_every_value(export: Path, analysis) -> None:  # type: ignore[no-untyped-def]
    assert {t.name: t.kind for t in analysis.tables} == {"Nuclei": "objects", "Cells": "objects", "Wells": "wells"}
    assert analysis.plate.name == PLATE_NAME and (analysis.plate.rows, analysis.plate.columns) == (8, 12)
    raw = read_export(objects_file(export))
    d = analysis.table("Nuclei").data
    assert len(d) == len(raw)
    assert np.array_equal(d["well_row"], raw["Row"].astype(int) - 1)
    assert np.array_equal(d["well_column"], raw["Column"].astype(int) - 1)
    assert np.array_equal(d["field"], raw["Field"].astype(int) - 1)
    assert np.array_equal(d["object"], raw["Object No"].astype(int))
    assert raw.columns[-1] == "" and (raw[""] == "").all()  # Harmony's trailing tab
    for col in raw.columns:
        if col == "":
            assert "" not in d.columns and "column 20" not in d.columns  # the empty unnamed column is dropped
            continue
        if col in ("Row", "Column", "Field", "Object No"):
            assert col not in d.columns  # consumed into the keys
            continue
        got = d[col]
        if col in ("Plate ID", "Measurement", "Evaluation", "Bounding Box", "Compound"):
            assert got.tolist() == raw[col].tolist(), col  # text columns stay text
        else:
            assert np.array_equal(got.to_numpy(float), raw[col].astype(float).to_numpy(), equal_nan=True), col
    nuclei = analysis.table("Nuclei")
    assert nuclei.info("Position X [µm]").unit == "µm" and nuclei.info("Nuclei - Area [µm²]").unit == "µm²"
    assert nuclei.metadata["general: Population"] == "Nuclei"
    assert nuclei.metadata["general: Evaluation"] == EVALUATION


def test_rectangle_rois_from_the_bounding_box(analysis) -> None:  # type: ignore[no-untyped-def]
    for name in ("Nuclei", "Cells"):
        table = analysis.table(name).data
        rois = analysis.rois[analysis.rois["population"] == name]
        assert len(rois) == len(table) and (rois["shape"] == "rectangle").all()
        boxes = table["Bounding Box"].str.strip("[]").str.split(",", expand=True).astype(float).to_numpy()
        rows = rois["table_row"].to_numpy()
        assert np.array_equal(rois["x"].to_numpy(), boxes[rows, 0])
        assert np.array_equal(rois["y"].to_numpy(), boxes[rows, 1])
        assert np.array_equal(rois["width"].to_numpy(), boxes[rows, 2] - boxes[rows, 0])
        assert np.array_equal(rois["height"].to_numpy(), boxes[rows, 3] - boxes[rows, 1])
        assert np.array_equal(rois["field"].to_numpy(), table["field"].to_numpy()[rows])


def test_point_rois_from_x_y_without_a_box(tmp_path: Path) -> None:
    (tmp_path / "Objects_Population - Nuclei.txt").write_text(
        "Row\tColumn\tField\tObject No\tX\tY\tBounding Box\tArea\t\n"
        "1\t1\t1\t1\t10.5\t20\t[1,2,30,40]\t5\t\n"
        "1\t1\t1\t2\t11\t21\t\t6\t\n"
        "1\t1\t1\t3\t12\t22\tbroken\t7\t\n")
    a = parse(tmp_path, ParseOptions())
    rois = a.roi_frame().sort_values("table_row")
    assert rois["shape"].tolist() == ["rectangle", "point", "point"]
    assert rois[["x", "y"]].to_numpy().tolist() == [[1, 2], [11, 21], [12, 22]]
    assert rois["width"].tolist()[0] == 29 and rois["height"].tolist()[0] == 38
    assert any("Bounding Box values that are not [x1,y1,x2,y2]; a Point (or no ROI) made: 1 occurrence" in w
               for w in a.warnings)
    assert "column 9" not in a.table("Nuclei").data.columns  # the trailing tab's empty column is dropped


def test_per_field_export_and_plain_columbus_without_general_block(tmp_path: Path) -> None:
    path = tmp_path / "FieldResults.txt"
    path.write_text("Row\tColumn\tField\tNuclei - Number of Objects\tCompound\n"
                    "2\t3\t1\t120\tDMSO\n2\t3\t2\t98\tDMSO\n")
    a = parse(tmp_path, ParseOptions())
    names = [t.name for t in a.tables]
    assert names == ["Fields", "Wells"]  # the per-well table is computed from the per-field one
    wells = a.table("Wells").data
    assert wells[["well", "Fields count", "Fields Nuclei - Number of Objects mean"]].values.tolist() == [
        ["B03", 2, 109.0]]
    f = a.table("Fields").data
    assert f[["well_row", "well_column", "field"]].values.tolist() == [[1, 2, 0], [1, 2, 1]]
    assert f["well"].tolist() == ["B03", "B03"]


def test_not_columbus_incarta_style_letters(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("Row,Column,WELL LABEL,Nuclei cg X wv1\nA,1,A - 1,3.5\n")
    (tmp_path / "b.txt").write_text("Row\tColumn\tValue\nB\t2\t1.0\n")
    assert not registry.get("columbus").matches(tmp_path)


# -- bad input -------------------------------------------------------------------------------------


def _one_line(err: pytest.ExceptionInfo[InputError], *needles: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg


def _damage(path: Path, row: int, column: str, value: str) -> int:
    lines = path.read_bytes().decode("utf-8").split("\r\n")
    h = lines.index("[Data]") + 1
    names = lines[h].split("\t")
    cells = lines[h + 1 + row].split("\t")
    cells[names.index(column)] = value
    lines[h + 1 + row] = "\t".join(cells)
    path.write_text("\r\n".join(lines), encoding="utf-8", newline="")
    return h + 2 + row  # 1-based file line


def test_bad_key_value(copy: Path) -> None:
    line = _damage(objects_file(copy), 5, "Row", "B")
    with pytest.raises(InputError) as err:
        parse(copy, ParseOptions())
    _one_line(err, "Objects_Population - Nuclei.txt", f"line {line}", "column 'Row'")
    a = parse(copy, ParseOptions(bad_values="nan"))
    assert any("rows without a valid Row dropped" in w and "1 occurrence" in w for w in a.warnings)
    assert len(a.table("Nuclei").data) == len(read_export(objects_file(copy))) - 1


def test_non_numeric_measurement(copy: Path) -> None:
    line = _damage(objects_file(copy, "Cells"), 2, "Cells - Roundness", "round-ish")
    with pytest.raises(InputError) as err:
        parse(copy, ParseOptions())
    _one_line(err, "Objects_Population - Cells.txt", f"line {line}", "'Cells - Roundness'", "'round-ish'")
    a = parse(copy, ParseOptions(bad_values="nan"))
    assert np.isnan(a.table("Cells").data["Cells - Roundness"].iloc[2])


def test_truncated_export(copy: Path) -> None:
    path = objects_file(copy)
    data = path.read_bytes()
    cut = data.rindex(b"\t", 0, len(data) - 2)
    path.write_bytes(data[:cut])
    with pytest.raises(InputError) as err:
        parse(copy, ParseOptions())
    last_line = data[:cut].count(b"\n") + 1
    _one_line(err, path.name, f"line {last_line}", "tab-separated fields")
    a = parse(copy, ParseOptions(bad_values="nan"))
    assert any("fewer fields than the header" in w for w in a.warnings)


# -- end to end ------------------------------------------------------------------------------------


def test_cli_plate_bundle_read_back_by_hdfstorage(cli, export: Path, analysis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    result = cli("plate", export, "--out", out)
    assert result.exit_code == 0, result.output
    manifest = assert_bundle_matches(out / PLATE_NAME, analysis)
    assert manifest["rois"]["by_shape"] == {"rectangle": len(analysis.rois)}


def test_synthetic_time_lapse_t_from_timepoint_and_per_well_t(tmp_path: Path) -> None:
    src = write_columbus_export(tmp_path / "tl", SynthSpec(wells=96, fields=2, objects=3, timepoints=8, seed=2))
    a = parse(src, ParseOptions())
    nuclei = a.table("Nuclei").frame()
    assert sorted(nuclei["Timepoint"].unique()) == list(range(-2, 6))  # numbered from -(8 // 4), as in real exports
    assert (nuclei["t"] == nuclei["Timepoint"] + 2).all()
    assert any("Timepoint -2..5 (8 distinct) stored as t 0..7 (t = Timepoint + 2)" in w for w in a.warnings)
    rois = a.roi_frame()
    nuclei_rois = rois[rois["population"] == "Nuclei"].sort_values("table_row")
    assert nuclei_rois["t"].tolist() == nuclei["t"].tolist()  # later frames' ROIs on their own t
    wells = a.table("Wells")
    assert wells.keys == ("well_row", "well_column", "well", "t") and wells.rows == 96 * 8
    assert not wells.frame().duplicated(["well_row", "well_column", "t"]).any()


def test_computed_summary_is_per_well_and_t(tmp_path: Path) -> None:
    src = write_columbus_export(tmp_path / "tl", SynthSpec(wells=96, fields=2, objects=3, timepoints=3, seed=2))
    (src / EVALUATION / "PlateResults.txt").unlink()
    a = parse(src, ParseOptions())
    wells = a.well_table
    assert wells is not None and wells.keys[-1] == "t"
    w = wells.frame()
    nuclei = a.table("Nuclei").frame()
    expected = nuclei.groupby(["well_row", "well_column", "t"]).size()
    got = w.set_index(["well_row", "well_column", "t"])["Nuclei count"]
    assert got.sort_index().tolist() == expected.sort_index().tolist() and len(w) == 96 * 3
    for left_out in ("X", "Y", "Position X [µm]", "Timepoint", "Plane", "Field", "Object No"):
        assert f"Nuclei {left_out} mean" not in w.columns
    assert "Nuclei Nuclei - Roundness mean" in w.columns


def test_synthetic_several_plates_in_one_folder(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    src = write_columbus_export(tmp_path / "two", SynthSpec(wells=96, fields=1, objects=2, layout="several-plates"))
    with pytest.raises(InputError, match="holds exports of 2 plates: 'ColumbusPlate01', 'ColumbusPlate02'"):
        parse(src, ParseOptions())
    second = parse(src, ParseOptions(source_plate="ColumbusPlate02"))
    assert second.plate.name == "ColumbusPlate02"
    second_files = {"PlateResults ColumbusPlate02.txt", "Objects_Population - Nuclei ColumbusPlate02.txt"}
    assert {s.path for s in second.provenance.sources} == {f"{EVALUATION}/{f}" for f in second_files}
    result = cli("plate", src, "--out", tmp_path / "out", "--source-plate", "ColumbusPlate01")
    assert result.exit_code == 0 and "columbus plate ColumbusPlate01" in result.output
