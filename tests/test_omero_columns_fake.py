"""Strings sized in UTF-8 bytes, shapes of every kind, and the uploader importing without omero-py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("omero.clients", reason="needs omero-py: pip install 'hcs-import[omero]' (make setup does)")

import Ice
import omero
import omero.grid
import pandas as pd
import pytest
from omero.rtypes import unwrap

from fake_omero import FakeServer, oid
from hcs_import.model import (
    MeasurementTable,
    Plate,
    PlateAnalysis,
    Provenance,
    SourceFile,
    make_rois,
    object_keys_frame,
    well_keys_frame,
)
from hcs_import.omero.upload import upload_bundle
from hcs_import.writers.bundle import write_bundle


def analysis() -> PlateAnalysis:
    wells = well_keys_frame(np.array([0, 0]), np.array([0, 1]), 12)
    wells["Treatment"] = ["Ø control µM", "drug"]  # 12 characters, 15 UTF-8 bytes
    keys = object_keys_frame(np.array([0, 0, 0]), np.array([0, 0, 1]), np.array([0, 0, 0]), np.array([1, 2, 1]), 12)
    keys["Area"] = [1.0, 2.0, np.nan]
    rois = pd.concat([
        make_rois(1, population="Cells", table_row=0, object=1, well_row=0, well_column=0, field=0, shape="ellipse",
                  x=5.0, y=6.0, radius_x=2.0, radius_y=3.0, c=1, text="Cell 1"),
        make_rois(1, population="Cells", table_row=0, object=1, well_row=0, well_column=0, field=0,
                  shape="polygon", points="1,1 4,1 4,4", text="Cell 1 outline"),
        make_rois(1, population="Cells", table_row=1, object=2, well_row=0, well_column=0, field=0, shape="mask",
                  x=0.0, y=0.0, width=8.0, height=1.0, mask=b"\xff", text="Cell 2"),
        make_rois(1, population="Cells", table_row=2, object=1, well_row=0, well_column=1, field=0, shape="line",
                  x=0.0, y=0.0, x2=3.0, y2=4.0, text="Cell 1"),
    ], ignore_index=True)
    return PlateAnalysis(
        "test", Plate("U", 8, 12),
        (MeasurementTable("Cells", "objects", keys, metadata={"pixel size": 0.3700000524520874, "fields": 3}),
         MeasurementTable("Wells", "wells", wells)),
        rois, Provenance("test", "1", (SourceFile("r.txt", "0" * 64, 1),)),
    )


def test_unicode_strings_and_all_shapes(tmp_path: Path) -> None:
    bundle = write_bundle(analysis(), tmp_path)
    server = FakeServer()
    plate = server.add_plate("U", 8, 12, 1)
    report = upload_bundle(bundle, server.sf(), plate_id=oid(plate))
    wells = server.tables[report.well_table.file_id]
    col = next(c for c in wells.columns if c.name == "Treatment")
    assert isinstance(col, omero.grid.StringColumn) and col.size == len("Ø control µM".encode())
    assert col.values == ["Ø control µM", "drug"]
    rois = sorted(server.all("Roi").values(), key=oid)
    assert [len(r.copyShapes()) for r in rois] == [2, 1, 1]  # two shapes of one object share its ROI
    ellipse, polygon = rois[0].copyShapes()
    assert (unwrap(ellipse.radiusX), unwrap(ellipse.radiusY), unwrap(ellipse.theC)) == (2.0, 3.0, 1)
    assert unwrap(polygon.points) == "1,1 4,1 4,4"
    assert rois[1].copyShapes()[0].getBytes() == b"\xff"
    line = rois[2].copyShapes()[0]
    assert (unwrap(line.x2), unwrap(line.y2)) == (3.0, 4.0)
    served = server.tables[report.tables[0].file_id]
    cells = served.values()
    assert cells["Roi"] == [oid(r) for r in rois]
    # a float in table metadata reaches the real servant (which refuses RDouble) with every digit
    assert served.metadata["pixel size"] == "0.3700000524520874" and served.metadata["fields"] == 3
    assert np.isnan(cells["Area"][2])


def test_real_servant_rules_the_uploader_relies_on() -> None:
    """What omero-py's table servant (not a fake) enforces: strings within their byte size, column types as
    initialized, rtypes other than RDouble in metadata, nothing after close. It matches addData columns by
    position, not by name: the uploader must send them in the initialized order itself."""
    from omero.rtypes import rdouble, rfloat, rlong, rstring

    server = FakeServer()
    table = server.sf().sharedResources().newTable(1, "t")
    table.initialize([omero.grid.StringColumn("s", "", 3, [])])
    with pytest.raises(omero.ValidationException, match="Maximum string \\(byte\\) length in column s is 3"):
        table.addData([omero.grid.StringColumn("s", "", 3, ["µµ"])])  # 2 characters, 4 bytes
    with pytest.raises(omero.InternalException):
        table.addData([omero.grid.LongColumn("s", "", [1])])
    table.addData([omero.grid.StringColumn("renamed", "", 3, ["ab"])])  # accepted: matched by position
    with pytest.raises(omero.ValidationException, match="Unsupported type"):
        table.setAllMetadata({"k": rdouble(1.5)})
    table.setAllMetadata({"a": rstring("x"), "b": rlong(2), "c": rfloat(0.5)})
    table.setAllMetadata({"d": rstring("y")})  # replaces, does not merge
    assert table.getNumberOfRows() == 1
    table.close()
    with pytest.raises(Ice.ObjectNotExistException):
        table.getNumberOfRows()
    [(_, stored)] = server.tables.items()
    assert stored.values() == {"s": ["ab"]}
    assert {k: v for k, v in stored.metadata.items() if not k.startswith("__")} == {"d": "y"}


def test_hcs_import_runs_without_omero(tmp_path: Path) -> None:
    """Without the [omero] extra: the CLI and even the upload modules import; upload says what to install."""
    code = (
        "import sys\nsys.modules['omero'] = None\n"
        "import hcs_import.cli, hcs_import.omero.upload as u\n"
        "from hcs_import.omero.connect import OmeroMissing\n"
        "try:\n    u.upload_bundle(None, None, plate_id=1)\nexcept OmeroMissing as e:\n    print('MISSING', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "MISSING uploading to OMERO needs omero-py" in out.stdout
