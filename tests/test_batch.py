"""Batch ingestion: discovery over a mixed-format tree, the ledger, re-runs, one bad plate, the CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from hcs_import.batch import fingerprint
from hcs_import.batch.discover import discover
from hcs_import.batch.ledger import LEDGER_NAME, Ledger, LedgerBusy
from hcs_import.batch.runner import BatchConfig, run_batch
from hcs_import.batch.synth_tree import TreePlate, corrupt_plate, generators, write_tree
from hcs_import.cli import main
from hcs_import.parsers.base import SynthSpec
from hcs_import.synth.incell import write_incell_plate

SMALL = SynthSpec(wells=96, fields=1, objects=3, measurements=4, populations=2)


def plates_in_tree() -> int:
    """One corrupt InCell plate plus at least one plate of every format that has a generator."""
    return max(6, 1 + len(generators()))


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[TreePlate]]:
    root = tmp_path_factory.mktemp("tree") / "root"
    return root, write_tree(root, plates_in_tree(), SMALL, corrupt=1)


@pytest.fixture
def work_tree(tree: tuple[Path, list[TreePlate]], tmp_path: Path) -> tuple[Path, list[TreePlate]]:
    """A private copy of the tree for tests that change plates."""
    root, plates = tree
    copy = tmp_path / "root"
    shutil.copytree(root, copy, symlinks=True)
    return copy, [TreePlate(copy / p.path.relative_to(root), p.format, p.corrupt) for p in plates]


def config(root: Path, out: Path, **kw: object) -> BatchConfig:
    return BatchConfig(root=root, out=out, ledger=out / LEDGER_NAME, workers=2, progress=False, **kw)  # type: ignore[arg-type]


def ledger_rows(out: Path) -> dict[str, sqlite3.Row]:
    db = sqlite3.connect(out / LEDGER_NAME)
    db.row_factory = sqlite3.Row
    rows = {r["path"]: r for r in db.execute("SELECT * FROM plates")}
    db.close()
    return rows


def owner(found: Path, plates: list[TreePlate]) -> TreePlate:
    """The tree plate a discovered folder belongs to (MIAS plates are one level below the tree folder)."""
    hits = [p for p in plates if found == p.path.resolve() or p.path.resolve() in found.parents]
    assert len(hits) == 1, found
    return hits[0]


# ---- discovery -----------------------------------------------------------------------------------------


def test_discover_finds_each_plate_once_with_its_format(tree: tuple[Path, list[TreePlate]]) -> None:
    root, plates = tree
    found = discover(root)
    assert len(found) == len(plates)
    assert sorted(owner(f.real, plates).path for f in found) == sorted(p.path for p in plates)
    for f in found:
        assert f.format == owner(f.real, plates).format
    assert {f.format for f in found} == {p.format for p in plates}
    assert len({p.format for p in plates}) >= 2  # a mixed tree


def test_discover_skips_output_links_out_of_root_and_duplicate_links(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_incell_plate(root / "a" / "p1", SMALL)
    outside = write_incell_plate(tmp_path / "elsewhere" / "p2", SMALL)
    (root / "link-out").symlink_to(outside, target_is_directory=True)
    (root / "link-in").symlink_to(root / "a", target_is_directory=True)
    out = root / "out"
    write_incell_plate(out / "p3", SMALL)  # plate-looking files inside the output folder
    found = discover(root, skip=[out])
    assert [f.real for f in found] == [(root / "a" / "p1").resolve()]


def test_plate_with_results_in_a_subfolder_is_one_plate(tmp_path: Path) -> None:
    plate = write_incell_plate(tmp_path / "root" / "p1", SMALL)
    (plate / "run2").mkdir()
    shutil.copy(plate / "p1_analysis.xml", plate / "run2" / "p1_analysis.xml")
    assert [f.real for f in discover(tmp_path / "root")] == [plate.resolve()]


# ---- fingerprint ---------------------------------------------------------------------------------------


def test_fingerprint_tells_touched_from_changed(tmp_path: Path) -> None:
    plate = write_incell_plate(tmp_path / "p", SMALL)
    stats = fingerprint.scan(plate)
    xml = plate / "p_analysis.xml"
    hashes = {"p_analysis.xml": fingerprint.sha256_file(xml)}
    assert not fingerprint.compare(plate, stats, hashes).changed
    os.utime(xml, ns=(1, 2))
    verdict = fingerprint.compare(plate, stats, hashes)
    assert not verdict.changed and verdict.reason.startswith("touched")
    xml.write_bytes(xml.read_bytes().replace(b'value="', b'value="1', 1))
    assert fingerprint.compare(plate, stats, hashes).changed
    (plate / "new.txt").write_text("x")
    assert "added" in fingerprint.compare(plate, stats, hashes).reason


# ---- batch runs ----------------------------------------------------------------------------------------


def test_batch_imports_all_but_the_corrupt_plate(tree: tuple[Path, list[TreePlate]], tmp_path: Path) -> None:
    root, plates = tree
    out = tmp_path / "out"
    summary = run_batch(config(root, out))
    assert (summary.count("ok"), summary.count("skipped"), summary.count("failed")) == (len(plates) - 1, 0, 1)
    failed = [p for p in summary.plates if p.status == "failed"]
    assert failed[0].path == "screen0/incell_00" and "truncated" in failed[0].error and "\n" not in failed[0].error
    assert summary.objects > 0
    rows = ledger_rows(out)
    assert len(rows) == len(plates)
    assert sorted(r["status"] for r in rows.values()) == ["failed"] + ["ok"] * (len(plates) - 1)
    # each bundle sits under its plate folder's path relative to ROOT: DIR/<folder>/<plate name>/
    bundles = sorted(str(p.parent.relative_to(out)) for p in out.rglob("manifest.json"))
    assert bundles == sorted(str(Path(r["bundle"]).relative_to(out)) for r in rows.values() if r["status"] == "ok")
    for path, r in rows.items():
        if r["status"] == "ok":
            assert Path(r["bundle"]).parent == out / Path(path).relative_to(root.resolve())
            assert (Path(r["bundle"]) / "manifest.json").is_file() and (Path(r["bundle"]) / "report.html").is_file()
            assert json.loads(r["sources"]) and r["imports"] == 1
            assert r["objects"] > 0 or r["format"] == "flex"  # Flex results are per well only
    # The summary table names the failed plate and counts every status.
    text = summary.table()
    assert "screen0/incell_00" in text
    assert re.search(rf"^ok\s+{len(plates) - 1}\s+{summary.objects}\s", text, re.M)
    assert re.search(r"^failed\s+1\s", text, re.M)


def test_rerun_skips_unchanged_reimports_changed_retries_failed(work_tree: tuple[Path, list[TreePlate]],
                                                                 tmp_path: Path) -> None:
    root, plates = work_tree
    out = tmp_path / "out"
    run_batch(config(root, out))
    again = run_batch(config(root, out))
    assert (again.count("ok"), again.count("skipped"), again.count("failed")) == (0, len(plates) - 1, 1)

    # Change one good plate's results, touch another (same content), repair the corrupt one.
    changed = next(p for p in plates if p.format == "incell" and not p.corrupt)
    xml = next(changed.path.glob("*_analysis.xml"))
    xml.write_bytes(xml.read_bytes().replace(b'value="', b'value="1', 5))
    touched = next(p for p in plates if p.format != "incell")
    for f in touched.path.rglob("*"):
        if f.is_file():
            os.utime(f)
    bad = next(p for p in plates if p.corrupt)
    shutil.rmtree(bad.path)
    write_incell_plate(bad.path, SMALL)
    before = ledger_rows(out)[str(changed.path.resolve())]

    third = run_batch(config(root, out))
    by_status = {s: sorted(p.path for p in third.plates if p.status == s) for s in ("ok", "skipped", "failed")}
    assert by_status["ok"] == sorted([str(changed.path.relative_to(root)), str(bad.path.relative_to(root))])
    assert by_status["failed"] == []
    assert len(by_status["skipped"]) == len(plates) - 2
    after = ledger_rows(out)[str(changed.path.resolve())]
    assert after["imports"] == 2 and after["fingerprint"] != before["fingerprint"]
    assert after["bundle"] == before["bundle"]  # replaced in place, not a second bundle
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.is_dir() and "partial" in p.name]


def test_two_plates_with_one_name_both_import(tmp_path: Path) -> None:
    """Re-imaged plates with one barcode in two folders: two bundles, each its own plate's, at predictable paths."""
    root = tmp_path / "root"
    write_incell_plate(root / "s1" / "same", SMALL)
    write_incell_plate(root / "s2" / "same", SynthSpec(wells=96, fields=1, objects=3, seed=9))
    out = tmp_path / "out"
    summary = run_batch(config(root, out))
    assert (summary.count("ok"), summary.count("failed")) == (2, 0)
    for folder in ("s1", "s2"):
        manifest = json.loads((out / folder / "same" / "same" / "manifest.json").read_text())
        assert manifest["plate"]["name"] == "same"
        sha = {s["path"]: s["sha256"] for s in manifest["sources"]}["same_analysis.xml"]
        assert sha == fingerprint.sha256_file(root / folder / "same" / "same_analysis.xml")
    again = run_batch(config(root, out))
    assert again.count("skipped") == 2


def test_ledger_is_exclusive_and_recovers_running_rows(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        ledger.mark_running("/p", "incell", "f", {}, "new")
        with pytest.raises(LedgerBusy):
            Ledger(path).__enter__()
    with Ledger(path) as ledger:
        assert ledger.recover() == ["/p"]
        row = ledger.get("/p")
        assert row is not None and row["status"] == "pending"


def test_cli_json_summary_and_exit_code(tree: tuple[Path, list[TreePlate]], tmp_path: Path) -> None:
    from click.testing import CliRunner

    root, plates = tree
    ledger = tmp_path / "elsewhere" / "ledger.sqlite"
    result = CliRunner().invoke(main, ["batch", str(root), "--out", str(tmp_path / "out"), "--workers", "2",
                                       "--ledger", str(ledger), "--json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert (data["ok"], data["skipped"], data["failed"]) == (len(plates) - 1, 0, 1)
    assert all(isinstance(data[k], int) for k in ("ok", "skipped", "failed"))
    assert {p["status"] for p in data["plates"]} == {"ok", "failed"}
    assert all({"path", "format", "status", "error"} <= set(p) for p in data["plates"])
    assert ledger.is_file() and not (tmp_path / "out" / LEDGER_NAME).exists()

    again = CliRunner().invoke(main, ["batch", str(root), "--out", str(tmp_path / "out"), "--workers", "2",
                                      "--ledger", str(ledger)])
    assert again.exit_code == 1
    assert "skipped" in again.stdout and "screen0/incell_00" in again.stdout


def test_cli_exit_zero_when_nothing_failed(tmp_path: Path) -> None:
    from click.testing import CliRunner

    write_incell_plate(tmp_path / "root" / "p1", SMALL)
    result = CliRunner().invoke(main, ["batch", str(tmp_path / "root"), "--out", str(tmp_path / "out"),
                                       "--workers", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] == 1


def test_corrupt_plate_helper_really_breaks_the_plate(tmp_path: Path) -> None:
    plate = write_incell_plate(tmp_path / "p", SMALL)
    size = (plate / "p_analysis.xml").stat().st_size
    corrupt_plate(plate)
    assert (plate / "p_analysis.xml").stat().st_size == size // 2


def test_root_that_is_one_plate_and_format_filter(tree: tuple[Path, list[TreePlate]]) -> None:
    root, plates = tree
    one = next(p for p in plates if p.format == "incell" and not p.corrupt)
    assert [(f.real, f.format) for f in discover(one.path)] == [(one.path.resolve(), "incell")]
    only = discover(root, formats=["incell"])
    assert {f.format for f in only} == {"incell"}
    assert len(only) == sum(1 for p in plates if p.format == "incell")


def test_a_folder_of_several_plates_becomes_one_task_per_plate(tmp_path: Path) -> None:
    """Real drop folders hold several plates' exports side by side: batch imports each, none merged."""
    from hcs_import.synth.columbus import write_columbus_export

    root = tmp_path / "root"
    write_columbus_export(root / "drop", SynthSpec(wells=96, fields=1, objects=2, layout="several-plates"))
    write_incell_plate(root / "other", SMALL)
    out = tmp_path / "out"
    summary = run_batch(config(root, out))
    assert sorted((p.path, p.status) for p in summary.plates) == [  # the exports sit in drop/Evaluation1
        ("drop/Evaluation1 [ColumbusPlate01]", "ok"), ("drop/Evaluation1 [ColumbusPlate02]", "ok"), ("other", "ok")]
    names = sorted(str(p.parent.relative_to(out)) for p in out.rglob("manifest.json"))
    assert names == ["drop/Evaluation1/ColumbusPlate01", "drop/Evaluation1/ColumbusPlate02", "other/other"]
    second = json.loads((out / "drop" / "Evaluation1" / "ColumbusPlate02" / "manifest.json").read_text())
    assert all("ColumbusPlate02" in s["path"] for s in second["sources"])
    again = run_batch(config(root, out))
    assert again.count("skipped") == 3
