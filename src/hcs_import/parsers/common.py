"""Small pieces every parser needs: finding a plate's files, and vendor spellings of numbers."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from ..errors import InputError

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


def plate_root(path: Path) -> Path:
    """The folder a path stands for: itself, or the folder of a single file given as the plate."""
    return path if path.is_dir() else path.parent


def inside(path: Path, real_root: Path) -> bool:
    """Whether `path`, links resolved, lies in `real_root` (already resolved).

    Every file a parser finds goes through this: a link in a watched folder pointing at /etc or at
    another user's data is not part of the plate, and is never read.
    """
    try:
        path.resolve().relative_to(real_root)
    except (ValueError, OSError, RuntimeError):  # outside, unreadable, or a link loop
        return False
    return True


def files_below(root: Path, depth: int, shallow_first: bool = False) -> list[Path]:
    """Files in `root` and up to `depth` folders below it (a file given as root is its own list).

    shallow_first orders files nearer the root first (then by path), for formats where a file in the
    plate folder should win over a copy deeper down; otherwise the order is by path.
    """
    if root.is_file():
        return [root]
    out: list[Path] = []
    real_root = root.resolve()
    for level in range(depth + 1):
        out.extend(p for p in root.glob("/".join(["*"] * (level + 1))) if p.is_file() and inside(p, real_root))
    if shallow_first:
        return sorted(out, key=lambda p: (len(p.relative_to(root).parts), str(p)))
    return sorted(out)


def several_plates_error(path: Path, plates: dict[str, list[Path]], chosen: str | None) -> InputError:
    """The one-line error for a folder whose exports belong to several plates (or lack the chosen one).

    Merging them would put one plate's wells on another's; which plate is meant only the user knows.
    """
    def shown(name: str) -> str:
        return repr(name if len(name) <= 32 else name[:31] + "…")

    listed = ", ".join(shown(name) for name in sorted(plates)[:4])
    if len(plates) > 4:
        listed += f" and {len(plates) - 4} more"
    if chosen is not None:
        return InputError(path, None, f"no export of plate {chosen[:60]!r} here; plates found: {listed}")
    return InputError(path, None, f"holds exports of {len(plates)} plates: {listed}; import one at a time "
                      "with --source-plate NAME")


def choose_plate(path: Path, plates: dict[str, list[Path]], chosen: str | None) -> str:
    """The plate to read from `plates` (name -> its files): the only one, or the chosen one."""
    if chosen is not None:
        if chosen not in plates:
            raise several_plates_error(path, plates, chosen)
        return chosen
    if len(plates) > 1:
        raise several_plates_error(path, plates, None)
    return next(iter(plates))


def is_unnamed_empty(raw_name: str, values: np.ndarray) -> bool:
    """True for a column whose header names nothing and that holds no value.

    Harmony ends every line with a tab (seen in real PlateResults and Objects_Population exports), which
    reads as one more, nameless, empty column: it is dropped. A nameless column that does hold values is
    kept (as `column N`) and the caller warns, since dropping it would lose data.
    """
    if raw_name.strip():
        return False
    if values.dtype == object:
        return not any(v is not None and v == v and str(v).strip() for v in values.tolist())
    return bool(np.isnan(values.astype(np.float64)).all()) if values.dtype.kind in "fiub" else False


def distinct_index(values: np.ndarray, distinct: np.ndarray, vendor: str, key: str) -> tuple[np.ndarray, str | None]:
    """0-based plane index (`t` or `z`) of each vendor value, as its rank among the plate's `distinct`
    values (sorted, finite), and a note saying what mapping was applied (None when it is the identity).

    Why ranks, not the values: real Harmony exports number Timepoint from 0, from 1 or from a negative
    number (-4..11 in a real PlateResults.txt), and OMERO's t is a 0-based plane index. Missing values
    (NaN) map to 0 and the caller counts them.
    """
    v = np.asarray(values, dtype=np.float64)
    missing = np.isnan(v)
    index = np.searchsorted(distinct, np.where(missing, distinct[0], v) if missing.any() and len(distinct) else v)
    index = np.clip(index, 0, max(len(distinct) - 1, 0)).astype(np.int64)
    if not len(distinct):
        return np.zeros(len(v), dtype=np.int64), None
    low, high, n = distinct[0], distinct[-1], len(distinct)
    contiguous = bool(np.all(np.diff(distinct) == 1)) and float(low).is_integer()
    if contiguous and low == 0:
        return index, None
    shown = f"{_num(low)}..{_num(high)}"
    if contiguous:
        offset = -int(low)
        sign = "+" if offset >= 0 else "-"
        return index, (f"{vendor} {shown} ({n} distinct) stored as {key} 0..{n - 1} "
                       f"({key} = {vendor} {sign} {abs(offset)})")
    return index, (f"{vendor} {shown} ({n} distinct, not consecutive) stored as {key} 0..{n - 1}: "
                   f"the rank of each value among the plate's {vendor} values")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))
