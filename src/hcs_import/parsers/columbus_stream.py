"""Columbus / Harmony object exports above the streaming size, read a block of lines at a time.

Why: a Harmony `Objects_Population - <name>.txt` holds one row per cell; read whole (bytes, line index,
parsed frame, converted columns) a plate of a few million cells costs several GB. Read in blocks of
whole lines, each block parsed by the same reader as a whole file (mias_text: the header line joined to
the block, line numbers shifted) and spilled to disk, memory stays flat in the number of rows.

What a whole read decides from every row, the blocks decide together:
- the encoding: UTF-8 when the whole file is (checked block by block first), else Windows-1252;
- text or numbers: a column of words is text by its first block holding values, and stays text;
  one that was numbers stays numbers (a word later is a bad value, as in a whole read);
- `t` and `z`: ranks among the plate's distinct Timepoint / Plane values, known after the last block
  (the raw values are spilled, the ranks taken when the stream is read);
- Harmony's nameless trailing column: dropped when no block held a value in it.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..assemble import measurement_targets
from ..issues_log import WarningLog
from ..model import OBJECT_KEYS, ColumnInfo, MeasurementTable, object_keys_frame
from ..spill import SpillDir
from . import delimited_stream
from .common import is_unnamed_empty
from .delimited_stream import BlockSpill, spilled_table
from .mias_text import FALLBACK_ENCODING, TextTable, prepare_chunk, read_chunks, split_lines, split_unit

_ROW, _COL, _FIELD, _OBJECT = "\0row", "\0column", "\0field", "\0object"
PLANES = ("Timepoint", "Plane")  # columns whose plate-wide distinct values give t and z

Take = Callable[["StreamedExport", TextTable], None]  # the format's handling of one parsed block
IndexOf = Callable[[str, np.ndarray], np.ndarray]  # (Timepoint or Plane, raw values) -> t or z


def file_encoding(path: Path, block_bytes: int) -> str:
    """What mias_text.choose_encoding says of the whole file, read a block at a time."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as fh:
        first = fh.read(3)
        data = first
        try:
            while data:
                decoder.decode(data)
                data = fh.read(block_bytes)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return FALLBACK_ENCODING
    return "utf-8-sig" if first.startswith(b"\xef\xbb\xbf") else "utf-8"


def line_blocks(path: Path, start: int, block_bytes: int) -> Iterator[tuple[bytes, int]]:
    """(bytes, 0-based index of its first line) of blocks of whole lines, from line `start` on."""
    line = 0
    pending = b""
    with open(path, "rb") as fh:
        while True:
            data = fh.read(block_bytes)
            buf = pending + data
            cut = len(buf) if not data else buf.rfind(b"\n") + 1
            if not cut:
                if not data:
                    return
                pending = buf
                continue
            part, pending = buf[:cut], buf[cut:]
            if line < start:
                skip = start - line
                n = part.count(b"\n")
                if n < skip:
                    line += n
                    continue
                at = -1
                for _ in range(skip):
                    at = part.index(b"\n", at + 1)
                part, line = part[at + 1 :], start
            if part:
                yield part, line
                line += part.count(b"\n")
            if not data:
                return


def column_labels(header: Sequence[str]) -> list[str]:
    """The table's name for every (trimmed) header name: as written, `column N` when nameless, `(2)`...
    when repeated (as Columbus' whole read names them)."""
    labels: list[str] = []
    for i, col in enumerate(header):
        label, n = col or f"column {i + 1}", 2
        while label in labels:
            label = f"{col} ({n})"
            n += 1
        labels.append(label)
    return labels


@dataclass
class StreamedExport:
    """One Columbus object export read in blocks: kept rows on disk, and what the whole-file decisions need."""

    path: Path
    blocks: BlockSpill
    header: tuple[str, ...] = ()
    text: set[int] = field(default_factory=set)  # positions decided to be text
    numbers: set[int] = field(default_factory=set)  # positions decided to be numbers
    filled: set[int] = field(default_factory=set)  # nameless positions that held a value
    distinct: dict[str, set[float]] = field(default_factory=dict)  # Timepoint / Plane values of kept rows
    missing: dict[str, int] = field(default_factory=dict)  # rows without a Timepoint / Plane
    max_row: int = 0
    max_column: int = 0

    @property
    def rows(self) -> int:
        return self.blocks.rows

    def read(self, header_index: int, sep: str, bad_values: str, warnings: WarningLog,
             keys: Sequence[str], take: Take, block_bytes: int | None = None) -> None:
        """Read every block: parse it as mias_text parses a whole file, hand it to `take(self, table)`."""
        size = block_bytes or delimited_stream.BLOCK_BYTES  # read now: the tests set it
        encoding = file_encoding(self.path, size)
        head = next(line_blocks(self.path, header_index, 1 << 16), (b"", 0))[0]
        header_bytes = head.split(b"\n", 1)[0] + b"\n"
        for part, first in line_blocks(self.path, header_index + 1, size):
            data = header_bytes + part
            chunk = prepare_chunk(self.path, data, split_lines(data, sep.encode()), 0, encoding, bad_values,
                                  warnings, sep, line_offset=first - 1)
            if not len(chunk.lines):
                continue
            self.header = tuple(n.strip() for n in chunk.header)
            table = read_chunks([chunk], bad_values, warnings, numeric=[*keys, *self.numbers], sep=sep,
                                text=self.text)
            for i in range(len(chunk.header)):
                if i in self.text or i in self.numbers:
                    continue
                values = table.frame[i].to_numpy()
                if not _holds_values(values):
                    continue
                (self.text if values.dtype == object else self.numbers).add(i)
            take(self, table)

    def keep(self, table: TextTable, ok: np.ndarray, key_values: dict[str, np.ndarray],
             planes: dict[str, np.ndarray | None]) -> None:
        """Spill the block's rows with valid keys (0-based wells, fields; raw Timepoint / Plane)."""
        labels = column_labels(self.header)
        rows = np.flatnonzero(ok)
        for name, values in planes.items():
            if values is None:
                continue
            self.missing[name] = self.missing.get(name, 0) + int(np.isnan(values).sum())
            kept = values[rows]
            self.distinct.setdefault(name, set()).update(np.unique(kept[np.isfinite(kept)]).tolist())
        for i, name in enumerate(self.header):
            if not name and not is_unnamed_empty(name, table.frame[i].to_numpy()):
                self.filled.add(i)
        r, c = key_values["Row"][rows] - 1, key_values["Column"][rows] - 1
        if len(rows):
            self.max_row, self.max_column = max(self.max_row, int(r.max())), max(self.max_column, int(c.max()))
        self.blocks.add({_ROW: r, _COL: c, _FIELD: key_values["Field"][rows] - 1,
                         _OBJECT: key_values["Object No"][rows],
                         **{labels[i]: table.frame[i].to_numpy()[rows] for i in range(len(self.header))}})

    def table(self, name: str, plate_columns: int, consumed: set[str], identifiers: frozenset[str],
              index: IndexOf, metadata: dict[str, str | int | float]) -> MeasurementTable:
        """The object table, streamed: `index(column, values)` gives t / z of raw Timepoint / Plane values."""
        labels = column_labels(self.header)
        kept = [(i, label) for i, label in enumerate(labels)
                if self.header[i] not in consumed and (self.header[i] or i in self.filled)]
        targets = measurement_targets(OBJECT_KEYS, [label for _, label in kept])
        identifier = {label: self.header[i] in identifiers for i, label in kept}
        infos = {target: ColumnInfo(*split_unit(label), identifier=identifier[label])
                 for target, label in targets.items()}
        planes = [p for p in PLANES if p in self.header]

        def keys_of(arrays: dict[str, np.ndarray]) -> pd.DataFrame:
            n = len(arrays[_ROW])
            t, z = (index(column, arrays[column]) if column in planes else np.zeros(n, dtype=np.int64)
                    for column in PLANES)
            return object_keys_frame(arrays[_ROW], arrays[_COL], arrays[_FIELD], arrays[_OBJECT], plate_columns,
                                     z=z, t=t)

        stream = spilled_table(self.blocks, [_ROW, _COL, _FIELD, _OBJECT, *planes], keys_of, targets)
        return MeasurementTable(name, "objects", stream, infos, metadata)


def _holds_values(values: np.ndarray) -> bool:
    if values.dtype == object:
        return any(v is not None and v == v for v in values.tolist())
    return bool(np.isfinite(values.astype(np.float64, copy=False)).any()) if values.dtype.kind in "fiub" else True


def new_export(path: Path, spill: SpillDir, label: str) -> StreamedExport:
    return StreamedExport(path, BlockSpill(spill, label))
