"""A real full disk (the kernel's ENOSPC on a small tmpfs) at every write stage of `plate`, and under `batch`:
one line naming the file, exit 2, nothing partial left, the previous bundle untouched, the ledger sound."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from bundle_check import digest
from hcs_import.batch.ledger import LEDGER_NAME
from hcs_import.batch.synth_tree import write_tree
from hcs_import.parsers.base import SynthSpec
from hcs_import.report import REPORT_FILE
from hcs_import.synth.incell import write_incell_plate
from small_disk import pages, run_on_small_disk, unshare_prefix

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or unshare_prefix() is None,
    reason="needs a private mount namespace (unshare) to mount a small tmpfs")

CLI = [sys.executable, "-m", "hcs_import.cli"]
SPEC = SynthSpec(wells=12, fields=1, objects=20, populations=2, measurements=6)


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """A small InCell plate, a good bundle of it, and the bundle's files in the order they are written."""
    import subprocess

    root = tmp_path_factory.mktemp("disk")
    src = write_incell_plate(root / "P1", SPEC)
    good = root / "good"
    subprocess.run([*CLI, "plate", str(src), "--out", str(good)], check=True, capture_output=True)
    bundle = next(good.iterdir())
    manifest = json.loads((bundle / "manifest.json").read_text())
    order = [t["path"] for t in manifest["tables"]] + [manifest["rois"]["path"]]
    order += [manifest["layout"]["path"]] if "layout" in manifest else []
    order += ["manifest.json", REPORT_FILE]
    assert sorted(order) == sorted(p.name for p in bundle.iterdir())
    return src, bundle, order


def test_disk_full_at_each_write_stage_is_one_line_and_keeps_the_previous_bundle(
        plate: tuple[Path, Path, list[str]], tmp_path: Path) -> None:
    src, previous, order = plate
    before = digest(previous)
    kept_pages = sum(pages(p.stat().st_size) for p in previous.iterdir())
    written = 0
    for i, name in enumerate(order):
        size = pages((previous / name).stat().st_size)
        kib = 4 * (kept_pages + written + size // 2)  # a one-page file gets no room at all
        keep = tmp_path / f"after-{i}"
        res = run_on_small_disk([*CLI, "plate", str(src), "--out", str(tmp_path / "mnt")], tmp_path / "mnt", kib,
                                keep, copy=((previous, previous.name),), env={"TMPDIR": str(tmp_path)})
        lines = res["stderr"].strip().splitlines()
        stage = "the report" if name == REPORT_FILE else name
        assert res["rc"] == 2, (name, res)
        assert len(lines) == 1 and len(lines[0]) <= 300, (name, lines)
        assert "No space left on device" in lines[0] and f"while writing {stage}" in lines[0], (name, lines)
        assert sorted(p.name for p in keep.iterdir()) == [previous.name]  # no staging, no .old- folder
        assert digest(keep / previous.name) == before, name
        written += size


def test_no_room_for_the_staging_folder_is_one_line(plate: tuple[Path, Path, list[str]], tmp_path: Path) -> None:
    src, previous, _ = plate
    kept = sum(pages(p.stat().st_size) for p in previous.iterdir())
    res = run_on_small_disk([*CLI, "plate", str(src), "--out", str(tmp_path / "mnt")], tmp_path / "mnt", 4 * kept,
                            tmp_path / "after", copy=((previous, previous.name),), env={"TMPDIR": str(tmp_path)})
    lines = res["stderr"].strip().splitlines()
    assert res["rc"] == 2 and len(lines) == 1 and "No space left on device" in lines[0], res


def test_batch_on_a_disk_that_fills_keeps_a_sound_ledger_and_no_traceback(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_tree(root, 6, SPEC, corrupt=0, formats=["incell"])
    out = tmp_path / "mnt"
    # Room for the ledger and about two bundles: the disk fills part-way through the batch.
    res = run_on_small_disk([*CLI, "batch", str(root), "--out", str(out), "--workers", "1", "--json"], out, 360,
                            tmp_path / "after", env={"TMPDIR": str(tmp_path)}, timeout=300)
    assert "Traceback" not in res["stderr"], res["stderr"][-2000:]
    assert res["rc"] in (1, 2), res
    for line in res["stderr"].strip().splitlines():
        assert len(line) <= 300
    after = tmp_path / "after"
    db = sqlite3.connect(after / LEDGER_NAME)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = db.execute("SELECT path, status, bundle FROM plates").fetchall()
    ok = [r for r in rows if r[1] == "ok"]
    assert ok, "the disk should have held at least one bundle"
    assert len(ok) < 6, "the disk should have filled before all six plates"
    for _, _, bundle in ok:  # every plate recorded ok has its complete bundle
        rel = Path(bundle).relative_to(out)
        assert (after / rel / "manifest.json").is_file()
    hidden = [p for p in after.rglob(".*") if p.is_dir() and ".partial-" in p.name]
    assert hidden == []
    if res["rc"] == 1:  # the batch went on: every plate is recorded, the failures say why
        summary = json.loads(res["stdout"])
        assert summary["ok"] + summary["failed"] == 6
        assert all(r[1] in ("ok", "failed") for r in rows)
    else:
        assert res["stderr"].strip().splitlines()[-1].startswith("hcs-import: error: ledger ")
    assert os.path.isdir(after)


SILENT_LOSS = """
import sys
from pathlib import Path
import numpy as np, tables
from hcs_import.writers.hdf5_flush import flush_checked
path = Path(sys.argv[1]) / "t.h5"
h5 = tables.open_file(str(path), "w")
t = h5.create_table("/", "t", {"a": tables.Float64Col()}, chunkshape=(1000,))
t.append(np.rec.fromarrays([np.arange(100000.0) + 1], names="a"))  # held in HDF5's chunk cache
try:
    flush_checked(h5, path) if sys.argv[2] == "checked" else h5.flush()
    print("no error")
except OSError as exc:
    print("OSError", exc.errno)
"""


def test_a_flush_that_hdf5_cannot_write_is_an_error_not_a_silent_loss(tmp_path: Path) -> None:
    """PyTables' own flush returns quietly on a full disk (the table then reads back with zeros)."""
    from hcs_import.writers.hdf5_flush import checking_available

    assert checking_available(), "the HDF5 library PyTables loaded was not found: the check would be skipped"
    mnt = tmp_path / "mnt"
    quiet = run_on_small_disk([sys.executable, "-c", SILENT_LOSS, str(mnt), "plain"], mnt, 16, tmp_path / "a")
    checked = run_on_small_disk([sys.executable, "-c", SILENT_LOSS, str(mnt), "checked"], mnt, 16, tmp_path / "b")
    assert quiet["stdout"].strip() == "no error"  # what PyTables alone does: the loss this module catches
    assert checked["stdout"].strip() == "OSError 28", checked
