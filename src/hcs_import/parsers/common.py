"""Small pieces every parser needs: finding a plate's files, and vendor spellings of numbers."""

from __future__ import annotations

import math
import re
from pathlib import Path

# Spellings of missing or infinite numbers seen in vendor exports (the Windows C runtime prints -1.#IND,
# 1.#INF, 1.#QNAN; LabVIEW and Excel exports write NaN, N/A or nothing). Keys are lower case.
SPECIAL_NUMBERS: dict[str, float] = {
    "": math.nan,
    "nan": math.nan,
    "-nan": math.nan,
    "na": math.nan,
    "n/a": math.nan,
    "-1.#ind": math.nan,
    "1.#ind": math.nan,
    "1.#qnan": math.nan,
    "-1.#qnan": math.nan,
    "1.#inf": math.inf,
    "-1.#inf": -math.inf,
    "inf": math.inf,
    "-inf": -math.inf,
    "infinity": math.inf,
    "-infinity": -math.inf,
}


# A number as instruments print it: ASCII digits, optional sign, point and exponent. Python's float()
# also takes `1_000`, `0x`-free but Unicode digits (Arabic-Indic `١٢`) and surrounding blanks: none of
# those is a number any exporter writes, so a cell holding one is a bad value, not a silent conversion.
NUMBER_RE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$", re.ASCII)


def strict_number(text: str) -> float | None:
    """The value of `text` as a float, or None when it is not a number an exporter writes.

    Missing and infinite spellings (SPECIAL_NUMBERS) count as numbers. Returning None rather than raising
    is deliberate: each caller decides between an error naming its file and place, and a counted NaN.
    """
    stripped = text.strip()
    if NUMBER_RE.match(stripped):
        return float(stripped)
    return SPECIAL_NUMBERS.get(stripped.lower())


def files_below(root: Path, depth: int, shallow_first: bool = False) -> list[Path]:
    """Files in `root` and up to `depth` folders below it (a file given as root is its own list).

    shallow_first orders files nearer the root first (then by path), for formats where a file in the
    plate folder should win over a copy deeper down; otherwise the order is by path.
    """
    if root.is_file():
        return [root]
    out: list[Path] = []
    for level in range(depth + 1):
        out.extend(p for p in root.glob("/".join(["*"] * (level + 1))) if p.is_file())
    if shallow_first:
        return sorted(out, key=lambda p: (len(p.relative_to(root).parts), str(p)))
    return sorted(out)
