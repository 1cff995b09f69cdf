"""Shared pieces of the synthetic-plate generators: geometry and reproducible random measurements."""

from __future__ import annotations

import numpy as np

from ..errors import HcsImportError
from ..wells import geometry_for_well_count


def geometry(wells: int) -> tuple[int, int]:
    g = geometry_for_well_count(wells)
    if g is None:
        raise HcsImportError(f"synth: --wells must be a standard plate size (96, 384, 1536, ...), not {wells}")
    return g


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def objects_per_field(r: np.random.Generator, mean: int, n: int) -> np.ndarray:
    """Object counts per field around `mean` (+-20%), never below 1 when mean >= 1."""
    if mean <= 0:
        return np.zeros(n, dtype=np.int64)
    spread = max(1, mean // 5)
    return np.clip(r.integers(mean - spread, mean + spread + 1, size=n), 1, None).astype(np.int64)
