"""The typed plate source: ranking between formats, links out of the folder, a parser that raises,
the batch fingerprint over the parser's own files, and the manifest's schema version."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from hcs_import.batch.discover import discover
from hcs_import.batch.ledger import LEDGER_NAME
from hcs_import.batch.runner import BatchConfig, run_batch
from hcs_import.errors import OutputError
from hcs_import.manifest import SCHEMA_VERSION, check_manifest, read_manifest
from hcs_import.parsers import registry
from hcs_import.parsers.base import Evidence, FormatParser, NotAPlate, ParseOptions, SynthSpec
from hcs_import.pipeline import import_plate
from hcs_import.synth.columbus import write_columbus_export
from hcs_import.synth.incarta import write_incarta_plate
from hcs_import.synth.incell import write_incell_plate

SMALL = SynthSpec(wells=96, fields=1, objects=3, measurements=4, populations=2, seed=4)


def config(root: Path, out: Path) -> BatchConfig:
    return BatchConfig(root=root, out=out, ledger=out / LEDGER_NAME, workers=1, progress=False)


def test_content_evidence_outranks_a_bare_layout_file(tmp_path: Path) -> None:
    """IN Carta CSVs beside the InCell .xdce of their images: both formats answer, IN Carta ranks first
    because its CSVs were recognised by their headers and InCell found only its layout file."""
    plate = write_incarta_plate(tmp_path / "ic", SMALL)
    xdce = next(write_incell_plate(tmp_path / "other", SMALL).glob("*.xdce"))
    shutil.copy2(xdce, plate / "images.xdce")
    sources, _ = registry.locate_all(plate)
    assert [(s.format, s.evidence) for s in sources] == [("incarta", Evidence.CONTENT), ("incell", Evidence.LAYOUT)]
    assert sources[0].files["layout"] == (plate / "images.xdce",)


def test_a_link_out_of_the_plate_folder_is_never_read(tmp_path: Path) -> None:
    plate = write_columbus_export(tmp_path / "plate", SMALL)
    outside = write_columbus_export(tmp_path / "elsewhere", SynthSpec(wells=96, fields=1, objects=2, seed=9))
    foreign = next(p for p in outside.rglob("*.txt") if "Objects" in p.name)
    (plate / "linked.txt").symlink_to(foreign)
    (plate / "linked-dir").symlink_to(outside, target_is_directory=True)
    before = registry.locate(write_columbus_export(tmp_path / "twin", SMALL))
    source = registry.locate(plate)
    assert len(source.all_files()) == len(before.all_files())
    assert not any("linked" in str(p) for p in source.all_files())
    manifest = import_plate(plate, tmp_path / "out", ParseOptions(report=False)).manifest
    assert not any("linked" in s["path"] for s in manifest["sources"])
    assert manifest["tables"][0]["rows"] == import_plate(tmp_path / "twin", tmp_path / "out2",
                                                         ParseOptions(report=False)).manifest["tables"][0]["rows"]


def test_a_parser_that_raises_is_not_a_match_for_plate_and_batch_alike(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path: Path) -> NotAPlate:
        raise RuntimeError("plug-in bug")

    bad = FormatParser(name="broken", version="0", description="a broken plug-in", looks_for="anything",
                       locate=broken, parse=lambda p, o: None)  # type: ignore[arg-type,return-value]
    parsers = {**registry.available(), "broken": bad}
    monkeypatch.setattr(registry, "available", lambda: parsers)
    plate = write_incell_plate(tmp_path / "root" / "p", SMALL)
    assert registry.locate(plate).format == "incell"
    _, refusals = registry.locate_all(plate)
    assert [r.reason for r in refusals if r.format == "broken"] == ["could not look at it: RuntimeError: plug-in bug"]
    assert [f.format for f in discover(tmp_path / "root")] == ["incell"]


def test_an_added_image_does_not_reimport_but_a_new_result_file_does(tmp_path: Path) -> None:
    root = tmp_path / "root"
    plate = write_columbus_export(root / "p", SMALL)
    out = tmp_path / "out"
    assert run_batch(config(root, out)).count("ok") == 1
    (plate / "r01c01f01p01-ch1sk1fk1fl1.tiff").write_bytes(b"II*\x00" + bytes(100))  # an image arrives late
    second = run_batch(config(root, out))
    assert (second.count("ok"), second.count("skipped")) == (0, 1)
    extra = next(p for p in plate.rglob("*.txt") if "Objects" in p.name)
    shutil.copy2(extra, extra.parent / "Objects_Population - Late.txt")
    third = run_batch(config(root, out))
    assert third.count("ok") == 1 and "added" in third.plates[0].reason


def test_two_same_named_plates_in_one_tree_both_import(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_columbus_export(root / "run1" / "scan", SMALL)
    write_columbus_export(root / "run2" / "scan", SynthSpec(wells=96, fields=1, objects=2, seed=8))
    summary = run_batch(config(root, tmp_path / "out"))
    assert (summary.count("ok"), summary.count("failed")) == (2, 0), [p.error for p in summary.plates]
    bundles = sorted(p.parent.relative_to(tmp_path / "out").as_posix()
                     for p in (tmp_path / "out").rglob("manifest.json"))
    assert len(bundles) == 2 and bundles[0].startswith("run1/scan/") and bundles[1].startswith("run2/scan/")


def test_manifest_has_a_schema_version_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    plate = write_incell_plate(tmp_path / "p", SMALL)
    bundle = import_plate(plate, tmp_path / "out", ParseOptions(report=False)).bundle
    manifest = read_manifest(bundle)
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["provenance"]["located"]["format"] == "incell"
    old = {k: v for k, v in manifest.items() if k != "schema_version"}  # as written before versions
    assert check_manifest(json.loads(json.dumps(old)), "old")["schema_version"] == 1
    (bundle / "manifest.json").write_text(json.dumps({**manifest, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(OutputError, match=f"schema {SCHEMA_VERSION + 1}; this hcs-import reads up to"):
        read_manifest(bundle)
    (bundle / "manifest.json").write_text("[1, 2]")
    with pytest.raises(OutputError, match="not a manifest"):
        read_manifest(bundle)


def test_detect_all_lists_every_format_answer(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plate = write_incell_plate(tmp_path / "p", SMALL)
    result = cli("detect", "--all", plate)
    assert result.exit_code == 0
    assert result.output.startswith("1. incell\n") and "  results: 1 file(s)" in result.output
    assert "-  columbus: no .txt/.csv table" in result.output
    as_json = json.loads(cli("detect", "--json", plate).output)
    assert as_json["format"] == "incell" and as_json["evidence"] == "content"
    assert os.path.isabs(as_json["root"])
