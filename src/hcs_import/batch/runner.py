"""Run a batch: discover plates, decide which need work, import them in parallel, keep the ledger.

The coordinating process owns the ledger; workers (processes of a local pool, or Dask workers) only
run `task.run_plate` and return a small dict. A plate is marked `running` just before it is handed to
a worker and `ok`/`failed` as soon as its result comes back, so the ledger is always a true picture.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..parsers.base import ParseOptions
from ..workers import die_with_parent
from . import fingerprint
from .discover import Found, discover
from .ledger import Ledger, LedgerError
from .summary import Outcome, Summary
from .task import one_line, release, run_plate


@dataclass(frozen=True)
class BatchConfig:
    """Everything a batch run needs; `upload` holds the server options when bundles go to OMERO."""

    root: Path
    out: Path
    ledger: Path
    options: ParseOptions = field(default_factory=ParseOptions)
    format_name: str | None = None
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    dask_scheduler: str | None = None
    upload: dict[str, Any] | None = None
    progress: bool = True


@dataclass(frozen=True)
class Job:
    found: Found
    reason: str
    stats: fingerprint.Stats
    old_bundle: str | None


def formats_of(config: BatchConfig) -> list[str] | None:
    """--format restricts the walk to that format as well as forcing its parser."""
    return [config.format_name] if config.format_name else None


def display(found: Found, root: Path) -> str:
    rel = os.path.relpath(found.path, root)
    shown = found.path.name if rel == "." else rel
    return shown if found.plate is None else f"{shown} [{found.plate}]"


def bundle_parent(config: BatchConfig, found: Found) -> Path:
    """Where a plate's bundle goes: DIR/<plate folder relative to ROOT>/<plate name>/ (DIR/<plate name>/ for a
    ROOT that is itself a plate). Two plate folders never share a bundle, however their plates are named:
    re-imaged plates with one barcode are common."""
    rel = os.path.relpath(found.path, config.root)
    return config.out if rel == "." else config.out / rel


def _missing_upload(config: BatchConfig, row: Any) -> str | None:
    """With --server, a plate imported locally (or uploaded elsewhere, or only dry-run) is not done yet."""
    if config.upload is None or config.upload.get("dry_run"):
        return None
    from .upload import target_id

    done = json.loads(row["outputs"] or "{}").get("upload") or {}
    target = target_id(config.upload)
    if done.get("target") != target or done.get("dry_run"):
        return f"not uploaded to {target}"
    return None


def plan(config: BatchConfig, ledger: Ledger, plates: Iterable[Found], retry_failed: bool = True,
         ) -> tuple[list[Job], list[Outcome]]:
    """Split the plates into work to do and plates to skip (imported before and unchanged)."""
    jobs: list[Job] = []
    skipped: list[Outcome] = []
    for found in plates:
        key = found.key
        row = ledger.get(key)
        stats = fingerprint.scan_source(found.path, found.source)
        if row is None:
            jobs.append(Job(found, "new", stats, None))
            continue
        old_files = json.loads(row["files"] or "{}")
        if row["status"] in ("pending", "running"):
            jobs.append(Job(found, "interrupted", stats, row["bundle"]))
            continue
        verdict = fingerprint.compare(found.path, old_files, json.loads(row["sources"] or "{}"), stats)
        if row["status"] == "failed":
            if retry_failed or verdict.changed:
                jobs.append(Job(found, "retry", stats, row["bundle"]))
            continue  # watch mode: a failed plate is retried only when its files change
        missing_upload = _missing_upload(config, row)
        if verdict.changed:
            jobs.append(Job(found, f"changed ({verdict.reason})", stats, row["bundle"]))
        elif missing_upload:
            jobs.append(Job(found, missing_upload, stats, row["bundle"]))
        elif not row["bundle"] or not (Path(row["bundle"]) / "manifest.json").exists():
            jobs.append(Job(found, "output missing", stats, row["bundle"]))
        else:
            if verdict.stats != old_files:
                ledger.refresh_files(key, fingerprint.digest(verdict.stats), verdict.stats)
            skipped.append(Outcome(display(found, config.root), found.format, "skipped", objects=row["objects"] or 0,
                                   bundle=row["bundle"], reason=verdict.reason))
    return jobs, skipped


# ---- backends ------------------------------------------------------------------------------------------


def _warm_up() -> None:
    from . import task  # noqa: F401  (imports the parsers and writers)


class ProcessBackend:
    """A local pool of worker processes, spawned: no inherited locks, sqlite handles or tqdm threads.
    (forkserver would start faster, but its server outlives a SIGKILLed coordinator with its workers.)"""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self.capacity = self.workers
        self._pool: cf.ProcessPoolExecutor | None = None

    def pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=die_with_parent, initargs=(os.getpid(),))
        return self._pool

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.pool().submit(fn, *args)

    def warm(self) -> None:
        """Start the workers now: their imports (pandas, tables, parsers) overlap the walk of ROOT."""
        for _ in range(self.workers):
            self.pool().submit(_warm_up)

    def wait_any(self, futures: set[Any]) -> set[Any]:
        done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        return done

    def failed(self, exc: BaseException) -> None:
        """A worker died (killed, out of memory): start a fresh pool for the plates still to do."""
        if isinstance(exc, cf.process.BrokenProcessPool) and self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            if cancel:  # Ctrl-C: stop the plates in flight now (they are marked pending and redone)
                for proc in list((getattr(self._pool, "_processes", None) or {}).values()):
                    proc.terminate()
            # Waiting is quick once the workers are terminated, and an executor left to the interpreter's exit
            # hook raises "Bad file descriptor" there, a traceback after our one-line error.
            self._pool.shutdown(wait=True, cancel_futures=cancel)
            self._pool = None


def _reachable(address: str) -> None:
    """Fail fast on a scheduler that is not there (the Dask client would retry until its timeout)."""
    from urllib.parse import urlsplit

    from ..errors import HcsImportError

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls") or not parts.hostname:
        return  # inproc://, ucx://, ...: let Dask judge
    try:
        with socket.create_connection((parts.hostname, parts.port or 8786), timeout=10):
            pass
    except OSError as exc:
        raise HcsImportError(f"--dask-scheduler {address}: cannot connect: {exc.strerror or exc}") from None


class DaskBackend:
    """Plates as tasks on an existing Dask distributed cluster; the ledger stays here."""

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError as exc:  # dask is an optional extra
            from ..errors import HcsImportError

            raise HcsImportError("--dask-scheduler needs dask[distributed]: pip install 'hcs-import[dask]'") from exc
        _reachable(address)
        try:
            self.client = Client(address, timeout="20s", set_as_default=False)
        except OSError as exc:
            from ..errors import HcsImportError

            raise HcsImportError(f"--dask-scheduler {address}: cannot connect: {exc}") from None
        self._futures: set[Any] = set()
        threads = sum(self.client.nthreads().values()) or 1
        self.capacity = 2 * threads  # keep every worker thread busy, the rest queued here

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        future = self.client.submit(fn, *args, pure=False)
        self._futures.add(future)
        return future

    def wait_any(self, futures: set[Any]) -> set[Any]:
        # distributed.wait needs a default client, which we do not install (the caller may have its own);
        # plates take seconds, so polling the futures' state is cheap enough.
        while True:
            done = {f for f in futures if f.done()}
            if done:
                return done
            time.sleep(0.05)

    def failed(self, exc: BaseException) -> None:
        pass

    def warm(self) -> None:
        pass

    def close(self, cancel: bool = False) -> None:
        if cancel:  # Ctrl-C: plates still queued or running on the cluster are marked pending and redone
            pending = [f for f in self._futures if not f.done()]
            if pending:
                self.client.cancel(pending)
        self.client.close()


def make_backend(config: BatchConfig) -> ProcessBackend | DaskBackend:
    return DaskBackend(config.dask_scheduler) if config.dask_scheduler else ProcessBackend(config.workers)


# ---- running -------------------------------------------------------------------------------------------


def _replace_old_output(config: BatchConfig, job: Job, result: dict[str, Any]) -> None:
    """A changed plate re-imported under a new plate name: its old bundle is no longer its output."""
    old = job.old_bundle
    if not old or old == result.get("bundle"):
        return
    old_path = Path(old)
    parent = bundle_parent(config, job.found)
    if old_path.parent.resolve() == parent.resolve() and old_path.exists():
        shutil.rmtree(old_path, ignore_errors=True)
    release(parent, old_path.name, job.found.key)


def execute(config: BatchConfig, ledger: Ledger, jobs: list[Job], summary: Summary,
            on_outcome: Callable[[Outcome], None] | None = None,
            backend: ProcessBackend | DaskBackend | None = None) -> None:
    """Import `jobs` in parallel, recording each transition in the ledger as it happens.
    Closes `backend` (made here when not given) at the end."""
    if not jobs:
        if backend is not None:
            backend.close(cancel=True)
        return
    backend = backend or make_backend(config)
    todo = list(reversed(jobs))
    running: dict[Any, Job] = {}
    bar = tqdm(total=len(jobs), desc="plates", unit="plate", disable=None if config.progress else True,
               file=sys.stderr)
    failed = 0
    try:
        while todo or running:
            while todo and len(running) < backend.capacity:
                job = todo.pop()
                key = job.found.key
                ledger.mark_running(key, job.found.format, fingerprint.digest(job.stats), job.stats, job.reason)
                fut = backend.submit(run_plate, str(job.found.real), str(bundle_parent(config, job.found).absolute()),
                                     config.options, job.found.source, config.upload)
                running[fut] = job
            for fut in backend.wait_any(set(running)):
                job = running.pop(fut)
                key = job.found.key
                try:
                    result = fut.result()
                except Exception as exc:  # the worker itself died or was lost; the plate is not to blame
                    backend.failed(exc)
                    result = {"status": "failed", "error": f"worker lost: {one_line(exc)}", "seconds": None}
                outcome = Outcome(display(job.found, config.root), job.found.format, result["status"],
                                  error=result.get("error"), objects=result.get("objects") or 0,
                                  seconds=result.get("seconds") or 0.0, bundle=result.get("bundle"),
                                  reason=job.reason)
                if result["status"] == "ok":
                    ledger.mark_ok(key, result)
                    _replace_old_output(config, job, result)
                else:
                    failed += 1
                    ledger.mark_failed(key, result.get("error") or "unknown error", result.get("seconds"))
                summary.add(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
                bar.update(1)
                bar.set_postfix(failed=failed, refresh=False)
    except BaseException:
        # Ctrl-C or a crash of the coordinator: what was handed out is not done.
        try:
            for job in running.values():
                ledger.mark_pending(job.found.key, "interrupted")
        except LedgerError:
            pass  # the ledger itself failed (a full disk): the next run finds these `running` and redoes them
        finally:
            backend.close(cancel=True)
        raise
    finally:
        bar.close()
    backend.close()


def run_batch(config: BatchConfig, on_outcome: Callable[[Outcome], None] | None = None) -> Summary:
    """One pass over ROOT: every plate ends ok, skipped (unchanged since its import) or failed."""
    started = time.perf_counter()
    summary = Summary()
    with Ledger(config.ledger) as ledger:
        ledger.recover()
        ledger.start_run(config.root, config.out)
        backend = make_backend(config)
        backend.warm()
        try:
            plates = discover(config.root, skip=[config.out], formats=formats_of(config))
            jobs, skipped = plan(config, ledger, plates)
        except BaseException:
            backend.close(cancel=True)
            raise
        for outcome in skipped:
            summary.add(outcome)
        execute(config, ledger, jobs, summary, on_outcome, backend)
        summary.seconds = time.perf_counter() - started
        ledger.finish_run(summary.count("ok"), summary.count("skipped"), summary.count("failed"))
    return summary
