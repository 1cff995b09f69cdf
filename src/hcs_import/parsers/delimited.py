"""Delimited vendor text tables (tab / comma / semicolon), read fast and checked value by value.

Written for ScanR's ParameterData exports and shared by the IN Carta and BD Attovision parsers (the
name says where it started; nothing in it is ScanR-specific). Why one reader for all of them:

- Speed: pandas' pyarrow engine reads 100,000+ rows in milliseconds; numeric columns are never touched
  again in Python.
- Honesty: a short or long row (a truncated file) is an error naming the file and line (the C engine
  would pad a short last row with NaN silently); a value that is not a number in a numeric column is
  either an error naming file, line and column (bad_values="error") or NaN counted in the warnings
  (bad_values="nan"); a column with no numbers at all is kept as text, never dropped.
- Names: header names are trimmed (ScanR writes `Area `, `Well ` with a trailing space); the vendor's
  exact header is kept as ColumnInfo.source_name.
- Encoding: ISO-8859-1 unless the head of the file is valid, non-ASCII UTF-8 (or has a UTF-8 BOM):
  ScanR writes `µ` as the single byte 0xB5.

The exact line of a row is only worked out when it is needed for a message (error path), by scanning the
file once; blank lines, which the reader skips, are accounted for there.
"""

from __future__ import annotations

import codecs
import csv
import math
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import InputError
from ..issues_log import WarningLog
from ..model import ColumnInfo, arrays_frame
from .common import SPECIAL_NUMBERS, is_unnamed_empty

HEAD_BYTES = 64 * 1024  # enough to see the header and the first rows of any export seen
DEFAULT_ENCODING = "iso-8859-1"  # ScanR / Windows exports without a BOM (docs/formats/scanr.md: `µ` in latin-1)
THREADED_BYTES = 4 << 20  # below this, one thread reads faster than starting a pool
# Cells read as missing (pandas' default list): they become NaN, never bad values.
NULL_SPELLINGS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
                  "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
SEPARATORS = ("\t", ",", ";")  # tried in this order when a file's separator is not fixed by its format
TRIMMED_NOTE = "the vendor header has spaces around the name, trimmed here"
TRAILING_NOTE = "the vendor header ends in a space, trimmed here"



@dataclass(frozen=True)
class Header:
    """Where a table's header is and how its file is written."""

    line: int  # 1-based line number of the header
    raw_names: tuple[str, ...]
    sep: str
    encoding: str


@dataclass(frozen=True)
class DelimitedTable:
    """One file read: trimmed column names -> arrays, with the vendor's names in `infos`."""

    path: Path
    header: Header
    data: pd.DataFrame
    infos: dict[str, ColumnInfo] = field(default_factory=dict)
    first_row: int = 0  # data row (0-based, in the file) of this table's first row: a block of a streamed file

    @property
    def rows(self) -> int:
        return len(self.data)

    def source(self, column: str) -> str:
        return self.infos[column].source_name if column in self.infos else column

    def line_of(self, row: int) -> int:
        """Exact 1-based file line of data row `row` (0-based), skipping blank lines as the reader does."""
        return data_row_line(self.path, self.header, row + self.first_row)

    def error(self, row: int, column: str, message: str) -> InputError:
        return InputError(self.path, f"line {self.line_of(row)}, column {self.source(column)!r}", message)


def sniff_encoding(head: bytes) -> str:
    """UTF-8 when the head says so (BOM, or valid non-ASCII UTF-8), else ISO-8859-1."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.isascii():
        return DEFAULT_ENCODING
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return DEFAULT_ENCODING
    return "utf-8"


def sniff_separator(line: str, default: str) -> str:
    counts = {s: line.count(s) for s in SEPARATORS}
    best = max(SEPARATORS, key=lambda s: counts[s])
    return best if counts[best] else default


def split_header(line: str, sep: str) -> tuple[str, ...]:
    return tuple(next(csv.reader([line], delimiter=sep), []))


def read_header(path: Path, *, sep: str | None = None, default_sep: str = "\t", skip_lines: int = 0,
                encoding: str | None = None, head_bytes: int = HEAD_BYTES) -> Header | None:
    """The header of a delimited file (first non-blank line after `skip_lines`), or None if there is none."""
    with open(path, "rb") as fh:
        head = fh.read(head_bytes)
    enc = encoding or sniff_encoding(head)
    text = head.decode(enc, errors="replace")
    lines = text.splitlines()
    if len(head) == head_bytes and len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line of the head may be cut
    for i in range(skip_lines, len(lines)):
        line = lines[i].lstrip("\ufeff")
        if line.strip():
            s = sep or sniff_separator(line, default_sep)
            return Header(i + 1, split_header(line, s), s, enc)
    return None


def trimmed_names(raw: tuple[str, ...], path: Path, warnings: WarningLog) -> tuple[list[str], dict[str, ColumnInfo]]:
    """Trim header names; keep the vendor's spelling in ColumnInfo. Collisions keep the raw name."""
    names: list[str] = []
    infos: dict[str, ColumnInfo] = {}
    for i, original in enumerate(raw):
        name = original.strip() or f"column {i + 1}"
        if name in names:
            name = original if original not in names else f"{original} ({i + 1})"
            warnings.add("column names that only differ by spaces kept as the vendor wrote them",
                         f"{path.name}: {original!r}")
        names.append(name)
        note = None
        if name != original and original.strip():
            note = TRAILING_NOTE if original.lstrip() == original else TRIMMED_NOTE
        if not original.strip():
            note = "the header names no column here"
        infos[name] = ColumnInfo(original, None, note)
    return names, infos


def data_row_line(path: Path, header: Header, row: int) -> int:
    """1-based line of the `row`-th (0-based) non-blank line after the header (error path: scans the file)."""
    seen = -1
    with open(path, encoding=header.encoding, errors="replace", newline="") as fh:
        for number, line in enumerate(fh, start=1):
            if number <= header.line or not line.strip("\r\n"):
                continue
            seen += 1
            if seen == row:
                return number
    return header.line + 1 + row


def _ragged_line(path: Path, header: Header, expected: int) -> tuple[int, int] | None:
    """First line whose field count differs from the header's: (line, fields); fields -1 for a line the
    csv module cannot split (a field over its 131,072-character limit)."""
    with open(path, encoding=header.encoding, errors="replace", newline="") as fh:
        for number, line in enumerate(fh, start=1):
            if number <= header.line or not line.strip("\r\n"):
                continue
            try:
                fields = next(csv.reader([line.rstrip("\r\n")], delimiter=header.sep), [])
            except csv.Error:
                return number, -1
            if len(fields) != expected:
                return number, len(fields)
    return None


def ragged_error(path: Path, header: Header, expected: int) -> InputError | None:
    """The error for the first row that does not split into the header's fields, or None if every row does."""
    ragged = _ragged_line(path, header, expected)
    if ragged is None:
        return None
    line, got = ragged
    if got < 0:
        return InputError(path, f"line {line}", f"a field longer than {csv.field_size_limit():,} characters; "
                          f"expected {expected} fields of a measurement table")
    hint = "; the file may be truncated" if got < expected else ""
    return InputError(path, f"line {line}",
                      f"row has {got} fields but the header (line {header.line}) has {expected}{hint}")


def _coerce(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Text values -> float64 (special spellings mapped) and a mask of values that are not numbers."""
    obj = values.astype(object)
    present = obj.notna().to_numpy()
    numbers = pd.to_numeric(obj.where(present, None), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan,
                                                                              copy=True)
    failed = present & np.isnan(numbers)
    if failed.any():
        idx = np.flatnonzero(failed)
        keys = obj.iloc[idx].astype(str).str.strip().str.lower()
        special = keys.map(SPECIAL_NUMBERS)
        known = special.notna().to_numpy() | keys.isin([k for k, v in SPECIAL_NUMBERS.items() if math.isnan(v)])
        numbers[idx[known]] = special.to_numpy(dtype=np.float64, na_value=np.nan)[known]
        failed[idx[known]] = False
    return numbers, failed


def _to_numpy(col: pa.ChunkedArray) -> np.ndarray:
    """An arrow column as numpy: numbers (NaN where empty), bools, or objects (str / None)."""
    kind = col.type
    if pa.types.is_integer(kind):
        return col.to_numpy() if col.null_count == 0 else col.cast(pa.float64()).to_numpy()
    if pa.types.is_floating(kind):
        return col.cast(pa.float64()).to_numpy()
    if pa.types.is_boolean(kind) and col.null_count == 0:
        return col.to_numpy()
    return np.asarray(col.to_pylist(), dtype=object)


def _arrow_read(path: Path, header: Header, names: list[str], text: set[str], size: int) -> dict[str, np.ndarray]:
    """pyarrow's CSV reader on the file's bytes (UTF-8), columns straight to numpy.

    Why not pandas.read_csv(engine="pyarrow"): its wrapper and the DataFrame conversion cost ~15 ms a file,
    and BD plates have hundreds of small files; pyarrow's own transcoding of latin-1 is slower than
    Python's. Types other than numbers, bools and text (dates, times pyarrow would guess) are read again
    as text, so every value stays as the file wrote it.
    """
    raw = path.read_bytes()
    if not (header.encoding.startswith("utf-8") or raw.isascii()):
        raw = raw.decode(header.encoding).encode("utf-8")
    strings = {n: pa.string() for n in names if n in text}

    def read(column_types: dict[str, pa.DataType]) -> pa.Table:
        return pacsv.read_csv(
            pa.BufferReader(raw),
            read_options=pacsv.ReadOptions(use_threads=size > THREADED_BYTES, skip_rows=header.line,
                                           column_names=names, encoding="utf8"),
            parse_options=pacsv.ParseOptions(delimiter=header.sep),
            convert_options=pacsv.ConvertOptions(column_types=column_types, null_values=NULL_SPELLINGS,
                                                 strings_can_be_null=True),
        )

    table = read(strings)
    odd = {n: pa.string() for n, f in zip(names, table.schema) if not _plain(f.type)}
    if odd:
        table = read({**strings, **odd})
    return {n: _to_numpy(table.column(i)) for i, n in enumerate(names)}


def _plain(kind: pa.DataType) -> bool:
    return (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
            or pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind))


def table_header(path: Path, what: str, *, sep: str | None = None, default_sep: str = "\t", skip_lines: int = 0,
                 encoding: str | None = None) -> tuple[int, Header]:
    """(size, header) of a delimited file, or the error for one that cannot hold a `what` table."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror}") from None
    if size == 0:
        raise InputError(path, None, f"file is empty; expected a {what} table")
    header = read_header(path, sep=sep, default_sep=default_sep, skip_lines=skip_lines, encoding=encoding)
    if header is None:
        raise InputError(path, None, f"no header line; expected a {what} table")
    return size, header


def read_delimited(
    path: Path,
    *,
    what: str,
    bad_values: str,
    warnings: WarningLog,
    sep: str | None = None,
    default_sep: str = "\t",
    skip_lines: int = 0,
    encoding: str | None = None,
    text_columns: Collection[str] = (),
) -> DelimitedTable:
    """Read one delimited table. `what` names the expected content in messages ("ScanR ParameterData").

    `text_columns` (trimmed names) are kept as text without a numeric check; every other column is
    numeric when most of its values are numbers (the others are bad values), else kept as text.
    """
    size, header = table_header(path, what, sep=sep, default_sep=default_sep, skip_lines=skip_lines,
                                encoding=encoding)
    names, infos = trimmed_names(header.raw_names, path, warnings)
    text_set = set(text_columns)
    try:
        data = _arrow_read(path, header, names, text_set, size)
    except pa.ArrowInvalid as exc:
        ragged = ragged_error(path, header, len(names))
        if ragged is not None:
            raise ragged from None
        raise InputError(path, None, f"cannot be read as a {what} table ({exc})") from None
    columns = convert_columns(data, names, infos, header, path, text_set, bad_values, warnings)
    for raw, name in zip(header.raw_names, names, strict=True):
        if raw.strip():
            continue
        if is_unnamed_empty(raw, columns[name]):
            del columns[name]  # a trailing separator's nameless, empty column
            del infos[name]
        else:
            warnings.add(f"{path.name}: a column without a name in the header holds values; kept as {name!r}",
                         name)
    rows = len(next(iter(data.values()))) if data else 0
    return DelimitedTable(path, header, columns_frame(columns, rows), infos)


def columns_frame(columns: dict[str, np.ndarray], rows: int) -> pd.DataFrame:
    """The converted columns as the table's frame (text kept as object: model.arrays_frame); `rows` empty
    rows when every column was dropped."""
    return arrays_frame(columns) if columns else pd.DataFrame(index=range(rows))


def convert_columns(data: dict[str, np.ndarray], names: list[str], infos: dict[str, ColumnInfo], header: Header,
                    path: Path, text: Collection[str], bad_values: str, warnings: WarningLog,
                    first_row: int = 0, decided: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """Arrays as read -> the table's columns: numbers as typed, text columns kept, text in a numeric column
    coerced (a value that is not a number: an error naming its line, or NaN counted in the warnings).

    Whether a column of words is text or numbers with bad values is decided by its values here (mostly
    words: text); `decided` (name -> "text" / "numbers"), when given, is filled with those decisions on the
    first call and then imposes them, so every block of a streamed file has the same columns.
    """
    columns: dict[str, np.ndarray] = {}
    for name in names:
        arr = data[name]
        if arr.dtype != object:  # numbers and bools as pyarrow typed them
            columns[name] = arr
            continue
        fixed = decided.get(name) if decided is not None else None
        if name in text or fixed == "text":
            columns[name] = arr
            continue
        col = pd.Series(arr, dtype=object)
        present_mask = col.notna()
        if not present_mask.any():
            columns[name] = np.full(len(arr), np.nan)
            if decided is not None:
                decided[name] = "numbers"  # empty so far: numbers (NaN), as a whole file of them would be
            continue
        numbers, failed = _coerce(col)
        present = int(present_mask.sum())
        n_failed = int(failed.sum())
        if fixed is None and n_failed * 2 >= present:  # mostly words: a text column (labels, names), kept as text
            columns[name] = arr
            if decided is not None:
                decided[name] = "text"
            continue
        if decided is not None:
            decided[name] = "numbers"
        if n_failed:
            first = int(np.flatnonzero(failed)[0])
            value = arr[first]
            line = data_row_line(path, header, first + first_row)
            if bad_values == "error":
                raise InputError(path, f"line {line}, column {infos[name].source_name!r}",
                                 f"value {value!r} is not a number (expected a number, as in the column's "
                                 "other rows)")
            warnings.add("values that are not numbers stored as NaN",
                         f"{path.name} line {line} column {infos[name].source_name!r} value {value!r}", n_failed)
        columns[name] = numbers
    return columns


# Keys (wells, fields, objects) are read through float64, which holds whole numbers exactly up to 2^53; a
# larger "number" (25 digits in a damaged file) would become another number silently, or overflow int64.
KEY_LIMIT = float(2**53)


def whole_numbers(table: DelimitedTable, column: str, *, minimum: int, expected: str) -> np.ndarray:
    """A key column as int64, every value a whole number >= minimum; else an error naming the line.

    Keys place a row on the plate, so a bad key is always an error (bad_values="nan" cannot help: a row
    without a well cannot be stored anywhere).
    """
    values = table.data[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        arr, failed = _coerce(values)
        if failed.any():
            i = int(np.flatnonzero(failed)[0])
            raise table.error(i, column, f"value {values.iloc[i]!r} is not a number (expected {expected})")
    ok = np.isfinite(arr) & (arr == np.round(arr)) & (arr >= minimum) & (arr < KEY_LIMIT)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raw = values.iloc[i]
        raw = raw.item() if isinstance(raw, np.generic) else raw  # 2.5, not np.float64(2.5)
        shown = "an empty value" if np.isnan(arr[i]) else f"value {raw!r}"
        too_big = " below 2^53" if np.isfinite(arr[i]) and arr[i] >= KEY_LIMIT else ""
        raise table.error(i, column, f"{shown}: expected {expected}{too_big}")
    return arr.astype(np.int64)


def distinct_text(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """(codes, texts): every row's index into `texts`, its distinct values as stripped text ("" for empty).

    Why: key columns of text (row letters, well labels, plate ids) hold a few hundred distinct values over
    millions of rows; stripping and parsing each distinct value once, not each row, is what keeps them
    cheap (pandas 3's per-row `astype(str)` and `isna` on text cost a block's parse time again).
    """
    codes, uniques = pd.factorize(values.to_numpy(), use_na_sentinel=True)
    texts = [str(u).strip() for u in uniques]
    if (codes < 0).any():
        codes = np.where(codes < 0, len(texts), codes)
        texts.append("")
    return codes, texts


def well_label_keys(table: DelimitedTable, column: str, expected: str,
                    prefix: str | re.Pattern[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """0-based (well rows, well columns) of a column of well labels (`B03`, `B3`, `B - 3`), after removing
    the regular expression `prefix` (a vendor's `Well ` before the label).

    Each distinct label is parsed once (a plate has at most a few thousand), then broadcast back to every
    row; the first label that is not one is an error naming its line and the column.
    """
    from ..wells import parse_well_label

    values = table.data[column]
    codes, texts = distinct_text(values)
    pairs = []
    for u in texts:
        label = re.sub(prefix, "", u).strip() if prefix else u
        try:
            pairs.append(parse_well_label(label))
        except ValueError:
            i = int(np.flatnonzero(codes == len(pairs))[0])
            raise table.error(i, column, f"value {str(values.iloc[i])[:40]!r}: {expected}") from None
    arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return arr[codes, 0], arr[codes, 1]


def index_column(table: DelimitedTable, column: str | None, label: str,
                 metadata: dict[str, str | int | float]) -> np.ndarray:
    """A field / z / t column as 0-based indices: read as 1-based unless it holds a 0 (then 0-based), and
    noted in `metadata[f"{label} numbering"]`; all 0 when the table has no such column."""
    if column is None or column not in table.data.columns:
        return np.zeros(table.rows, dtype=np.int64)
    values = whole_numbers(table, column, minimum=0, expected=f"a whole {label} number")
    zero_based = bool(len(values) and values.min() == 0)
    note_numbering(metadata, label, table.source(column), zero_based)
    return values if zero_based else values - 1


def note_numbering(metadata: dict[str, str | int | float], label: str, source: str, zero_based: bool) -> None:
    """How an index column was read (see index_column), in the table's metadata."""
    metadata[f"{label} numbering"] = f"{source!r} holds 0: read as 0-based" if zero_based else \
        f"{source!r} read as 1-based"
