"""Progress bars on a terminal (tqdm on stderr); silent when output is not a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def byte_progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A callback(done, total) for parsers; the bar appears only on a TTY (tqdm disable=None)."""
    bar = tqdm(desc=description, unit="B", unit_scale=True, disable=None, leave=False)
    state = {"done": 0}

    def update(done: int, total: int) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.update(done - state["done"])
        state["done"] = done

    try:
        yield update
    finally:
        bar.close()
