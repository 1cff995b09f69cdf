"""CellProfiler ExportToSpreadsheet output: a per-image CSV and one CSV per object population.

Input (docs/formats/cellprofiler.md): `<prefix>Image.csv` with `ImageNumber` and the plate metadata the
pipeline extracted (`Metadata_Plate`, `Metadata_Well` such as `B03` / `B3`, or `Metadata_Row` +
`Metadata_Column`, `Metadata_Site`, optionally `Metadata_Timepoint` / `Metadata_Plane`), and per-object
CSVs (`<prefix>Nuclei.csv`, ...) with `ImageNumber`, `ObjectNumber`, `Location_Center_X/Y` and, with
AreaShape, `AreaShape_BoundingBoxMinimum_X/Y` / `..._Maximum_X/Y`. A CSV written with the object name
above each column (two header rows: `Nuclei`, `Nuclei`, ... over `ImageNumber`, `ObjectNumber`, ...) is
read too, its columns named `<object>_<feature>`.

Output: a per-field table from the image CSV (one row per image: well, site), an object table per
population whose keys come from its image (joined on `ImageNumber`), Rectangle ROIs from the bounding box
(Points from the centre where there is none), and the computed per-well summary. Images without well
metadata cannot be placed on a plate: such files are refused with a clear error, as is an object row whose
`ImageNumber` is not in the image CSV. Sites, timepoints and planes are 1-based unless a 0 occurs.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..assemble import build_table, concat_rois, finish, point_rois, shapes_for_rows
from ..errors import InputError
from ..issues_log import WarningLog
from ..model import FIELD_KEYS, MeasurementTable, Plate, PlateAnalysis, T, Z, object_keys_frame
from ..wells import infer_geometry, row_index
from .base import Evidence, FormatParser, Generator, Located, NotAPlate, ParseOptions, make_source, plates_or_note
from .common import choose_plate, files_below, plate_root
from .delimited import DelimitedTable, index_column, read_delimited, read_header, well_label_keys, whole_numbers

SEARCH_DEPTH = 2
DETECT_BYTES = 16 * 1024
IMAGE_NUMBER, OBJECT_NUMBER = "ImageNumber", "ObjectNumber"
PLATE, WELL, SITE = "Metadata_Plate", "Metadata_Well", "Metadata_Site"
ROW, COLUMN = "Metadata_Row", "Metadata_Column"
TIMEPOINT, PLANE = "Metadata_Timepoint", "Metadata_Plane"
CENTRE = ("Location_Center_X", "Location_Center_Y")
BOX = ("AreaShape_BoundingBoxMinimum_X", "AreaShape_BoundingBoxMinimum_Y",
       "AreaShape_BoundingBoxMaximum_X", "AreaShape_BoundingBoxMaximum_Y")
IMAGE_FILE = re.compile(r"(^|_)Image\.csv$", re.IGNORECASE)  # ExportToSpreadsheet's per-image file name
TEXT_COLUMNS = (PLATE, WELL, ROW)
# Columns that identify rather than measure: kept, but not averaged per well.
IDENTIFIERS = (IMAGE_NUMBER, OBJECT_NUMBER, SITE, TIMEPOINT, PLANE, ROW, COLUMN)


def _header(path: Path) -> tuple[tuple[str, ...], int] | None:
    """(column names, header rows) of a CellProfiler CSV, or None when it is not one."""
    if path.suffix.lower() != ".csv":
        return None
    try:
        first = read_header(path, sep=",", head_bytes=DETECT_BYTES)
        if first is None:
            return None
        if IMAGE_NUMBER in first.raw_names:
            return first.raw_names, 1
        second = read_header(path, sep=",", skip_lines=first.line, head_bytes=DETECT_BYTES)
    except OSError:
        return None
    if second is not None and second.raw_names and second.raw_names[0] == IMAGE_NUMBER:
        return tuple(f"{o}_{f}" if f not in (IMAGE_NUMBER, OBJECT_NUMBER) else f
                     for o, f in zip(first.raw_names, second.raw_names, strict=False)), 2
    return None


def find_files(path: Path) -> tuple[list[Path], list[Path]]:
    """(image CSVs, object CSVs) below `path`."""
    images, objects = [], []
    for p in files_below(path, SEARCH_DEPTH):
        found = _header(p)
        if found is None:
            continue
        names = found[0]
        if OBJECT_NUMBER in names:
            objects.append(p)
        elif IMAGE_FILE.search(p.name) or any(n.startswith("Metadata_") for n in names):
            images.append(p)
    return images, objects


def locate(path: Path) -> Located:
    """Per-image CSVs (a header with Metadata_ columns, or *Image.csv), their object CSVs, and the plates
    (Metadata_Plate) they name."""
    images, objects = find_files(path)
    if not images:
        return NotAPlate(PARSER.name, "no CellProfiler per-image CSV (Image.csv or Metadata_* columns) "
                                      "up to 2 folders deep")
    names, notes = plates_or_note(plates, path)
    return make_source(PARSER.name, plate_root(path), Evidence.CONTENT, plates=names, notes=notes, images=images,
                       objects=objects)


def _read(path: Path, options: ParseOptions, warnings: WarningLog) -> DelimitedTable:
    found = _header(path)
    assert found is not None
    names, rows = found
    table = read_delimited(path, what="CellProfiler CSV", bad_values=options.bad_values, warnings=warnings, sep=",",
                           skip_lines=rows - 1, text_columns=TEXT_COLUMNS)
    if rows == 2:  # two header rows: name each column `<object>_<feature>`
        table.data.columns = list(names)[: len(table.data.columns)]
        table.infos.clear()
    return table


def _wells(table: DelimitedTable) -> tuple[np.ndarray, np.ndarray]:
    """0-based well rows and columns of every image, from Metadata_Well, else Metadata_Row + _Column."""
    if WELL in table.data.columns:
        return well_label_keys(table, WELL, "expected a well such as B03")
    if ROW in table.data.columns and COLUMN in table.data.columns:
        cols = whole_numbers(table, COLUMN, minimum=1, expected="a 1-based column number") - 1
        values = table.data[ROW]
        if pd.api.types.is_numeric_dtype(values):
            return whole_numbers(table, ROW, minimum=1, expected="a row letter or 1-based number") - 1, cols
        text = values.astype(str).str.strip()
        rows = []
        for i, v in enumerate(text.tolist()):
            try:
                rows.append(row_index(v))
            except ValueError:
                raise table.error(i, ROW, f"value {v[:40]!r}: expected a row letter") from None
        return np.asarray(rows, dtype=np.int64), cols
    raise InputError(table.path, f"line {table.header.line} (header)",
                     f"no {WELL!r} (or {ROW!r} + {COLUMN!r}) column: the images cannot be placed on a plate; "
                     "add well metadata to the pipeline (Metadata module) and export again")


def _plate_of(table: DelimitedTable) -> str | None:
    if PLATE not in table.data.columns:
        return None
    values = table.data[PLATE].dropna().astype(str).str.strip()
    distinct = pd.unique(values[values != ""])
    if len(distinct) > 1:
        raise InputError(table.path, f"column {PLATE!r}", f"images of {len(distinct)} plates "
                         f"({', '.join(map(repr, distinct[:3]))}...); export one plate per file or split the CSV")
    return str(distinct[0]) if len(distinct) else None


def _population(path: Path, image_file: Path) -> str:
    """`MyExpt_Nuclei.csv` beside `MyExpt_Image.csv` -> `Nuclei`."""
    prefix = IMAGE_FILE.sub("", image_file.name)
    stem = path.stem
    return stem[len(prefix):].lstrip("_") or stem if prefix and stem.startswith(prefix) else stem


def parse(path: Path, options: ParseOptions) -> PlateAnalysis:
    root = path if path.is_dir() else path.parent
    images, objects = find_files(path if path.is_dir() else path.parent)
    if not images:
        raise InputError(path, None, "no CellProfiler per-image CSV (ImageNumber and Metadata_ columns)")
    warnings = WarningLog()
    read = [(p, _read(p, options, warnings)) for p in images]
    plates = {}
    for p, table in read:
        plates.setdefault(_plate_of(table) or (root.name if path.is_dir() else path.stem), []).append(p)
    chosen = choose_plate(path, plates, options.source_plate)
    image_file, image = next((p, t) for p, t in read if p in plates[chosen])
    if len(plates[chosen]) > 1:
        warnings.note(f"several per-image CSVs of plate {chosen!r}; {image_file.name} was used")
    metadata: dict[str, str | int | float] = {"source_file": image_file.name}
    rows, cols = _wells(image)
    site = index_column(image, SITE, SITE, metadata)
    t = index_column(image, TIMEPOINT, TIMEPOINT, metadata)
    z = index_column(image, PLANE, PLANE, metadata)
    numbers = whole_numbers(image, IMAGE_NUMBER, minimum=0, expected="a whole image number")
    if len(np.unique(numbers)) != len(numbers):
        i = int(np.flatnonzero(pd.Series(numbers).duplicated().to_numpy())[0])
        raise image.error(i, IMAGE_NUMBER, f"image number {numbers[i]} given twice")
    if options.plate_geometry:
        n_rows, n_cols = options.plate_geometry
    else:
        n_rows, n_cols = infer_geometry(int(rows.max()) if len(rows) else 0, int(cols.max()) if len(cols) else 0)
        warnings.note(f"CellProfiler: no plate layout in the exports: plate geometry {n_rows}x{n_cols} inferred from "
                      "the largest well (give --plate-geometry to override)")
    plate = Plate(name=chosen, rows=n_rows, columns=n_cols)
    infos = {c: image.infos.get(c) for c in image.data.columns}
    identifiers = {c for c in IDENTIFIERS if c in image.data.columns}
    image_keys = object_keys_frame(rows, cols, site, np.zeros(len(rows), dtype=np.int64), n_cols)[list(FIELD_KEYS)]
    for key, values in ((Z, z), (T, t)):
        if len(np.unique(values)) > 1:
            image_keys[key] = values
    tables = [build_table("Image", "fields", image_keys, {c: image.data[c].to_numpy() for c in image.data.columns},
                          _infos(infos, identifiers), metadata)]
    index = pd.Index(numbers)
    rois = []
    for p in objects:
        table = _read(p, options, warnings)
        name = _population(p, image_file)
        built = _object_table(table, name, index, (rows, cols, site, z, t), n_cols)
        tables.append(built)
        if options.rois:
            rois.extend(_rois(built, warnings))
    return finish(fmt="cellprofiler", version=__version__, root=root, plate=plate, tables=tables,
                  rois=concat_rois(rois), sources=[image_file, *objects], warnings=warnings)


def _infos(infos: dict, identifiers: set[str]) -> dict:
    from ..model import ColumnInfo

    out = {}
    for c, info in infos.items():
        base = info or ColumnInfo(c)
        out[c] = ColumnInfo(base.source_name, base.unit, base.note, identifier=c in identifiers)
    return out


def _object_table(table: DelimitedTable, name: str, index: pd.Index,
                  keys: tuple[np.ndarray, ...], n_cols: int) -> MeasurementTable:
    for required in (IMAGE_NUMBER, OBJECT_NUMBER):
        if required not in table.data.columns:
            raise InputError(table.path, f"line {table.header.line} (header)", f"no {required!r} column")
    image_numbers = whole_numbers(table, IMAGE_NUMBER, minimum=0, expected="a whole image number")
    at = index.get_indexer(image_numbers)
    if (at < 0).any():
        i = int(np.flatnonzero(at < 0)[0])
        raise table.error(i, IMAGE_NUMBER, f"image {image_numbers[i]} is not in the per-image CSV")
    objects = whole_numbers(table, OBJECT_NUMBER, minimum=0, expected="a whole object number")
    rows, cols, site, z, t = (k[at] for k in keys)
    frame = object_keys_frame(rows, cols, site, objects, n_cols, z=z, t=t)
    identifiers = {c for c in IDENTIFIERS if c in table.data.columns}
    infos = {c: table.infos.get(c) for c in table.data.columns}
    return build_table(name, "objects", frame, {c: table.data[c].to_numpy() for c in table.data.columns},
                       _infos(infos, identifiers), {"source_file": table.path.name})


def _named(columns: pd.Index, names: tuple[str, ...]) -> list[str] | None:
    """The columns holding `names`, as written or as `<object>_<name>` (files with two header rows)."""
    out = []
    for name in names:
        hit = next((str(c) for c in columns if str(c) == name or str(c).endswith(f"_{name}")), None)
        if hit is None:
            return None
        out.append(hit)
    return out


def _rois(table: MeasurementTable, warnings: WarningLog) -> list:
    """Rectangles from the AreaShape bounding box; Points at Location_Center_X/Y where there is none."""
    centre = _named(table.data.columns, CENTRE)
    box_columns = _named(table.data.columns, BOX)
    if box_columns is None:
        return [point_rois(table, centre[0], centre[1], warnings)] if centre else []
    frame = table.frame()
    box = frame[box_columns].to_numpy(dtype=np.float64)
    boxed = np.isfinite(box).all(axis=1) & (box[:, 2] >= box[:, 0]) & (box[:, 3] >= box[:, 1])
    rows = np.flatnonzero(boxed)
    out = [shapes_for_rows(table, rows, "rectangle", x=box[rows, 0], y=box[rows, 1],
                           width=box[rows, 2] - box[rows, 0], height=box[rows, 3] - box[rows, 1])]
    if centre and not boxed.all():
        xy = frame[centre].to_numpy(dtype=np.float64)
        point = ~boxed & np.isfinite(xy).all(axis=1)
        prow = np.flatnonzero(point)
        out.append(shapes_for_rows(table, prow, "point", x=xy[prow, 0], y=xy[prow, 1]))
        boxed = boxed | point
    if not boxed.all():
        lost = int((~boxed).sum())
        warnings.add(f"{table.name}: objects without a bounding box or centre, no ROI made", f"{lost} objects", lost)
    return out


def plates(path: Path) -> list[str]:
    """The plates the folder's per-image CSVs name (Metadata_Plate), for batch."""
    root = path if path.is_dir() else path.parent
    images, _ = find_files(root)
    names = set()
    warnings = WarningLog()
    for p in images:
        names.add(_plate_of(_read(p, ParseOptions(bad_values="nan"), warnings)) or root.name)
    return sorted(names)


PARSER = FormatParser(
    name="cellprofiler",
    version=__version__,
    description="CellProfiler ExportToSpreadsheet CSVs (per image with Metadata_Plate/Well/Site, per object)",
    looks_for="a CSV with ImageNumber and Metadata_ columns (e.g. MyExpt_Image.csv), with object CSVs "
              "(ImageNumber, ObjectNumber) beside it (up to 2 folders deep)",
    locate=locate,
    parse=parse,
    synthesize=Generator("hcs_import.synth.cellprofiler:write_cellprofiler_export"),
    synth_layouts=("object-header-rows",),
)
