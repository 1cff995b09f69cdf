"""End to end: `hcs-import synth scanr` + `hcs-import plate`, every .h5 read back through omero-py's HdfStorage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bundle_check import assert_bundle_matches
from hcs_import.parsers.base import ParseOptions
from hcs_import.parsers.scanr import parse
from hcs_import.synth.scanr import write_parameter_data
from hcs_import.writers.omero_columns import ICE_PREFIX, plan_columns
from omero_reader import read_table


def test_synth_plate_is_served_value_for_value(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plate = tmp_path / "scanrA"
    made = cli("synth", "scanr", plate, "--objects", "5", "--fields", "2")
    assert made.exit_code == 0, made.output
    assert cli("detect", plate).output.startswith("scanr\t")
    out = tmp_path / "out"
    result = cli("plate", plate, "--out", out)
    assert result.exit_code == 0, result.output
    bundle = out / "scanrA"
    manifest = json.loads((bundle / "manifest.json").read_text())
    analysis = parse(plate, ParseOptions())
    assert manifest["format"] == "scanr"
    assert (manifest["plate"]["rows"], manifest["plate"]["columns"]) == (8, 12)
    assert manifest["plate"]["channels"] == ["DAPI", "GFP"]
    assert {t["population"]: t["kind"] for t in manifest["tables"]} == {
        "Main": "objects", "Spots": "objects", "Image positions": "fields", "Wells": "wells"}
    assert manifest["rois"]["count"] == len(analysis.rois) == analysis.table("Main").rows + analysis.table("Spots").rows
    assert_bundle_matches(bundle, analysis)  # every column, type and value as HdfStorage serves it
    for entry in manifest["tables"]:
        assert entry["column_names"] == [s.name for s in plan_columns(analysis.table(entry["population"]))]
    main = read_table(bundle / "Main.h5")
    assert main.column("Cells").type_id == ICE_PREFIX + "BoolColumn"
    assert main.column("Area").description.startswith("Area ")
    spots = read_table(bundle / "Spots.h5")
    assert spots.column("Parent Object ID (MO)").type_id == ICE_PREFIX + "LongColumn"
    wells = read_table(bundle / "Wells.h5")
    assert wells.rows == 96 and wells.names[0] == "Well"
    assert sum(wells.column("Main count").values) == analysis.table("Main").rows


def test_parameter_data_only_folder_with_inferred_and_given_geometry(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "exports"
    folder.mkdir()
    write_parameter_data(folder / "ParameterData_Main.csv", 2000, wells=200, fields=1, seed=2)
    out = tmp_path / "out"
    result = cli("plate", folder, "--out", out)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "exports" / "manifest.json").read_text())
    assert (manifest["plate"]["rows"], manifest["plate"]["columns"]) == (16, 24)
    assert any("inferred from the largest well number" in w for w in manifest["warnings"])
    result = cli("plate", folder, "--out", out, "--plate-geometry", "32x48")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "exports" / "manifest.json").read_text())
    assert (manifest["plate"]["rows"], manifest["plate"]["columns"]) == (32, 48)
    assert not any("inferred" in w for w in manifest["warnings"])
    main = read_table(out / "exports" / "Main.h5")
    assert main.rows == 2000
    # the vendor's `Well ` column yields the name "Well" to OMERO's WellColumn and is served as "Well (2)"
    vendor_well = next(s.name for s in plan_columns(parse(folder, ParseOptions()).table("Main")) if s.source == "Well")
    assert vendor_well == "Well (2)"
    wells = np.asarray(main.column(vendor_well).values)
    assert np.array_equal(np.asarray(main.column("well_column").values), (wells - 1) % 48)


def test_bad_parameter_data_fails_in_one_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "exports"
    folder.mkdir()
    path = folder / "ParameterData_Main.txt"
    path.write_bytes(b"Object ID\tWell \tArea \r\n0\t1\t5\r\n1\t1\tfive\r\n2\t2\t7\r\n")
    out = tmp_path / "out"
    result = cli("plate", folder, "--out", out)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "ParameterData_Main.txt: line 3, column 'Area '" in lines[0]
    assert not out.exists() or not any(out.iterdir())
