"""The CLI's OMERO side against the fake server: plate --server, import, hook; no password leaks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("omero.clients", reason="needs omero-py: pip install 'hcs-import[omero]' (make setup does)")

from omero.rtypes import unwrap

from fake_omero import FakeClient, FakeServer, oid
from hcs_import.cli import main
from hcs_import.omero import NS_BULK, NS_RAW
from hcs_import.omero.connect import ServerOptions
from hcs_import.omero.hook import pair_plates, parse_plate_ids
from hcs_import.parsers.base import ParseOptions, SynthSpec
from hcs_import.pipeline import import_plate
from hcs_import.synth.incell import write_incell_plate

SECRET = "s3cret-Pa55"


@pytest.fixture(scope="module")
def small_plate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("small")
    src = write_incell_plate(root / "P7", SynthSpec(wells=12, fields=1, objects=2, populations=1, measurements=3))
    return src, import_plate(src, root / "out", ParseOptions()).bundle


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeServer, list[ServerOptions]]]:
    fake = FakeServer()
    seen: list[ServerOptions] = []

    @contextmanager
    def fake_open(options: ServerOptions) -> Iterator[FakeClient]:
        seen.append(options)
        if not options.session_key:
            assert options.password() == SECRET  # from OMERO_PASSWORD or the prompt, exactly once per session
        yield FakeClient(fake)

    monkeypatch.setattr("hcs_import.omero.upload.open_session", fake_open)
    monkeypatch.setattr("hcs_import.omero.connect.open_session", fake_open)
    monkeypatch.setenv("OMERO_PASSWORD", SECRET)
    yield fake, seen


def test_plate_upload_bundle_and_dry_run(small_plate: tuple[Path, Path], server: Any) -> None:
    src, bundle = small_plate
    fake, seen = server
    plate = fake.add_plate("P7", 8, 12, 1)
    runner = CliRunner()
    dry = runner.invoke(main, ["plate", str(bundle), "--server", "omero.example.org", "--user", "alice",
                               "--plate-id", str(oid(plate)), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would create" in dry.output and not fake.all("FileAnnotation")
    res = runner.invoke(main, ["plate", str(src), "--server", "omero.example.org", "--user", "alice",
                               "--plate-name", "P7"])
    assert res.exit_code == 0, res.output
    assert SECRET not in res.output and SECRET not in repr(seen[-1])
    assert seen[-1].host == "omero.example.org" and seen[-1].user == "alice"
    namespaces = sorted(unwrap(a.ns) for a in fake.all("FileAnnotation").values())
    assert NS_BULK in namespaces and NS_RAW in namespaces  # raw files attached when PATH is the plate folder
    again = runner.invoke(main, ["plate", str(bundle), "--server", "h", "--user", "alice",
                                 "--plate-id", str(oid(plate)), "--dry-run"])
    assert "would delete (previous import of this plate and format)" in again.output
    kept = runner.invoke(main, ["plate", str(bundle), "--server", "h", "--user", "alice",
                                "--plate-id", str(oid(plate)), "--dry-run", "--keep-previous"])
    assert kept.exit_code == 0, kept.output
    # the same files are always replaced; --keep-previous only spares other analyses of the plate
    assert "would delete (previous import of this source)" in kept.output


def test_plate_without_server_needs_out(small_plate: tuple[Path, Path]) -> None:
    res = CliRunner().invoke(main, ["plate", str(small_plate[0])])
    assert res.exit_code == 2 and "--out is required" in res.output


def test_plate_missing_image_exits_nonzero(small_plate: tuple[Path, Path], server: Any) -> None:
    _, bundle = small_plate
    fake, _ = server
    plate = fake.add_plate("P7", 8, 12, 1, without={(0, 0, 0)})
    res = CliRunner().invoke(main, ["plate", str(bundle), "--server", "h", "--user", "a",
                                    "--plate-id", str(oid(plate))])
    assert res.exit_code == 2 and "A01 field 1 has results but no Image" in res.output
    assert not fake.all("Roi")


def test_hook_uploads_to_given_plate(small_plate: tuple[Path, Path], server: Any) -> None:
    src, _ = small_plate
    fake, _ = server
    plate = fake.add_plate("whatever", 8, 12, 1)
    key_file = src.parent / "key.txt"
    key_file.write_text("abc\n")
    res = CliRunner().invoke(main, ["hook", "--plate-id", str(oid(plate)), "--path", str(src), "--server", "h",
                                    "--session-key-file", str(key_file)])
    assert res.exit_code == 0, res.output
    assert server[1][-1].session_key == "abc"
    m = json.loads((small_plate[1] / "manifest.json").read_text())
    # tables + raw files + the report
    assert len(fake.all("FileAnnotation")) == len(m["tables"]) + len(m["sources"]) + 1
    assert all(oid(lk.getParent()) == oid(plate) for lk in fake.all("PlateAnnotationLink").values())


def test_import_runs_omero_import_and_uploads(small_plate: tuple[Path, Path], server: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    src, _ = small_plate
    fake, _ = server
    plate = fake.add_plate("P7", 8, 12, 1)
    calls = []

    def fake_run(host: str, port: int, key: str, args: Any, path: Path) -> str:
        calls.append((host, port, key, tuple(args), path))
        return f"some log line\nPlate:{oid(plate)}\n"

    monkeypatch.setattr("hcs_import.omero.hook.run_omero_import", fake_run)
    res = CliRunner().invoke(main, ["import", str(src), "--server", "h", "--user", "u", "--",
                                    "-T", "Screen:name:S"])
    assert res.exit_code == 0, res.output
    assert calls == [("h", 4064, "fake-session-key", ("-T", "Screen:name:S"), src)]
    m = json.loads((small_plate[1] / "manifest.json").read_text())
    assert len(fake.links("PlateAnnotationLink", parent=oid(plate))) == len(m["tables"]) + len(m["sources"]) + 1


def test_parse_plate_ids_and_pairing(tmp_path: Path) -> None:
    out = "Image:1,2,3\nPlate:51\nPlate:52,53\nother\n"
    assert parse_plate_ids(out) == [51, 52, 53]
    a, b = tmp_path / "A", tmp_path / "B"
    assert pair_plates({51: "x"}, [a]) == ([(51, a)], [])
    pairs, problems = pair_plates({51: "B", 52: "C"}, [a, b])
    assert pairs == [(51, b)] and problems == ["Plate 52 (C): no analysis folder of that name"]


def test_unreachable_server_is_one_line_and_leaks_nothing(small_plate: tuple[Path, Path],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMERO_PASSWORD", SECRET)
    res = CliRunner().invoke(main, ["plate", str(small_plate[1]), "--server", "127.0.0.1", "--port", "1",
                                    "--user", "alice", "--plate-id", "1"])
    assert res.exit_code == 2
    assert "127.0.0.1:1: cannot connect" in res.output and SECRET not in res.output
    assert "Traceback" not in res.output


def test_password_prompt_when_no_environment(small_plate: tuple[Path, Path], server: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fake, seen = server
    monkeypatch.delenv("OMERO_PASSWORD")
    plate = fake.add_plate("P7", 8, 12, 1)
    res = CliRunner().invoke(main, ["plate", str(small_plate[1]), "--server", "h", "--user", "alice",
                                    "--plate-id", str(oid(plate)), "--dry-run"], input=f"{SECRET}\n")
    assert res.exit_code == 0, res.output
    assert "OMERO password for alice@h" in res.output and SECRET not in res.output
    assert seen and seen[-1].user == "alice"  # the fake checked the prompted password
