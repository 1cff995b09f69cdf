"""The OMERO.script's logic and the OMERO CLI plugin, against the fake server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("omero.clients", reason="needs omero-py: pip install 'hcs-import[omero]' (make setup does)")

from omero.model import FileAnnotationI, OriginalFileI, PlateAnnotationLinkI, PlateI
from omero.rtypes import rstring, unwrap

from fake_omero import FakeClient, FakeServer, oid
from hcs_import.omero import NS_BULK, NS_MEASUREMENT, NS_RAW, NS_REPORT
from hcs_import.omero.server_side import run
from hcs_import.parsers.base import ParseOptions, SynthSpec
from hcs_import.pipeline import import_plate
from hcs_import.synth.incell import write_incell_plate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_plate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("small")
    src = write_incell_plate(root / "P9", SynthSpec(wells=12, fields=1, objects=2, populations=1, measurements=3))
    return src, import_plate(src, root / "out", ParseOptions()).bundle


def attach(server: FakeServer, plate_id: int, path: Path, ns: str) -> None:
    ann = FileAnnotationI()
    ann.ns = rstring(ns)
    ann.file = OriginalFileI(server.add_file(path), False)
    link = PlateAnnotationLinkI()
    link.parent, link.child = PlateI(plate_id, False), ann
    server.sf().getUpdateService().saveAndReturnObject(link)


def test_script_reads_attachments_and_uploads(small_plate: tuple[Path, Path]) -> None:
    src, bundle = small_plate
    server = FakeServer()
    plate = server.add_plate("P9", 8, 12, 1)
    other = server.add_plate("empty", 8, 12, 1)
    screen = server.add_screen("S", [plate, other])
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        attach(server, oid(plate), f, NS_RAW)
    message, ann_id = run(server.sf(), "Screen", [screen])
    assert f"Plate {oid(plate)} (" in message and f"Plate {oid(other)}: no fileset files" in message
    ann = server.all("FileAnnotation")[ann_id]
    assert unwrap(ann.ns) == NS_BULK
    namespaces = sorted(unwrap(a.ns) for a in server.all("FileAnnotation").values())
    m = json.loads((bundle / "manifest.json").read_text())
    n_files = len([p for p in src.rglob("*") if p.is_file()])
    assert namespaces.count(NS_RAW) == n_files  # not attached twice
    assert namespaces.count(NS_MEASUREMENT) == len([t for t in m["tables"] if t["kind"] == "objects"])
    assert len(server.all("Roi")) == m["rois"]["count"]
    # Running it again replaces its own objects and keeps the user's attachments.
    before = server.counts_by_type()
    run(server.sf(), "Plate", [oid(plate)])
    assert server.counts_by_type() == before


def test_script_reads_fileset_with_client_paths(small_plate: tuple[Path, Path]) -> None:
    src, _ = small_plate
    server = FakeServer()
    plate = server.add_plate("P9", 8, 12, 1)
    server.filesets[oid(plate)] = [(server.add_file(f), f"data/screens/{src.name}/{f.name}")
                                   for f in sorted(src.iterdir()) if f.is_file()]
    message, ann_id = run(server.sf(), "Plate", [oid(plate)], dry_run=True)
    assert message.startswith("would import analysis for 1 plate") and ann_id is None
    assert not server.all("Roi")


def test_script_file_is_a_valid_omero_script() -> None:
    path = ROOT / "src/hcs_import/omero/scripts/HCS_Import_Analysis.py"
    text = path.read_text()
    compile(text, str(path), "exec")
    for name in ("Data_Type", "IDs", "File_Annotation", "Message"):
        assert f'"{name}"' in text


def test_plugin_help_through_omero_cli(tmp_path: Path) -> None:
    """`omero hcs-import --help`: the OMERO CLI discovers the plugin from sys.path (as bin/omero does)."""
    code = ("from omero.cli import CLI\ncli = CLI()\ncli.loadplugins()\n"
            "cli.invoke(['hcs-import', '--help'], strict=True)\n"
            "cli.invoke(['hcs-import', 'upload', '--help'], strict=True)\n")
    env = {**os.environ, "HOME": str(tmp_path), "OMERO_USERDIR": str(tmp_path / "omero")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Import high-content-screening analysis results" in out.stdout
    assert "--plate-id" in out.stdout and "--mode" in out.stdout
    for option in ("--plate-geometry", "--bad-values", "--no-rois", "--workers", "--column-map", "--source-plate",
                   "--platemap",
                   "--keep-previous", "--no-object-tables"):  # every `hcs-import plate` option
        assert option in out.stdout, option


def test_plugin_upload_uses_cli_session(small_plate: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    from omero.cli import CLI

    from hcs_import.omero.plugin import HELP, HcsImportControl

    _, bundle = small_plate
    server = FakeServer()
    plate = server.add_plate("P9", 8, 12, 1)
    cli = CLI()
    cli.register("hcs-import", HcsImportControl, HELP)
    cli.conn = lambda args=None: FakeClient(server)  # what `omero login` / -k would give
    cli.invoke(["hcs-import", "upload", str(bundle), "--plate-id", str(oid(plate))], strict=True)
    assert cli.rv == 0
    assert "created:" in capsys.readouterr().out
    assert {unwrap(a.ns) for a in server.all("FileAnnotation").values()} == {NS_BULK, NS_MEASUREMENT, NS_REPORT}


def test_plugin_passes_the_plate_options_on(small_plate: tuple[Path, Path], tmp_path: Path) -> None:
    """A plate folder through `omero hcs-import upload` with --no-rois, --bad-values nan, --plate-geometry and
    --no-object-tables: each reaches the parse or the upload."""
    from omero.cli import CLI

    from hcs_import.omero.plugin import HELP, HcsImportControl

    src, _ = small_plate
    server = FakeServer()
    plate = server.add_plate("P9", 8, 12, 1)
    cli = CLI()
    cli.register("hcs-import", HcsImportControl, HELP)
    cli.conn = lambda args=None: FakeClient(server)
    cli.invoke(["hcs-import", "upload", str(src), "--plate-id", str(oid(plate)), "--no-rois", "--bad-values", "nan",
                "--plate-geometry", "8x12", "--no-object-tables", "--workers", "1"], strict=True)
    assert cli.rv == 0
    assert not server.all("Roi")
    assert {unwrap(a.ns) for a in server.all("FileAnnotation").values()} == {NS_BULK, NS_RAW, NS_REPORT}
