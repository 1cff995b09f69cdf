"""Round-trip check shared by the format tests: a written bundle equals the parsed model,
value for value, as omero-py's HdfStorage serves it (no tests of its own here)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd

from hcs_import.model import PlateAnalysis
from hcs_import.writers.omero_columns import ICE_PREFIX, plan_columns
from hcs_import.writers.rois_file import read_rois
from omero_reader import read_table


def digest(folder: Path) -> dict[str, str]:
    """Every file under FOLDER by relative path, with its SHA-256: equal digests, byte-identical bundles."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _equal(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(b, float) and isinstance(a, int | float):
        return float(a) == b
    return a == b


def assert_bundle_matches(bundle: Path, analysis: PlateAnalysis) -> dict:
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format"] == analysis.format
    assert manifest["warnings"] == list(analysis.warnings)
    assert manifest["rois"]["count"] == len(analysis.rois)
    assert {t["population"] for t in manifest["tables"]} == {t.name for t in analysis.tables}
    for entry in manifest["tables"]:
        table = analysis.table(entry["population"])
        served = read_table(bundle / entry["path"])
        specs = [s for s in plan_columns(table) if s.name in entry["column_names"]]
        assert served.rows == entry["rows"] == table.rows
        frame = table.frame()
        assert served.names == entry["column_names"]
        assert [c.type_id for c in served.columns] == [ICE_PREFIX + s.kind for s in specs]
        for spec, col in zip(specs, served.columns, strict=True):
            if spec.source is None:
                assert set(col.values) == ({-1} if table.rows else set()), spec.name
                continue
            expected = frame[spec.source]
            if spec.kind == "StringColumn":
                expected = expected.astype(object).where(expected.notna(), "").astype(str)
            expected = expected.tolist()
            bad = [i for i, (a, b) in enumerate(zip(col.values, expected, strict=True)) if not _equal(a, b)]
            assert not bad, (entry["path"], spec.name, bad[:5], [col.values[i] for i in bad[:3]],
                             [expected[i] for i in bad[:3]])
        assert served.metadata["hcs_import.table"] == table.name
        for key, value in table.metadata.items():
            assert served.metadata[str(key)] == value, key
    rois = read_rois(bundle / "rois.parquet")
    expected_rois = analysis.roi_frame()
    assert len(rois) == len(expected_rois) == manifest["rois"]["count"]
    if len(rois):
        pd.testing.assert_frame_equal(rois, expected_rois.reset_index(drop=True), check_dtype=False)
    return manifest
