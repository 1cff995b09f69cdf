"""MIAS (Maia Scientific MIAS-2): per-well detail files grouped into analysis runs, plus overlay masks.

Output, per analysis run (named by its log file's timestamp, e.g. `2008-09-18-14h37m07s`) and per
column set: one object table (`NEO <run>`, `MNU <run>`, or `Objects <run>` for an unknown column
set). Every column of the detail files is kept (`Label`, `Row`, `Col` too); keys come from the file
name: the well number (1-based, row-major), `z<zzz>` and `t<ttt>` (0-based); one field per well (a
MIAS well is one stitched image). A `mode` column carries the file name's `mode<n>`.
- "NEO" rows become Ellipses centred on (x=`Col`, y=`Row`) with radius `Cell Diam.` / 2;
- "MNU" rows become Points at (x=`col`, y=`row`);
- other column sets are imported as tables without ROIs, with a warning.
The preamble of analysis parameters before the header is kept as the table's metadata
(`parameter: <name>`), with the run, its log file and the template's values.
Overlay label TIFFs (`results/Well<nnnn>_..._*overlay.tif`) become the table `Overlay masks` (one row
per mask: its label and pixel count) with one Mask ROI per label.
No per-well table exists in the detail files, so finish() adds the computed one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..assemble import build_table, concat_rois, finish, point_rois, shapes_for_rows
from ..errors import InputError
from ..issues_log import WarningLog
from ..model import ColumnInfo, MeasurementTable, Plate, PlateAnalysis, object_keys_frame
from ..wells import infer_geometry_from_well_number, well_number_to_row_col
from .base import Evidence, FormatParser, Generator, Located, NotAPlate, ParseOptions, make_source
from .delimited import KEY_LIMIT
from .mias_layout import (
    COLUMNS_BY_WELL_COUNT,
    DetailFile,
    OverlayFile,
    PlateFolder,
    Run,
    Template,
    area_code_columns,
    describe_detail,
    describe_overlay,
    group_runs,
    parse_template,
    plate_folders,
)
from .mias_layout import locate as locate_plate_folder
from .mias_masks import read_overlay
from .mias_text import (
    Chunk,
    Lines,
    TextTable,
    choose_encoding,
    is_number,
    prepare_chunk,
    read_chunks,
    split_lines,
    split_unit,
)

# Column sets omero-py's populate_roi knows (its lists also name `Image` and `ROI`, its own id columns).
NEO_COLUMNS = ("Label", "Row", "Col", "Nucleus Area", "Cell Diam.", "Cell Type", "Mean Nucleus Intens.")
MNU_COLUMNS = ("row", "col", "type")
REFERENCE_COLUMNS = ("Image", "ROI")
NEO_REQUIRED = ("Label", "Row", "Col", "Cell Diam.")  # what an Ellipse ROI needs
MNU_REQUIRED = ("row", "col")  # what a Point ROI needs
HEADER_CONFIRM_LINES = 5  # rows that must share the header's width for an unknown header to be taken
HEADER_SCAN_LINES = 5000  # the parameter preamble is a few dozen lines; the header must come before this
MODE_COLUMN = "mode"
# Numbers that name things (kept, but not averaged in the computed per-well summary).
IDENTIFIER_COLUMNS = frozenset({"Label", "Image", "ROI"})
PREAMBLE_IDENTIFIERS = frozenset({"Well", "Mode", "Plate", "Image", "Field"})  # e.g. "Well<TAB>0001" per file
OVERLAY_TABLE = "Overlay masks"
MASK_PIXELS = "Mask pixels"
ROWS_FOR_COLUMNS = {12: 8, 24: 16, 48: 32}


@dataclass(frozen=True)
class ParsedDetail:
    """A detail file checked and split into preamble and rows; the rows are parsed per group (read_chunks)."""

    file: DetailFile
    chunk: Chunk
    preamble: tuple[str, ...]
    kind: str  # "NEO", "MNU" or "Objects"


def column_set(names: list[str]) -> str:
    present = {n.strip() for n in names} - set(REFERENCE_COLUMNS)
    if present >= set(NEO_REQUIRED):
        return "NEO"
    if present >= set(MNU_REQUIRED):
        return "MNU"
    return "Objects"


def find_header(path: Path, data: bytes, lines: Lines, encoding: str) -> int:
    """0-based index of the header line.

    A known column set (NEO, MNU) wins. Otherwise the header is the first line of two or more fields,
    none of them a number, whose next HEADER_CONFIRM_LINES non-empty lines all have as many fields with
    a number among the first (parameter lines `name<TAB>value` have another width than the table), or
    a last line of names with no row after it.
    """
    blank = lines.blank()
    n = min(len(lines), HEADER_SCAN_LINES)
    nonblank = np.flatnonzero(~blank)
    texts: dict[int, list[str]] = {}

    def fields(i: int) -> list[str]:
        if i not in texts:
            texts[i] = lines.text(data, i, encoding).split("\t")
        return texts[i]

    for i in nonblank[nonblank < n]:
        if column_set(fields(int(i))) != "Objects":
            return int(i)
    for k, i in enumerate(nonblank[nonblank < n]):
        i = int(i)
        width = int(lines.separators[i]) + 1
        if width < 2 or any(is_number(x) for x in fields(i)):
            continue
        after = nonblank[k + 1 : k + 1 + HEADER_CONFIRM_LINES]
        if not len(after):
            return i
        if (lines.separators[after] + 1 == width).all() and any(is_number(x) for x in fields(int(after[0]))):
            return i
    raise InputError(path, None, "no column header line found (expected tab-separated names such as "
                                 "'Label<TAB>Row<TAB>Col…' or 'row<TAB>col<TAB>type', followed by rows of numbers)")


def parse_detail(file: DetailFile, bad_values: str, warnings: WarningLog) -> ParsedDetail:
    path = file.path
    data = path.read_bytes()
    if not data.strip():
        raise InputError(path, None, "file is empty; expected a MIAS detail file (parameters, header, rows)")
    enc = choose_encoding(data)
    lines = split_lines(data)
    h = find_header(path, data, lines, enc)
    header = lines.text(data, h, enc).split("\t")
    kind = column_set(header)
    chunk = prepare_chunk(path, data, lines, h, enc, bad_values, warnings)
    preamble = tuple(lines.text(data, i, enc) for i in range(h) if not lines.blank()[i])
    return ParsedDetail(file, chunk, preamble, kind)


def _unique_names(header: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for i, raw in enumerate(header):
        name = raw.strip() or f"column {i + 1}"
        base, n = name, 2
        while name in out:
            name = f"{base} ({n})"
            n += 1
        out.append(name)
    return out


def preamble_metadata(preamble: tuple[str, ...]) -> dict[str, str]:
    meta: dict[str, str] = {}
    for i, line in enumerate(preamble, start=1):
        cells = [c.strip() for c in line.split("\t")]
        cells = [c for c in cells if c] or [""]
        if len(cells) >= 2:
            key = cells[0].rstrip(":").strip() or f"line {i}"
            value = "\t".join(cells[1:])
        else:
            key, value = f"line {i}", cells[0]
        name = f"parameter: {key}"
        while name in meta:
            name += "'"
        meta[name] = value
    return meta


def split_parameters(per_file: list[dict[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Preamble parameters equal in every file (table metadata) and those that vary (one value per file,
    made a column so no file's value is lost: e.g. the well number or an automatic threshold)."""
    keys: list[str] = []
    for meta in per_file:
        keys.extend(k for k in meta if k not in keys)
    constant: dict[str, str] = {}
    varying: dict[str, list[str]] = {}
    for k in keys:
        values = [meta.get(k, "") for meta in per_file]
        if all(v == values[0] for v in values):
            constant[k] = values[0]
        else:
            varying[k] = values
    return constant, varying


def _object_numbers(kind: str, table: TextTable, names: list[str], warnings: WarningLog) -> np.ndarray:
    """NEO: the `Label` column. MNU and unknown sets carry no object number: the row's place in its file."""
    n = len(table.frame)
    counts = np.bincount(table.file, minlength=len(table.paths))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.arange(n, dtype=np.int64) - starts[table.file] + 1
    if kind != "NEO":
        return position
    label = table.frame[names.index("Label")].to_numpy(dtype=np.float64)
    ok = np.isfinite(label) & (label == np.round(label)) & (np.abs(label) < KEY_LIMIT)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        warnings.add("MIAS: rows whose Label is not a whole number: object number is the row's place in its file",
                     f"{table.paths[table.file[i]].name} line {int(table.lines[i])}", int((~ok).sum()))
    return np.where(ok, np.nan_to_num(label), position).astype(np.int64)


def _group_table(name: str, group: list[ParsedDetail], run: Run, plate: Plate, extra_meta: dict[str, str | int | float],
                 bad_values: str, warnings: WarningLog) -> MeasurementTable:
    kind = group[0].kind
    required = {"NEO": NEO_REQUIRED, "MNU": MNU_REQUIRED}.get(kind, ())
    table = read_chunks([p.chunk for p in group], bad_values, warnings, numeric=required,
                        all_numeric=kind != "Objects")
    names = _unique_names(table.header)
    f = table.file
    wells = np.array([p.file.well for p in group], dtype=np.int64)[f]
    row, col = well_number_to_row_col(wells, plate.columns)
    zs = np.array([p.file.z for p in group], dtype=np.int64)[f]
    ts = np.array([p.file.t for p in group], dtype=np.int64)[f]
    key_frame = object_keys_frame(row, col, np.zeros(len(f), dtype=np.int64),
                                  _object_numbers(kind, table, names, warnings), plate.columns, zs, ts)
    data = table.frame
    counts = np.bincount(f, minlength=len(group))
    measurements: dict[str, np.ndarray] = {}
    infos: dict[str, ColumnInfo] = {}
    for i, col in enumerate(names):
        measurements[col] = data[i].to_numpy()
        infos[col] = ColumnInfo(*split_unit(col), identifier=col in IDENTIFIER_COLUMNS)
    mode = np.array([np.nan if p.file.mode is None else p.file.mode for p in group], dtype=np.float64)[f]
    if np.isfinite(mode).any():
        target = MODE_COLUMN if MODE_COLUMN not in measurements else f"{MODE_COLUMN} (file name)"
        measurements[target] = mode.astype(np.int64) if np.isfinite(mode).all() else mode
        infos[target] = ColumnInfo("mode<n> in the detail file name", None, "channel of the analysis",
                                   identifier=True)
    constant, varying = split_parameters([preamble_metadata(p.preamble) for p in group])
    for key, values in varying.items():
        target = key if key not in measurements else f"{key} (preamble)"
        per_file = np.array(values, dtype=object)
        numeric = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
        if numeric.notna().all():
            per_file = numeric.to_numpy(dtype=np.float64)
        measurements[target] = np.repeat(per_file, counts)
        infos[target] = ColumnInfo(key, None, "from each detail file's parameter preamble",
                                   identifier=key.removeprefix("parameter: ") in PREAMBLE_IDENTIFIERS)
    meta: dict[str, str | int | float] = {
        "mias.run": run.name,
        "mias.log_file": run.log.name if run.log else "",
        "mias.column_set": group[0].kind,
        "mias.detail_files": len(group),
        **constant,
        **extra_meta,
    }
    return build_table(name, "objects", key_frame, measurements, infos, meta)


def _neo_rois(table: MeasurementTable, warnings: WarningLog) -> pd.DataFrame:
    d = table.data
    x = d["Col"].to_numpy(dtype=np.float64)
    y = d["Row"].to_numpy(dtype=np.float64)
    diameter = d["Cell Diam."].to_numpy(dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(diameter)
    if not ok.all():
        warnings.add(f"{table.name}: objects without Row/Col/Cell Diam., no ROI made",
                     f"{int((~ok).sum())} of {len(ok)} objects", int((~ok).sum()))
    r = diameter[ok] / 2.0  # `Cell Diam.` is a diameter (populate_roi uses it as the radius)
    return shapes_for_rows(table, np.flatnonzero(ok), "ellipse", x=x[ok], y=y[ok], radius_x=r, radius_y=r)


def _geometry(folder: PlateFolder, max_well: int, options: ParseOptions, warnings: WarningLog) -> tuple[int, int]:
    if options.plate_geometry:
        return options.plate_geometry
    columns = None
    for f in folder.batch_results:
        c = area_code_columns(f, folder.number)
        if c:
            columns = max(columns or 0, c)
    if columns:
        rows = ROWS_FOR_COLUMNS.get(columns) or max(1, math.ceil(max_well / columns))
        return rows, columns
    if folder.well_dirs in COLUMNS_BY_WELL_COUNT:
        columns = COLUMNS_BY_WELL_COUNT[folder.well_dirs]
        return folder.well_dirs // columns, columns
    rows, columns = infer_geometry_from_well_number(max_well)
    warnings.note(f"MIAS: no Batchresults AreaCode and no full set of Well folders: plate geometry {rows}x{columns} "
                  f"inferred from the largest well number ({max_well}); give --plate-geometry to override")
    return rows, columns


def _template_metadata(template: Template | None) -> dict[str, str | int | float]:
    if template is None:
        return {}
    return {f"template: {k}": v for k, v in template.values.items()}


def _overlay_table(overlays: list[OverlayFile], plate: Plate, options: ParseOptions,
                   warnings: WarningLog) -> tuple[MeasurementTable | None, pd.DataFrame | None]:
    if not overlays:
        return None, None
    keys, labels, pixels, modes, xs, ys, ws, hs, bits = [], [], [], [], [], [], [], [], []
    kinds = set()
    for ov in overlays:
        masks = read_overlay(ov.path)
        n = len(masks.label)
        kinds.add(masks.kind)
        row, col = well_number_to_row_col(np.full(n, ov.well), plate.columns)
        keys.append(object_keys_frame(row, col, np.zeros(n, dtype=np.int64), masks.label, plate.columns, ov.z, ov.t))
        labels.append(masks.label)
        pixels.append(masks.pixels)
        modes.append(np.full(n, -1 if ov.mode is None else ov.mode, dtype=np.int64))
        xs.append(masks.x)
        ys.append(masks.y)
        ws.append(masks.width)
        hs.append(masks.height)
        bits.extend(masks.bits)
        if n == 0:
            warnings.add("MIAS: overlay images without any labelled pixel", ov.path.name)
    measurements = {MODE_COLUMN: np.concatenate(modes), MASK_PIXELS: np.concatenate(pixels)}
    infos = {MODE_COLUMN: ColumnInfo("mode<n> in the overlay file name", None, "-1: none", identifier=True),
             MASK_PIXELS: ColumnInfo(MASK_PIXELS, "pixels", "pixels in the object's mask")}
    table = build_table(OVERLAY_TABLE, "objects", pd.concat(keys, ignore_index=True), measurements, infos,
                        {"mias.overlay_files": len(overlays), "mias.overlay_kind": ",".join(sorted(kinds)),
                         "mias.note": "object = label value in the overlay image (colour overlays: 1 red, "
                                      "2 green, 3 blue)"})
    if not options.rois or not len(table.data):
        return table, None
    rows = np.arange(len(table.data))
    rois = shapes_for_rows(table, rows, "mask", x=np.concatenate(xs).astype(np.float64),
                           y=np.concatenate(ys).astype(np.float64), width=np.concatenate(ws).astype(np.float64),
                           height=np.concatenate(hs).astype(np.float64), mask=np.array(bits, dtype=object))
    return table, rois


def parse(path: Path, options: ParseOptions) -> PlateAnalysis:
    folder = locate_plate_folder(path)
    warnings = WarningLog()
    if not folder.details and not folder.overlays:
        raise InputError(folder.root, None, "no MIAS detail files (results/Well<nnnn>_..._detail_<timestamp>.txt)")
    template = parse_template(folder.template) if folder.template else None
    if template is None:
        warnings.note(f"MIAS: no {folder.root.name}/Nugenesistemplate.txt: no barcode, channels or pixel size")
    details = [describe_detail(p, warnings) for p in folder.details]
    overlays = [describe_overlay(p, warnings) for p in folder.overlays]
    runs = group_runs(folder.logs, details, warnings)
    for r in runs:
        if not r.details:
            warnings.add("MIAS: log files without detail files (no table made)", r.log.name if r.log else r.name)
    max_well = max([d.well for d in details] + [o.well for o in overlays])
    rows, columns = _geometry(folder, max_well, options, warnings)
    plate = Plate(
        name=folder.name,
        rows=rows,
        columns=columns,
        barcode=(template.barcode if template else None) or (folder.name if folder.name != folder.root.name else None),
        channels=template.channels if template else (),
        pixel_size_um=template.pixel_size_um if template else None,
        fields_per_well=1,
    )
    extra = _template_metadata(template)
    total = sum(d.path.stat().st_size for d in details) or 1
    done = 0
    tables: list[MeasurementTable] = []
    rois: list[pd.DataFrame] = []
    taken: set[str] = set()
    for run in runs:
        groups: dict[tuple[str, tuple[str, ...]], list[ParsedDetail]] = {}
        for d in sorted(run.details, key=lambda d: (d.well, d.z, d.t, d.mode or 0, d.timestamp, d.path.name)):
            p = parse_detail(d, options.bad_values, warnings)
            groups.setdefault((p.kind, tuple(c.strip() for c in p.chunk.header)), []).append(p)
            done += d.path.stat().st_size
            if options.progress:
                options.progress(done, total)
        for (kind, header), group in groups.items():
            name, n = f"{kind} {run.name}", 2
            while name in taken:
                name = f"{kind} {run.name} ({n})"
                n += 1
            taken.add(name)
            table = _group_table(name, group, run, plate, extra, options.bad_values, warnings)
            tables.append(table)
            if kind == "Objects":
                warnings.add("MIAS: detail files with an unknown column set imported as tables without ROIs",
                             f"{group[0].file.path.name}: {', '.join(header)}", len(group))
            elif options.rois and kind == "NEO":
                rois.append(_neo_rois(table, warnings))
            elif options.rois and kind == "MNU":
                rois.append(point_rois(table, "col", "row", warnings))
    overlay_table, overlay_rois = _overlay_table(overlays, plate, options, warnings)
    if overlay_table is not None:
        tables.append(overlay_table)
    if overlay_rois is not None:
        rois.append(overlay_rois)
    if folder.batch_results:
        warnings.note("MIAS: Batchresults/NEO_Results* read for the plate geometry (AreaCode) only; "
                      "its per-well rows are not imported")
    sources = [*([folder.template] if folder.template else []), *folder.logs, *folder.details, *folder.overlays,
               *folder.batch_results]
    root = folder.experiment or folder.root
    return finish(fmt="mias", version=__version__, root=root, plate=plate, tables=tables, rois=concat_rois(rois),
                  sources=sources, warnings=warnings)


def locate(path: Path) -> Located:
    """The plate folder (climbing from its `results/`, or down into an experiment of one plate) and its
    template, logs, detail and overlay files, recognised by their names. An experiment of several
    plates is `near`: which plate is meant only the user knows, and batch visits each."""
    try:
        folder = locate_plate_folder(path)
    except InputError as exc:
        near = bool(plate_folders(path.parent if path.is_file() else path))
        return NotAPlate(PARSER.name, exc.message, near=near)
    return make_source(PARSER.name, folder.root, Evidence.NAMES, scope=folder.experiment,
                       template=[folder.template] if folder.template else [],
                       logs=folder.logs, details=folder.details, overlays=folder.overlays,
                       batch_results=folder.batch_results)



PARSER = FormatParser(
    name="mias",
    version=__version__,
    description="Maia Scientific MIAS-2: per-well detail files (NEO/MNU) grouped into analysis runs, overlay masks",
    looks_for="a MIAS plate folder (Nugenesistemplate.txt, results/Well<nnnn>_..._detail_<timestamp>.txt) "
              "or an experiment folder holding one",
    locate=locate,
    parse=parse,
    synthesize=Generator("hcs_import.synth.mias:write_mias_experiment"),
)
