"""IN Carta CSV exports: per-well and per-object tables, keys, centres -> Point ROIs, detection, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hcs_import.errors import InputError
from hcs_import.parsers import incarta, registry
from hcs_import.parsers.base import ParseOptions, SynthSpec
from hcs_import.synth.incarta import write_incarta_plate
from hcs_import.synth.incell import write_incell_plate
from hcs_import.synth.scanr import write_scanr_plate
from omero_reader import read_table

SPEC = SynthSpec(wells=96, fields=2, objects=3, seed=5, measurements=6, populations=2)


def _csv(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    return folder


OBJECTS = (
    "Row,Column,WELL LABEL,FIELD,Z,T,Nuclei cg X wv1,Nuclei cg Y wv1,Nuclei Area wv1,Cells cg X wv2,Cells cg Y wv2\n"
    "B,3,B - 3,1,1,1,10.5,20.5,100,11,21\n"
    "B,3,B - 3,1,1,1,30,40,110,,41\n"
    "B,3,B - 3,2,1,1,50,60,120,51,61\n"
    "H,12,H - 12,1,1,1,70,80,130,71,81\n"
)


def test_per_well_and_per_object_files(tmp_path: Path) -> None:
    folder = write_incarta_plate(tmp_path / "plateC", SPEC)
    analysis = incarta.parse(folder, ParseOptions(plate_geometry=(8, 12)))
    objects, wells = analysis.table("plateC Object Data"), analysis.table("plateC Well Data")
    assert objects.kind == "objects" and wells.kind == "wells"
    assert [t.name for t in analysis.tables] == ["plateC Object Data", "plateC Well Data"]  # no computed summary
    assert analysis.well_table is wells and wells.rows == 96
    written = (folder / "plateC Object Data.csv").read_text().splitlines()
    assert objects.rows == len(written) - 1
    assert objects.measurement_names == written[0].split(",")
    assert not pd.api.types.is_numeric_dtype(objects.data["Row"]) and objects.data["WELL LABEL"].iloc[0] == "A - 1"
    d = objects.data
    letters = np.array(list("ABCDEFGH"))
    assert (letters[d["well_row"]] == d["Row"].to_numpy()).all()
    assert (d["well_column"] + 1 == d["Column"]).all()
    assert (d["field"] + 1 == d["FOV"]).all() and (d["z"] == 0).all() and (d["t"] == 0).all()
    assert (d["object"] == d["OBJECT ID"]).all()
    assert d.groupby(["well", "field"])["object"].apply(lambda s: list(s) == list(range(1, len(s) + 1))).all()
    rois = analysis.rois
    assert (rois["shape"] == "rectangle").all() and len(rois) == 2 * objects.rows
    assert sorted(rois["c"].unique()) == [0, 1]  # wv1 -> channel 0, wv2 -> channel 1
    nuclei = rois[rois["c"] == 0].sort_values("table_row")
    assert np.array_equal(nuclei["x"].to_numpy(), d["Nuclei Max left border wv1"].to_numpy())
    assert np.array_equal(nuclei["width"].to_numpy(), d["Nuclei Max width wv1"].to_numpy())
    # the per-well export has centre columns (per-well means) but is a per-well table: no ROIs from it
    assert "Nuclei cg X wv1 Mean" in wells.data.columns and set(rois["population"]) == {"plateC Object Data"}


def test_objects_without_an_id_are_numbered_and_centres_make_points(tmp_path: Path) -> None:
    text = "Row,Column,FIELD,Nuclei cg X wv1,Nuclei cg Y wv1,Nuclei Area wv1\nA,1,1,5,6,1\nA,1,1,7,8,2\n"
    analysis = incarta.parse(_csv(tmp_path / "p", "o.csv", text), ParseOptions())
    table = analysis.table("o")
    assert table.kind == "objects" and table.metadata["object"].startswith("row number")
    assert table.data["object"].tolist() == [1, 2]
    assert analysis.roi_frame()[["x", "y"]].to_numpy().tolist() == [[5, 6], [7, 8]]


def test_per_well_summary_with_centre_means_is_a_wells_table(tmp_path: Path) -> None:
    text = ("Row,Column,T,Nuclei cg X wv1,Nuclei cg Y wv1,Nuclei Count wv1\n"
            "A,1,1,500.5,600.25,80\nA,2,1,510,610,75\nA,1,2,501,601,82\nA,2,2,511,611,77\n")
    analysis = incarta.parse(_csv(tmp_path / "p", "w.csv", text), ParseOptions())
    [table] = analysis.tables
    assert table.kind == "wells" and table.keys == ("well_row", "well_column", "well", "t")
    assert table.data["t"].tolist() == [0, 0, 1, 1] and len(analysis.rois) == 0
    assert "per-well summary export" in str(table.metadata["centres"])


def test_synthetic_several_plates_and_time_lapse(tmp_path: Path) -> None:
    folder = write_incarta_plate(tmp_path / "pl", SynthSpec(wells=96, fields=2, objects=3, timepoints=2,
                                                            layout="several-plates"))
    with pytest.raises(InputError, match="holds exports of 2 plates: 'pl', 'pl re-imaged'"):
        incarta.parse(folder, ParseOptions())
    analysis = incarta.parse(folder, ParseOptions(source_plate="pl re-imaged"))
    assert analysis.plate.name == "pl re-imaged"
    assert [t.name for t in analysis.tables] == ["pl 2 Object Data", "pl 2 Well Data"]
    wells = analysis.table("pl 2 Well Data")
    assert wells.keys[-1] == "t" and wells.rows == 96 * 2


def test_objects_only_get_a_computed_well_summary(tmp_path: Path) -> None:
    folder = write_incarta_plate(tmp_path / "p", SPEC, per_well=False)
    analysis = incarta.parse(folder, ParseOptions())
    wells = analysis.well_table
    assert wells is not None and wells.name == "Wells" and wells.rows == 96
    assert wells.data["p Object Data count"].sum() == analysis.table("p Object Data").rows
    assert any("8x12 inferred" in w for w in analysis.warnings)


def test_hand_written_objects_keys_and_missing_centres(tmp_path: Path) -> None:
    analysis = incarta.parse(_csv(tmp_path / "p", "cells.csv", OBJECTS), ParseOptions())
    d = analysis.table("cells").data
    assert d["well"].tolist() == ["B03", "B03", "B03", "H12"]
    assert d["field"].tolist() == [0, 0, 1, 0] and d["object"].tolist() == [1, 2, 1, 1]
    rois = analysis.rois
    assert len(rois) == 7  # one Cells centre is missing
    assert any("Cells cg X wv2" in w and "1 of 4" in w for w in analysis.warnings)


def test_well_label_only_and_object_ids(tmp_path: Path) -> None:
    text = "WELL LABEL,OBJECT ID,Nuclei Area wv1\nB - 12,7,1.5\nP - 24,9,2.5\nP - 24,10,3\n"
    analysis = incarta.parse(_csv(tmp_path / "p", "objs.csv", text), ParseOptions())
    d = analysis.table("objs").data
    assert d["well"].tolist() == ["B12", "P24", "P24"] and d["object"].tolist() == [7, 9, 10]
    assert (analysis.plate.rows, analysis.plate.columns) == (16, 24)


def test_zero_based_planes_are_recognised(tmp_path: Path) -> None:
    text = "Row,Column,FIELD,T,Nuclei Area wv1\nA,1,0,0,1\nA,1,1,3,2\n"
    analysis = incarta.parse(_csv(tmp_path / "p", "t.csv", text), ParseOptions())
    table = analysis.table("t")
    assert table.kind == "fields" and table.data["field"].tolist() == [0, 1]
    assert "0-based" in str(table.metadata["FIELD numbering"])


def test_per_field_table(tmp_path: Path) -> None:
    text = "Row,Column,FIELD,Nuclei Count wv1\nA,1,1,5\nA,1,2,6\nA,2,1,7\n"
    table = incarta.parse(_csv(tmp_path / "p", "f.csv", text), ParseOptions()).table("f")
    assert table.kind == "fields" and table.data["field"].tolist() == [0, 1, 0]


def test_plate_geometry_option(tmp_path: Path) -> None:
    analysis = incarta.parse(_csv(tmp_path / "p", "cells.csv", OBJECTS), ParseOptions(plate_geometry=(16, 24)))
    assert (analysis.plate.rows, analysis.plate.columns) == (16, 24)
    assert not any("inferred" in w for w in analysis.warnings)


def test_detection(tmp_path: Path) -> None:
    ic = write_incarta_plate(tmp_path / "ic", SPEC)
    assert incarta.PARSER.matches(ic) and registry.locate(ic).format == "incarta"
    assert not incarta.PARSER.matches(write_scanr_plate(tmp_path / "sc", SynthSpec(objects=2), csv=True))
    assert not incarta.PARSER.matches(write_incell_plate(tmp_path / "in", SynthSpec(objects=1, fields=1)))
    columbus = _csv(tmp_path / "col", "r.csv", "Row,Column,Field,Object No,X,Y\n1,1,1,1,2,3\n")
    assert not incarta.PARSER.matches(columbus)
    assert incarta.PARSER.matches(_csv(tmp_path / "wv", "r.csv", "Row,Column,Nuclei Area wv1\nA,1,2\n"))


def test_xdce_next_to_the_exports_gives_the_layout(tmp_path: Path) -> None:
    folder = write_incell_plate(tmp_path / "both", SynthSpec(wells=384, fields=1, objects=1))
    next(folder.glob("*_analysis.xml")).unlink()
    _csv(folder, "cells.csv", OBJECTS)
    assert registry.locate(folder).format == "incarta"  # the IN Carta exports win over the bare .xdce
    analysis = incarta.parse(folder, ParseOptions())
    assert (analysis.plate.rows, analysis.plate.columns) == (16, 24) and analysis.plate.images is not None
    assert not any("inferred" in w for w in analysis.warnings)


# --- bad input ---------------------------------------------------------------------------------------------


def test_non_numeric_value(tmp_path: Path) -> None:
    folder = _csv(tmp_path / "p", "cells.csv", OBJECTS.replace(",110,", ",1l0,"))
    with pytest.raises(InputError, match=r"cells\.csv: line 3, column 'Nuclei Area wv1': value '1l0' is not a number"):
        incarta.parse(folder, ParseOptions())
    analysis = incarta.parse(folder, ParseOptions(bad_values="nan"))
    assert np.isnan(analysis.table("cells").data["Nuclei Area wv1"].iloc[1])


def test_truncated_file(tmp_path: Path) -> None:
    folder = _csv(tmp_path / "p", "cells.csv", OBJECTS[: OBJECTS.rindex(",71")])
    expected = r"cells\.csv: line 5: row has 9 fields but the header \(line 1\) has 11; the file may be truncated"
    with pytest.raises(InputError, match=expected):
        incarta.parse(folder, ParseOptions())


def test_bad_row_letter_and_label(tmp_path: Path) -> None:
    folder = _csv(tmp_path / "p", "cells.csv", OBJECTS.replace("H,12,H - 12", "?,12,H - 12"))
    with pytest.raises(InputError, match=r"line 5, column 'Row': value '\?'"):
        incarta.parse(folder, ParseOptions())
    folder = _csv(tmp_path / "q", "w.csv", "WELL LABEL,Nuclei Area wv1\nA - 1,1\nsomewhere,2\n")
    with pytest.raises(InputError, match=r"w\.csv: line 3, column 'WELL LABEL': value 'somewhere'"):
        incarta.parse(folder, ParseOptions())


def test_several_plates_in_one_file(tmp_path: Path) -> None:
    folder = _csv(tmp_path / "p", "w.csv", "Plate ID,WELL LABEL,Nuclei Area wv1\nP1,A - 1,1\nP2,A - 1,2\n")
    with pytest.raises(InputError, match="rows of 2 plates"):
        incarta.parse(folder, ParseOptions())


def test_empty_folder(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not incarta.PARSER.matches(empty)
    with pytest.raises(InputError, match="no IN Carta CSV export"):
        incarta.parse(empty, ParseOptions())


def test_cli_round_trip(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plate = tmp_path / "plateC"
    assert cli("synth", "incarta", plate, "--objects", "3", "--measurements", "5").exit_code == 0
    out = tmp_path / "out"
    result = cli("plate", plate, "--out", out, "--plate-geometry", "8x12")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "plateC" / "manifest.json").read_text())
    assert manifest["format"] == "incarta"
    kinds = {t["population"]: (t["kind"], t["rows"]) for t in manifest["tables"]}
    assert kinds["plateC Well Data"] == ("wells", 96)
    analysis = incarta.parse(plate, ParseOptions(plate_geometry=(8, 12)))
    objects = analysis.table("plateC Object Data")
    entry = next(t for t in manifest["tables"] if t["population"] == objects.name)
    served = read_table(out / "plateC" / entry["path"])
    assert served.rows == objects.rows
    assert served.column("WELL LABEL").values[0] in (b"A - 1", "A - 1")
    assert served.column("Nuclei cg X wv1").values == objects.data["Nuclei cg X wv1"].tolist()
    assert manifest["rois"]["count"] == len(analysis.rois) == 2 * objects.rows


def test_acquisitions_without_plate_id_are_listed_not_merged(tmp_path: Path) -> None:
    """Two object files with one header and no Plate ID are two acquisitions (as real IN Carta exports of
    Day0 / Day1 are): refused with their names, readable one at a time."""
    folder = write_incarta_plate(tmp_path / "acq", SynthSpec(wells=96, fields=1, objects=2, layout="several-plates"),
                                 per_well=False)
    for csv_file in folder.glob("*.csv"):
        frame = pd.read_csv(csv_file).drop(columns=["Plate ID"])
        frame.to_csv(csv_file, index=False)
    with pytest.raises(InputError, match="holds exports of 2 plates: 'acq 2 Object Data', 'acq Object Data'"):
        incarta.parse(folder, ParseOptions())
    one = incarta.parse(folder, ParseOptions(source_plate="acq 2 Object Data"))
    assert [t.name for t in one.object_tables] == ["acq 2 Object Data"]
