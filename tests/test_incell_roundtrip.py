"""End to end: `hcs-import plate` on an InCell plate, every .h5 read back through omero-py's HdfStorage."""

from __future__ import annotations

import json
from pathlib import Path

from bundle_check import assert_bundle_matches
from hcs_import.parsers.base import ParseOptions
from hcs_import.parsers.incell import parse
from hcs_import.writers.omero_columns import ICE_PREFIX, plan_columns
from omero_reader import read_table


def test_plate_bundle_is_served_value_for_value(cli, incell_plate: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    result = cli("plate", incell_plate, "--out", out)
    assert result.exit_code == 0, result.output
    bundle = out / "plateA"
    analysis = parse(incell_plate, ParseOptions())
    manifest = assert_bundle_matches(bundle, analysis)  # every column, type and value as HdfStorage serves it

    assert manifest["format"] == "incell"
    assert manifest["plate"] == {**manifest["plate"], "name": "plateA", "rows": 8, "columns": 12}
    assert {t["population"]: t["kind"] for t in manifest["tables"]} == {
        "Cells": "objects", "Nuclei": "objects", "Wells": "wells"}
    assert manifest["rois"]["count"] == len(analysis.rois) > 0
    assert [s["path"] for s in manifest["sources"]] == ["plateA.xdce", "plateA_analysis.xml"]
    assert all(len(s["sha256"]) == 64 for s in manifest["sources"])
    assert manifest["warnings"] == list(analysis.warnings)

    for entry in manifest["tables"]:
        table = analysis.table(entry["population"])
        served = read_table(bundle / entry["path"])
        specs = plan_columns(table)
        assert served.names == [s.name for s in specs] == entry["column_names"]  # narrow: one part
        assert [c.description for c in served.columns] == [s.description for s in specs]
        assert served.metadata["__version"] == "2"
        assert served.metadata["hcs_import.provenance_key"] == analysis.provenance.key
        assert served.metadata["hcs_import.table"] == table.name
        assert json.loads(served.metadata["hcs_import.sources"])[1]["sha256"] == manifest["sources"][1]["sha256"]

    wells = read_table(bundle / "Wells.h5")
    assert wells.names[0] == "Well" and wells.columns[0].type_id == ICE_PREFIX + "WellColumn"
    cells = read_table(bundle / "Cells.h5")
    assert cells.names[:3] == ["Image", "Roi", "Well"]


def test_plate_output_lines_and_detect(cli, incell_plate: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    detected = cli("detect", incell_plate)
    assert detected.exit_code == 0 and detected.output.startswith("incell\t")
    result = cli("plate", incell_plate, "--out", tmp_path / "o")
    assert "Cells.h5: objects Cells:" in result.output and "rois.parquet:" in result.output


def test_rerun_replaces_the_bundle_atomically(cli, incell_plate: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    assert cli("plate", incell_plate, "--out", out).exit_code == 0
    (out / "plateA" / "stale.txt").write_text("from an older run")
    assert cli("plate", incell_plate, "--out", out).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["plateA"]
    assert not (out / "plateA" / "stale.txt").exists()


def test_no_rois_option(cli, incell_plate: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("plate", incell_plate, "--out", tmp_path / "o", "--no-rois").exit_code == 0
    manifest = json.loads((tmp_path / "o" / "plateA" / "manifest.json").read_text())
    assert manifest["rois"]["count"] == 0
