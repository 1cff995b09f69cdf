"""IN Carta (InCell family) CSV exports, per well and per object.

Input (docs/formats/incarta.md): comma-separated tables with `Row` (letter), `Column` (1-based), `WELL
LABEL` ("A - 1"), `Z`, `T`, the field as `FOV` (real exports) or `FIELD`, often `OBJECT ID` and `Plate ID`,
and measurement columns named `<Population> <Measure> wv<N>` (centres `<Population> cg X wv<N>` / `cg Y`,
boxes `<Population> Max left border / top border / width / height wv<N>`).

Output: one table per CSV file, named after the file, every column kept in file order (text columns such
as `Row`, `WELL LABEL`, `Plate ID` as text; the keys below are derived from them and they stay as they are):
- the well from `Row` + `Column`, else from `WELL LABEL`;
- the field (FIELD_COLUMNS), `Z`, `T` are read as 1-based (as IN Carta numbers them on screen) unless a
  0 occurs in the column, then as 0-based; either way it is noted in the table's metadata. Missing: 0.
- a file is per-object when it has an object-id column (OBJECT_ID_COLUMNS) or several rows for one
  (well, field, z, t); then `object` is that id or, without one, the row's 1-based number within its
  (well, field, z, t) (noted in the metadata). Otherwise it is per well ("wells") or, with several fields
  per well, per field ("fields"), with `t` / `z` keys when it has several, and no ROIs: IN Carta's
  per-well summary exports carry centre columns that are per-well means, not objects.
- in object tables every population with a box gives Rectangle ROIs, one with only a centre pair Point
  ROIs, in channel wv<N> - 1; the shapes of one row form one ROI.
- files are grouped into plates by `Plate ID`; a folder holding several is an error listing them unless
  one is chosen (ParseOptions.source_plate).
A per-well file is the plate's per-well table; without one the per-well summary is computed from the
object tables (assemble.finish). An `.xdce` in the folder gives the plate layout, else --plate-geometry,
else the smallest standard plate holding every well (noted in the warnings).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..assemble import Lost, Shapes, ShapeSelector, build_table, concat_rois, finish, selected_rois
from ..errors import InputError
from ..issues_log import WarningLog
from ..model import (
    FIELD_KEYS,
    WELL_KEYS,
    Frame,
    MeasurementTable,
    Plate,
    PlateAnalysis,
    T,
    Z,
    empty_rois,
    object_keys_frame,
)
from ..spill import LazySpill, SpillDir
from ..wells import infer_geometry, row_index
from .base import Evidence, FormatParser, Generator, Located, NotAPlate, ParseOptions, make_source, plates_or_note
from .common import choose_plate, files_below, plate_root
from .delimited import (
    DelimitedTable,
    distinct_text,
    index_column,
    read_delimited,
    read_header,
    well_label_keys,
    whole_numbers,
)
from .delimited_stream import distinct_values, streams
from .incarta_stream import StreamedCsv, stream_csv
from .incell_xdce import is_xdce, parse_xdce

SEARCH_DEPTH = 2  # exports sit next to the images or a folder or two below
DETECT_BYTES = 16 * 1024  # detection reads the header line only (every CSV of a folder is looked at)
COL_ROW = "Row"  # letter (A..), as IN Carta writes it; a 1-based number is accepted too
COL_COLUMN = "Column"  # 1-based
COL_WELL_LABEL = "WELL LABEL"  # "A - 1"
# Field column spellings, first match wins (case-insensitive): real exports write `FOV` (seen in the
# CytoTable IN Carta test data, 1-based); `FIELD` is how older InCell-family CSVs name it.
FIELD_COLUMNS = ("FOV", "FIELD", "FIELD OF VIEW", "FIELD INDEX", "SITE")
COL_Z = "Z"
COL_T = "T"
# Object-id column names accepted (IN Carta's own name is not documented publicly; first match wins).
OBJECT_ID_COLUMNS = ("OBJECT ID", "Object ID", "OBJECT", "Object", "Object Number", "CELL ID", "Cell ID", "ID")
TEXT_COLUMNS = (COL_ROW, COL_WELL_LABEL, "Plate ID", "PLATE ID", "Plate Name", "PLATE NAME")
WAVE = re.compile(r"\bwv(\d+)\b")  # `<Population> <Measure> wv<N>`: N is the 1-based wavelength (channel)
CENTRE_X = re.compile(r"\bcg X\b")  # `Nuclei cg X wv1`; its partner replaces `cg X` with `cg Y`
# `Primary Target Max left border wv1` (+ `top border`, `width`, `height`): a box in pixels (real exports).
BOX_LEFT = re.compile(r"^(?P<pop>.+?) (?P<max>Max )?left border(?P<wave> wv\d+)?$")
BOX_PARTS = ("left border", "top border", "width", "height")
PLATE_ID_COLUMNS = ("Plate ID", "PLATE ID")




def _lower_map(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for n in names:
        out.setdefault(n.strip().lower(), n)
    return out


def is_incarta_csv(path: Path) -> bool:
    """A CSV whose header has `WELL LABEL`, or `Row` and `Column` plus a `wv<N>` measurement."""
    if path.suffix.lower() != ".csv":
        return False
    try:
        header = read_header(path, sep=",", head_bytes=DETECT_BYTES)
    except OSError:
        return False
    if header is None:
        return False
    names = _lower_map(header.raw_names)
    if COL_WELL_LABEL.lower() in names:
        return True
    return COL_ROW.lower() in names and COL_COLUMN.lower() in names and any(WAVE.search(n) for n in header.raw_names)


def find_files(path: Path) -> tuple[list[Path], list[Path]]:
    files = files_below(path, SEARCH_DEPTH)
    return [p for p in files if is_xdce(p)], [p for p in files if is_incarta_csv(p)]


def locate(path: Path) -> Located:
    """The IN Carta CSVs (headers sniffed), the .xdce of their images, and the plates they belong to."""
    xdce, csvs = find_files(path)
    if not csvs:
        return NotAPlate(PARSER.name, "no CSV with an IN Carta header ('WELL LABEL', or Row + Column + "
                                      "'... wv<N>') up to 2 folders deep")
    names, notes = plates_or_note(plates, path)
    return make_source(PARSER.name, plate_root(path), Evidence.CONTENT, plates=names, notes=notes, layout=xdce,
                       exports=csvs)


def _column(table: DelimitedTable, name: str) -> str | None:
    return _lower_map(list(table.data.columns)).get(name.lower())


def _first_column(names: Sequence[str], candidates: tuple[str, ...]) -> str | None:
    """The first of `candidates` (case-insensitive, in their order) among the column `names`."""
    lower = _lower_map(list(names))
    return next((lower[c.lower()] for c in candidates if c.lower() in lower), None)


def _well_rows_cols(table: DelimitedTable) -> tuple[np.ndarray, np.ndarray]:
    """0-based well rows and columns of every row, from Row + Column, else from WELL LABEL."""
    row_col, col_col, label_col = _column(table, COL_ROW), _column(table, COL_COLUMN), _column(table, COL_WELL_LABEL)
    if row_col and col_col:
        columns = whole_numbers(table, col_col, minimum=1, expected="a 1-based column number") - 1
        values = table.data[row_col]
        if pd.api.types.is_numeric_dtype(values):
            rows = whole_numbers(table, row_col, minimum=1, expected="a row letter or 1-based row number") - 1
        else:
            codes, uniques = distinct_text(values)
            mapped = []
            for u in uniques:
                try:
                    mapped.append(row_index(u) if u.isalpha() else int(u) - 1)
                except ValueError:
                    i = int(np.flatnonzero(codes == len(mapped))[0])
                    raise table.error(i, row_col, f"value {u!r}: expected a row letter (A, B, ...)") from None
            rows = np.asarray(mapped, dtype=np.int64)[codes]
        return rows, columns
    if label_col:
        return well_label_keys(table, label_col, "expected a well label such as 'A - 1'")
    raise InputError(table.path, f"line {table.header.line} (header)",
                     f"no '{COL_ROW}' + '{COL_COLUMN}' or '{COL_WELL_LABEL}' column; expected an IN Carta export")


def _index(table: DelimitedTable, names: tuple[str, ...], metadata: dict[str, str | int | float]) -> np.ndarray:
    """FIELD (FOV) / Z / T as 0-based indices: 1-based unless the column holds a 0."""
    col = _first_column(table.data.columns, names)
    return index_column(table, col, names[0] if len(names) == 1 else "FIELD", metadata)


def _centre_pairs(names: list[str]) -> list[tuple[str, str, int]]:
    pairs = []
    for x in names:
        if CENTRE_X.search(x):
            y = CENTRE_X.sub("cg Y", x, count=1)
            if y in names:
                wave = WAVE.search(x)
                pairs.append((x, y, int(wave.group(1)) - 1 if wave else -1))
    return pairs


def _boxes(names: list[str]) -> list[tuple[str, tuple[str, str, str, str], int]]:
    """(population, (left, top, width, height) columns, channel) of every complete box."""
    out = []
    for name in names:
        m = BOX_LEFT.match(name)
        if not m:
            continue
        parts = tuple(f"{m['pop']} {m['max'] or ''}{part}{m['wave'] or ''}" for part in BOX_PARTS)
        if all(p in names for p in parts):
            wave = WAVE.search(name)
            out.append((m["pop"], parts, int(wave.group(1)) - 1 if wave else -1))
    return out


def roi_selector(names: list[str]) -> tuple[list[str], ShapeSelector]:
    """The geometry columns of an object table and the function picking its shapes from a batch:
    Rectangles for every population with a box (Points where a row lacks it but has the population's
    centre), Points for populations with only a centre pair."""
    pairs = _centre_pairs(names)
    boxes = _boxes(names)
    boxed = {pop for pop, _, _ in boxes}
    centres = {pop: next(((x, y) for x, y, _ in pairs if x.startswith(f"{pop} cg X")), None) for pop in boxed}
    alone = [(x, y, c) for x, y, c in pairs if not any(x.startswith(f"{pop} cg X") for pop in boxed)]
    columns = list(dict.fromkeys([*(p for _, parts, _ in boxes for p in parts),
                                  *(n for xy in centres.values() if xy for n in xy),
                                  *(n for x, y, _ in alone for n in (x, y))]))

    def select(batch: pd.DataFrame) -> tuple[list[Shapes], Lost]:
        picked: list[Shapes] = []
        lost: Lost = {}
        for pop, parts, c in boxes:
            geo = batch[list(parts)].to_numpy(dtype=np.float64)
            ok = np.isfinite(geo).all(axis=1)
            rows = np.flatnonzero(ok)
            picked.append(Shapes("rectangle", rows, {"x": geo[rows, 0], "y": geo[rows, 1], "width": geo[rows, 2],
                                                     "height": geo[rows, 3]}, c))
            centre = centres[pop]
            if centre is not None and not ok.all():
                xy = batch[list(centre)].to_numpy(dtype=np.float64)
                prow = np.flatnonzero(~ok & np.isfinite(xy).all(axis=1))
                picked.append(Shapes("point", prow, {"x": xy[prow, 0], "y": xy[prow, 1]}, c))
                ok[prow] = True
            lost[f"{pop} objects without a box or centre, no ROI made"] = (int((~ok).sum()), None)
        for x, y, c in alone:
            xy = batch[[x, y]].to_numpy(dtype=np.float64)
            ok = np.isfinite(xy).all(axis=1)
            prow = np.flatnonzero(ok)
            picked.append(Shapes("point", prow, {"x": xy[prow, 0], "y": xy[prow, 1]}, c))
            lost[f"objects without {x}/{y}, no ROI made"] = (int((~ok).sum()), None)
        return picked, lost

    return columns, select


def object_rois(table: MeasurementTable, names: list[str], warnings: WarningLog) -> Frame:
    """The table's ROIs (see roi_selector), in memory or streamed as the table is."""
    columns, select = roi_selector(names)
    return selected_rois(table, columns, select, warnings) if columns else empty_rois()


def plate_ids(table: DelimitedTable) -> set[str]:
    """The distinct `Plate ID`s of a table (or block), blanks left out."""
    col = _first_column(table.data.columns, PLATE_ID_COLUMNS)
    return set(distinct_text(table.data[col])[1]) - {""} if col is not None else set()


def _one_plate(path: Path, column: str | None, ids: set[str]) -> str | None:
    """The file's plate id (None without one); rows of several plates (in `column`) are refused."""
    if len(ids) > 1:
        raise InputError(path, f"column {column!r}", f"rows of {len(ids)} plates; export or split one plate per file")
    return next(iter(ids), None)


def _plate_source(table: DelimitedTable) -> str | None:
    col = _first_column(table.data.columns, PLATE_ID_COLUMNS)
    return table.source(col) if col is not None else None


def plate_id(table: DelimitedTable) -> str | None:
    """The plate a file belongs to: its `Plate ID` (a file of several plates is refused), or None."""
    return _one_plate(table.path, _plate_source(table), plate_ids(table))


def group_by_plate(read: list[tuple[Path, tuple[str, ...], str | None]], folder_name: str) -> dict[str, list[Path]]:
    """Files (path, column names, plate id) by plate: by `Plate ID`; files without one belong to the only
    named plate, or to the folder.

    Files without a Plate ID that share one header (the same columns: one export layout) are separate
    acquisitions, not parts of one plate (IN Carta writes one object file per acquisition; two
    populations of one plate have different columns): each is then a plate of its own, named by its file,
    so they are listed rather than merged.
    """
    plates: dict[str, list[Path]] = {}
    for p, _, pid in read:
        if pid is not None:
            plates.setdefault(pid, []).append(p)
    unnamed = [(p, columns) for p, columns, pid in read if pid is None]
    by_header: dict[tuple[str, ...], list[Path]] = {}
    for p, columns in unnamed:
        by_header.setdefault(columns, []).append(p)
    repeated = [files for files in by_header.values() if len(files) > 1]
    if repeated and not plates:
        acquisitions = {p.stem: [p] for files in repeated for p in files}
        rest = [p for p, _ in unnamed if p.stem not in acquisitions]
        if rest and len(acquisitions) == 1:
            next(iter(acquisitions.values())).extend(rest)
        elif rest:
            acquisitions.setdefault(folder_name, []).extend(rest)
        return acquisitions
    if unnamed:
        plates.setdefault(next(iter(plates)) if len(plates) == 1 else folder_name, []).extend(p for p, _ in unnamed)
    return plates


def _table(path: Path, table: DelimitedTable, name: str, wells: tuple[np.ndarray, np.ndarray],
           columns: int) -> tuple[MeasurementTable, bool]:
    """The file's table, and whether it is an object table."""
    rows, cols = wells
    metadata: dict[str, str | int | float] = {"source_file": path.name}
    field = _index(table, FIELD_COLUMNS, metadata)
    z = _index(table, (COL_Z,), metadata)
    t = _index(table, (COL_T,), metadata)
    names = list(table.data.columns)
    id_col = _first_column(table.data.columns, OBJECT_ID_COLUMNS)
    keys = pd.DataFrame({"r": rows, "c": cols, "f": field, "z": z, "t": t})
    duplicated = bool(keys.duplicated().any())
    measures = {c: table.data[c].to_numpy() for c in names}
    if id_col is not None or duplicated:
        if id_col is not None:
            objects = whole_numbers(table, id_col, minimum=0, expected="a whole object number")
        else:
            objects = keys.groupby(["r", "c", "f", "z", "t"], sort=False).cumcount().to_numpy(dtype=np.int64) + 1
            metadata["object"] = "row number within its well, field, z and t (the file has no object id)"
        frame = object_keys_frame(rows, cols, field, objects, columns, z=z, t=t)
        return build_table(name, "objects", frame, measures, table.infos, metadata), True
    base = object_keys_frame(rows, cols, field, np.zeros(len(rows), dtype=np.int64), columns)
    per_well = len(np.unique(field)) <= 1
    frame = base[list(WELL_KEYS if per_well else FIELD_KEYS)].copy()
    for key, values in ((Z, z), (T, t)):
        if len(np.unique(values)) > 1:
            frame[key] = values
    if _centre_pairs(names):
        metadata["centres"] = "per-well summary export: centre columns are kept as values, no ROIs made"
    return build_table(name, "wells" if per_well else "fields", frame, measures, table.infos, metadata), False


def _table_names(files: list[Path]) -> list[str]:
    stems = [p.stem for p in files]
    return [s if stems.count(s) == 1 else f"{s} ({p.parent.name})" for s, p in zip(stems, files)]


def _take_block(csv: StreamedCsv, block: DelimitedTable) -> None:
    """One block of a streamed CSV with IN Carta's keys worked out (as `_table` does for a whole file)."""
    columns = block.data.columns
    csv.consume(block, _well_rows_cols(block), plate_ids(block),
                {"FIELD": _first_column(columns, FIELD_COLUMNS), "Z": _column(block, COL_Z),
                 "T": _column(block, COL_T)},
                _first_column(columns, OBJECT_ID_COLUMNS))
    _one_plate(block.path, _plate_source(block), csv.plates)


Read = DelimitedTable | StreamedCsv  # a CSV read whole, or an object CSV read in blocks (incarta_stream)


def _read_csv(p: Path, index: int, spill: Callable[[], SpillDir], bad_values: str, warnings: WarningLog) -> Read:
    """The CSV whole, or in blocks when it is large (and an object table: per-well files are small)."""
    if streams(p):
        csv = stream_csv(p, spill(), f"csv{index}", _take_block, what="IN Carta CSV", bad_values=bad_values,
                         warnings=warnings, text_columns=TEXT_COLUMNS)
        if csv.objects:
            return csv
        csv.blocks.reset()
    return read_delimited(p, what="IN Carta CSV", bad_values=bad_values, warnings=warnings, sep=",",
                          text_columns=TEXT_COLUMNS)


def _read_all(csvs: list[Path], options: ParseOptions, warnings: WarningLog,
              spill: Callable[[], SpillDir]) -> list[tuple[Path, Read, str | None]]:
    read: list[tuple[Path, Read, str | None]] = []
    total, done = sum(p.stat().st_size for p in csvs), 0
    for i, p in enumerate(csvs):
        got = _read_csv(p, i, spill, options.bad_values, warnings)
        # a streamed CSV's plate ids were checked block by block (_take_block): at most one
        read.append((p, got, next(iter(got.plates), None) if isinstance(got, StreamedCsv) else plate_id(got)))
        done += p.stat().st_size
        if options.progress:
            options.progress(done, total)
    return read


def _columns_of(got: Read) -> tuple[str, ...]:
    return got.columns if isinstance(got, StreamedCsv) else tuple(got.data.columns)


def parse(path: Path, options: ParseOptions) -> PlateAnalysis:
    root = path if path.is_dir() else path.parent
    xdce, csvs = find_files(path)
    if not csvs:
        where = "folder" if path.is_dir() else "file"
        raise InputError(path, None, f"no IN Carta CSV export (header with 'WELL LABEL', or 'Row', 'Column' and "
                         f"'<Population> <Measure> wv<N>' columns) in this {where}")
    spill = LazySpill("incarta-")
    try:
        return _parse(path, root, xdce, csvs, options, WarningLog(), spill)
    except BaseException:
        spill.remove()
        raise


def _parse(path: Path, root: Path, xdce: list[Path], csvs: list[Path], options: ParseOptions,
           warnings: WarningLog, spill: Callable[[], SpillDir]) -> PlateAnalysis:
    read = _read_all(csvs, options, warnings, spill)
    plates = group_by_plate([(p, _layout(p), pid) for p, _, pid in read],
                            root.name if path.is_dir() else path.stem)
    chosen = choose_plate(path, plates, options.source_plate)
    for p, got, _ in read:
        if p not in plates[chosen] and isinstance(got, StreamedCsv):
            got.blocks.reset()  # another plate's spilled blocks: not needed
    kept = [(p, got) for p, got, _ in read if p in plates[chosen]]
    wells = {p: _well_rows_cols(got) for p, got in kept if isinstance(got, DelimitedTable)}
    csvs = [p for p, _ in kept]
    if xdce:
        if len(xdce) > 1:
            warnings.note(f"several .xdce files found; the layout of {xdce[0].name} was used")
        plate = parse_xdce(xdce[0], warnings)
        if options.plate_geometry and tuple(options.plate_geometry) != (plate.rows, plate.columns):
            warnings.note(f"--plate-geometry {options.plate_geometry[0]}x{options.plate_geometry[1]} used instead "
                          f"of the {plate.rows}x{plate.columns} of {xdce[0].name}")
            plate = Plate(name=plate.name, rows=options.plate_geometry[0], columns=options.plate_geometry[1],
                          channels=plate.channels, pixel_size_um=plate.pixel_size_um,
                          fields_per_well=plate.fields_per_well, images=plate.images)
    else:
        if options.plate_geometry:
            rows, columns = options.plate_geometry
        else:
            streamed = [got for _, got in kept if isinstance(got, StreamedCsv) and got.rows]
            max_r = max([int(r.max()) for r, _ in wells.values() if len(r)] + [c.max_row for c in streamed],
                        default=0)
            max_c = max([int(c.max()) for _, c in wells.values() if len(c)] + [c.max_column for c in streamed],
                        default=0)
            rows, columns = infer_geometry(max_r, max_c)
            warnings.note(f"no .xdce layout found: plate geometry {rows}x{columns} inferred from the largest well in "
                          "the IN Carta exports (give --plate-geometry to override)")
        plate = Plate(name=chosen, rows=rows, columns=columns)
    tables: list[MeasurementTable] = []
    rois = []
    for name, (p, got) in zip(_table_names(csvs), kept):
        if isinstance(got, StreamedCsv):
            built, is_objects = got.table(name, plate.columns, {"source_file": p.name}), True
        else:
            built, is_objects = _table(p, got, name, wells[p], plate.columns)
        tables.append(built)
        if options.rois and is_objects:
            rois.append(object_rois(built, list(_columns_of(got)), warnings))
    return finish(fmt="incarta", version=__version__, root=root, plate=plate, tables=tables, rois=concat_rois(rois),
                  sources=[*xdce, *csvs], warnings=warnings)


def _layout(p: Path) -> tuple[str, ...]:
    """A CSV's column names as its header writes them (trimmed): what tells export layouts apart when files
    carry no Plate ID (see group_by_plate); the header alone, so discovery and parse group alike."""
    header = read_header(p, sep=",")
    return tuple(n.strip() for n in header.raw_names) if header is not None else ()


def _discovered(p: Path) -> tuple[Path, tuple[str, ...], str | None] | None:
    """(path, columns, plate id) of a large CSV from its header and its Plate ID column only (None: read it)."""
    names = _layout(p)
    column = _first_column(names, PLATE_ID_COLUMNS)
    if column is None:
        return p, names, None
    ids = distinct_values(p, column, sep=",", what="IN Carta CSV")
    return None if ids is None else (p, names, _one_plate(p, column, ids))


def plates(path: Path) -> list[str]:
    """The plates (acquisitions) the folder's CSVs belong to, grouped as parse groups them.

    A Plate ID is a column, not a header line: small CSVs are read (discovery costs one more read of
    exports that are small next to their images); large ones give their header and their Plate ID
    column only (delimited_stream.distinct_values), so discovery never costs a parse of a big export.
    """
    root = path if path.is_dir() else path.parent
    _, csvs = find_files(path)
    spill = LazySpill("incarta-")
    try:
        found: list[tuple[Path, tuple[str, ...], str | None]] = []
        for p in csvs:
            quick = _discovered(p) if streams(p) else None
            if quick is None:
                [(_, _, pid)] = _read_all([p], ParseOptions(bad_values="nan"), WarningLog(), spill)
                quick = (p, _layout(p), pid)
            found.append(quick)
        return sorted(group_by_plate(found, root.name if path.is_dir() else path.stem))
    finally:
        spill.remove()


PARSER = FormatParser(
    name="incarta",
    version=__version__,
    description="IN Carta (InCell family) per-well and per-object CSV exports",
    looks_for="a *.csv whose header has 'WELL LABEL', or 'Row' + 'Column' + '<Population> <Measure> wv<N>' "
              "columns (up to 2 folders deep)",
    locate=locate,
    parse=parse,
    synthesize=Generator("hcs_import.synth.incarta:write_incarta_plate"),
    synth_layouts=("several-plates",),
)
