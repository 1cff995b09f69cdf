"""Large delimited exports read a block at a time, so memory stays flat in the number of rows.

Why: a ScanR export of a few million objects read whole costs about 1 GB per million rows (the file's
arrays, then the table built from them); read in blocks of a few MB, each block converted and spilled
to disk (Arrow IPC) before the next is read, a plate of any size costs the same memory.

What a block reader must do differently from `delimited.read_delimited`, which sees the whole file:
- Column types: pyarrow's streaming reader fixes each column's type from the first block. A later
  value that does not fit (a word in a numeric column, a decimal in an integer one, a value in a column
  that was empty so far) stops it; the file is then read again from the start with that column as
  text (converted by `convert_columns`, which coerces numbers and counts bad values), up to one
  restart per column. Such files are rare (damaged or hand-edited exports) and stay correct, only slower.
- Text or numbers: a column of words is text or numbers-with-bad-values by its first block's values
  (`convert_columns`' `decided`), and every later block follows that decision.
- Nameless columns (a trailing separator): dropped when the first block holds nothing in them; if a later
  block does, the file is read again keeping the column (as a whole read keeps it, with its warning).
- Lines: every block knows the file row it starts at (`DelimitedTable.first_row`), so an error names the
  file's line exactly as for a whole read.
"""

from __future__ import annotations

import codecs
import io
import os
import re
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import InputError
from ..issues_log import WarningLog
from ..model import ColumnInfo, FrameStream, arrays_frame
from .common import is_unnamed_empty
from .delimited import (
    NULL_SPELLINGS,
    DelimitedTable,
    Header,
    _plain,
    _to_numpy,
    columns_frame,
    convert_columns,
    ragged_error,
    table_header,
    trimmed_names,
)

# Files above STREAM_BYTES are read in blocks (below it one read is faster, and small anyway); a block is
# BLOCK_BYTES of text (~70,000 rows of a 20-column export). Both can be set in the environment (a machine
# short of memory; the tests drive every file through the block reader with tiny blocks).
STREAM_BYTES = int(os.environ.get("HCS_IMPORT_STREAM_BYTES", str(48 << 20)))
BLOCK_BYTES = int(os.environ.get("HCS_IMPORT_BLOCK_BYTES", str(8 << 20)))
_COLUMN_OF_ERROR = re.compile(r"In CSV column #(\d+)")


AHEAD_BLOCKS = 3  # blocks the file may be read ahead of the consumer
WAIT_S = 2.0  # longest a read-ahead waits for the consumer (then it reads anyway: never a deadlock)
MAX_BLOCK_BYTES = 256 << 20  # a value longer than this (no export writes one) is an error, not a bigger block


def streams(path: Path) -> bool:
    """Whether `path` is read in blocks (its size above STREAM_BYTES)."""
    return path.stat().st_size > STREAM_BYTES


class _Transcoded(io.RawIOBase):
    """The file's bytes as UTF-8 for pyarrow: blocks that are pure ASCII pass through untouched (nearly
    all of a ScanR export: only its header has a `µ`), others are re-encoded from the file's encoding."""

    def __init__(self, path: Path, encoding: str, ahead: int = 0) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._pending = b""
        # Read-ahead bound: pyarrow's reader reads the file on its own threads as fast as it can (36 blocks
        # ahead of the consumer measured, ~300 MB), so a reading thread waits while it is more than `ahead`
        # bytes past what the consumer has taken (`took`). The consumer's own thread never waits, and a
        # wait gives up after WAIT_S, so a read pyarrow needs to finish a block can never deadlock.
        self._ahead = ahead
        self._owner = threading.get_ident()
        self._read = 0
        self._taken = 0
        self._moved = threading.Condition()

    def took(self, size: int) -> None:
        """The consumer has taken another `size` bytes' worth of blocks."""
        with self._moved:
            self._taken += size
            self._moved.notify_all()

    def _wait_for_room(self) -> None:
        if not self._ahead or threading.get_ident() == self._owner:
            return
        with self._moved:
            self._moved.wait_for(lambda: self._read - self._taken <= self._ahead or self.closed, timeout=WAIT_S)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill `buffer` whole unless the file ends: pyarrow takes each read as a block, and a short one
        (the byte left over from re-encoding) would hold no line end."""
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view):
            if not self._pending:
                self._wait_for_room()
                data = self._fh.read(len(view) - filled)
                self._read += len(data)
                if not data:
                    self._pending = self._decoder.decode(b"", final=True).encode("utf-8")
                    if not self._pending:
                        break
                elif data.isascii() and not self._decoder.getstate()[0]:
                    self._pending = data
                else:  # the decoder keeps a character cut at the block's end for the next read
                    self._pending = self._decoder.decode(data).encode("utf-8")
                    if not self._pending:
                        continue
            n = min(len(view) - filled, len(self._pending))
            view[filled : filled + n] = self._pending[:n]
            self._pending = self._pending[n:]
            filled += n
        return filled

    def close(self) -> None:
        self._fh.close()
        super().close()
        with self._moved:
            self._moved.notify_all()


class _ReadAgain(Exception):
    """Control flow inside this module, never raised out of it: read the file again from its start after
    one change: a column read as text (`text`), a nameless column kept after empty blocks (`keep`), or
    blocks four times larger (`grow`)."""

    def __init__(self, *, text: str | None = None, keep: str | None = None, grow: bool = False) -> None:
        self.text, self.keep, self.grow = text, keep, grow


def stream_delimited(
    path: Path,
    consume: Callable[[DelimitedTable], None],
    restart: Callable[[], None],
    *,
    what: str,
    bad_values: str,
    warnings: WarningLog,
    sep: str | None = None,
    default_sep: str = "\t",
    encoding: str | None = None,
    text_columns: Collection[str] = (),
    block_bytes: int | None = None,
) -> tuple[Header, dict[str, ColumnInfo], int]:
    """Hand every block of the file to `consume`, in order, as a DelimitedTable; returns (header, column
    infos, rows). `restart` is called before the file is read again from its start (see the module's
    docstring), so the caller can drop what it kept of the earlier blocks; warnings of a restarted read are
    kept once (a WarningLog counts, so a restart uses a fresh one and keeps the last)."""
    _, header = table_header(path, what, sep=sep, default_sep=default_sep, encoding=encoding)
    names, infos = trimmed_names(header.raw_names, path, warnings)
    text = set(text_columns)
    forced: dict[str, pa.DataType] = {n: pa.string() for n in names if n in text}
    size_of_block = block_bytes or BLOCK_BYTES
    keep: set[str] = set()  # nameless columns empty in the first block that hold values later
    for _attempt in range(3 * len(names) + 10):
        attempt_log = WarningLog()
        try:
            rows = _read_blocks(path, header, names, infos, text, forced, bad_values, attempt_log, consume,
                                size_of_block, keep)
        except _ReadAgain as again:
            if again.text is not None:
                forced[again.text] = pa.string()
            if again.keep is not None:
                keep.add(again.keep)
            if again.grow:
                size_of_block *= 4
            restart()
            continue
        warnings.merge(attempt_log)
        return header, infos, rows
    raise InputError(path, None, f"cannot be read as a {what} table (column types keep changing)")


def _open_blocks(source: _Transcoded, header: Header, names: list[str], block_bytes: int,
                 convert: pacsv.ConvertOptions) -> Any:
    """pyarrow's streaming reader over the (UTF-8) rows after the header, `block_bytes` at a time."""
    return pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(use_threads=True, skip_rows=header.line, column_names=names,
                                       block_size=block_bytes, encoding="utf8"),
        parse_options=pacsv.ParseOptions(delimiter=header.sep),
        convert_options=convert,
    )


def _read_blocks(path: Path, header: Header, names: list[str], infos: dict[str, ColumnInfo], text: set[str],
                 forced: dict[str, pa.DataType], bad_values: str, warnings: WarningLog,
                 consume: Callable[[DelimitedTable], None], block_bytes: int, keep: set[str]) -> int:
    decided: dict[str, str] = {}
    unnamed: dict[str, bool] = {}  # nameless header cells: dropped (True) when the first block holds nothing
    rows = 0
    source = _Transcoded(path, header.encoding, AHEAD_BLOCKS * block_bytes)
    try:
        reader = _open_blocks(source, header, names, block_bytes,
                              pacsv.ConvertOptions(column_types=forced, null_values=NULL_SPELLINGS,
                                                   strings_can_be_null=True))
        odd = [i for i, f in enumerate(reader.schema) if not _plain(f.type)]
        if odd:  # dates, times pyarrow would guess: read as text, every value as the file wrote it
            raise _ReadAgain(text=names[odd[0]])
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            block = pa.Table.from_batches([batch])
            data = {n: _to_numpy(block.column(i)) for i, n in enumerate(names)}
            columns = convert_columns(data, names, infos, header, path, text, bad_values, warnings,
                                      first_row=rows, decided=decided)
            for raw, name in zip(header.raw_names, names, strict=True):
                if raw.strip():
                    continue
                empty = is_unnamed_empty(raw, columns[name])
                if name not in unnamed:
                    unnamed[name] = empty and name not in keep
                    if not unnamed[name]:
                        warnings.add(f"{path.name}: a column without a name in the header holds values; kept as "
                                     f"{name!r}", name)
                if unnamed[name]:
                    if not empty:  # values after all: read again keeping the column, as a whole read would
                        raise _ReadAgain(keep=name)
                    del columns[name]
            frame = columns_frame(columns, batch.num_rows)
            kept = {n: i for n, i in infos.items() if n in frame.columns}
            consume(DelimitedTable(path, header, frame, kept, first_row=rows))
            rows += batch.num_rows
            source.took(block_bytes)
    except pa.ArrowInvalid as exc:
        found = _COLUMN_OF_ERROR.search(str(exc))
        if found and "conversion error" in str(exc) and names[int(found.group(1))] not in forced:
            raise _ReadAgain(text=names[int(found.group(1))]) from None
        if "straddl" in str(exc) and block_bytes < MAX_BLOCK_BYTES:
            raise _ReadAgain(grow=True) from None  # one value longer than a block: read again in larger blocks
        ragged = ragged_error(path, header, len(names))
        if ragged is not None:
            raise ragged from None
        raise InputError(path, None, f"cannot be read ({exc})") from None
    finally:
        source.close()
    for name, dropped in unnamed.items():
        if dropped:
            infos.pop(name, None)
    return rows


def distinct_values(path: Path, column: str, *, sep: str | None = None, default_sep: str = "\t",
                    what: str = "delimited") -> set[str] | None:
    """The distinct stripped, non-empty values of one (trimmed) column of a large file, read in blocks with
    only that column converted; None when the file has no such column or pyarrow cannot read it (the
    caller then reads the file the ordinary way, which names the problem).

    Why: discovery (which plates does a folder hold?) needs one column of every export; converting all of
    them costs a whole parse of each file before the real one."""
    _, header = table_header(path, what, sep=sep, default_sep=default_sep)
    names, _ = trimmed_names(header.raw_names, path, WarningLog())
    if column not in names:
        return None
    source = _Transcoded(path, header.encoding, AHEAD_BLOCKS * BLOCK_BYTES)  # bounded, as _read_blocks is
    found: set[str] = set()
    try:
        reader = _open_blocks(source, header, names, BLOCK_BYTES,
                              pacsv.ConvertOptions(include_columns=[column], column_types={column: pa.string()},
                                                   strings_can_be_null=True))
        for batch in reader:
            found.update(v.strip() for v in batch.column(0).unique().to_pylist() if v is not None)
            source.took(BLOCK_BYTES)
    except pa.ArrowInvalid:
        return None
    finally:
        source.close()
    return found - {""}


class BlockSpill:
    """Converted blocks of one table kept on disk (one Arrow IPC file per block), read back in order.

    One file per block because a block's column may come out wider than the first block's (integers that
    meet an empty cell become float64); `dtypes` holds the widest form of every column seen, and `read`
    hands every block back in it, so the stream's columns never change type between batches.
    """

    def __init__(self, spill: Any, label: str) -> None:
        self._spill = spill  # a SpillDir: the files live as long as it does
        self._label = label
        self.files: list[Path] = []
        self.kinds: dict[str, set[str]] = {}
        self.rows = 0

    def reset(self) -> None:
        for f in self.files:
            f.unlink(missing_ok=True)
        self.files, self.kinds, self.rows = [], {}, 0

    def add(self, arrays: dict[str, np.ndarray]) -> None:
        from ..spill import spill_failure

        target = self._spill.path / f"{self._label}-{len(self.files):06d}.arrow"
        table = pa.table({name: _arrow(values) for name, values in arrays.items()})
        try:
            with pa.OSFile(str(target), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
        except OSError as exc:
            raise spill_failure(self._spill.path, exc) from None
        self.files.append(target)
        for name, values in arrays.items():
            self.kinds.setdefault(name, set()).add(values.dtype.kind)
        self.rows += table.num_rows

    def dtypes(self) -> dict[str, np.dtype[Any]]:
        out: dict[str, np.dtype[Any]] = {}
        for name, kinds in self.kinds.items():
            if kinds <= {"b"}:
                out[name] = np.dtype(bool)
            elif kinds <= {"i"}:
                out[name] = np.dtype(np.int64)
            elif kinds <= {"i", "f", "u", "b"}:
                out[name] = np.dtype(np.float64)
            else:
                out[name] = np.dtype(object)
        return out

    def read(self, names: Collection[str] | None = None) -> Any:
        """Every block as a dict of numpy arrays (of `names`, all when None), in the widest dtypes."""
        dtypes = self.dtypes()
        for f in self.files:
            with pa.memory_map(str(f)) as source:
                table = pa.ipc.open_file(source).read_all()
            wanted = list(names) if names is not None else table.column_names
            yield {n: _numpy(table.column(n), dtypes[n]) for n in wanted}


def spilled_table(blocks: BlockSpill, key_sources: Sequence[str], keys_of: Callable[[dict[str, np.ndarray]],
                  pd.DataFrame], targets: Mapping[str, str],
                  values: Callable[[str, np.ndarray], np.ndarray] | None = None) -> FrameStream:
    """A table stream over spilled blocks: `keys_of` makes a block's key columns from its spilled arrays
    (`key_sources` are the arrays it needs), then every measurement (table name -> spilled name in
    `targets`, passed through `values` when given: ScanR's gates become bool). Only the arrays a reader
    asks for are read back."""

    def convert(arrays: dict[str, np.ndarray], wanted: Sequence[str] | None) -> pd.DataFrame:
        keys = keys_of(arrays)
        data: dict[str, np.ndarray] = {k: keys[k].to_numpy() for k in keys.columns}
        for target, c in targets.items():
            if wanted is None or target in wanted:
                data[target] = values(c, arrays[c]) if values is not None else arrays[c]
        frame = arrays_frame(data)
        return frame if wanted is None else frame[list(wanted)]

    def read(wanted: Sequence[str] | None) -> Iterator[pd.DataFrame]:
        sources = None
        if wanted is not None:
            sources = list(dict.fromkeys([*key_sources, *(targets[w] for w in wanted if w in targets)]))
        for arrays in blocks.read(sources):
            yield convert(arrays, wanted)

    template = convert({k: np.zeros(0, dtype=d) for k, d in blocks.dtypes().items()}, None)
    return FrameStream(template, blocks.rows, read)


def _arrow(values: np.ndarray) -> pa.Array:
    if values.dtype == object:
        try:  # text and None (nearly always): pyarrow converts the array itself
            return pa.array(values, type=pa.string(), from_pandas=True)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            return pa.array([None if v is None else str(v) for v in values.tolist()], type=pa.string())
    return pa.array(values)


def _numpy(column: pa.ChunkedArray, dtype: np.dtype[Any]) -> np.ndarray:
    if dtype.kind == "O":
        text: np.ndarray = column.to_numpy(zero_copy_only=False)
        return text if text.dtype == object else text.astype(object)
    arr: np.ndarray = column.to_numpy()
    return arr if arr.dtype == dtype else arr.astype(dtype)
