"""PerkinElmer Columbus / Harmony text exports: per-well, per-field and per-object tables.

Harmony's evaluation exports (`PlateResults.txt`, `Objects_Population - <name>.txt`) start with a
`[General]` block of `key<TAB>value` lines and a `[Data]` line, then one tab-separated table; Columbus
writes the same tables, sometimes without the block. Every table has `Row` and `Column` (1-based
numbers); per-field tables add `Field`, per-object tables `Object No` (and `X`, `Y`: the object's
centre in pixels of its field image). Column names carry units in brackets (`Position X [µm]`).

Output per file: an object table named by its population (the `Population` key, else the name after
`Objects_Population - `, else the file name) when `Object No` is present, a fields table when only
`Field` is, else a wells table (`Wells`, or `Wells <file>` when there are several). `Row`, `Column`,
`Field` and `Object No` become the keys (0-based `well_row`, `well_column`, `field`; `object` as
written); `Timepoint` and `Plane` give `t` and `z` (the 0-based rank among the plate's distinct values,
noted in the warnings whenever that is not the value itself) and stay as columns too. Per-well and
per-field tables carry `t` / `z` keys when the plate has several. Every other column is kept as written,
text columns as text; the nameless empty column that Harmony's trailing tab makes is dropped. Objects with
a `Bounding Box` (`[x1,y1,x2,y2]`, pixels) get Rectangle ROIs, others with `X`/`Y` Point ROIs.
The `[General]` block is kept as table metadata (`general: <key>`); its `Plate Name` names the plate, and
a folder holding the exports of several plates is an error listing them unless one is chosen
(`--source-plate`). Comma-separated `.csv` exports are read when their fields carry no quoted commas.
See docs/formats/columbus.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..assemble import Lost, Shapes, ShapeSelector, build_table, concat_rois, finish, point_rois, selected_rois
from ..errors import InputError
from ..issues_log import WarningLog
from ..model import ColumnInfo, Frame, MeasurementTable, Plate, PlateAnalysis, T, Z, object_keys_frame, well_keys_frame
from ..spill import LazySpill, SpillDir
from ..wells import infer_geometry
from .base import Evidence, FormatParser, Generator, Located, NotAPlate, ParseOptions, make_source
from .columbus_stream import StreamedExport, column_labels, new_export
from .common import choose_plate, distinct_index, files_below, is_unnamed_empty, plate_root
from .delimited import KEY_LIMIT
from .delimited_stream import streams
from .mias_text import TextTable, choose_encoding, prepare_chunk, read_chunks, split_lines, split_unit

ROW, COLUMN, FIELD, OBJECT_NO, X, Y = "Row", "Column", "Field", "Object No", "X", "Y"
TIMEPOINT, PLANE = "Timepoint", "Plane"
NUMERIC_KEYS = (ROW, COLUMN, FIELD, OBJECT_NO, TIMEPOINT, PLANE)  # read as numbers whatever their values
# `[x1,y1,x2,y2]` in pixels of the field image (seen in every real Harmony object export).
BOUNDING_BOX = "Bounding Box"
_BOX_RE = r"^\s*\[\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\]\s*$"
_BOX_NAMED = _BOX_RE.replace("(", "(?P<{}>", 4).format("x1", "y1", "x2", "y2")
# Plane and time indices: kept as columns, not averaged in the computed per-well summary.
IDENTIFIER_COLUMNS = frozenset({TIMEPOINT, PLANE, "Measurement", FIELD, ROW, COLUMN, OBJECT_NO})
PLATE_NAME_KEYS = ("Plate Name", "Plate")
SECTION_RE = re.compile(r"^\[(?P<name>[^\]]+)\]\s*$")
DATA_SECTION = "Data"
POPULATION_FILE_RE = re.compile(r"^Objects_Population - (?P<name>.+)$")
# InCarta CSVs also have `Row` and `Column` (a letter); their `WELL LABEL` column tells them apart.
FOREIGN_HEADERS = ("WELL LABEL",)
SUFFIXES = (".txt", ".csv", ".tsv")
SEARCH_DEPTH = 2
HEAD_BYTES = 64 * 1024
HEADER_SCAN_LINES = 200


@dataclass(frozen=True)
class ExportFile:
    path: Path
    sep: str
    header_index: int  # 0-based line
    general: dict[str, str]
    kind: str  # "objects", "fields" or "wells"


def _header_in(lines_text: list[str]) -> tuple[int, str] | None:
    data_at = next((i for i, t in enumerate(lines_text) if SECTION_RE.match(t.strip())
                    and SECTION_RE.match(t.strip()).group("name") == DATA_SECTION), None)
    start = data_at + 1 if data_at is not None else 0
    for i in range(start, len(lines_text)):
        t = lines_text[i]
        sep = "\t" if "\t" in t else ","
        names = [n.strip() for n in t.split(sep)]
        if ROW in names and COLUMN in names and not any(f in names for f in FOREIGN_HEADERS):
            return i, sep
        if data_at is not None and t.strip():
            return None  # the line after [Data] must be the header
    return None


def sniff(path: Path) -> ExportFile | None:
    """An ExportFile when the file's head holds a Row/Column header with a number under `Row`."""
    if path.suffix.lower() not in SUFFIXES or not path.is_file():
        return None
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError:
        return None
    text = head.decode(choose_encoding(head) if len(head) < HEAD_BYTES else "latin-1", "replace")
    lines_text = text.splitlines()[:HEADER_SCAN_LINES]
    found = _header_in(lines_text)
    if found is None:
        return None
    i, sep = found
    names = [n.strip() for n in lines_text[i].split(sep)]
    following = next((t for t in lines_text[i + 1 :] if t.strip()), None)
    if following is not None:
        cells = following.split(sep)
        if len(cells) <= names.index(ROW) or not cells[names.index(ROW)].strip().isdigit():
            return None
    general: dict[str, str] = {}
    for t in lines_text[:i]:
        if SECTION_RE.match(t.strip()) or not t.strip():
            continue
        key, _, value = t.partition("\t")
        general.setdefault(key.strip().rstrip(":"), value.strip())
    kind = "objects" if OBJECT_NO in names else "fields" if FIELD in names else "wells"
    return ExportFile(path, sep, i, general, kind)




def find_exports(root: Path) -> list[ExportFile]:
    return [e for e in (sniff(p) for p in files_below(root, SEARCH_DEPTH)) if e is not None]


def locate(path: Path) -> Located:
    """The text exports whose head holds a Row/Column header, and the plates their headers name."""
    exports = find_exports(path)
    if not exports:
        return NotAPlate(PARSER.name, "no .txt/.csv table with Row and Column (numbers) columns "
                                      "up to 2 folders deep")
    root = plate_root(path)
    names = tuple(sorted(group_by_plate(exports, root)))
    def of(kind: str) -> list[Path]:
        return [e.path for e in exports if e.kind == kind]

    return make_source(PARSER.name, root, Evidence.CONTENT, plates=names, wells=of("wells"), fields=of("fields"),
                       objects=of("objects"))


def population_name(export: ExportFile) -> str:
    if export.general.get("Population"):
        return export.general["Population"]
    m = POPULATION_FILE_RE.match(export.path.stem)
    return m.group("name") if m else export.path.stem


def _keys(table: TextTable, names: list[str], export: ExportFile, bad_values: str,
          warnings: WarningLog) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Rows whose key columns are whole numbers >= 1 (others: error, or dropped and counted)."""
    wanted = [ROW, COLUMN] + ([FIELD] if export.kind != "wells" else []) + (
        [OBJECT_NO] if export.kind == "objects" else [])
    ok = np.ones(len(table.frame), dtype=bool)
    values: dict[str, np.ndarray] = {}
    for key in wanted:
        v = np.asarray(table.frame[names.index(key)], dtype=np.float64)
        lowest = 0 if key == OBJECT_NO else 1
        good = np.isfinite(v) & (v == np.round(v)) & (v >= lowest) & (v < KEY_LIMIT)
        if not good.all():
            i = int(np.flatnonzero(~good)[0])
            raw = table.frame[names.index(key)].iloc[i]
            if bad_values == "error":
                raise InputError(export.path, f"line {int(table.lines[i])}, column {key!r}",
                                 f"value {raw!r}: expected a whole number >= {lowest} (below 2^53)")
            warnings.add(f"{export.path.name}: rows without a valid {key} dropped (cannot be placed on the plate)",
                         f"line {int(table.lines[i])}: {raw!r}", int((~good).sum()))
        ok &= good
        values[key] = np.where(good, v, 0).astype(np.int64)  # dropped rows: 0, never a wrapped cast
    return ok, values


def plate_of(export: ExportFile) -> str | None:
    """The plate an export belongs to, as its `[General]` block names it (None when it does not)."""
    return next((export.general[k] for k in PLATE_NAME_KEYS if export.general.get(k)), None)


def group_by_plate(exports: list[ExportFile], root: Path) -> dict[str, list[ExportFile]]:
    """Exports by plate name; exports naming no plate belong to the only named plate, or to the folder."""
    named: dict[str, list[ExportFile]] = {}
    for e in exports:
        if plate_of(e):
            named.setdefault(plate_of(e) or "", []).append(e)
    unnamed = [e for e in exports if not plate_of(e)]
    if unnamed:
        if len(named) == 1:
            next(iter(named.values())).extend(unnamed)
        else:
            named.setdefault(root.name if root.is_dir() else root.stem, []).extend(unnamed)
    return named


def _require(export: ExportFile, names: list[str]) -> None:
    """The key columns its kind needs (`Field` can be missing from a damaged header: a clear error)."""
    wanted = [ROW, COLUMN] + ([FIELD] if export.kind != "wells" else []) + (
        [OBJECT_NO] if export.kind == "objects" else [])
    for required in wanted:
        if required not in names:
            raise InputError(export.path, f"line {export.header_index + 1}", f"no {required!r} column in the header")


def _read(export: ExportFile, options: ParseOptions,
          warnings: WarningLog) -> tuple[TextTable, np.ndarray, dict[str, np.ndarray], list[str]]:
    data = export.path.read_bytes()
    enc = choose_encoding(data)
    lines = split_lines(data, export.sep.encode())
    chunk = prepare_chunk(export.path, data, lines, export.header_index, enc, options.bad_values, warnings,
                          export.sep)
    names = [n.strip() for n in chunk.header]
    _require(export, names)
    keys = [k for k in NUMERIC_KEYS if k in names]
    text = read_chunks([chunk], options.bad_values, warnings, numeric=keys, sep=export.sep)
    ok, key_values = _keys(text, names, export, options.bad_values, warnings)
    return text, ok, key_values, names


@dataclass(frozen=True)
class Planes:
    """The plate's distinct Timepoint and Plane values: what `t` and `z` index."""

    times: np.ndarray
    planes: np.ndarray

    def index(self, text: TextTable, names: list[str], column: str, export: ExportFile,
              warnings: WarningLog) -> np.ndarray | None:
        if column not in names:
            return None
        values = np.asarray(text.frame[names.index(column)], dtype=np.float64)
        warn_missing_plane(export, column, int(np.isnan(values).sum()), warnings)
        return self.ranks(column, values)

    def ranks(self, column: str, values: np.ndarray) -> np.ndarray:
        """t (for Timepoint) or z (for Plane) of raw values: their rank among the plate's distinct ones."""
        distinct = self.times if column == TIMEPOINT else self.planes
        return distinct_index(values, distinct, column, T if column == TIMEPOINT else Z)[0]


def warn_missing_plane(export: ExportFile, column: str, missing: int, warnings: WarningLog) -> None:
    if missing:
        warnings.add(f"{export.path.name}: rows without a {column}, placed on its first value",
                     f"{missing} rows", missing)


def warn_nameless(export: ExportFile, i: int, warnings: WarningLog) -> None:
    """A nameless column (position `i`) that holds values: kept, and said."""
    warnings.add(f"{export.path.name}: a column without a name in the header holds values; kept as "
                 f"'column {i + 1}'", f"column {i + 1}")


def _metadata(export: ExportFile) -> dict[str, str | int | float]:
    return {"columbus.file": export.path.name, **{f"general: {k}": v for k, v in export.general.items()}}


def _distinct(parsed: list[tuple], column: str) -> np.ndarray:
    found = [np.asarray(text.frame[names.index(column)], dtype=np.float64)[ok]
             for _, text, ok, _, names in parsed if column in names]
    values = np.concatenate(found) if found else np.zeros(0)
    return np.unique(values[np.isfinite(values)])


def _build(export: ExportFile, name: str, text: TextTable, ok: np.ndarray, key_values: dict[str, np.ndarray],
           names: list[str], columns: int, planes: Planes, warnings: WarningLog) -> MeasurementTable:
    consumed = {ROW, COLUMN} | ({FIELD} if export.kind != "wells" else set()) | (
        {OBJECT_NO} if export.kind == "objects" else set())
    rows = np.flatnonzero(ok)
    r, c = key_values[ROW][rows] - 1, key_values[COLUMN][rows] - 1
    t_all = planes.index(text, names, TIMEPOINT, export, warnings)
    z_all = planes.index(text, names, PLANE, export, warnings)
    t = t_all[rows] if t_all is not None else np.zeros(len(rows), dtype=np.int64)
    z = z_all[rows] if z_all is not None else np.zeros(len(rows), dtype=np.int64)
    if export.kind == "wells":
        keys = well_keys_frame(r, c, columns)
    else:
        f = key_values[FIELD][rows] - 1
        obj = key_values[OBJECT_NO][rows] if export.kind == "objects" else np.zeros(len(rows), dtype=np.int64)
        keys = object_keys_frame(r, c, f, obj, columns, z=z, t=t)
        if export.kind == "fields":
            keys = keys.iloc[:, :4].copy()
    if export.kind != "objects":
        if z_all is not None and len(planes.planes) > 1:
            keys[Z] = z
        if t_all is not None and len(planes.times) > 1:
            keys[T] = t
    measurements: dict[str, np.ndarray] = {}
    infos: dict[str, ColumnInfo] = {}
    for i, (col, label) in enumerate(zip(names, column_labels(names), strict=True)):
        if col in consumed:
            continue
        if not col:
            if is_unnamed_empty(col, text.frame[i].to_numpy()):
                continue  # the trailing tab of Harmony lines: no name, no value
            warn_nameless(export, i, warnings)
        measurements[label] = text.frame[i].to_numpy()[rows]
        infos[label] = ColumnInfo(*split_unit(label), identifier=col in IDENTIFIER_COLUMNS)
    return build_table(name, export.kind, keys, measurements, infos, _metadata(export))  # type: ignore[arg-type]


def _build_streamed(export: ExportFile, name: str, streamed: StreamedExport, columns: int, planes: Planes,
                    warnings: WarningLog) -> MeasurementTable:
    """A streamed object export's table, with the warnings `_build` gives a whole one, in its order."""
    for column in (TIMEPOINT, PLANE):
        warn_missing_plane(export, column, streamed.missing.get(column, 0), warnings)
    for i in sorted(streamed.filled):
        warn_nameless(export, i, warnings)
    return streamed.table(name, columns, {ROW, COLUMN, FIELD, OBJECT_NO}, IDENTIFIER_COLUMNS, planes.ranks,
                          _metadata(export))


def parse_boxes(values: np.ndarray) -> np.ndarray:
    """Harmony `[x1,y1,x2,y2]` boxes as an (n, 4) float array; NaN rows where a cell is not such a box.

    Matched by pyarrow's regular expressions (C++, no Python string per row: a million boxes in a fraction
    of a second, and beside the table writer without holding the GIL); cells that are not text, or numbers
    pyarrow cannot cast, take the pandas path, which gives the same answer slower."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        text = pa.array(values, type=pa.string(), from_pandas=True)
        found = pc.extract_regex(text, pattern=_BOX_NAMED)
        parts = [pc.cast(found.field(k), pa.float64()) for k in ("x1", "y1", "x2", "y2")]
        return np.column_stack([p.to_numpy(zero_copy_only=False) for p in parts]).astype(np.float64).reshape(-1, 4)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        extracted = pd.Series(values, dtype=object).astype(str).str.extract(_BOX_RE)
        return extracted.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64).reshape(-1, 4)


def _select_boxes(has_xy: bool) -> ShapeSelector:
    """Rectangles from `Bounding Box` where it is a box; Points at `X`/`Y` for the other objects."""

    def select(batch: pd.DataFrame) -> tuple[list[Shapes], Lost]:
        lost: Lost = {}
        raw = batch[BOUNDING_BOX]
        cells = raw.to_numpy()
        boxes = parse_boxes(cells)
        boxed = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])
        unboxed = np.flatnonzero(~boxed & raw.notna().to_numpy())  # few: only these are looked at one by one
        bad = unboxed[[bool(str(v).strip()) for v in cells[unboxed]]] if len(unboxed) else unboxed
        if len(bad):
            lost[f"{BOUNDING_BOX} values that are not [x1,y1,x2,y2]; a Point (or no ROI) made"] = (
                len(bad), f"{str(cells[bad[0]])[:60]!r}")
        rows = np.flatnonzero(boxed)
        picked = [Shapes("rectangle", rows, {"x": boxes[rows, 0], "y": boxes[rows, 1],
                                             "width": boxes[rows, 2] - boxes[rows, 0],
                                             "height": boxes[rows, 3] - boxes[rows, 1]})]
        if has_xy:
            x = batch[X].to_numpy(dtype=np.float64)
            y = batch[Y].to_numpy(dtype=np.float64)
            points = ~boxed & np.isfinite(x) & np.isfinite(y)
            lost[f"objects with neither a {BOUNDING_BOX} nor X/Y, no ROI made"] = (int((~boxed & ~points).sum()), None)
            prow = np.flatnonzero(points)
            picked.append(Shapes("point", prow, {"x": x[prow], "y": y[prow]}))
        return picked, lost

    return select


def object_rois(table: MeasurementTable, warnings: WarningLog) -> list[Frame]:
    """Rectangles from `Bounding Box` where it is a box; Points at `X`/`Y` for the other objects (in memory
    or streamed, as the table is)."""
    columns = table.data.columns
    has_xy = X in columns and Y in columns
    if BOUNDING_BOX not in columns:
        return [point_rois(table, X, Y, warnings)] if has_xy else []
    return [selected_rois(table, [BOUNDING_BOX, *([X, Y] if has_xy else [])], _select_boxes(has_xy), warnings)]


def parse(path: Path, options: ParseOptions) -> PlateAnalysis:
    root = path if path.is_dir() else path.parent
    exports = find_exports(path)
    if not exports:
        raise InputError(path, None, "no Columbus/Harmony export (a .txt/.csv table with Row and Column columns)")
    plates = group_by_plate(exports, root)
    plate_name = choose_plate(path, {k: [e.path for e in v] for k, v in plates.items()}, options.source_plate)
    exports = plates[plate_name]
    warnings = WarningLog()
    spill = LazySpill("columbus-")
    try:
        parsed: list[tuple] = []
        streamed: dict[Path, StreamedExport] = {}
        for e in exports:
            if e.kind == "objects" and streams(e.path):
                streamed[e.path] = _stream(e, options, warnings, spill(), len(streamed))
            else:
                parsed.append((e, *_read(e, options, warnings)))
        return _assemble(path, root, plate_name, exports, parsed, streamed, options, warnings)
    except BaseException:
        spill.remove()
        raise


def _stream(export: ExportFile, options: ParseOptions, warnings: WarningLog, spill: SpillDir,
            index: int) -> StreamedExport:
    """An object export read in blocks (columbus_stream), each block's keys checked as `_read` checks them."""

    def take(into: StreamedExport, table: TextTable) -> None:
        names = list(into.header)
        _require(export, names)
        ok, key_values = _keys(table, names, export, options.bad_values, warnings)
        planes = {c: np.asarray(table.frame[names.index(c)], dtype=np.float64) if c in names else None
                  for c in (TIMEPOINT, PLANE)}
        into.keep(table, ok, key_values, planes)

    into = new_export(export.path, spill, f"objects{index}")
    into.read(export.header_index, export.sep, options.bad_values, warnings, NUMERIC_KEYS, take)
    return into


def _assemble(path: Path, root: Path, plate_name: str, exports: list[ExportFile], parsed: list[tuple],
              streamed: dict[Path, StreamedExport], options: ParseOptions, warnings: WarningLog) -> PlateAnalysis:
    if options.plate_geometry:
        rows, cols = options.plate_geometry
    else:
        grown = [s for s in streamed.values() if s.rows]
        max_r = max([int(kv[ROW][ok].max()) - 1 for _, _, ok, kv, _ in parsed if ok.any()] +
                    [s.max_row for s in grown], default=0)
        max_c = max([int(kv[COLUMN][ok].max()) - 1 for _, _, ok, kv, _ in parsed if ok.any()] +
                    [s.max_column for s in grown], default=0)
        rows, cols = infer_geometry(max_r, max_c)
        warnings.note(f"Columbus: no plate layout in the exports: plate geometry {rows}x{cols} inferred from the "
                      "largest well (give --plate-geometry to override)")
    general = {k: v for e in exports for k, v in e.general.items()}
    planes = Planes(*(np.unique(np.concatenate([_distinct(parsed, c),
                                                *(np.asarray(sorted(s.distinct.get(c, ())), dtype=np.float64)
                                                  for s in streamed.values())]))
                      for c in (TIMEPOINT, PLANE)))
    for column, distinct, key in ((TIMEPOINT, planes.times, T), (PLANE, planes.planes, Z)):
        note = distinct_index(distinct, distinct, column, key)[1]
        if note:
            warnings.note(note)
    plate = Plate(name=plate_name, rows=rows, columns=cols, barcode=general.get("Barcode") or None)
    per_kind = {k: sum(1 for e in exports if e.kind == k) for k in ("wells", "fields", "objects")}
    tables: list[MeasurementTable] = []
    rois = []
    taken: set[str] = set()
    whole = {e.path: rest for e, *rest in parsed}
    for export in exports:
        if export.kind == "objects":
            name = population_name(export)
        else:
            base = "Wells" if export.kind == "wells" else "Fields"
            name = base if per_kind[export.kind] == 1 else f"{base} {export.path.stem}"
        unique, n = name, 2
        while unique in taken:
            unique = f"{name} ({n})"
            n += 1
        taken.add(unique)
        if export.path in streamed:
            table = _build_streamed(export, unique, streamed[export.path], cols, planes, warnings)
        else:
            text, ok, key_values, names = whole[export.path]
            table = _build(export, unique, text, ok, key_values, names, cols, planes, warnings)
        tables.append(table)
        if options.rois and export.kind == "objects":
            rois.extend(object_rois(table, warnings))
    return finish(fmt="columbus", version=__version__, root=root, plate=plate, tables=tables,
                  rois=concat_rois(rois), sources=[e.path for e in exports], warnings=warnings)



def plates(path: Path) -> list[str]:
    """The plates whose exports the folder holds (their `Plate Name`s), from the files' headers only."""
    root = path if path.is_dir() else path.parent
    return sorted(group_by_plate(find_exports(path), root))


PARSER = FormatParser(
    name="columbus",
    version=__version__,
    description="PerkinElmer Columbus / Harmony text exports (per well, per field, per object: Row, Column, "
                "Field, Object No, X, Y)",
    looks_for="a .txt/.csv table with Row and Column (1-based numbers) columns, e.g. PlateResults.txt or "
              "'Objects_Population - <name>.txt' (up to 2 folders deep)",
    locate=locate,
    parse=parse,
    synthesize=Generator("hcs_import.synth.columbus:write_columbus_export"),
    synth_layouts=("several-plates",),
)
