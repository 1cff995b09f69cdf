"""The batch ledger: one SQLite row per plate, so a batch can be killed at any moment and re-run.

Status transitions: (new) -> running -> ok | failed; `pending` marks a plate whose run was cut short.
Every transition is committed before the work it announces starts (running) or right after it ends
(ok/failed), so after a kill a plate is either `ok` with its bundle in place, or not `ok` and will be
done again; bundle writes are atomic and replace an earlier bundle of the same plate, so redoing a
plate never leaves two bundles. A `running` row found at start-up therefore belongs to a killed run.

One coordinator at a time: an exclusive lock on `<ledger>.lock` (released by the kernel when the
process dies, so a SIGKILLed run never leaves a stale lock). WAL mode lets readers (sqlite3, a
monitoring script) look at the ledger while a batch writes it.

`events` is an append-only log of the transitions: it shows what a killed-and-resumed run did.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ..errors import HcsImportError

LEDGER_NAME = "hcs-import-ledger.sqlite"
STATUSES = ("pending", "running", "ok", "failed")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS plates (
    path        TEXT PRIMARY KEY,          -- real path of the plate folder
    format      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN {STATUSES!r}),
    fingerprint TEXT,                      -- digest of `files`
    files       TEXT,                      -- JSON {{relpath: [size, mtime_ns]}} at the start of the import
    sources     TEXT,                      -- JSON {{relpath: sha256}} of the result files the parser read
    plate       TEXT,                      -- plate name
    bundle      TEXT,                      -- output folder DIR/<plate>
    outputs     TEXT,                      -- JSON: tables, objects, rois, warnings, upload
    objects     INTEGER,
    error       TEXT,                      -- one-line error of the last failed attempt
    attempts    INTEGER NOT NULL DEFAULT 0,
    imports     INTEGER NOT NULL DEFAULT 0, -- successful imports (re-imports of changed plates count)
    started     REAL,
    finished    REAL,
    seconds     REAL,                      -- parse + write time of the last attempt
    run         TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, root TEXT, out TEXT, started REAL, finished REAL,
    ok INTEGER, skipped INTEGER, failed INTEGER
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, run TEXT, path TEXT NOT NULL,
    status TEXT NOT NULL, detail TEXT
);
"""


class LedgerBusy(HcsImportError):
    """Another batch holds this ledger."""


class LedgerError(HcsImportError):
    """The ledger cannot be read or written (disk full, a read-only folder, a damaged file).

    The batch stops then: going on without recording would import plates again on the next run, or
    forget which failed. The last committed transition is kept (SQLite rolls back the rest)."""


def _ledger_error(path: Path, exc: BaseException) -> LedgerError:
    text = str(exc).strip()
    cause = getattr(exc, "strerror", None) or (text.splitlines()[0][:200] if text else type(exc).__name__)
    hint = " (is the disk full?)" if "full" in text and "disk" not in text else ""
    return LedgerError(f"ledger {path}: {cause}{hint}")


class Ledger:
    """The ledger of one output folder (or of `--ledger PATH`). Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.run = uuid.uuid4().hex[:12]
        self._lock_fd: int | None = None
        self.db: sqlite3.Connection | None = None

    def __enter__(self) -> Ledger:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _ledger_error(self.path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LedgerBusy(f"{self.path}: another batch is using this ledger") from None
        self._lock_fd = fd
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")  # a committed transition survives a power cut too
            self.db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            self.__exit__()
            raise _ledger_error(self.path, exc) from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self.db is None:
            raise RuntimeError("ledger is not open")
        return self.db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction: a transition and its event are committed together or not at all."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _ledger_error(self.path, exc) from None
        try:
            yield db
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                with suppress(sqlite3.Error):  # SQLite may have rolled back by itself (a full disk does that)
                    db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _ledger_error(self.path, exc) from None
            raise

    def _event(self, path: str, status: str, detail: str | None = None) -> None:
        self._db.execute("INSERT INTO events (ts, run, path, status, detail) VALUES (?, ?, ?, ?, ?)",
                         (time.time(), self.run, path, status, detail))

    # ---- reading -----------------------------------------------------------------------------------
    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise _ledger_error(self.path, exc) from None

    def get(self, path: str) -> sqlite3.Row | None:
        found = self._read("SELECT * FROM plates WHERE path = ?", (path,))
        return found[0] if found else None

    def rows(self) -> Iterator[sqlite3.Row]:
        yield from self._read("SELECT * FROM plates ORDER BY path")

    def owner_of_bundle(self, bundle: str) -> str | None:
        found = self._read("SELECT path FROM plates WHERE bundle = ? AND status = 'ok'", (bundle,))
        return found[0]["path"] if found else None

    # ---- transitions ---------------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Rows left `running` by a killed run become `pending`; returns their paths."""
        with self._tx() as db:
            paths = [r["path"] for r in db.execute("SELECT path FROM plates WHERE status = 'running'")]
            for p in paths:
                db.execute("UPDATE plates SET status = 'pending', error = 'interrupted' WHERE path = ?", (p,))
                self._event(p, "pending", "interrupted run found at start-up")
        return paths

    def start_run(self, root: Path, out: Path) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO runs (id, root, out, started) VALUES (?, ?, ?, ?)",
                       (self.run, str(root), str(out), time.time()))

    def finish_run(self, ok: int, skipped: int, failed: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET finished = ?, ok = ?, skipped = ?, failed = ? WHERE id = ?",
                       (time.time(), ok, skipped, failed, self.run))

    def mark_running(self, path: str, fmt: str, fingerprint: str, files: Mapping[str, list[int]],
                     reason: str) -> None:
        with self._tx() as db:
            db.execute(
                """INSERT INTO plates (path, format, status, fingerprint, files, attempts, started, run)
                   VALUES (?, ?, 'running', ?, ?, 1, ?, ?)
                   ON CONFLICT (path) DO UPDATE SET format = excluded.format, status = 'running',
                     fingerprint = excluded.fingerprint, files = excluded.files, attempts = attempts + 1,
                     started = excluded.started, finished = NULL, run = excluded.run""",
                (path, fmt, fingerprint, json.dumps(files), time.time(), self.run),
            )
            self._event(path, "running", reason)

    def mark_pending(self, path: str, detail: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE plates SET status = 'pending', error = ? WHERE path = ?", (detail, path))
            self._event(path, "pending", detail)

    def mark_ok(self, path: str, result: Mapping[str, Any]) -> None:
        outputs = {k: result.get(k) for k in ("tables", "objects", "rois", "warnings", "upload")}
        with self._tx() as db:
            db.execute(
                """UPDATE plates SET status = 'ok', sources = ?, plate = ?, bundle = ?, outputs = ?, objects = ?,
                   error = NULL, imports = imports + 1, finished = ?, seconds = ? WHERE path = ?""",
                (json.dumps(result.get("sources", {})), result.get("plate"), result.get("bundle"),
                 json.dumps(outputs), result.get("objects"), time.time(), result.get("seconds"), path),
            )
            self._event(path, "ok", result.get("bundle"))

    def mark_failed(self, path: str, error: str, seconds: float | None) -> None:
        with self._tx() as db:
            db.execute("UPDATE plates SET status = 'failed', error = ?, finished = ?, seconds = ? WHERE path = ?",
                       (error, time.time(), seconds, path))
            self._event(path, "failed", error)

    def refresh_files(self, path: str, fingerprint: str, files: Mapping[str, list[int]]) -> None:
        """A plate found touched but unchanged: remember the new stats so the next check is cheap."""
        with self._tx() as db:
            db.execute("UPDATE plates SET fingerprint = ?, files = ? WHERE path = ?",
                       (fingerprint, json.dumps(files), path))
