"""Against a real OMERO server: runs only when OMERO_HOST, OMERO_USER and OMERO_PASSWORD are set.

Creates a throw-away Plate (wells, well samples, pixel-less images), uploads a synthetic bundle in both
modes, reads the tables back through the real tables service, re-imports, and deletes everything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REQUIRED = ("OMERO_HOST", "OMERO_USER", "OMERO_PASSWORD")
MISSING = [v for v in REQUIRED if not os.environ.get(v)]
pytestmark = [
    pytest.mark.omero_server,
    pytest.mark.skipif(bool(MISSING), reason=f"live OMERO tests need {', '.join(REQUIRED)} set "
                                             f"(missing: {', '.join(MISSING)})"),
]


@pytest.fixture(scope="module")
def session() -> Iterator[Any]:
    from hcs_import.omero.connect import ServerOptions, open_session

    options = ServerOptions(os.environ["OMERO_HOST"], int(os.environ.get("OMERO_PORT", "4064")),
                            os.environ["OMERO_USER"])
    with open_session(options) as client:
        yield client.getSession()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hcs_import.parsers.base import ParseOptions, SynthSpec
    from hcs_import.pipeline import import_plate
    from hcs_import.synth.incell import write_incell_plate

    root = tmp_path_factory.mktemp("live")
    src = write_incell_plate(root / "live", SynthSpec(wells=96, fields=2, objects=2, measurements=4))
    return import_plate(src, root / "out", ParseOptions()).bundle


@pytest.fixture
def plate(session: Any) -> Iterator[int]:
    import omero.cmd
    from omero.model import ImageI, PlateI, WellI, WellSampleI
    from omero.rtypes import rint, rstring, rtime

    p = PlateI()
    p.name = rstring("hcs-import live test")
    for r in range(8):
        for c in range(12):
            w = WellI()
            w.row, w.column = rint(r), rint(c)
            for f in range(2):
                img = ImageI()
                img.name = rstring(f"r{r}c{c}f{f}")
                img.acquisitionDate = rtime(0)
                ws = WellSampleI()
                ws.image = img
                w.addWellSample(ws)
            p.addWell(w)
    pid = session.getUpdateService().saveAndReturnObject(p).getId().getValue()
    yield pid
    handle = session.submit(omero.cmd.Delete2(targetObjects={"Plate": [pid]}))
    handle.close()


def test_live_upload_both_modes_and_reimport(session: Any, bundle: Path, plate: int) -> None:
    from omero.model import OriginalFileI

    from hcs_import.omero import NS_BULK, NS_MEASUREMENT
    from hcs_import.omero.upload import upload_bundle

    m = json.loads((bundle / "manifest.json").read_text())
    first = upload_bundle(bundle, session, plate_id=plate, mode="server")
    resources = session.sharedResources()
    for t in first.tables:
        table = resources.openTable(OriginalFileI(t.file_id, False))
        try:
            assert table.getNumberOfRows() == t.rows
            names = [h.name for h in table.getHeaders()]
            if t.namespace == NS_BULK:
                assert names[0] == "Well"
            else:
                assert t.namespace == NS_MEASUREMENT and names[:2] == ["Image", "Roi"]
                data = table.read([names.index("Roi")], 0, t.rows)
                assert -1 not in data.columns[0].values
            assert table.getAllMetadata()["hcs_import.provenance_key"].getValue() == m["provenance"]["key"]
        finally:
            table.close()
    second = upload_bundle(bundle, session, plate_id=plate, mode="file")
    assert set(second.deleted["FileAnnotation"]) == {t.annotation_id for t in first.tables}
    table = resources.openTable(OriginalFileI(second.well_table.file_id, False))
    try:
        assert table.getNumberOfRows() == 96
    finally:
        table.close()
