"""BD Pathway: layout files, RoiSummary rectangles, measurement tables through the column map, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hcs_import.errors import InputError
from hcs_import.issues_log import WarningLog
from hcs_import.parsers import bdpathway, registry
from hcs_import.parsers.base import ParseOptions, SynthSpec
from hcs_import.parsers.bdpathway_columns import load_column_map
from hcs_import.parsers.bdpathway_layout import parse_roi_summary
from hcs_import.synth.bdpathway import write_bdpathway_plate
from hcs_import.synth.incell import write_incell_plate
from hcs_import.synth.scanr import write_scanr_plate
from omero_reader import read_table

SPEC = SynthSpec(wells=24, fields=2, objects=3, seed=9, measurements=8)  # 4x6: small and fast


@pytest.fixture
def plate(tmp_path: Path) -> Path:
    return write_bdpathway_plate(tmp_path / "PlateBD", SPEC)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", "\r\n").encode("iso-8859-1"))
    return path


def test_synthetic_plate(plate: Path) -> None:
    assert bdpathway.PARSER.matches(plate) and registry.locate(plate).format == "bdpathway"
    analysis = bdpathway.parse(plate, ParseOptions())
    assert [t.name for t in analysis.tables] == ["Measurements", "RoiSummary", "Wells"]
    assert (analysis.plate.rows, analysis.plate.columns) == (4, 6)  # from the .plt
    assert analysis.plate.name == "PlateBD"  # from the .adf path in RoiSummary.txt
    assert analysis.plate.channels == ("DAPI", "FITC") and analysis.plate.fields_per_well == 2
    assert not analysis.warnings
    m = analysis.table("Measurements")
    files = sorted(plate.glob("Well */Measurements.txt"))
    assert len(files) == 24
    written = pd.concat([pd.read_csv(f, sep="\t", encoding="iso-8859-1") for f in files], ignore_index=True)
    assert m.rows == len(written)
    assert m.measurement_names == [c.replace(" [pixel^2]", "") for c in written.columns]
    assert m.info("Area").unit == "pixel^2" and m.info("Area").source_name == "Area [pixel^2]"
    assert np.array_equal(m.data["Mean DAPI"].to_numpy(), written["Mean DAPI"].to_numpy())
    assert (m.data["field"] + 1 == m.data["Field"]).all()
    assert m.data["object"].tolist() == written["Object #"].tolist()
    assert m.metadata["experiment objective"] == "20x Olympus NA 075" and m.metadata["dye FITC exposure"] == "0.2"
    boxes = analysis.rois[analysis.rois["population"] == "Measurements"]
    assert (boxes["shape"] == "rectangle").all() and len(boxes) == m.rows
    assert np.array_equal(boxes["width"].to_numpy(), m.data["Width"].to_numpy(dtype=float))
    wells = analysis.well_table
    assert wells is not None and wells.name == "Wells" and wells.rows == 24
    assert wells.data["Measurements count"].sum() == m.rows


def test_roi_summary_rectangles(plate: Path) -> None:
    analysis = bdpathway.parse(plate, ParseOptions())
    table = analysis.table("RoiSummary")
    assert table.kind == "objects" and table.rows == 24 * 2
    assert table.measurement_names == ["ROI", "Name", "X", "Y", "Width", "Height", "Area"]
    assert (table.data["field"] == 0).all() and table.data["object"].tolist()[:2] == [1, 2]
    rects = analysis.rois[analysis.rois["population"] == "RoiSummary"]
    assert (rects["shape"] == "rectangle").all() and len(rects) == 48
    assert rects.iloc[0][["x", "y", "width", "height"]].tolist() == [168, 128, 336, 256]
    assert rects.groupby(["well_row", "well_column"]).size().eq(2).all()
    assert table.metadata["plate_from_adf"] == "PlateBD"


def test_roi_summary_in_a_well_folder_applies_to_that_well(tmp_path: Path) -> None:
    folder = write_bdpathway_plate(tmp_path / "P", SPEC, roi_summary=False)
    _write(folder / "Well B03" / "RoiSummary.txt",
           "ROI\tName\tX\tY\tWidth\tHeight\nunits\n---\n1\ta\t1\t2\t3\t4\n2\tb\t\t\t\t\n3\tc\t5\t6\t7\t8\n\nignored\n")
    analysis = bdpathway.parse(folder, ParseOptions())
    table = analysis.table("RoiSummary")
    assert table.data["well"].tolist() == ["B03", "B03"] and table.data["object"].tolist() == [1, 3]
    assert any("without an X value" in w and "1 occurrence" in w for w in analysis.warnings)


def test_roi_summary_bad_rectangle_value(tmp_path: Path) -> None:
    path = _write(tmp_path / "RoiSummary.txt", "x\nROI\tName\tX\tY\tWidth\tHeight\n-\n-\n1\ta\t1\t2\tthree\t4\n")
    with pytest.raises(InputError, match=r"RoiSummary\.txt: line 5, column 'Width': value 'three' is not a number"):
        parse_roi_summary(path, "nan", WarningLog())


def test_default_column_map_is_documented_and_valid() -> None:
    cmap = load_column_map()
    assert cmap.source == "default" and "Well" in cmap.well and "RoiSummary.txt" in cmap.exclude
    assert cmap.find(["  centroid x ", "Left"], cmap.x) == "  centroid x "


ODD_TABLE = "WellID\tNuc No\tPos X\tPos Y\tIntensity\nA01\t1\t5\t6\t100\nA01\t2\t7\t8\t200\nC05\t1\t9\t10\t300\n"
ODD_MAP = ('[keys]\nwell = ["WellID"]\nobject = ["Nuc No"]\n[shapes]\nx = ["Pos X"]\ny = ["Pos Y"]\n'
           '[units]\nIntensity = "counts"\n')


def test_user_column_map(tmp_path: Path) -> None:
    folder = write_bdpathway_plate(tmp_path / "P", SynthSpec(wells=24, fields=1, objects=1, measurements=6),
                                   roi_summary=False)
    _write(folder / "export" / "Nuclei.txt", ODD_TABLE)
    analysis = bdpathway.parse(folder, ParseOptions())
    assert "Nuclei" not in [t.name for t in analysis.tables]
    assert any("without a well column" in w and "export/Nuclei.txt" in w for w in analysis.warnings)
    column_map = _write(tmp_path / "map.toml", ODD_MAP)
    analysis = bdpathway.parse(folder, ParseOptions(column_map=column_map))
    nuclei = analysis.table("Nuclei")
    assert nuclei.data["well"].tolist() == ["A01", "A01", "C05"] and nuclei.data["object"].tolist() == [1, 2, 1]
    assert nuclei.info("Intensity").unit == "counts" and nuclei.metadata["column_map"] == str(column_map)
    points = analysis.rois[analysis.rois["population"] == "Nuclei"]
    assert points["shape"].tolist() == ["point"] * 3 and points["x"].tolist() == [5, 7, 9]
    assert "map.toml" in [s.path for s in analysis.provenance.sources]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[keys]\nwel = ["W"]\n', r"map\.toml: \[keys\] wel: unknown key"),
        ('[colums]\n', r"map\.toml: \[colums\]: unknown section"),
        ('[keys]\nwell = "W"\n', r"\[keys\] well: expected a list of non-empty strings"),
        ('[files]\ndelimiter = "pipe"\n', r"\[files\] delimiter: 'pipe'"),
        ('[keys]\nwell = ["W"\nfield = 3\n', r"map\.toml: line \d+: not a valid TOML column map"),
    ],
)
def test_bad_column_map(tmp_path: Path, plate: Path, text: str, needle: str) -> None:
    column_map = _write(tmp_path / "map.toml", text)
    with pytest.raises(InputError, match=needle):
        bdpathway.parse(plate, ParseOptions(column_map=column_map))


def test_per_well_table_with_labels_and_numbers(tmp_path: Path) -> None:
    folder = write_bdpathway_plate(tmp_path / "P", SynthSpec(wells=24, fields=1, objects=1, measurements=6),
                                   roi_summary=False)
    _write(folder / "Plate Summary.txt", "Well\tCell Count\tMean Area\nWell A01\t10\t5.5\nB2\t11\t6\nD - 6\t12\t7\n")
    _write(folder / "numbers.csv", "Well,Score\n1,0.5\n13,0.25\n")  # row-major numbers on the 4x6 plate
    analysis = bdpathway.parse(folder, ParseOptions())
    summary = analysis.table("Plate Summary")
    assert summary.kind == "wells" and summary.data["well"].tolist() == ["A01", "B02", "D06"]
    assert analysis.well_table is not None and analysis.well_table.name == "Plate Summary"
    assert "Wells" not in [t.name for t in analysis.tables]  # the vendor's per-well table is the summary
    assert analysis.table("numbers").data["well"].tolist() == ["A01", "C01"]


def test_geometry_without_plt_is_inferred_and_option_overrides(tmp_path: Path) -> None:
    folder = write_bdpathway_plate(tmp_path / "P", SynthSpec(wells=24, fields=1, objects=1, measurements=6))
    next(folder.glob("*.plt")).unlink()
    analysis = bdpathway.parse(folder, ParseOptions())
    assert (analysis.plate.rows, analysis.plate.columns) == (8, 12)
    assert any("8x12 inferred" in w for w in analysis.warnings)
    analysis = bdpathway.parse(folder, ParseOptions(plate_geometry=(16, 24)))
    assert (analysis.plate.rows, analysis.plate.columns) == (16, 24)
    assert not any("inferred" in w for w in analysis.warnings)


def test_images_listed(tmp_path: Path) -> None:
    folder = write_bdpathway_plate(tmp_path / "P", SynthSpec(wells=24, fields=1, objects=1, measurements=6))
    (folder / "Well B03" / "FITC - n000001.tif").write_bytes(b"")
    (folder / "Well B03" / "DAPI - n000000.tif").write_bytes(b"")
    images = bdpathway.parse(folder, ParseOptions()).plate.images
    assert images is not None
    assert images[["well_row", "well_column", "field", "t", "c"]].values.tolist() == [[1, 2, 0, 0, 0], [1, 2, 0, 1, 1]]
    assert images["path"].tolist() == ["Well B03/DAPI - n000000.tif", "Well B03/FITC - n000001.tif"]


def test_detection_is_specific(tmp_path: Path, plate: Path) -> None:
    assert not bdpathway.PARSER.matches(write_scanr_plate(tmp_path / "sc", SynthSpec(objects=1)))
    assert not bdpathway.PARSER.matches(write_incell_plate(tmp_path / "ic", SynthSpec(objects=1, fields=1)))
    bare = tmp_path / "bare"
    (bare / "Well A01").mkdir(parents=True)
    assert not bdpathway.PARSER.matches(bare)
    (bare / "DAPI.dye").write_text("[Numerator]\nExposure=1\n")
    assert bdpathway.PARSER.matches(bare)
    assert bdpathway.PARSER.matches(plate / "Experiment.exp")


# --- bad input ---------------------------------------------------------------------------------------------


def test_empty_folder(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not bdpathway.PARSER.matches(empty)
    with pytest.raises(InputError, match="no BD Attovision measurement tables"):
        bdpathway.parse(empty, ParseOptions())


def test_truncated_measurement_table(plate: Path) -> None:
    path = plate / "Well C04" / "Measurements.txt"
    data = path.read_bytes()
    path.write_bytes(data[: data.rindex(b"\t")])
    lines = data[: data.rindex(b"\t")].count(b"\n") + 1
    with pytest.raises(InputError, match=rf"Well C04/Measurements\.txt: line {lines}: row has \d+ fields .* truncated"):
        bdpathway.parse(plate, ParseOptions())


def test_non_numeric_value(plate: Path) -> None:
    path = plate / "Well A02" / "Measurements.txt"
    lines = path.read_text(encoding="iso-8859-1").splitlines()
    fields = lines[2].split("\t")
    fields[9] = "n.d."
    lines[2] = "\t".join(fields)
    path.write_text("\r\n".join(lines) + "\r\n", encoding="iso-8859-1")
    with pytest.raises(InputError, match=r"Well A02/Measurements\.txt: line 3, column 'Mean DAPI': value 'n\.d\.'"):
        bdpathway.parse(plate, ParseOptions())
    analysis = bdpathway.parse(plate, ParseOptions(bad_values="nan"))
    assert any("stored as NaN: 1 occurrence" in w for w in analysis.warnings)


def test_bad_field_number(plate: Path) -> None:
    path = plate / "Well A03" / "Measurements.txt"
    text = path.read_text(encoding="iso-8859-1").splitlines()
    fields = text[1].split("\t")
    fields[1] = "0"  # fields count from 1 in the default map
    text[1] = "\t".join(fields)
    path.write_text("\r\n".join(text) + "\r\n", encoding="iso-8859-1")
    with pytest.raises(InputError, match=r"Well A03/Measurements\.txt: line 2, column 'Field': .* counted from 1"):
        bdpathway.parse(plate, ParseOptions())


def test_bad_experiment_file(plate: Path) -> None:
    (plate / "Experiment.exp").write_text("[General]\nDyes=3\n[Dyes]\n1=DAPI\n2=FITC\n")
    with pytest.raises(InputError, match=r"Experiment\.exp: \[Dyes\] 3: missing"):
        bdpathway.parse(plate, ParseOptions())
    (plate / "Experiment.exp").write_text("[General]\nDyes=two\n")
    with pytest.raises(InputError, match=r"Experiment\.exp: \[General\] Dyes: value 'two': expected a whole number"):
        bdpathway.parse(plate, ParseOptions())


def test_cli_round_trip_with_column_map(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plate = tmp_path / "PlateBD"
    assert cli("synth", "bdpathway", plate, "--wells", "24", "--objects", "2", "--fields", "1").exit_code == 0
    _write(plate / "export" / "Nuclei.txt", ODD_TABLE)
    column_map = _write(tmp_path / "map.toml", ODD_MAP)
    out = tmp_path / "out"
    result = cli("plate", plate, "--out", out, "--column-map", column_map)
    assert result.exit_code == 0, result.output
    bundle = out / "PlateBD"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format"] == "bdpathway"
    kinds = {t["population"]: t["kind"] for t in manifest["tables"]}
    assert kinds == {"Measurements": "objects", "Nuclei": "objects", "RoiSummary": "objects", "Wells": "wells"}
    assert manifest["rois"]["by_shape"]["rectangle"] > 0 and manifest["rois"]["by_shape"]["point"] == 3
    roi_entry = next(t for t in manifest["tables"] if t["population"] == "RoiSummary")
    served = read_table(bundle / roi_entry["path"])
    assert served.rows == 24 * 2 and served.column("X").values[:2] == [168, 0]
    wells = read_table(bundle / next(t["path"] for t in manifest["tables"] if t["population"] == "Wells"))
    assert wells.rows == 24 and wells.names[0] == "Well"
