"""`hcs-import status` and `remove` against the in-memory server (tables on omero-py's real servant)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("omero.clients", reason="needs omero-py: pip install 'hcs-import[omero]' (make setup does)")

from omero.model import FileAnnotationI, OriginalFileI, PlateAnnotationLinkI, PlateI
from omero.rtypes import rstring

from fake_omero import FakeServer, oid
from hcs_import.errors import HcsImportError
from hcs_import.omero import NS_BULK
from hcs_import.omero.status import VIEWER_ROI_LIMIT, parse_target, remove, status
from hcs_import.omero.upload import upload_bundle
from hcs_import.parsers.base import ParseOptions, SynthSpec
from hcs_import.pipeline import import_plate
from hcs_import.synth.incell import write_incell_plate


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("status")
    src = write_incell_plate(root / "src", SynthSpec(wells=96, fields=2, objects=3))
    return import_plate(src, root / "out", ParseOptions()).bundle


def foreign_table(server: FakeServer, plate: object, bundle: Path) -> int:
    """A table someone else attached (not made by hcs-import): status lists it, remove never touches it."""
    f = server.add_file(bundle / "manifest.json", "theirs.h5", "OMERO.tables")
    ann = FileAnnotationI()
    ann.ns, ann.description, ann.file = rstring(NS_BULK), rstring("their table"), OriginalFileI(f, False)
    link = PlateAnnotationLinkI()
    link.parent, link.child = PlateI(oid(plate), False), ann
    return oid(server.sf().getUpdateService().saveAndReturnObject(link).getChild())


def test_targets_are_written_as_the_omero_cli_writes_them() -> None:
    assert parse_target("Plate:51") == ("Plate", 51) and parse_target("screen:3") == ("Screen", 3)
    for bad in ("51", "Plate:", "Dataset:2", "Plate:x"):
        with pytest.raises(HcsImportError, match="expected Plate:ID or Screen:ID"):
            parse_target(bad)


def test_status_lists_uploads_and_what_each_viewer_shows(bundle: Path) -> None:
    server = FakeServer()
    plate = server.add_plate("P1", 8, 12, 2)
    theirs = foreign_table(server, plate, bundle)
    report = upload_bundle(bundle, server.sf(), plate_id=oid(plate))
    lines = status(server.sf(), f"Plate:{oid(plate)}")
    text = "\n".join(lines)
    assert lines[0] == f"Plate {oid(plate)}: 1 hcs-import upload, {report.created['Roi']} hcs-import ROIs"
    assert f"incell, provenance {report.provenance_key}: 3 tables, 1 source files" in text  # the report
    wells = report.well_table
    assert f"OMERO.web (Well): FileAnnotation {wells.annotation_id} (P1 Wells: per well" in text  # the newest
    assert f"omero-parade: FileAnnotation {theirs} (their table) on the Plate" in text  # the first one
    objects = [t.annotation_id for t in report.tables if t.kind == "objects"]
    assert all(f"FileAnnotation {a} (P1 " in text.split("OMERO.insight (measurements): ")[1] for a in objects)
    assert f"no image over OMERO.web's ROI limit ({VIEWER_ROI_LIMIT})" in text


def test_status_names_images_over_the_roi_limit(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hcs_import.omero.status.VIEWER_ROI_LIMIT", 5)
    server = FakeServer()
    plate = server.add_plate("P1", 8, 12, 2)
    upload_bundle(bundle, server.sf(), plate_id=oid(plate))
    text = "\n".join(status(server.sf(), f"Plate:{oid(plate)}"))
    per_image: dict[int, int] = {}
    for r in server.all("Roi").values():
        per_image[oid(r.getImage())] = per_image.get(oid(r.getImage()), 0) + 1
    over = sum(1 for n in per_image.values() if n > 5)
    assert over and f"images over OMERO.web's ROI limit (5): {over}: " in text


def test_screen_target_and_parade_on_the_screen_table(bundle: Path) -> None:
    server = FakeServer()
    plate = server.add_plate("P1", 8, 12, 2)
    screen = server.add_screen("S", [plate])
    report = upload_bundle(bundle, server.sf(), plate_id=oid(plate))
    text = "\n".join(status(server.sf(), f"Screen:{screen}"))
    assert text.startswith(f"Screen {screen}: 1 plates")
    assert f"omero-parade: FileAnnotation {report.screen_tables[0].annotation_id} (P1 Wells: per well" in text
    assert "on the Screen" in text


def test_remove_deletes_only_what_hcs_import_made(bundle: Path) -> None:
    server = FakeServer()
    plate = server.add_plate("P1", 8, 12, 2)
    server.add_screen("S", [plate])
    theirs = foreign_table(server, plate, bundle)
    report = upload_bundle(bundle, server.sf(), plate_id=oid(plate))
    dry = remove(server.sf(), f"Plate:{oid(plate)}", dry_run=True)
    n_anns = len(report.tables) + len(report.screen_tables) + 1  # + the report
    assert dry == [f"Plate {oid(plate)}: would delete {n_anns} FileAnnotations (tables, source files) and "
                   f"{report.created['Roi']} ROIs made by hcs-import"]
    assert server.counts_by_type()["Roi"] == report.created["Roi"]
    remove(server.sf(), f"Plate:{oid(plate)}")
    assert not server.all("Roi") and set(server.all("FileAnnotation")) == {theirs}
    assert not server.all("ScreenAnnotationLink")
    assert "0 hcs-import uploads" in status(server.sf(), f"Plate:{oid(plate)}")[0]


def test_cli_status_and_remove(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from contextlib import contextmanager

    from click.testing import CliRunner

    from fake_omero import FakeClient
    from hcs_import.cli import main

    server = FakeServer()
    plate = server.add_plate("P1", 8, 12, 2)
    upload_bundle(bundle, server.sf(), plate_id=oid(plate))

    @contextmanager
    def fake_open(options):  # type: ignore[no-untyped-def]
        yield FakeClient(server)

    monkeypatch.setattr("hcs_import.omero.connect.open_session", fake_open)
    runner = CliRunner()
    shown = runner.invoke(main, ["status", f"Plate:{oid(plate)}", "--server", "h"], env={"OMERO_SESSION_KEY": "k"})
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith(f"Plate {oid(plate)}: 1 hcs-import upload")
    bad = runner.invoke(main, ["status", "51", "--server", "h"], env={"OMERO_SESSION_KEY": "k"})
    assert bad.exit_code == 2 and "expected Plate:ID or Screen:ID" in bad.output
    gone = runner.invoke(main, ["remove", f"Plate:{oid(plate)}", "--server", "h"], env={"OMERO_SESSION_KEY": "k"})
    assert gone.exit_code == 0 and "deleted 4 FileAnnotations" in gone.output and not server.all("Roi")
