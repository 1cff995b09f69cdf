"""Batch ingestion under stress: SIGKILL mid-run and resume, the Dask path, drop-folder watching."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hcs_import.batch.ledger import LEDGER_NAME
from hcs_import.batch.runner import BatchConfig, run_batch
from hcs_import.batch.synth_tree import write_tree
from hcs_import.batch.watch import Settling, watch
from hcs_import.parsers.base import SynthSpec
from hcs_import.synth.incell import write_incell_plate

SMALL = SynthSpec(wells=96, fields=1, objects=3, measurements=4, populations=2)
CLI = [str(Path(sys.executable).with_name("hcs-import"))]


def read_ledger(out: Path, sql: str = "SELECT * FROM plates") -> list[sqlite3.Row]:
    if not (out / LEDGER_NAME).exists():
        return []
    try:
        db = sqlite3.connect(f"file:{out / LEDGER_NAME}?mode=ro", uri=True, timeout=10)
    except sqlite3.OperationalError:
        return []
    db.row_factory = sqlite3.Row
    try:
        return list(db.execute(sql))
    except sqlite3.OperationalError:  # the schema is not there yet
        return []
    finally:
        db.close()


def live_group_members(pgid: int) -> list[int]:
    """Processes of the group that are still running (zombies waiting for a reaper do not count)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def batch_cmd(root: Path, out: Path, *extra: str) -> list[str]:
    return [*CLI, "batch", str(root), "--out", str(out), "--workers", "2", *extra]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL + process groups")
def test_sigkill_mid_run_then_resume_finishes_with_nothing_lost_or_duplicated(tmp_path: Path) -> None:
    root, out = tmp_path / "root", tmp_path / "out"
    plates = write_tree(root, 10, SMALL, corrupt=1)
    proc = subprocess.Popen(batch_cmd(root, out), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if read_ledger(out, "SELECT path FROM plates WHERE status = 'ok'"):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the batch ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)  # the coordinator only, with no chance to clean up
    proc.wait()
    deadline = time.monotonic() + 10
    while live_group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not live_group_members(proc.pid), "worker processes outlived the killed batch"

    killed = {r["path"]: r["status"] for r in read_ledger(out)}
    done_before = sorted(p for p, s in killed.items() if s == "ok")
    assert done_before and len(done_before) < len(plates)
    assert "running" in killed.values()  # the kill caught plates in flight

    again = subprocess.run([*batch_cmd(root, out), "--json"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 1, again.stderr  # the corrupt plate
    summary = json.loads(again.stdout)
    assert summary["skipped"] == len(done_before)
    assert summary["failed"] == 1
    assert summary["ok"] + summary["skipped"] + summary["failed"] == len(plates)

    rows = read_ledger(out)
    assert len(rows) == len(plates) == len({r["path"] for r in rows})
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == len(plates) - 1
    assert all(r["imports"] == 1 for r in ok)  # each plate became ok exactly once, across both runs
    oks = read_ledger(out, "SELECT path, COUNT(*) AS n FROM events WHERE status = 'ok' GROUP BY path")
    assert sorted((r["path"], r["n"]) for r in oks) == sorted((r["path"], 1) for r in ok)
    # Exactly one bundle per ok plate, nothing half-written left behind.
    bundles = sorted(str(p.parent) for p in out.rglob("manifest.json"))
    assert bundles == sorted(str(Path(r["bundle"])) for r in ok)
    hidden = [p for p in out.rglob(".*") if p.is_dir() and p.name != ".hcs-import-claims"]
    assert hidden == []  # no staging or replaced-bundle folder left behind
    for r in ok:
        assert (Path(r["bundle"]) / "manifest.json").is_file()


def test_dask_cluster_runs_the_plates(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    root, out = tmp_path / "root", tmp_path / "out"
    plates = write_tree(root, 4, SMALL, corrupt=1)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        config = BatchConfig(root=root, out=out, ledger=tmp_path / "ledger.sqlite",
                             dask_scheduler=cluster.scheduler_address, progress=False)
        summary = run_batch(config)
    assert (summary.count("ok"), summary.count("failed")) == (len(plates) - 1, 1)
    db = sqlite3.connect(tmp_path / "ledger.sqlite")
    statuses = sorted(s for (s,) in db.execute("SELECT status FROM plates"))
    assert statuses == ["failed"] + ["ok"] * (len(plates) - 1)
    assert all((Path(b) / "manifest.json").is_file() for (b,) in db.execute(
        "SELECT bundle FROM plates WHERE status = 'ok'"))


def test_dask_scheduler_unreachable_is_a_one_line_error(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    write_incell_plate(tmp_path / "root" / "p1", SMALL)
    res = subprocess.run([*CLI, "batch", str(tmp_path / "root"), "--out", str(tmp_path / "out"),
                          "--dask-scheduler", "tcp://127.0.0.1:9"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].startswith("hcs-import: error: --dask-scheduler")


def test_settling_waits_until_files_stop_changing(tmp_path: Path) -> None:
    from hcs_import.batch.discover import discover

    root = tmp_path / "root"
    plate = write_incell_plate(root / "p1", SMALL)
    settling = Settling(settle=10)
    found = discover(root)
    assert settling.stable(found, now=0) == []
    assert settling.stable(found, now=5) == []
    (plate / "p1_analysis.xml").write_bytes((plate / "p1_analysis.xml").read_bytes() + b"\n")  # still copying
    assert settling.stable(found, now=11) == []
    assert settling.stable(found, now=20) == []
    assert [f.real for f in settling.stable(found, now=21)] == [plate.resolve()]


def test_watch_imports_plates_dropped_into_the_folder(tmp_path: Path) -> None:
    root, out = tmp_path / "root", tmp_path / "out"
    root.mkdir()
    config = BatchConfig(root=root, out=out, ledger=out / LEDGER_NAME, workers=1, progress=False)
    stop = threading.Event()
    result = {}
    thread = threading.Thread(target=lambda: result.update(summary=watch(config, interval=0.2, settle=0.5,
                                                                          stop=stop)))
    thread.start()
    try:
        time.sleep(0.5)
        write_incell_plate(root / "drop1", SMALL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not read_ledger(out, "SELECT 1 FROM plates WHERE status = 'ok'"):
            time.sleep(0.1)
        write_incell_plate(root / "drop2", SMALL)
        while time.monotonic() < deadline and len(read_ledger(out, "SELECT 1 FROM plates WHERE status='ok'")) < 2:
            time.sleep(0.1)
        time.sleep(1.0)  # more polls: nothing is imported twice
    finally:
        stop.set()
        thread.join(timeout=60)
    summary = result["summary"]
    assert sorted(p.path for p in summary.plates if p.status == "ok") == ["drop1", "drop2"]
    assert sorted(str(p.parent.relative_to(out)) for p in out.rglob("manifest.json")) == ["drop1/drop1", "drop2/drop2"]


def test_server_upload_is_part_of_done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With upload options each bundle goes to the Plate of its name; plates imported before without
    upload are uploaded on the next run, and then skipped. (A fake upload on an in-process Dask cluster.)"""
    distributed = pytest.importorskip("distributed")
    from hcs_import.batch import upload as batch_upload

    calls: list[tuple[str, str, str]] = []

    def fake(bundle: Path, plate_name: str, upload: dict, sources: Path) -> dict:
        calls.append((bundle.name, plate_name, upload["session_key"]))
        return {"target": batch_upload.target_id(upload), "plate_id": len(calls), "dry_run": False}

    monkeypatch.setattr(batch_upload, "upload_bundle_for_batch", fake)
    root, out = tmp_path / "root", tmp_path / "out"
    write_incell_plate(root / "p1", SMALL)
    write_incell_plate(root / "p2", SMALL)
    upload = {"host": "omero.example", "port": 4064, "session_key": "k", "mode": "server"}
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        base = BatchConfig(root=root, out=out, ledger=out / LEDGER_NAME, dask_scheduler=cluster.scheduler_address,
                           progress=False)
        assert run_batch(base).count("ok") == 2 and calls == []
        second = run_batch(BatchConfig(**{**base.__dict__, "upload": upload}))
        assert second.count("ok") == 2
        assert {p.reason for p in second.plates} == {"not uploaded to omero.example:4064"}
        assert sorted(calls) == [("p1", "p1", "k"), ("p2", "p2", "k")]
        third = run_batch(BatchConfig(**{**base.__dict__, "upload": upload}))
        assert third.count("skipped") == 2 and len(calls) == 2
    uploads = [json.loads(r["outputs"])["upload"] for r in read_ledger(out)]
    assert sorted(u["plate_id"] for u in uploads) == [1, 2]
