"""The OMERO.tables writer on its own: names, types, byte sizes, descriptions, wide tables, metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hcs_import.model import ColumnInfo, MeasurementTable, object_keys_frame, well_keys_frame
from hcs_import.writers.omero_columns import (
    ascii_description,
    column_kind,
    legal_name,
    plan_columns,
    split_columns,
)
from hcs_import.writers.omero_tables import write_table
from omero_reader import read_table


def _objects(n: int, measurements: dict[str, object], infos: dict[str, ColumnInfo] | None = None) -> MeasurementTable:
    keys = object_keys_frame(np.zeros(n, dtype=int), np.arange(n) % 12, np.zeros(n, dtype=int), np.arange(n), 12)
    data = pd.concat([keys, pd.DataFrame(measurements)], axis=1)
    return MeasurementTable("Objects", "objects", data, infos or {})


def test_legal_names_and_ascii_descriptions() -> None:
    assert legal_name("Area/Perimeter", 0) == "Area\\Perimeter"
    assert legal_name("__secret", 0) == "col__secret"
    assert legal_name("_v_attr", 0) == "col_v_attr"
    assert legal_name("   ", 4) == "column 5"
    assert ascii_description("Area [µm²]") == "Area [um2]"
    assert ascii_description("Angle [°]") == "Angle [deg]"
    assert ascii_description("Zellkern ☃").isascii()


def test_column_kinds() -> None:
    assert column_kind(pd.Series([True, False])) == "BoolColumn"
    assert column_kind(pd.Series([1, 2], dtype="int32")) == "LongColumn"
    assert column_kind(pd.Series([1, None], dtype="Int64")) == "DoubleColumn"
    assert column_kind(pd.Series([1.5])) == "DoubleColumn"
    assert column_kind(pd.Series(["a", None])) == "StringColumn"


def test_types_bytes_and_descriptions_survive_hdfstorage(tmp_path: Path) -> None:
    table = _objects(
        3,
        {
            "Area": [1.5, np.nan, 3.0],
            "Gate R01": [True, False, True],
            "Count": np.array([1, 2, 3], dtype=np.int32),
            "Label": ["Zelle µ", "", "ß" * 5],
            "Name/with slash": [0.0, 1.0, 2.0],
        },
        {"Area": ColumnInfo("Area ", "µm²")},
    )
    specs = plan_columns(table)
    label = next(s for s in specs if s.source == "Label")
    assert label.size == len("ß".encode()) * 5  # bytes, not characters
    write_table(tmp_path / "t.h5", table, specs, {"note": "x", "n": 3, "f": 0.5})
    served = read_table(tmp_path / "t.h5")
    assert served.column("Label").values == ["Zelle µ", "", "ß" * 5]
    assert served.column("Gate R01").values == [True, False, True]
    assert served.column("Gate R01").type_id.endswith("BoolColumn")
    assert served.column("Count").values == [1, 2, 3]
    assert served.column("Area").description == "Area  [um2]"
    assert np.isnan(served.column("Area").values[1])
    assert served.column("Name\\with slash").values == [0.0, 1.0, 2.0]
    assert served.metadata["note"] == "x" and served.metadata["n"] == 3 and served.metadata["f"] == 0.5


def test_empty_table_is_still_a_valid_file(tmp_path: Path) -> None:
    table = _objects(0, {"Area": np.array([], dtype=float), "Label": np.array([], dtype=object)})
    write_table(tmp_path / "e.h5", table, plan_columns(table), {})
    served = read_table(tmp_path / "e.h5")
    assert served.rows == 0 and "Label" in served.names


def test_wide_table_is_split_into_readable_parts(tmp_path: Path) -> None:
    n_measures = 1200
    names = [f"Intensity feature number {i:04d} of channel wv1" for i in range(n_measures)]
    values = {name: np.full(4, float(i)) for i, name in enumerate(names)}
    table = _objects(4, values)
    parts = split_columns(plan_columns(table))
    assert len(parts) > 1
    seen: list[str] = []
    for i, specs in enumerate(parts):
        write_table(tmp_path / f"p{i}.h5", table, specs, {})
        served = read_table(tmp_path / f"p{i}.h5")
        assert served.names[:10] == ["Image", "Roi", "Well", "well_row", "well_column", "well", "field", "object",
                                     "z", "t"]
        assert served.column("object").values == [0, 1, 2, 3]
        for name in served.names[10:]:
            assert served.column(name).values == [float(names.index(name))] * 4
        seen += served.names[10:]
    assert seen == names  # every measurement exactly once, in order


def test_reserved_metadata_is_refused(tmp_path: Path) -> None:
    table = _objects(1, {"Area": [1.0]})
    with pytest.raises(ValueError, match="reserved"):
        write_table(tmp_path / "m.h5", table, plan_columns(table), {"__version": "1"})


def test_well_table_starts_with_well_id_column() -> None:
    keys = well_keys_frame(np.array([0, 1]), np.array([0, 0]), 12)
    table = MeasurementTable("Wells", "wells", pd.concat([keys, pd.DataFrame({"Count": [1, 2]})], axis=1))
    specs = plan_columns(table)
    assert [(s.name, s.kind) for s in specs[:2]] == [("Well", "WellColumn"), ("well_row", "LongColumn")]


def test_measurement_named_like_an_id_column_is_renamed() -> None:
    table = _objects(1, {"Image": [3.0]})
    names = [s.name for s in plan_columns(table)]
    assert names.count("Image") == 1 and "Image (2)" in names


def test_hundreds_of_sources_fit_the_table_metadata(tmp_path: Path) -> None:
    import json

    from hcs_import.model import Plate, PlateAnalysis, Provenance, SourceFile, empty_rois
    from hcs_import.writers.bundle import sources_metadata, table_metadata

    sources = tuple(SourceFile(f"results/Well{i:04d}_mode1_z000_t000_detail_x.txt", f"{i:064x}", i)
                    for i in range(2000))
    table = _objects(2, {"Area": [1.0, 2.0]})
    analysis = PlateAnalysis("mias", Plate("P", 16, 24), (table,), empty_rois(), Provenance("mias", "1", sources))
    meta = table_metadata(analysis, table, 1, 1)
    write_table(tmp_path / "s.h5", table, plan_columns(table), meta)
    served = read_table(tmp_path / "s.h5")
    assert served.metadata["hcs_import.sources_count"] == 2000
    chunks = sorted((k for k in served.metadata if k.startswith("hcs_import.sources.")),
                    key=lambda k: int(k.rsplit(".", 1)[1]))
    assert len(chunks) > 1
    listed = [s for k in chunks for s in json.loads(served.metadata[k])]
    assert listed == [{"path": s.path, "sha256": s.sha256} for s in sources]
    small = sources_metadata(PlateAnalysis("mias", Plate("P", 8, 12), (table,), empty_rois(),
                                           Provenance("mias", "1", sources[:2])))
    assert json.loads(str(small["hcs_import.sources"]))[1]["sha256"] == sources[1].sha256


def test_two_runs_of_one_plate_into_one_folder_both_succeed(tmp_path: Path) -> None:
    """Concurrent writers: neither removes the other's staging folder; both end 0 with one good bundle."""
    import subprocess
    import sys

    from hcs_import.parsers.base import SynthSpec
    from hcs_import.synth.incell import write_incell_plate

    src = write_incell_plate(tmp_path / "P", SynthSpec(wells=96, fields=1, objects=20))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hcs_import.cli", "plate", str(src), "--out", str(out), "--no-report"]
    for _ in range(3):
        procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        assert json.loads((out / "P" / "manifest.json").read_text())["plate"]["name"] == "P"
        assert not [p for p in out.iterdir() if p.is_dir() and p.name.startswith(".")]


def test_only_leftovers_of_dead_processes_are_removed(tmp_path: Path) -> None:
    import os

    from hcs_import.writers.bundle import PARTIAL_MARK, clean_stale

    live = tmp_path / f".P{PARTIAL_MARK}{os.getpid()}-abcd1234"
    dead = tmp_path / f".P{PARTIAL_MARK}999999999-abcd1234"
    legacy = tmp_path / f".P{PARTIAL_MARK}abcd1234"
    for folder in (live, dead, legacy):
        folder.mkdir()
    clean_stale(tmp_path, "P")
    assert live.exists() and not dead.exists() and not legacy.exists()
