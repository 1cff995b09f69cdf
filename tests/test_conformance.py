"""One contract, every registered format: what a format plug-in must do, checked the same way for all.

For each format's generated plate: `detect` names it, `locate` answers with a source whose files exist
inside the plate folder and carry analysis results, `plate --out` writes a bundle that omero-py's
HdfStorage serves value for value and whose manifest records the located source, an empty folder is
refused with a reason, and a damaged result file gives exit 2 with one line and no output. A new format
is covered by registering it; format-specific behaviour stays in the format's own test file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bundle_check import assert_bundle_matches
from hcs_import.manifest import SCHEMA_VERSION, read_manifest
from hcs_import.parsers import registry
from hcs_import.parsers.base import Evidence, NotAPlate, ParseOptions, PlateSource, SynthSpec

FORMATS = sorted(registry.available())
SPEC = SynthSpec(wells=96, fields=1, objects=3, seed=5)


@pytest.fixture(scope="module")
def plates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("conformance")
    made = {}
    for name in FORMATS:
        parser = registry.get(name)
        assert parser.synthesize is not None, f"{name} has no generator: the contract cannot be checked"
        made[name] = parser.synthesize(base / name, SPEC)
    return made


@pytest.fixture
def plate(request: pytest.FixtureRequest, plates: dict[str, Path], tmp_path: Path) -> Path:
    """A private copy of the format's plate (a test may damage it)."""
    copy = tmp_path / "in" / plates[request.param].name
    src = plates[request.param]
    if src.is_dir():
        shutil.copytree(src, copy)
    else:
        copy.parent.mkdir(parents=True)
        shutil.copy2(src, copy)
    return copy


@pytest.mark.parametrize("plate", FORMATS, indirect=True)
def test_located_as_its_own_format_with_its_files(request: pytest.FixtureRequest, plate: Path, cli) -> None:  # type: ignore[no-untyped-def]
    name = request.node.callspec.params["plate"]
    source = registry.locate(plate)
    assert isinstance(source, PlateSource) and source.format == name
    assert source.evidence >= Evidence.NAMES, "a generated plate carries analysis results"
    root = source.bounds.resolve()
    files = source.all_files()
    assert files and all(p.is_file() and p.resolve().is_relative_to(root) for p in files)
    assert all(group for group in source.files.values()), "empty roles are left out"
    assert registry.get(name).matches(plate)
    detected = cli("detect", plate)
    assert detected.exit_code == 0 and detected.output.split("\t")[0] == name, detected.output
    assert "evidence:" in detected.output


@pytest.mark.parametrize("name", FORMATS)
def test_an_empty_or_foreign_folder_is_refused_with_a_reason(name: str, tmp_path: Path) -> None:
    parser = registry.get(name)
    empty = tmp_path / "empty"
    empty.mkdir()
    found = registry.locate_with(parser, empty)
    assert isinstance(found, NotAPlate) and found.format == name and len(found.reason) > 10
    (empty / "notes.txt").write_text("nothing to see\n", encoding="utf-8")
    assert not parser.matches(empty)


@pytest.mark.parametrize("plate", FORMATS, indirect=True)
def test_plate_bundle_served_by_hdfstorage_and_records_its_source(request: pytest.FixtureRequest, plate: Path,  # type: ignore[no-untyped-def]
                                                                 cli, tmp_path: Path) -> None:
    name = request.node.callspec.params["plate"]
    out = tmp_path / "out"
    result = cli("plate", plate, "--out", out, "--no-report")
    assert result.exit_code == 0, result.output
    (bundle,) = [p for p in out.iterdir() if p.is_dir()]
    manifest = assert_bundle_matches(bundle, registry.get(name).parse(plate, ParseOptions()))
    assert read_manifest(bundle)["schema_version"] == SCHEMA_VERSION
    located = manifest["provenance"]["located"]
    assert located["format"] == name and located["files"]
    listed = {f for group in located["files"].values() for f in group}
    assert {Path(s["path"]).name for s in manifest["sources"]} <= {Path(p).name for p in listed}


def _largest_result_file(source: PlateSource) -> Path:
    # roles read for the layout only (a MIAS batch file gives just the plate geometry) are not damaged
    layout_roles = {"layout", "images", "experiment", "descriptor", "log", "template", "batch_results"}
    results = [p for role, group in source.files.items() if role not in layout_roles for p in group]
    return max(results, key=lambda p: (p.stat().st_size, str(p)))


@pytest.mark.parametrize("plate", FORMATS, indirect=True)
def test_a_damaged_result_file_is_one_line_and_no_output(plate: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = _largest_result_file(registry.locate(plate))
    data = target.read_bytes()
    cut = len(data) * 3 // 5
    target.write_bytes(data[:cut] + b"\x00\xff#DIV/0!\x00" + data[cut + 40:])
    out = tmp_path / "out"
    result = cli("plate", plate, "--out", out)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, (target.name, result.output)
    assert len(lines) == 1 and len(lines[0]) <= 400, result.stderr
    assert target.name in lines[0] or plate.name in lines[0], lines[0]
    assert not out.exists() or not any(p for p in out.iterdir() if not p.name.startswith("."))
