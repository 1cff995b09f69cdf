"""InCell Investigator analysis XML (`<WellData>` / `<Measure>`), parsed columnar, streamed, in parallel.

The files run to gigabytes, so:
- the file is split at `<WellData` boundaries into byte ranges; each range is parsed on its own in a
  worker process, so both cores parse;
- a range written the way Investigator writes it (`<WellData row col field cell>` holding only
  `<Measure source key value [unit]/>`, no entities, comments or odd whitespace) is read by a strict
  tokenizer whose grammar accepts only well-formed XML, and turned into columns with numpy; anything
  else in a range (and any range where a value, a number or a duplicate key needs a warning or an
  error) is parsed by lxml iterparse (elements freed as soon as they are read), which is the reference
  behaviour: both paths give the same columns, and only lxml ever reports errors or warnings;
- values go straight into typed arrays (`array('d')`), padded with NaN where an object lacks a key,
  so sparse keys are aligned by object and no Python object per cell is kept;
- each range's objects are spilled to disk (.npy files in a SpillDir) by the process that parsed them,
  and only their description travels back: the parent never holds more than a few ranges' worth, and
  the tables are read back from the spill range by range (SpilledPopulation.read), so memory stays
  flat however many objects the file holds;
- what lies outside the WellData ranges (the document's head and tail) is parsed too, so a truncated
  or malformed file is an error, never silently shortened.

Everything here is a pure function of the file: no OMERO, no output.
"""

from __future__ import annotations

import codecs
import gc
import itertools
import math
import mmap
import os
import re
from array import array
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
from lxml import etree

from .. import xmlsafe
from ..errors import InputError
from ..issues_log import WarningLog
from ..model import FIELD, OBJECT, WELL_COLUMN, WELL_ROW
from ..spill import SpillDir, spill_failure
from ..workers import die_with_parent
from .base import Progress
from .common import strict_number

SUMMARY_CELL = "Summary"  # `cell="Summary"`: a per-well (or per-field) summary row, not an object


_WELLDATA_START = re.compile(rb"<WellData[\s/>]")
_WELLDATA_END = b"</WellData>"
PARALLEL_MIN_BYTES = 16 << 20  # below this, one process is faster than starting workers
CHUNK_BYTES = 24 << 20
_NAN_PAD = array("d", [math.nan]) * 4096


class ChunkError(Exception):
    """An error inside one byte range; the parent turns the chunk-relative line into a file line."""

    def __init__(self, start: int, line: int, element: str, message: str) -> None:
        super().__init__(start, line, element, message)
        self.start, self.line, self.element, self.message = start, line, element, message


@dataclass
class Columns:
    """Objects of one population (or the summary rows), columnar."""

    well_row: array | np.ndarray = field(default_factory=lambda: array("q"))
    well_column: array | np.ndarray = field(default_factory=lambda: array("q"))
    field_: array | np.ndarray = field(default_factory=lambda: array("q"))
    object_: array | np.ndarray = field(default_factory=lambda: array("q"))
    values: dict[str, array | np.ndarray] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.well_row)


@dataclass
class ParsedChunk:
    populations: dict[str, Columns]
    summary: dict[str, Columns]
    warnings: WarningLog
    welldata: int
    measures: int


# Rows of a spilled range's keys file, named as the model's key columns so tables take them as they are.
KEY_ARRAYS = (WELL_ROW, WELL_COLUMN, FIELD, OBJECT)


@dataclass(frozen=True)
class SpilledPart:
    """One range's objects of one population on disk: KEY_ARRAYS (4 x n int64) and `names` (k x n float64)."""

    keys_file: str
    values_file: str
    names: tuple[str, ...]
    rows: int
    max_row: int
    max_column: int


@dataclass
class SpilledChunk:
    """What a worker sends back for one range: its populations' spill files, the (small) summary rows."""

    populations: dict[str, SpilledPart]
    units: dict[str, dict[str, str]]
    summary: dict[str, Columns]
    warnings: WarningLog
    welldata: int
    measures: int


@dataclass(frozen=True)
class SpilledPopulation:
    """One population of the whole file: its keys (union, first-appearance order) and ranges on disk."""

    keys: tuple[str, ...]
    units: dict[str, str]
    parts: tuple[SpilledPart, ...]
    spill: SpillDir  # held so the files live as long as this does

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)

    @property
    def max_row(self) -> int:
        return max(p.max_row for p in self.parts)

    @property
    def max_column(self) -> int:
        return max(p.max_column for p in self.parts)

    def read(self, keys: list[str] | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Range by range, in file order: KEY_ARRAYS and the given keys (all when None), NaN where absent."""
        wanted = list(self.keys) if keys is None else keys
        for part in self.parts:
            out = dict(zip(KEY_ARRAYS, np.load(part.keys_file)))
            values = np.load(part.values_file, mmap_mode="r")
            index = {name: i for i, name in enumerate(part.names)}
            for key in wanted:
                i = index.get(key)
                out[key] = np.array(values[i]) if i is not None else np.full(part.rows, np.nan)
            del values
            yield out


def spill_chunk(chunk: ParsedChunk, spill: Path, index: int) -> SpilledChunk:
    """Write a parsed range's populations to `spill` (one keys and one values .npy each)."""
    parts: dict[str, SpilledPart] = {}
    for p, (name, cols) in enumerate(chunk.populations.items()):
        n = len(cols)
        keys = np.vstack([np.asarray(a, dtype=np.int64) for a in (cols.well_row, cols.well_column, cols.field_,
                                                                 cols.object_)])
        values = (np.vstack([np.asarray(v, dtype=np.float64) for v in cols.values.values()])
                  if cols.values else np.empty((0, n)))
        stem = spill / f"{index:06d}-{p}"
        try:
            np.save(f"{stem}-keys.npy", keys)
            np.save(f"{stem}-values.npy", values)
        except OSError as exc:  # raised in the worker, pickled to the parent, shown as one line
            raise spill_failure(spill, exc) from None
        parts[name] = SpilledPart(f"{stem}-keys.npy", f"{stem}-values.npy", tuple(cols.values), n,
                                  int(keys[0].max()), int(keys[1].max()))
    return SpilledChunk(parts, {name: cols.units for name, cols in chunk.populations.items()}, chunk.summary,
                        chunk.warnings, chunk.welldata, chunk.measures)


@dataclass(frozen=True)
class ParsedResults:
    """Whole-file result: the populations spilled to disk; the summary rows as key arrays and one float64
    array per key (NaN-padded)."""

    populations: dict[str, SpilledPopulation]
    summary: dict[str, dict[str, np.ndarray]]
    summary_units: dict[str, dict[str, str]]
    warnings: WarningLog
    welldata: int
    measures: int


def _pad(arr: array, n: int) -> None:
    while len(arr) < n:
        arr.extend(_NAN_PAD[: min(len(_NAN_PAD), n - len(arr))])


def _number(text: str | None, bad_values: str, warn: WarningLog, where: tuple[int, str]) -> float:
    if text is None:
        if bad_values == "error":
            raise ChunkError(0, where[0], where[1], "<Measure> without a value attribute")
        warn.add("Measure without a value attribute, stored as NaN", f"line {where[0]} (chunk)")
        return math.nan
    value = strict_number(text)
    if value is not None:
        return value
    if bad_values == "error":
        raise ChunkError(0, where[0], where[1], f"value {text!r} is not a number")
    warn.add("non-numeric values stored as NaN", f"{where[1]} value {text!r}")
    return math.nan


def _int_attr(el: etree._Element, name: str, default: str | None = None) -> int:
    text = el.get(name, default)
    if text is None:
        raise ChunkError(0, el.sourceline or 0, "<WellData>",
                         f"missing attribute {name!r} (expected a 1-based {name} number)")
    try:
        value = int(text)
    except ValueError:
        raise ChunkError(0, el.sourceline or 0, "<WellData>",
                         f"attribute {name}={text!r} is not a whole number") from None
    if value < 1:
        raise ChunkError(0, el.sourceline or 0, "<WellData>", f"attribute {name}={value} must be >= 1")
    return value


def parse_chunk(path: str, start: int, end: int, encoding: str | None, bad_values: str, spill: str,
                index: int) -> SpilledChunk:
    """Parse the WellData elements in bytes [start, end) of the file and spill their objects."""
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    return spill_chunk(parse_welldata_bytes(data, start, encoding, bad_values), Path(spill), index)


def parse_welldata_bytes(data: bytes, start: int, encoding: str | None, bad_values: str) -> ParsedChunk:
    """Parse the WellData elements of one byte range: the fast tokenizer when it applies, else lxml."""
    fast = parse_welldata_fast(data, encoding)
    if fast is not None:
        return fast
    return parse_welldata_lxml(data, start, encoding, bad_values)


# The fast path. It reads the range as bytes with numpy: the positions of every `"` delimit the attribute
# values; the markup between them (each distinct piece classified once) must follow a strict grammar of
# WellData blocks holding only `<Measure source key value [unit]/>`, in that attribute order, XML
# whitespace only; and the values must hold no `<`, `&`, C0 control (XML normalises tab / newline in
# attribute values), nor the two non-characters. Such text is well-formed XML whose lxml parse yields
# exactly these attribute strings, so the columns are the same; everything else goes to lxml.
_S = rb"[ \t\r\n]"
_PIECES: tuple[tuple[bytes, bytes], ...] = (  # class letter, markup piece (between two attribute values)
    (b"A", rb"<WellData" + _S + rb"+row="),  # the range's first piece
    (b"c", _S + rb"+col="),
    (b"f", _S + rb"+field="),
    (b"l", _S + rb"+cell="),
    (b"m", _S + rb"*>" + _S + rb"*<Measure" + _S + rb"+source="),  # WellData head, first Measure
    (b"M", _S + rb"*/>" + _S + rb"*<Measure" + _S + rb"+source="),  # next Measure
    (b"k", _S + rb"+key="),
    (b"v", _S + rb"+value="),
    (b"u", _S + rb"+unit="),
    (b"E", _S + rb"*/>" + _S + rb"*</WellData>" + _S + rb"*<WellData" + _S + rb"+row="),  # next block
    (b"e", _S + rb"*>" + _S + rb"*</WellData>" + _S + rb"*<WellData" + _S + rb"+row="),  # after an empty one
    (b"Z", _S + rb"*/>" + _S + rb"*</WellData>" + _S + rb"*"),  # the range's end
    (b"z", _S + rb"*>" + _S + rb"*</WellData>" + _S + rb"*"),
)
_PIECE_RES = tuple((letter, re.compile(pattern)) for letter, pattern in _PIECES)
_SEQUENCE_RE = re.compile(rb"Acfl(?:(?:mkvu?(?:Mkvu?)*E|e)cfl)*(?:mkvu?(?:Mkvu?)*Z|z)")
_FAST_CODECS = {"utf-8", "ascii", "latin-1", "iso8859-1"}
# The attribute each class of piece introduces (the value right after it).
_ROW, _COL, _FIELD, _CELL, _SOURCE, _KEY, _VALUE, _UNIT = range(8)
_ROLE_OF = {b"A": _ROW, b"E": _ROW, b"e": _ROW, b"c": _COL, b"f": _FIELD, b"l": _CELL, b"m": _SOURCE,
            b"M": _SOURCE, b"k": _KEY, b"v": _VALUE, b"u": _UNIT, b"Z": 255, b"z": 255}
_SUMMARY_BYTES = SUMMARY_CELL.encode("ascii")
_MAX_PIECE = 256  # longer markup or text pieces are left to lxml (and the Python slices below)


def _segment_codes(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Exact factorisation of byte segments without a Python object per segment.

    Returns (codes in first-appearance order, index of each code's first segment), or None when a
    segment is too long. Segments are gathered zero-padded into rows, hashed, and every row is then
    compared with its code's first row, so a hash collision can never merge two different segments.
    """
    n = len(starts)
    lengths = ends - starts
    longest = int(lengths.max()) if n else 0
    if longest > _MAX_PIECE:
        return None
    width = max(8, -(-longest // 8) * 8)
    padded = np.concatenate((arr, np.zeros(width, dtype=np.uint8)))
    rows = np.lib.stride_tricks.sliding_window_view(padded, width)[starts]
    rows[np.arange(width) >= lengths[:, None]] = 0
    words = rows.view(np.uint64)
    mix = np.arange(1, words.shape[1] + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) | np.uint64(1)
    with np.errstate(over="ignore"):
        h = (words * mix).sum(axis=1, dtype=np.uint64) ^ (lengths.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F))
    codes, _ = pd.factorize(h)
    first = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0)
    if not (np.array_equal(rows, rows[first][codes]) and np.array_equal(lengths, lengths[first][codes])):
        return None  # a hash collision (never seen): take the slow road
    return codes, first


class _NotFast(Exception):
    """The range needs the lxml path (something to warn about, an error, or an unusual form)."""


def _floats(data: bytes, starts: list[int], ends: list[int], codec: str) -> np.ndarray:
    """Each value as a number, as the lxml path reads it (strict_number, specials included); _NotFast when
    one is not a number. float() does the common case; it also takes `1_000`, which no instrument writes,
    so values holding an underscore are counted with numpy (no Python loop) and sent the strict way."""
    try:
        out = np.fromiter(map(float, map(data.__getitem__, map(slice, starts, ends))), dtype=np.float64,
                          count=len(starts))
        underscores = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 0x5F)
        if not len(underscores):
            return out
        inside = np.searchsorted(underscores, ends) - np.searchsorted(underscores, starts)
        if not inside.any():
            return out
    except ValueError:
        pass
    out = np.empty(len(starts), dtype=np.float64)
    for i, (a_, b_) in enumerate(zip(starts, ends)):
        value = strict_number(data[a_:b_].decode(codec))
        if value is None:
            raise _NotFast from None
        out[i] = value
    return out


def _texts(data: bytes, starts: np.ndarray, ends: np.ndarray) -> list[bytes]:
    return list(map(data.__getitem__, map(slice, starts.tolist(), ends.tolist())))


def _names(data: bytes, arr: np.ndarray, starts: np.ndarray, ends: np.ndarray,
           codec: str) -> tuple[np.ndarray, list[str]]:
    """Codes (first-appearance order) and decoded names of repeated text values such as keys."""
    found = _segment_codes(arr, starts, ends)
    if found is None:
        codes, uniq = pd.factorize(np.array(_texts(data, starts, ends), dtype=object))
        return codes, [bytes(b).decode(codec) for b in uniq]
    codes, first = found
    return codes, [data[a:b].decode(codec) for a, b in zip(starts[first].tolist(), ends[first].tolist())]


def _ints(texts: list[bytes], codec: str) -> np.ndarray:
    return np.fromiter((int(t.decode(codec)) for t in texts), dtype=np.int64, count=len(texts))


def _fast_group(sel: np.ndarray, wd_of: np.ndarray, src_codes: np.ndarray, src_names: list[str],
                key_codes: np.ndarray, key_names: list[str], values: np.ndarray, unit_of: dict[int, str],
                rows: np.ndarray, cols: np.ndarray, fields: np.ndarray, objects: np.ndarray) -> dict[str, Columns]:
    """The populations of one group (objects or summaries) from the measures `sel` (ascending) selects."""
    out: dict[str, Columns] = {}
    if not len(sel):
        return out
    for code in pd.unique(src_codes[sel]):  # first-appearance order, as the lxml path
        m = sel[src_codes[sel] == code]
        wd = wd_of[m]  # ascending: measures are in document order
        new_row = np.empty(len(wd), dtype=bool)
        new_row[0] = True
        np.not_equal(wd[1:], wd[:-1], out=new_row[1:])
        row_of = np.cumsum(new_row) - 1
        wds = wd[new_row]
        kc = key_codes[m]
        order = pd.unique(kc)  # this population's keys in first-appearance order
        local = np.empty(len(key_names), dtype=np.int64)
        local[order] = np.arange(len(order))
        lk = local[kc]
        nk, nr = len(order), len(wds)
        flat = row_of * nk + lk
        if np.bincount(flat, minlength=nk * nr).max() > 1:
            raise _NotFast  # a duplicate key in one WellData: lxml warns about it
        grid = np.full((nk, nr), np.nan)
        grid[lk, row_of] = values[m]
        col = Columns(rows[wds], cols[wds], fields[wds], objects[wds])
        col.values = {key_names[k]: grid[i] for i, k in enumerate(order.tolist())}
        if unit_of:
            first = np.full(nk, len(m), dtype=np.int64)
            np.minimum.at(first, lk, np.arange(len(m)))
            for i, k in enumerate(order.tolist()):
                unit = unit_of.get(int(m[first[i]]))
                if unit:
                    col.units[key_names[k]] = unit
        out[src_names[int(code)]] = col
    return out


def parse_welldata_fast(data: bytes, encoding: str | None) -> ParsedChunk | None:
    """Columns of a range in Investigator's own form, or None when the range needs the lxml path.

    Short-lived objects by the hundred thousand are made here and none form cycles: the cyclic garbage
    collector is paused meanwhile (it otherwise rescans them over and over).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse_welldata_fast(data, encoding)
    except (_NotFast, ValueError, OverflowError, UnicodeDecodeError):
        return None
    finally:
        if enabled:
            gc.enable()


def _parse_welldata_fast(data: bytes, encoding: str | None) -> ParsedChunk | None:
    try:
        codec = codecs.lookup(encoding or "utf-8").name
    except LookupError:
        return None
    if codec not in _FAST_CODECS or b"&" in data or not data:
        return None
    if codec == "utf-8":
        data.decode("utf-8")  # raises on anything lxml would refuse as UTF-8 (surrogates included)
        if b"\xef\xbf\xbe" in data or b"\xef\xbf\xbf" in data:
            return None
    elif codec == "ascii":
        data.decode("ascii")
    arr = np.frombuffer(data, dtype=np.uint8)
    control = arr < 32
    if control.any() and (control & (arr != 9) & (arr != 10) & (arr != 13)).any():
        return None
    quotes = np.flatnonzero(arr == 34)
    if len(quotes) % 2 or not len(quotes):
        return None
    opens, closes = quotes[0::2], quotes[1::2]
    # No `<` and no tab / newline inside a value: an odd number of quotes before it means inside.
    if np.any(np.searchsorted(quotes, np.flatnonzero((arr == 60) | control)) % 2):
        return None
    piece_starts = np.concatenate(([0], closes + 1))
    piece_ends = np.concatenate((opens, [len(arr)]))
    found = _segment_codes(arr, piece_starts, piece_ends)
    if found is None:
        return None
    codes, first = found
    letters = []
    for i in first.tolist():
        piece = data[piece_starts[i] : piece_ends[i]]
        letters.append(next((letter for letter, rx in _PIECE_RES if rx.fullmatch(piece)), b"?"))
    sequence = np.frombuffer(b"".join(letters), dtype=np.uint8)[codes].tobytes()
    if _SEQUENCE_RE.fullmatch(sequence) is None:
        return None
    role_of_code = np.array([_ROLE_OF.get(x, 255) for x in letters], dtype=np.uint8)
    roles = role_of_code[codes[:-1]]
    return _columns(data, arr, roles, opens + 1, closes, codec)


def _columns(data: bytes, arr: np.ndarray, roles: np.ndarray, starts: np.ndarray, ends: np.ndarray,
             codec: str) -> ParsedChunk:
    """Columns from the values of a validated range: role, start and end of every attribute value."""
    is_row = roles == _ROW
    n_wd = int(is_row.sum())
    wd_of_value = np.cumsum(is_row) - 1
    rows = _ints(_texts(data, starts[is_row], ends[is_row]), codec) - 1
    cols = _ints(_texts(data, starts[roles == _COL], ends[roles == _COL]), codec) - 1
    fields = _ints(_texts(data, starts[roles == _FIELD], ends[roles == _FIELD]), codec) - 1
    if min(rows.min(), cols.min(), fields.min()) < 0:
        raise _NotFast
    cells = _texts(data, starts[roles == _CELL], ends[roles == _CELL])
    summary = np.fromiter((c == _SUMMARY_BYTES for c in cells), dtype=bool, count=n_wd)
    objects = np.full(n_wd, -1, dtype=np.int64)
    if not summary.all():
        objects[~summary] = _ints([c for c, s in zip(cells, summary.tolist()) if not s], codec)
    is_source = roles == _SOURCE
    n_measures = int(is_source.sum())
    if not n_measures:
        return ParsedChunk({}, {}, WarningLog(), n_wd, 0)
    wd_of = wd_of_value[is_source]
    is_key = roles == _KEY
    src_codes, src_names = _names(data, arr, starts[is_source], ends[is_source], codec)
    key_codes, key_names = _names(data, arr, starts[is_key], ends[is_key], codec)
    is_value = roles == _VALUE
    values = _floats(data, starts[is_value].tolist(), ends[is_value].tolist(), codec)
    unit_of: dict[int, str] = {}
    is_unit = roles == _UNIT
    if is_unit.any():
        measure_of = (np.cumsum(is_source) - 1)[is_unit]
        for m, text in zip(measure_of.tolist(), _texts(data, starts[is_unit], ends[is_unit])):
            unit_of[m] = text.decode(codec)
    is_summary = summary[wd_of]
    groups = [_fast_group(np.flatnonzero(sel), wd_of, src_codes, src_names, key_codes, key_names, values, unit_of,
                          rows, cols, fields, objects) for sel in (~is_summary, is_summary)]
    return ParsedChunk(groups[0], groups[1], WarningLog(), n_wd, n_measures)


def parse_welldata_lxml(data: bytes, start: int, encoding: str | None, bad_values: str) -> ParsedChunk:
    """The reference path: lxml iterparse of the range, every error and warning with its line."""
    populations: dict[str, Columns] = {}
    summary: dict[str, Columns] = {}
    warn = WarningLog()
    nan = math.nan
    n_welldata = n_measures = 0
    source = BytesIO(b"<chunk>" + data + b"</chunk>")
    kwargs = {"encoding": encoding} if encoding else {}
    try:
        for _, wd in xmlsafe.iterparse(source, events=("end",), tag="WellData", **kwargs):
            n_welldata += 1
            row = _int_attr(wd, "row") - 1
            col = _int_attr(wd, "col") - 1
            if wd.get("field") is None:
                warn.add("WellData without a field attribute, taken as field 1", f"line {wd.sourceline}")
            fld = _int_attr(wd, "field", "1") - 1
            cell = wd.get("cell")
            if cell == SUMMARY_CELL:
                target, obj = summary, -1
            else:
                target = populations
                if cell is None:
                    raise ChunkError(0, wd.sourceline or 0, "<WellData>",
                                     "missing attribute 'cell' (expected an object number or 'Summary')")
                try:
                    obj = int(cell)
                except ValueError:
                    raise ChunkError(0, wd.sourceline or 0, "<WellData>",
                                     f"cell={cell!r} is neither an object number nor 'Summary'") from None
            current: dict[str | None, tuple[Columns, int]] = {}
            for m in wd:
                if m.tag != "Measure":
                    continue
                n_measures += 1
                src = m.get("source")
                entry = current.get(src)
                if entry is None:
                    pop = target.get(src or "")
                    if pop is None:
                        pop = target[src or ""] = Columns()
                    pop.well_row.append(row)
                    pop.well_column.append(col)
                    pop.field_.append(fld)
                    pop.object_.append(obj)
                    entry = current[src] = (pop, len(pop.well_row) - 1)
                pop, i = entry
                key = m.get("key")
                if key is None:
                    raise ChunkError(0, m.sourceline or 0, "<Measure>", "missing attribute 'key' (the measure's name)")
                arr = pop.values.get(key)
                if arr is None:
                    arr = pop.values[key] = array("d")
                    unit = m.get("unit")
                    if unit:
                        pop.units[key] = unit
                value = _number(m.get("value"), bad_values, warn, (m.sourceline or 0, f"<Measure key={key!r}>"))
                if len(arr) == i:
                    arr.append(value)
                elif len(arr) < i:
                    if i - len(arr) == 1:
                        arr.append(nan)
                    else:
                        _pad(arr, i)
                    arr.append(value)
                else:
                    arr[i] = value
                    warn.add("duplicate Measure key within one WellData (the last value kept)",
                             f"line {m.sourceline} key {key!r}")
            wd.clear()
            parent = wd.getparent()
            if parent is not None:
                while wd.getprevious() is not None:
                    del parent[0]
    except ChunkError as exc:
        exc.start = start
        raise
    except etree.XMLSyntaxError as exc:
        raise ChunkError(start, exc.lineno or 0, "XML", f"malformed XML ({xmlsafe.lxml_message(exc)})") from None
    for group in (populations, summary):
        for pop in group.values():
            n = len(pop)
            for arr in pop.values.values():
                _pad(arr, n)
    return ParsedChunk(populations, summary, warn, n_welldata, n_measures)


def _ranges(mm: mmap.mmap, first: int, end: int, chunk: int) -> list[tuple[int, int]]:
    bounds = [first]
    pos = first + chunk
    while pos < end:
        m = _WELLDATA_START.search(mm, pos, end)
        if m is None:
            break
        bounds.append(m.start())
        pos = m.start() + chunk
    bounds.append(end)
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def _last_welldata_start(mm: mmap.mmap, first: int) -> int:
    pos = mm.rfind(b"<WellData")
    while pos > first and not _WELLDATA_START.match(mm, pos):
        pos = mm.rfind(b"<WellData", first, pos)
    return max(pos, first)


def _lines_before(mm: mmap.mmap, pos: int) -> int:
    return mm[:pos].count(b"\n")


def _merge(chunks: list[SpilledChunk], attr: str) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, str]]]:
    names: list[str] = []
    for ch in chunks:
        for name in getattr(ch, attr):
            if name not in names:
                names.append(name)
    out: dict[str, dict[str, np.ndarray]] = {}
    units: dict[str, dict[str, str]] = {}
    for name in names:
        parts = [getattr(ch, attr).get(name) for ch in chunks]
        present = [p for p in parts if p is not None]
        keys: list[str] = []
        for p in present:
            for k in p.values:
                if k not in keys:
                    keys.append(k)
        cols: dict[str, np.ndarray] = {
            "well_row": np.concatenate([np.frombuffer(p.well_row, dtype=np.int64) for p in present]),
            "well_column": np.concatenate([np.frombuffer(p.well_column, dtype=np.int64) for p in present]),
            "field": np.concatenate([np.frombuffer(p.field_, dtype=np.int64) for p in present]),
            "object": np.concatenate([np.frombuffer(p.object_, dtype=np.int64) for p in present]),
        }
        for k in keys:
            pieces = [
                np.frombuffer(p.values[k], dtype=np.float64) if k in p.values else np.full(len(p), np.nan)
                for p in present
            ]
            cols[k] = pieces[0].copy() if len(pieces) == 1 else np.concatenate(pieces)
        out[name] = cols
        merged_units: dict[str, str] = {}
        for p in present:
            for k, u in p.units.items():
                merged_units.setdefault(k, u)
        units[name] = merged_units
    return out, units


def _merge_spilled(chunks: list[SpilledChunk], spill: SpillDir) -> dict[str, SpilledPopulation]:
    """Each population's ranges in file order, its keys (union, first-appearance order) and units."""
    parts: dict[str, list[SpilledPart]] = {}
    keys: dict[str, dict[str, None]] = {}
    units: dict[str, dict[str, str]] = {}
    for ch in chunks:
        for name, part in ch.populations.items():
            parts.setdefault(name, []).append(part)
            keys.setdefault(name, {}).update(dict.fromkeys(part.names))
            for k, u in ch.units[name].items():
                units.setdefault(name, {}).setdefault(k, u)
    return {name: SpilledPopulation(tuple(keys[name]), units.get(name, {}), tuple(p), spill)
            for name, p in parts.items()}


def parse_results(path: Path, bad_values: str = "error", workers: int | None = None,
                  progress: Progress | None = None) -> ParsedResults:
    """Parse a whole Investigator results XML file. Errors name the file and line."""
    size = path.stat().st_size
    if size == 0:
        raise InputError(path, None, "file is empty; expected InCell Investigator results XML")
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        encoding = xmlsafe.declared_encoding(mm[:200])
        first_match = _WELLDATA_START.search(mm)
        if first_match is None:
            raise InputError(path, None, "no <WellData> elements; expected InCell Investigator results")
        first = first_match.start()
        xmlsafe.reject_entities(mm[:first], path)
        last_start = _last_welldata_start(mm, first)
        close = mm.find(_WELLDATA_END, last_start)
        end = close + len(_WELLDATA_END) if close >= 0 else mm.find(b">", last_start) + 1
        # The document outside the WellData ranges must itself be well-formed XML.
        skeleton = mm[:first] + mm[end:]
        try:
            etree.fromstring(skeleton, xmlsafe.parser(encoding=encoding) if encoding else xmlsafe.parser())
        except etree.XMLSyntaxError as exc:
            head_lines = mm[:first].count(b"\n")
            line = exc.lineno or 1
            if line > head_lines + 1:  # the error lies in the tail: map back to file lines
                line = line - head_lines + _lines_before(mm, end)
            raise InputError(path, f"line {line}",
                             f"malformed XML outside the WellData elements ({xmlsafe.lxml_message(exc)}); "
                             "the file may be truncated") from None
        n_workers = workers or os.cpu_count() or 1
        span = end - first
        if n_workers > 1 and span >= PARALLEL_MIN_BYTES:
            chunk = max(4 << 20, min(CHUNK_BYTES, span // (n_workers * 4) + 1))
        else:
            chunk = span + 1
        ranges = _ranges(mm, first, end, chunk)
        spill = SpillDir(f"{path.stem[:40]}-")
        results: list[SpilledChunk] = []
        done = 0
        try:
            if len(ranges) == 1 or n_workers == 1:
                for i, (a, b) in enumerate(ranges):
                    results.append(spill_chunk(parse_welldata_bytes(mm[a:b], a, encoding, bad_values), spill.path, i))
                    done += b - a
                    if progress:
                        progress(done, span)
            else:
                with ProcessPoolExecutor(max_workers=min(n_workers, len(ranges)), initializer=die_with_parent,
                                         initargs=(os.getpid(),)) as pool:
                    futures = [pool.submit(parse_chunk, str(path), a, b, encoding, bad_values, str(spill.path), i)
                               for i, (a, b) in enumerate(ranges)]
                    try:
                        for (a, b), fut in zip(ranges, futures):
                            results.append(fut.result())
                            done += b - a
                            if progress:
                                progress(done, span)
                    except BaseException:
                        pool.shutdown(cancel_futures=True)
                        raise
        except ChunkError as exc:
            spill.remove()
            line = _lines_before(mm, exc.start) + exc.line
            raise InputError(path, f"line {line}, {exc.element}", exc.message) from None
        except BaseException:
            spill.remove()
            raise
    warn = WarningLog()
    for r in results:
        warn.merge(r.warnings)
    summ, summ_units = _merge(results, "summary")
    return ParsedResults(_merge_spilled(results, spill), summ, summ_units, warn,
                         sum(r.welldata for r in results), sum(r.measures for r in results))
