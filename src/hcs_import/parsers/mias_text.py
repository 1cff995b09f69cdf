"""Delimited text tables with a free-form preamble: MIAS detail files and Columbus/Harmony exports.

Both vendors write a few lines of analysis parameters, then a header line, then one row per object or
well. This module finds line boundaries and field counts with numpy over the raw bytes (no Python
object per line), lets pandas' C parser read the rows, and applies the project's bad-value policy:
- a row with the wrong number of fields is an error naming its line ("error"), or is kept, padded with
  NaN or cut to the header's width, and counted ("nan");
- a value that is not a number in a numeric column is an error naming line and column, or NaN and
  counted. A column in which no value at all is a number is a text column and kept as text.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..issues_log import WarningLog
from ..model import arrays_frame
from .common import SPECIAL_NUMBERS

# Windows-made exports that are not UTF-8 are read as Windows-1252 (a superset of Latin-1's printable
# characters: `µ`, `²`, `°` in column names are the usual reason a file is not ASCII).
FALLBACK_ENCODING = "cp1252"
# Spellings pandas' C parser must treat as missing (the C parser only knows exact strings).
NA_SPELLINGS: tuple[str, ...] = tuple(
    sorted({v for k, x in SPECIAL_NUMBERS.items() if x != x for v in (k, k.upper(), k.title())} | {"NaN", "-NaN"})
)
TEXT_SAMPLE = 1000  # distinct values tried first: a column where none is a number is text
_UNIT = re.compile(r"^(?P<name>.*?)\s*\[(?P<unit>[^\[\]]*)\]\s*$")


@dataclass(frozen=True)
class Lines:
    """Byte offsets of every line of a file (CR of a CRLF excluded) and its number of separators."""

    starts: np.ndarray
    ends: np.ndarray
    separators: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    def text(self, data: bytes, i: int, encoding: str) -> str:
        return data[self.starts[i] : self.ends[i]].decode(encoding, "replace")

    def blank(self) -> np.ndarray:
        return self.ends <= self.starts


def split_lines(data: bytes, sep: bytes = b"\t") -> Lines:
    buf = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(buf == 0x0A)
    starts = np.concatenate((np.zeros(1, dtype=np.int64), nl + 1)).astype(np.int64)
    ends = np.concatenate((nl, np.array([len(buf)]))).astype(np.int64)
    if len(starts) and starts[-1] >= len(buf):  # the empty "line" after a final newline
        starts, ends = starts[:-1], ends[:-1]
    has_cr = ends > starts
    has_cr[has_cr] = buf[ends[has_cr] - 1] == 0x0D
    ends = ends - has_cr.astype(np.int64)
    seps = np.flatnonzero(buf == sep[0])
    counts = np.searchsorted(seps, ends) - np.searchsorted(seps, starts)
    return Lines(starts, ends, counts.astype(np.int64))


def choose_encoding(data: bytes) -> str:
    """UTF-8 (with or without BOM) when the bytes are valid UTF-8, else the Windows fallback."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return FALLBACK_ENCODING
    return "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"


def split_unit(name: str) -> tuple[str, str | None]:
    """`Nucleus Area [µm²]` -> (`Nucleus Area`, `µm²`); a name without brackets has no unit."""
    m = _UNIT.match(name)
    if not m or not m.group("unit").strip():
        return name, None
    return m.group("name"), m.group("unit").strip()


def is_number(token: str) -> bool:
    t = token.strip()
    if not t:
        return False
    try:
        float(t)
    except ValueError:
        return t.lower() in SPECIAL_NUMBERS and t != ""
    return True


@dataclass(frozen=True)
class Chunk:
    """The rows of one file under its header, checked but not yet parsed (see read_chunks)."""

    path: Path
    header: tuple[str, ...]
    header_line: int  # 1-based
    body: bytes  # UTF-8, every row ending in a newline
    lines: np.ndarray  # 1-based file line of each row
    long_rows: bool  # some rows have more fields than the header (cut to the header's width)


@dataclass(frozen=True)
class TextTable:
    """Rows of one or more files with one header: `frame` has one column per header field (numbers as
    int64/float64, text as object); `file` (index into `paths`) and `lines` (1-based) locate each row."""

    header: tuple[str, ...]
    frame: pd.DataFrame
    paths: tuple[Path, ...]
    file: np.ndarray
    lines: np.ndarray

    def rows_of(self, i: int) -> np.ndarray:
        return np.flatnonzero(self.file == i)


def _parse_distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each distinct string parsed once: (number or NaN, not-a-number flag, empty flag)."""
    parsed = np.full(len(values), np.nan)
    bad = np.zeros(len(values), dtype=bool)
    empty = np.zeros(len(values), dtype=bool)
    for k, raw in enumerate(values):
        t = str(raw).strip()
        if not t:
            empty[k] = True
            continue
        try:
            parsed[k] = float(t)
        except ValueError:
            special = SPECIAL_NUMBERS.get(t.lower())
            if special is None:
                bad[k] = True
            else:
                parsed[k] = special
    return parsed, bad, empty


def _convert(values: pd.Series, name: str, table_paths: tuple[Path, ...], file: np.ndarray, lines: np.ndarray,
             bad_values: str, warnings: WarningLog, numeric: bool) -> np.ndarray:
    """A column as float64/int64, or as text (object) when it is not required to be numeric and most of
    its distinct values are not numbers (a compound or a bounding box). Distinct values are parsed once."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy()
    raw = values.to_numpy(dtype=object, na_value=None)
    codes, distinct = pd.factorize(raw)
    distinct = np.asarray(distinct, dtype=object)
    if not numeric and len(distinct) > TEXT_SAMPLE:
        _, bad_s, _ = _parse_distinct(distinct[:TEXT_SAMPLE])
        if bad_s.all():
            return raw  # e.g. a bounding box per object: text, no need to try every value
    parsed_d, bad_d, empty_d = _parse_distinct(distinct)
    if not numeric and bad_d.sum() > (~bad_d & ~empty_d).sum():
        return raw  # a text column: kept as written (missing values None)
    present = codes >= 0
    parsed = np.where(present, parsed_d[np.maximum(codes, 0)], np.nan) if len(distinct) else np.full(len(raw), np.nan)
    bad = present & bad_d[np.maximum(codes, 0)] if len(distinct) else np.zeros(len(raw), dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        path = table_paths[int(file[i])]
        text = str(raw[i]).strip()
        if bad_values == "error":
            raise InputError(path, f"line {int(lines[i])}, column {name!r}", f"value {text!r} is not a number")
        warnings.add(f"{path.name}: values that are not numbers stored as NaN",
                     f"line {int(lines[i])}, column {name!r}: {text!r}", int(bad.sum()))
    return parsed


def prepare_chunk(path: Path, data: bytes, lines: Lines, header_index: int, encoding: str, bad_values: str,
                  warnings: WarningLog, sep: str = "\t", line_offset: int = 0) -> Chunk:
    """Check the rows after line `header_index` (0-based) against the header's field count.

    A row with too few or too many fields is an error naming its line ("error"), or is counted and kept
    (missing fields NaN, extra fields cut) ("nan"). `line_offset`: lines of the file before `data`'s
    first line, when `data` is the header followed by a block of a file read in blocks (columbus_stream).
    """
    header = tuple(lines.text(data, header_index, encoding).split(sep))
    width = len(header)
    body = np.arange(header_index + 1, len(lines))
    body = body[~lines.blank()[body]]
    fields = lines.separators[body] + 1
    row_lines = body + 1 + line_offset
    short, long_ = fields < width, fields > width
    if short.any() or long_.any():
        first = int(np.flatnonzero(short | long_)[0])
        if bad_values == "error":
            raise InputError(path, f"line {int(row_lines[first])}",
                             f"expected {width} {'tab' if sep == chr(9) else repr(sep)}-separated fields as in "
                             f"the header on line {header_index + 1 + line_offset}, found {int(fields[first])}; "
                             "the file may be truncated or garbled")
        if short.any():
            i = int(np.flatnonzero(short)[0])
            warnings.add(f"{path.name}: rows with fewer fields than the header, missing values stored as NaN",
                         f"line {int(row_lines[i])}", int(short.sum()))
        if long_.any():
            i = int(np.flatnonzero(long_)[0])
            warnings.add(f"{path.name}: rows with more fields than the header, extra values ignored",
                         f"line {int(row_lines[i])}", int(long_.sum()))
    raw = data[int(lines.starts[header_index + 1]) :] if len(body) else b""
    if raw and not raw.endswith(b"\n"):
        raw += b"\n"
    if raw and encoding not in ("utf-8", "utf-8-sig"):
        raw = raw.decode(encoding, "replace").encode("utf-8")
    return Chunk(path, header, header_index + 1 + line_offset, raw, row_lines, bool(long_.any()))


def read_chunks(chunks: list[Chunk], bad_values: str, warnings: WarningLog,
                numeric: Collection[str | int] | None = None,
                all_numeric: bool = False, sep: str = "\t", text: Collection[int] = ()) -> TextTable:
    """Parse the rows of several files that share one header with a single pandas C-parser pass.

    numeric: names (or positions) that must be numbers (bad values are errors or counted NaN); others are
    numeric when any value is a number, text when none is. all_numeric: every column must be numeric.
    text: positions of columns kept as text whatever their values (a file read in blocks: decided by an
    earlier block).
    """
    header = chunks[0].header
    width = len(header)
    row_lines = np.concatenate([c.lines for c in chunks]) if chunks else np.zeros(0, dtype=np.int64)
    file = np.repeat(np.arange(len(chunks)), [len(c.lines) for c in chunks])
    paths = tuple(c.path for c in chunks)
    body = b"".join(c.body for c in chunks)
    if not len(row_lines):
        frame = pd.DataFrame({i: pd.Series(dtype=np.float64) for i in range(width)})
    else:
        kwargs: dict[str, Any] = {
            "sep": sep,
            "header": None,
            "names": list(range(width)),
            "quoting": csv.QUOTE_NONE,
            "keep_default_na": False,
            "na_values": ["", *NA_SPELLINGS],
            "skip_blank_lines": True,
            "encoding": "utf-8",
        }
        if text:
            kwargs["dtype"] = {i: object for i in text}
        try:
            if any(c.long_rows for c in chunks):
                frame = pd.read_csv(io.BytesIO(body), engine="python", on_bad_lines=lambda f: f[:width], **kwargs)
            else:
                frame = pd.read_csv(io.BytesIO(body), engine="c", **kwargs)
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            where = f"after line {chunks[0].header_line}"
            raise InputError(paths[0] if len(paths) == 1 else paths[0].parent, where,
                             f"cannot be read as a table: {exc}") from None
        if len(frame) != len(row_lines):
            raise InputError(paths[0] if len(paths) == 1 else paths[0].parent, None,
                             f"read {len(frame)} rows but the files have {len(row_lines)} non-empty lines; "
                             "a file may be garbled")
    wanted = {n for n in numeric or () if isinstance(n, str)}
    numeric_at = {n for n in numeric or () if isinstance(n, int)}
    columns = {}
    for i, name in enumerate(header):
        if i in text:
            columns[i] = frame[i].to_numpy(dtype=object, na_value=None)
            continue
        columns[i] = _convert(frame[i], name or f"column {i + 1}", paths, file, row_lines, bad_values, warnings,
                              all_numeric or name.strip() in wanted or i in numeric_at)
    return TextTable(header, arrays_frame(columns), paths, file, row_lines)


def read_table(path: Path, data: bytes, lines: Lines, header_index: int, encoding: str, bad_values: str,
               warnings: WarningLog, numeric: Collection[str] | None = None, all_numeric: bool = False,
               sep: str = "\t") -> TextTable:
    """One file's table: prepare_chunk + read_chunks."""
    chunk = prepare_chunk(path, data, lines, header_index, encoding, bad_values, warnings, sep)
    return read_chunks([chunk], bad_values, warnings, numeric, all_numeric, sep)
