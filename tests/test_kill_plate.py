"""kill -9 of `plate` at random moments: the previous bundle survives untouched, no worker outlives the kill,
and the next run leaves no staging folder behind."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bundle_check import digest
from hcs_import.parsers.base import SynthSpec
from hcs_import.synth.incell import write_incell_plate
from test_batch_resume import CLI, live_group_members

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL + process groups + /proc")

# Large enough that parsing is split over 2 worker processes (chunks of at least 4 MB) and lasts a few
# seconds, so the kills land while the workers, the spill files and the staging folder all exist.
BIG = SynthSpec(wells=96, fields=2, objects=200, populations=2, measurements=10)
KILLS = int(os.environ.get("KILL_RUNS", "5"))


def assert_complete(bundle: Path, rows: dict[str, int] | None) -> dict[str, int]:
    """Every file the manifest lists is there and whole (each table opens with its rows)."""
    import tables

    manifest = json.loads((bundle / "manifest.json").read_text())
    found = {}
    for entry in manifest["tables"]:
        with tables.open_file(str(bundle / entry["path"])) as h5:
            found[entry["path"]] = h5.root.OME.Measurements.nrows
    assert found == {e["path"]: e["rows"] for e in manifest["tables"]}
    assert (bundle / manifest["rois"]["path"]).is_file()
    if rows is not None:
        assert found == rows
    return found


def test_kill_9_of_plate_keeps_the_previous_bundle_and_leaves_no_worker(tmp_path: Path) -> None:
    src = write_incell_plate(tmp_path / "P1", BIG)
    out = tmp_path / "out"
    cmd = [*CLI, "plate", str(src), "--out", str(out), "--workers", "2"]
    spill = tmp_path / "spill"
    spill.mkdir()
    env = {**os.environ, "TMPDIR": str(spill)}
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    full = time.monotonic() - t0
    bundle = next(p for p in out.iterdir() if not p.name.startswith("."))
    before = digest(bundle)
    before_rows = assert_complete(bundle, None)

    rng = random.Random(17)
    saw_workers = 0
    for i in range(KILLS):
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env)
        # Alternately while the parse workers run (about the first half) and while the bundle is written.
        time.sleep(rng.uniform(0.2, 0.45) * full if i % 2 == 0 else rng.uniform(0.45, 0.9) * full)
        members = live_group_members(proc.pid)
        saw_workers += len(members) > 1
        if proc.poll() is not None:
            continue  # it finished first: nothing to kill this time
        os.kill(proc.pid, signal.SIGKILL)  # the parent only: its workers must follow by themselves
        proc.wait()
        deadline = time.monotonic() + 10
        while live_group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not live_group_members(proc.pid), "worker processes outlived the killed plate"
        now = digest(bundle)
        if now != before:  # the kill came after the rename: a whole new bundle, never a mix of the two
            assert_complete(bundle, before_rows)
            before = now
    assert saw_workers, "no kill landed while worker processes ran: make the plate bigger"

    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in out.iterdir()] == [bundle.name]  # killed runs' staging folders are cleaned up
    assert digest(bundle).keys() == before.keys()
    leftovers = [p for p in spill.iterdir() if p.name.startswith("hcs-import-")]
    assert leftovers == []  # spill folders of the killed runs are removed by the next run
