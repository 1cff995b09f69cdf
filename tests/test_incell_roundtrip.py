"""End to end: `hcs-import plate` on an InCell plate, every .h5 read back through omero-py's HdfStorage."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from hcs_import.parsers.base import ParseOptions
from hcs_import.parsers.incell import parse
from hcs_import.writers.omero_columns import ICE_PREFIX, plan_columns
from omero_reader import read_table

SERVED_TYPES = {
    "LongColumn": np.int64,
    "DoubleColumn": np.float64,
}


def _equal(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return a == b


def test_plate_bundle_is_served_value_for_value(cli, incell_plate: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    result = cli("plate", incell_plate, "--out", out)
    assert result.exit_code == 0, result.output
    bundle = out / "plateA"
    manifest = json.loads((bundle / "manifest.json").read_text())
    analysis = parse(incell_plate, ParseOptions())

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
        assert served.rows == entry["rows"] == table.rows
        assert served.names == [s.name for s in specs] == entry["column_names"]
        assert [c.type_id for c in served.columns] == [ICE_PREFIX + s.kind for s in specs]
        assert [c.description for c in served.columns] == [s.description for s in specs]
        for spec, col in zip(specs, served.columns, strict=True):
            if spec.source is None:
                assert set(col.values) == {-1}, spec.name
                continue
            expected = table.data[spec.source].tolist()
            assert len(col.values) == len(expected)
            mismatches = [i for i, (a, b) in enumerate(zip(col.values, expected, strict=True)) if not _equal(a, b)]
            assert not mismatches, (entry["path"], spec.name, mismatches[:5])
        assert served.metadata["__version"] == "2"
        assert served.metadata["hcs_import.provenance_key"] == analysis.provenance.key
        assert served.metadata["hcs_import.table"] == table.name
        assert json.loads(served.metadata["hcs_import.sources"])[1]["sha256"] == manifest["sources"][1]["sha256"]

    wells = read_table(bundle / "Wells.h5")
    assert wells.names[0] == "Well" and wells.columns[0].type_id == ICE_PREFIX + "WellColumn"
    cells = read_table(bundle / "Cells.h5")
    assert cells.names[:3] == ["Image", "Roi", "Well"]

    rois = pd.read_parquet(bundle / "rois.parquet")
    pd.testing.assert_frame_equal(rois, analysis.rois.reset_index(drop=True), check_dtype=False)


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
