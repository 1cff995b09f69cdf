"""Drop-folder mode: keep polling ROOT and import each plate once its files have stopped changing.

Polling (no watchdog dependency, works on network shares where change notifications do not): every
`interval` seconds ROOT is walked and each plate folder's file list (sizes, mtimes) is taken. A plate
is imported when that list has not changed for `settle` seconds, so a plate still being copied in is
left alone. Plates already imported and unchanged are skipped by the ledger as in a normal batch; a
failed plate is tried again only when its files change (else a corrupt plate would fail every poll).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import fingerprint
from .discover import Found, discover
from .ledger import Ledger
from .runner import BatchConfig, execute, formats_of, plan
from .summary import Outcome, Summary


class Settling:
    """Remembers since when each plate's file list has been what it is now."""

    def __init__(self, settle: float) -> None:
        self.settle = settle
        self._since: dict[Path, tuple[str, float]] = {}

    def stable(self, plates: list[Found], now: float) -> list[Found]:
        ready = []
        current = set()
        for found in plates:
            current.add(found.real)
            key = fingerprint.digest(fingerprint.scan(found.real))
            last = self._since.get(found.real)
            if last is None or last[0] != key:
                self._since[found.real] = (key, now)
                if self.settle > 0:
                    continue
                last = (key, now)
            if now - last[1] >= self.settle:
                ready.append(found)
        for gone in set(self._since) - current:
            del self._since[gone]
        return ready


def watch(config: BatchConfig, interval: float = 5.0, settle: float = 10.0, stop: threading.Event | None = None,
          on_outcome: Callable[[Outcome], None] | None = None) -> Summary:
    """Poll until interrupted (Ctrl-C) or `stop` is set; returns everything imported meanwhile."""
    stop = stop or threading.Event()
    started = time.perf_counter()
    summary = Summary()
    settling = Settling(settle)
    with Ledger(config.ledger) as ledger:
        ledger.recover()
        ledger.start_run(config.root, config.out)
        try:
            while not stop.is_set():
                found = discover(config.root, skip=[config.out], formats=formats_of(config))
                plates = settling.stable(found, time.monotonic())
                jobs, _skipped = plan(config, ledger, plates, retry_failed=False)
                execute(config, ledger, jobs, summary, on_outcome)
                stop.wait(interval)
        except KeyboardInterrupt:
            pass
        finally:
            summary.seconds = time.perf_counter() - started
            ledger.finish_run(summary.count("ok"), summary.count("skipped"), summary.count("failed"))
    return summary
