"""IN Carta object exports above the streaming size, read in blocks (delimited_stream) into a table stream.

Why: an IN Carta object CSV holds one row per cell with a few hundred columns; read whole, a plate of a
million cells costs gigabytes. Read a block at a time, each block's keys worked out and the block
spilled to disk, memory stays flat in the number of rows.

What the whole-file read decides from every row, the blocks decide together:
- field / Z / T numbering (1-based unless the column holds a 0 anywhere): the raw numbers are spilled,
  the shift is applied when the stream is read, after the last block;
- the file's plate (`Plate ID`): the distinct values of every block together (two plates: an error);
- objects without an object-id column: the row's number within its (well, field, z, t), counted on
  across blocks; a file without an id whose keys never repeat is a per-well (or per-field) table, and
  those (a row per well: kilobytes) are read whole instead (`StreamedCsv.objects` is False).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..assemble import measurement_targets
from ..issues_log import WarningLog
from ..model import OBJECT_KEYS, ColumnInfo, MeasurementTable, object_keys_frame
from ..spill import SpillDir
from .delimited import DelimitedTable, note_numbering, whole_numbers
from .delimited_stream import BlockSpill, spilled_table, stream_delimited

# Key columns spilled beside the file's own columns (a NUL starts them: no header name does).
_ROW, _COL, _OBJECT = "\0row", "\0column", "\0object"
_INDEX = {"FIELD": "\0field", "Z": "\0z", "T": "\0t"}


@dataclass
class StreamedCsv:
    """One IN Carta CSV read in blocks: its converted blocks on disk and what the whole-file decisions need.

    The format's own rules (which columns are the well, the field, the object id; the plate id) come in
    as functions of a block, so this class holds only the bookkeeping across blocks."""

    path: Path
    blocks: BlockSpill
    columns: tuple[str, ...] = ()
    infos: dict[str, ColumnInfo] = field(default_factory=dict)
    plates: set[str] = field(default_factory=set)
    index_sources: dict[str, str] = field(default_factory=dict)  # FIELD/Z/T -> the file's column
    zero_based: dict[str, bool] = field(default_factory=dict)
    id_column: str | None = None
    counts: dict[tuple[int, ...], int] = field(default_factory=dict)  # rows so far per key (files without id)
    repeated: bool = False
    max_row: int = 0
    max_column: int = 0

    @property
    def rows(self) -> int:
        return self.blocks.rows

    @property
    def objects(self) -> bool:
        """An object table: an object-id column, or keys that repeat (several objects per field)."""
        return self.id_column is not None or self.repeated

    def reset(self) -> None:
        self.blocks.reset()
        self.columns, self.plates, self.zero_based, self.counts, self.repeated = (), set(), {}, {}, False
        self.max_row = self.max_column = 0

    def consume(self, block: DelimitedTable, wells: tuple[np.ndarray, np.ndarray], plates: set[str],
                index_columns: dict[str, str | None], id_column: str | None) -> None:
        """Take one block: its 0-based wells, its plate ids, the columns of FIELD/Z/T and the object id."""
        rows, cols = wells
        self.columns = tuple(block.data.columns)
        self.plates |= plates
        self.id_column = id_column
        n = block.rows
        arrays: dict[str, np.ndarray] = {_ROW: rows, _COL: cols}
        for label, spilled in _INDEX.items():
            column = index_columns.get(label)
            if column is None:
                arrays[spilled] = np.zeros(n, dtype=np.int64)
                continue
            values = whole_numbers(block, column, minimum=0, expected=f"a whole {label} number")
            self.index_sources[label] = block.source(column)
            self.zero_based[label] = self.zero_based.get(label, False) or bool(n and values.min() == 0)
            arrays[spilled] = values
        if id_column is not None:
            arrays[_OBJECT] = whole_numbers(block, id_column, minimum=0, expected="a whole object number")
        else:
            arrays[_OBJECT] = self._row_numbers([rows, cols, *(arrays[s] for s in _INDEX.values())])
        if n:
            self.max_row = max(self.max_row, int(rows.max()))
            self.max_column = max(self.max_column, int(cols.max()))
        self.blocks.add({**arrays, **{c: block.data[c].to_numpy() for c in block.data.columns}})

    def _row_numbers(self, keys: list[np.ndarray]) -> np.ndarray:
        """1-based number of each row within its key, counting on from the earlier blocks."""
        if not len(keys[0]):
            return np.zeros(0, dtype=np.int64)
        codes, uniques = pd.factorize(pd.MultiIndex.from_arrays(keys))
        within = pd.Series(codes).groupby(codes).cumcount().to_numpy(dtype=np.int64)
        tuples = [tuple(int(v) for v in u) for u in uniques]
        base = np.fromiter((self.counts.get(u, 0) for u in tuples), dtype=np.int64, count=len(tuples))
        for u, b, n in zip(tuples, base.tolist(), np.bincount(codes, minlength=len(tuples)).tolist(), strict=True):
            self.counts[u] = b + n
            self.repeated = self.repeated or b + n > 1
        numbers: np.ndarray = base[codes] + within + 1
        return numbers

    def table(self, name: str, plate_columns: int, metadata: dict[str, str | int | float]) -> MeasurementTable:
        """The object table, streamed from the blocks (wells placed with the plate's `plate_columns`)."""
        metadata = dict(metadata)
        shift = {}
        for label, source in self.index_sources.items():
            note_numbering(metadata, label, source, self.zero_based.get(label, False))
            shift[label] = 0 if self.zero_based.get(label, False) else 1
        if self.id_column is None:
            metadata["object"] = "row number within its well, field, z and t (the file has no object id)"
        names = [c for c in self.blocks.kinds if not c.startswith("\0")]
        targets = measurement_targets(OBJECT_KEYS, names)

        def keys_of(arrays: dict[str, np.ndarray]) -> pd.DataFrame:
            index = {label: arrays[s] - shift.get(label, 0) for label, s in _INDEX.items()}
            return object_keys_frame(arrays[_ROW], arrays[_COL], index["FIELD"], arrays[_OBJECT], plate_columns,
                                     z=index["Z"], t=index["T"])

        stream = spilled_table(self.blocks, [_ROW, _COL, _OBJECT, *_INDEX.values()], keys_of, targets)
        infos = {target: self.infos.get(c, ColumnInfo(c)) for target, c in targets.items()}
        return MeasurementTable(name, "objects", stream, infos, metadata)


def stream_csv(path: Path, spill: SpillDir, label: str, take: Callable[[StreamedCsv, DelimitedTable], None], *,
               what: str, bad_values: str, warnings: WarningLog, text_columns: Sequence[str]) -> StreamedCsv:
    """Read `path` in blocks into a StreamedCsv; `take(csv, block)` hands each block to `csv.consume`
    with the format's keys worked out (see incarta.parse)."""
    csv = StreamedCsv(path, BlockSpill(spill, label))
    _, infos, _ = stream_delimited(path, lambda block: take(csv, block), csv.reset, what=what,
                                   bad_values=bad_values, warnings=warnings, sep=",", text_columns=text_columns)
    csv.infos = infos
    return csv
