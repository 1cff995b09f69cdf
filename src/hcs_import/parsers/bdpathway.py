"""BD Pathway (BD Attovision): plate layout, RoiSummary.txt rectangles, and measurement text tables.

What is supported (also the README's text):
- Layout: `Experiment.exp` (channels from `[General] Dyes` / `[Dyes]`, fields per well from `[Image]
  Montaged TilesX TilesY`, objective and camera settings kept as table metadata), the `*.plt` plate type
  (`[PlateType] Wells` = 96 or 384 gives the geometry), `<dye>.dye` acquisition settings (table metadata),
  `Well A01/` folders (their wells) and the `<dye> - n000000.tif` files in them (listed as the plate's
  images; not read).
- `RoiSummary.txt` (in the plate folder: applies to every well folder; inside a `Well A01/` folder: to
  that well): one Rectangle ROI per row (X, Y, width, height from fields 3-6, as Bio-Formats reads them),
  placed on field 0, z 0, t 0, plus a `RoiSummary` table holding every field of every row. The plate
  name comes from the `.adf` path the file names (its folder three levels up).
- Attovision measurement exports: delimited text tables (tab, comma or semicolon) chosen and read through
  a column map (`bdpathway_columns.toml`; --column-map replaces it key by key): the map names the well,
  field, object, t, z and centre / bounding-box columns. A table inside a `Well A01/` folder may lack a
  well column (the folder gives it); same-named tables of all well folders are joined into one table.
  A table with an object column or shape columns (or several rows per well and field) is per-object,
  with Point ROIs from the centre or Rectangle ROIs from the bounding box; otherwise it is per well (or per
  field). Every column of every table is kept; a header ending in ` [unit]` gives the column's unit.
- Without a per-well table, the per-well summary is computed from the object tables.
What is not supported: pixel data; montage tiles are not split (RoiSummary rectangles stay on field 0 in
the coordinates the file gives); `.xyz`, `.adf`, `.ltp`, `.mac` and other Attovision files are not read;
Attovision's binary or Excel exports; tables whose columns the map does not name cannot be placed on the
plate (they are listed in the warnings, not imported). Attovision's measurement export layout has no
public description: the defaults of the column map are a guess to be corrected from real files.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..assemble import build_table, concat_rois, finish, point_rois, shapes_for_rows
from ..errors import InputError
from ..issues_log import WarningLog
from ..model import FIELD_KEYS, WELL_KEYS, ColumnInfo, MeasurementTable, Plate, PlateAnalysis, object_keys_frame
from ..wells import infer_geometry, infer_geometry_from_well_number, parse_well_label, well_number_to_row_col
from .base import Evidence, FormatParser, Generator, Located, NotAPlate, ParseOptions, make_source
from .bdpathway_columns import ColumnMap, load_column_map
from .bdpathway_layout import (
    DYE_SUFFIX,
    EXPERIMENT_FILE,
    PLATE_SUFFIX,
    ROI_SUMMARY,
    WELL_FOLDER,
    RoiSummary,
    list_images,
    parse_experiment,
    parse_roi_summary,
    well_folders,
)
from .common import files_below
from .delimited import DelimitedTable, read_delimited, read_header, well_label_keys, whole_numbers

SEARCH_DEPTH = 2  # measurement exports: plate folder, well folders, and an analysis folder or two below


UNIT_SUFFIX = re.compile(r"^(?P<name>.*\S)\s*\[(?P<unit>[^\[\]]+)\]$")  # "Area [um2]"
WELL_PREFIX = re.compile(r"^\s*well\s+", re.IGNORECASE)  # "Well A01" as a well value


def _files(root: Path) -> list[Path]:
    return files_below(root, SEARCH_DEPTH, shallow_first=True)


def _root(path: Path) -> Path:
    return path.parent if path.is_file() else path


def locate(path: Path) -> Located:
    """An Experiment.exp, or Well folders beside a .dye/.plt, with the measurement exports the default
    column map takes (a user's --column-map may take more; those are read, but not fingerprinted)."""
    root = _root(path)
    if not root.is_dir():
        return NotAPlate(PARSER.name, "not a folder")
    layout = [p for p in sorted(root.iterdir()) if p.is_file() and (
        p.name == EXPERIMENT_FILE or p.suffix.lower() in (DYE_SUFFIX, PLATE_SUFFIX))]
    if not (root / EXPERIMENT_FILE).is_file() and (not well_folders(root) or not layout):
        return NotAPlate(PARSER.name, f"no {EXPERIMENT_FILE}, and no Well folders beside a {DYE_SUFFIX} or "
                                      f"{PLATE_SUFFIX} file")
    cmap = load_column_map(None)
    files = _files(root)
    exports = [p for p in files if _matches(p.name, cmap.include) and not _matches(p.name, cmap.exclude)]
    summaries = [p for p in files if p.name.lower() == ROI_SUMMARY.lower()]
    return make_source(PARSER.name, root, Evidence.NAMES if exports or summaries else Evidence.LAYOUT,
                       experiment=layout, exports=exports, roi_summary=summaries)




def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(name.lower(), p.lower()) for p in patterns)


def _well_folder_of(path: Path, root: Path) -> Path | None:
    for parent in path.parents:
        if parent == root or root not in parent.parents:
            return None
        if WELL_FOLDER.match(parent.name):
            return parent
    return None


@dataclass
class Piece:
    """One measurement file read, with its keys (wells as labels, numbers or the folder's well)."""

    path: Path
    group: str
    table: DelimitedTable
    rows: np.ndarray | None  # 0-based, when the wells are labels or come from the folder
    cols: np.ndarray | None
    numbers: np.ndarray | None  # 1-based row-major, when the wells are numbers


def _wells_of(table: DelimitedTable, column: str) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    values = table.data[column]
    if pd.api.types.is_numeric_dtype(values):
        return None, None, whole_numbers(table, column, minimum=1, expected="a 1-based well number or a well label")
    text = values.astype(object).where(values.notna(), "").astype(str).str.replace(WELL_PREFIX, "", regex=True)
    text = text.str.strip()
    if len(text) and text.str.fullmatch(r"\d+").all():  # 1-based row-major well numbers, read as text
        long = text.str.len() > 9
        if long.any():
            i = int(np.flatnonzero(long.to_numpy())[0])
            raise table.error(i, column, f"value {values.iloc[i]!r}: expected a 1-based well number")
        numbers = text.astype(np.int64).to_numpy()
        if (numbers < 1).any():
            i = int(np.flatnonzero(numbers < 1)[0])
            raise table.error(i, column, f"value {values.iloc[i]!r}: expected a 1-based well number")
        return None, None, numbers
    rows, cols = well_label_keys(table, column, "expected a well label such as A01", WELL_PREFIX)
    return rows, cols, None


def _read_pieces(root: Path, cmap: ColumnMap, wells: dict[Path, tuple[int, int]], options: ParseOptions,
                 warnings: WarningLog) -> list[Piece]:
    pieces = []
    candidates = [p for p in _files(root) if _matches(p.name, cmap.include) and not _matches(p.name, cmap.exclude)]
    for path in candidates:
        header = read_header(path, sep=cmap.delimiter, default_sep="\t", skip_lines=cmap.skip_lines)
        if header is None or len(header.raw_names) < 2:
            warnings.add("text files that are not tables (fewer than two columns), not imported", path.name)
            continue
        names = [n.strip() for n in header.raw_names]
        well_col = cmap.find(names, cmap.well)
        folder = _well_folder_of(path, root)
        if well_col is None and folder is None:
            warnings.add("tables without a well column (see the column map) outside Well folders, not imported",
                         path.relative_to(root).as_posix())
            continue
        mapped = [cmap.find(names, c) for c in (cmap.object, cmap.field, cmap.x, cmap.left)]
        if well_col is None and not any(mapped):
            warnings.add("text files in Well folders without any column the column map names, not imported",
                         path.relative_to(root).as_posix())
            continue
        table = read_delimited(path, what="BD Attovision measurement", bad_values=options.bad_values,
                               warnings=warnings, sep=header.sep, skip_lines=cmap.skip_lines,
                               text_columns=[well_col] if well_col else ())
        if well_col is not None:
            rows, cols, numbers = _wells_of(table, well_col)
        else:
            r, c = wells.get(folder, (None, None)) if folder else (None, None)
            if r is None:
                r, c = parse_well_label(WELL_FOLDER.match(folder.name).group("label"))  # type: ignore[union-attr]
            rows, cols, numbers = np.full(table.rows, r), np.full(table.rows, c), None
        group = (path.relative_to(folder) if folder else path.relative_to(root)).with_suffix("").as_posix()
        pieces.append(Piece(path, ("well folders: " if folder else "") + group, table, rows, cols, numbers))
        if options.progress:
            options.progress(len(pieces), len(candidates))
    return pieces


def _index(table: pd.DataFrame, piece_tables: list[DelimitedTable], column: str | None, base: int,
           what: str) -> np.ndarray:
    if column is None:
        return np.zeros(len(table), dtype=np.int64)
    parts = []
    for t in piece_tables:
        if column not in t.data.columns:
            parts.append(np.zeros(t.rows, dtype=np.int64))
            continue
        parts.append(whole_numbers(t, column, minimum=base, expected=f"a {what} number counted from {base}") - base)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _infos(table: DelimitedTable, cmap: ColumnMap) -> tuple[dict[str, str], dict[str, ColumnInfo]]:
    """Rename `Name [unit]` columns to `Name` with the unit in ColumnInfo; the map's units fill the rest."""
    renames: dict[str, str] = {}
    infos: dict[str, ColumnInfo] = {}
    for name in table.data.columns:
        info = table.infos[name]
        m = UNIT_SUFFIX.match(name)
        if m and m.group("name") not in table.data.columns:
            renames[name] = m.group("name")
            infos[m.group("name")] = ColumnInfo(info.source_name, m.group("unit").strip(), info.note)
        else:
            infos[name] = ColumnInfo(info.source_name, info.unit or cmap.unit(name), info.note)
    return renames, infos


def _group_table(name: str, pieces: list[Piece], columns: int, cmap: ColumnMap,
                 warnings: WarningLog) -> tuple[MeasurementTable, pd.DataFrame | None]:
    frames, infos = [], {}
    for p in pieces:
        renames, piece_infos = _infos(p.table, cmap)
        data = p.table.data
        frames.append(data.set_axis([renames.get(c, c) for c in data.columns], axis=1) if renames else data)
        for k, v in piece_infos.items():
            infos.setdefault(k, v)
    data = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
    if len(frames) > 1:
        for c in data.columns:
            missing = sum(len(f) for f in frames if c not in f.columns)
            if missing:
                warnings.add(f"{name}: columns missing from some files, NaN there", f"{c!r}: {missing} rows", missing)
    rows = np.concatenate([p.rows if p.rows is not None else well_number_to_row_col(p.numbers, columns)[0]
                           for p in pieces])
    cols = np.concatenate([p.cols if p.cols is not None else well_number_to_row_col(p.numbers, columns)[1]
                           for p in pieces])
    names = list(data.columns)
    tables = [p.table for p in pieces]
    renamed = [list(p.table.data.columns) for p in pieces]

    def find(candidates: tuple[str, ...]) -> str | None:
        return cmap.find(names, candidates)

    def original(column: str | None) -> str | None:
        """The piece-level name of a (possibly unit-stripped) column."""
        if column is None:
            return None
        for cols_ in renamed:
            for c in cols_:
                m = UNIT_SUFFIX.match(c)
                if c == column or (m and m.group("name") == column):
                    return c
        return column

    field = _index(data, tables, original(find(cmap.field)), cmap.field_base, "field")
    z = _index(data, tables, original(find(cmap.z)), cmap.z_base, "z plane")
    t = _index(data, tables, original(find(cmap.t)), cmap.t_base, "time point")
    object_col = find(cmap.object)
    x, y = find(cmap.x), find(cmap.y)
    box = [find(cmap.left), find(cmap.top), find(cmap.width), find(cmap.height)]
    has_box = all(box)
    keys = pd.DataFrame({"r": rows, "c": cols, "f": field, "z": z, "t": t})
    metadata: dict[str, str | int | float] = {
        "source_files": ", ".join(p.path.name if len(pieces) == 1 else p.path.parent.name + "/" + p.path.name
                                  for p in pieces[:20]) + (" ..." if len(pieces) > 20 else ""),
        "column_map": cmap.source,
    }
    measures = {c: data[c].to_numpy() for c in names}
    if object_col is not None or (x and y) or has_box or keys.duplicated().any():
        if object_col is not None:
            for tb in tables:  # same-named tables of every well folder are joined: each needs the column
                if original(object_col) not in tb.data.columns:
                    raise InputError(tb.path, f"line {tb.header.line} (header)",
                                     f"no {original(object_col)!r} column, which the other wells' {name!r} "
                                     "tables have; the header may be damaged")
            parts = [whole_numbers(tb, original(object_col), minimum=0, expected="a whole object number")
                     for tb in tables]
            objects = np.concatenate(parts)
        else:
            objects = keys.groupby(["r", "c", "f", "z", "t"], sort=False).cumcount().to_numpy(dtype=np.int64) + 1
            metadata["object"] = "row number within its well, field, z and t (no object column)"
        frame = object_keys_frame(rows, cols, field, objects, columns, z=z, t=t)
        table = build_table(name, "objects", frame, measures, infos, metadata)
        if has_box:
            return table, _box_rois(table, box, warnings)
        return table, (point_rois(table, x, y, warnings) if x and y else None)
    base = object_keys_frame(rows, cols, field, np.zeros(len(rows), dtype=np.int64), columns)
    if not keys.duplicated(["r", "c"]).any():
        return build_table(name, "wells", base[list(WELL_KEYS)], measures, infos, metadata), None
    return build_table(name, "fields", base[list(FIELD_KEYS)], measures, infos, metadata), None


def _box_rois(table: MeasurementTable, box: list[str | None], warnings: WarningLog) -> pd.DataFrame:
    """Rectangles from the box columns; a row whose box is missing or not numbers gets none (counted)."""
    frame = table.frame()
    values = [pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64) for c in box]
    ok = np.logical_and.reduce([np.isfinite(v) for v in values])
    lost = int((~ok).sum())
    if lost:
        warnings.add(f"{table.name}: objects whose bounding box is missing or not numbers, no ROI made",
                     f"{lost} of {len(ok)} objects", lost)
    rows = np.flatnonzero(ok)
    return shapes_for_rows(table, rows, "rectangle", x=values[0][ok], y=values[1][ok], width=values[2][ok],
                           height=values[3][ok])


def _roi_summary_table(summaries: list[tuple[RoiSummary, list[tuple[int, int]]]],
                       columns: int) -> tuple[MeasurementTable, pd.DataFrame]:
    parts, rows, cols, objects = [], [], [], []
    for summary, wells in summaries:
        n = len(summary.objects)
        frame = pd.DataFrame(summary.columns)
        parts.append(pd.concat([frame] * len(wells), ignore_index=True) if len(wells) > 1 else frame)
        targets = np.asarray(wells, dtype=np.int64).reshape(-1, 2)
        rows.append(np.repeat(targets[:, 0], n))
        cols.append(np.repeat(targets[:, 1], n))
        objects.append(np.tile(summary.objects, len(wells)))
    data = pd.concat(parts, ignore_index=True, sort=False) if len(parts) > 1 else parts[0]
    r, c = np.concatenate(rows), np.concatenate(cols)
    key_frame = object_keys_frame(r, c, np.zeros(len(r), dtype=np.int64), np.concatenate(objects), columns)
    first = summaries[0][0]
    infos = {}
    for s, _ in summaries:
        for k, v in s.sources.items():
            infos.setdefault(k, ColumnInfo(v, "pixel" if k in s.geometry else None))
    metadata: dict[str, str | int | float] = {
        "source_files": ", ".join(sorted({s.path.relative_to(s.path.parent.parent).as_posix() for s, _ in summaries})),
        "rows": "one per rectangle and well it applies to (field 0)",
    }
    if first.plate_name:
        metadata["plate_from_adf"] = first.plate_name
    table = build_table("RoiSummary", "objects", key_frame, {c: data[c].to_numpy() for c in data.columns}, infos,
                        metadata)
    gx, gy, gw, gh = first.geometry
    values = [table.data[c].to_numpy(dtype=np.float64) for c in (gx, gy, gw, gh)]
    rows = np.arange(table.rows)
    rois = shapes_for_rows(table, rows, "rectangle", x=values[0], y=values[1], width=values[2], height=values[3])
    return table, rois


def parse(path: Path, options: ParseOptions) -> PlateAnalysis:
    root = _root(path)
    warnings = WarningLog()
    cmap = load_column_map(options.column_map)
    experiment = parse_experiment(root, warnings)
    wells = well_folders(root)
    pieces = _read_pieces(root, cmap, wells, options, warnings)
    roi_files = [p for p in _files(root) if p.name.lower() == ROI_SUMMARY.lower()] if root.is_dir() else []
    if not pieces and not roi_files:
        raise InputError(root, None, f"no BD Attovision measurement tables (files matching "
                         f"{', '.join(cmap.include)} with a column the column map names) and no {ROI_SUMMARY}")
    # geometry: --plate-geometry, the .plt, else the wells seen (noted)
    if options.plate_geometry:
        rows, columns = options.plate_geometry
        if experiment.geometry and tuple(options.plate_geometry) != experiment.geometry:
            warnings.note(f"--plate-geometry {rows}x{columns} used instead of the {experiment.geometry[0]}x"
                          f"{experiment.geometry[1]} of the {PLATE_SUFFIX} file")
    elif experiment.geometry:
        rows, columns = experiment.geometry
    else:
        labelled = [p for p in pieces if p.rows is not None and p.cols is not None and len(p.rows)]
        seen_r = [r for r, _ in wells.values()] + [int(p.rows.max()) for p in labelled]  # type: ignore[union-attr]
        seen_c = [c for _, c in wells.values()] + [int(p.cols.max()) for p in labelled]  # type: ignore[union-attr]
        rows, columns = infer_geometry(max(seen_r, default=0), max(seen_c, default=0))
        numbers = [int(p.numbers.max()) for p in pieces if p.numbers is not None and len(p.numbers)]
        if numbers:
            nr, nc = infer_geometry_from_well_number(max(numbers))
            rows, columns = max(rows, nr), max(columns, nc)
        warnings.note(f"no {PLATE_SUFFIX} plate type: plate geometry {rows}x{columns} inferred from the wells found "
                      "(give --plate-geometry to override)")
    groups: dict[str, list[Piece]] = {}
    for p in pieces:
        groups.setdefault(p.group, []).append(p)
    tables: list[MeasurementTable] = []
    rois = []
    taken: set[str] = set()
    for group, members in groups.items():
        name = Path(group.split(": ", 1)[-1]).name
        if name in taken or name == "RoiSummary":
            name = group
        taken.add(name)
        table, shapes = _group_table(name, members, columns, cmap, warnings)
        tables.append(table)
        if options.rois and shapes is not None:
            rois.append(shapes)
    summaries = []
    for f in roi_files:
        summary = parse_roi_summary(f, options.bad_values, warnings)
        if summary.skipped:
            warnings.add("RoiSummary rows without an X value, no rectangle made", f"{f.name}: {summary.skipped} rows",
                         summary.skipped)
        folder = _well_folder_of(f, root)
        if folder is not None:
            targets = [wells[folder]] if folder in wells else []
        else:
            targets = sorted(wells.values()) or sorted({(int(r), int(c)) for t in tables if t.kind != "wells"
                                                       for r, c in zip(t.data["well_row"], t.data["well_column"])})
        if not targets:
            warnings.add(f"{ROI_SUMMARY} rectangles not attached: no Well folders or wells to attach them to",
                         f.as_posix(), len(summary.objects))
            continue
        if len(summary.objects):
            summaries.append((summary, targets))
    plate_name = next((s.plate_name for s, _ in summaries if s.plate_name), None) or root.name
    if summaries:
        table, shapes = _roi_summary_table(summaries, columns)
        tables.append(table)
        if options.rois:
            rois.append(shapes)
    if experiment.metadata:
        tables = [MeasurementTable(t.name, t.kind, t.data, t.columns, {**t.metadata, **experiment.metadata})
                  for t in tables]
    plate = Plate(
        name=plate_name,
        rows=rows,
        columns=columns,
        barcode=None,
        channels=experiment.channels,
        fields_per_well=experiment.fields_per_well,
        images=list_images(root, wells, experiment.channels, experiment.fields_per_well),
    )
    layout = [p for p in (root / EXPERIMENT_FILE, *sorted(root.glob(f"*{PLATE_SUFFIX}")),
                          *(root / f"{c}{DYE_SUFFIX}" for c in experiment.channels)) if p.is_file()]
    sources = [*layout, *(p.path for p in pieces), *(s.path for s, _ in summaries)]
    if options.column_map:
        sources.append(Path(options.column_map))
    return finish(fmt="bdpathway", version=__version__, root=root, plate=plate, tables=tables, rois=concat_rois(rois),
                  sources=sources, warnings=warnings)



PARSER = FormatParser(
    name="bdpathway",
    version=__version__,
    description="BD Pathway / Attovision: Experiment.exp layout, RoiSummary.txt rectangles, measurement tables "
                "through a column map",
    looks_for="Experiment.exp, or 'Well A01' folders beside *.dye / *.plt files",
    locate=locate,
    parse=parse,
    synthesize=Generator("hcs_import.synth.bdpathway:write_bdpathway_plate"),
)
