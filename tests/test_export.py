"""`hcs-import export`: every table as Parquet / CSV with pycytominer keys, streamed, with OMERO ids after upload."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

pytest.importorskip("omero.clients", reason="needs omero-py: pip install 'hcs-import[omero]' (make setup does)")

from fake_omero import FakeServer, oid
from hcs_import.export import export_bundle
from hcs_import.model import (
    MeasurementTable,
    Plate,
    PlateAnalysis,
    Provenance,
    SourceFile,
    empty_rois,
    object_keys_frame,
)
from hcs_import.omero.upload import upload_bundle
from hcs_import.parsers.base import ParseOptions, SynthSpec
from hcs_import.pipeline import import_plate
from hcs_import.synth.incell import write_incell_plate
from hcs_import.writers.bundle import write_bundle
from omero_reader import read_table


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("export")
    src = write_incell_plate(root / "src", SynthSpec(wells=96, fields=2, objects=4, seed=6))
    return src, import_plate(src, root / "out", ParseOptions()).bundle


def test_parquet_holds_every_value_and_the_pycytominer_keys(plate: tuple[Path, Path], tmp_path: Path) -> None:
    _, bundle = plate
    files = export_bundle(bundle, tmp_path / "pq", "parquet", batch_rows=97)  # many small batches
    assert sorted(f.name for f in files) == ["src_Cells.parquet", "src_Nuclei.parquet", "src_Wells.parquet"]
    cells = pq.read_table(tmp_path / "pq" / "src_Cells.parquet").to_pandas()
    served = read_table(bundle / "Cells.h5")
    assert len(cells) == served.rows
    for column in served.columns:
        got = cells[column.name].tolist()
        assert got == column.values or np.allclose(np.array(got, float), np.array(column.values, float),
                                                   equal_nan=True), column.name
    assert (cells["Metadata_Plate"] == "src").all()
    assert cells["Metadata_Well"].tolist() == cells["well"].tolist()
    assert (cells["Metadata_Site"] == cells["field"] + 1).all()
    assert (cells["Metadata_ObjectNumber"] == cells["object"]).all()
    wells = pq.read_table(tmp_path / "pq" / "src_Wells.parquet").to_pandas()
    assert len(wells) == 96 and "Metadata_Site" not in wells and "Metadata_ObjectNumber" not in wells


def test_csv_and_a_table_split_for_width_is_joined(tmp_path: Path) -> None:
    keys = object_keys_frame(np.zeros(5, int), np.arange(5), np.zeros(5, int), np.arange(1, 6), 12)
    wide = pd.DataFrame({f"measurement number {i:04d} with a long name": np.arange(5) * i
                         for i in range(900)})  # wider than one HDF5 table holds: written as two parts
    keys = pd.concat([keys, wide], axis=1)
    analysis = PlateAnalysis("test", Plate("W", 8, 12), (MeasurementTable("Wide", "objects", keys),), empty_rois(),
                             Provenance("test", "1", (SourceFile("r.txt", "0" * 64, 1),)))
    bundle = write_bundle(analysis, tmp_path)
    assert len([p for p in bundle.glob("Wide*.h5")]) >= 2
    [out] = [f for f in export_bundle(bundle, tmp_path / "csv", "csv") if "Wide" in f.name]
    frame = pd.read_csv(out)
    assert len(frame) == 5 and frame["measurement number 0899 with a long name"].tolist() == [0, 899, 1798, 2697, 3596]
    assert list(frame.columns).count("well") == 1


def test_after_upload_the_omero_ids_are_exported(plate: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    _, bundle = plate
    copy = Path(shutil.copytree(bundle, tmp_path / "b"))
    server = FakeServer()
    omero_plate = server.add_plate("src", 8, 12, 2)
    report = upload_bundle(copy, server.sf(), plate_id=oid(omero_plate))
    export_bundle(copy, tmp_path / "pq")
    cells = pq.read_table(tmp_path / "pq" / "src_Cells.parquet").to_pandas()
    on_server = server.tables[next(t.file_id for t in report.tables if t.name == "Cells.h5")].values()
    assert cells["Roi"].tolist() == on_server["Roi"] and cells["Image"].tolist() == on_server["Image"]
    assert (cells["Roi"] > 0).all() and (cells["OMERO_Plate"] == oid(omero_plate)).all()


def test_export_streams_in_flat_memory(tmp_path: Path) -> None:
    """Peak traced memory of exporting a 400,000-row table in 20,000-row batches stays far below the table."""
    n = 400_000
    keys = object_keys_frame(np.zeros(n, int), np.zeros(n, int), np.zeros(n, int), np.arange(n), 12)
    for i in range(8):
        keys[f"m{i}"] = np.random.default_rng(i).normal(size=n)
    analysis = PlateAnalysis("test", Plate("Big", 8, 12), (MeasurementTable("Big", "objects", keys),), empty_rois(),
                             Provenance("test", "1", (SourceFile("r.txt", "0" * 64, 1),)))
    bundle = write_bundle(analysis, tmp_path)
    table_bytes = int(keys.memory_usage(deep=True).sum())
    del keys, analysis
    tracemalloc.start()
    export_bundle(bundle, tmp_path / "pq", batch_rows=20_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert pq.read_metadata(tmp_path / "pq" / "Big_Big.parquet").num_rows == n
    assert peak < table_bytes / 5, (peak, table_bytes)
