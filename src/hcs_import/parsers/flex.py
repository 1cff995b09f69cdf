"""PerkinElmer/Evotec Flex images with Acapella `.res` results.

Layout: the `.flex` files (one per well and field, `RRRCCCFFF.flex`) give plate geometry, name,
barcode, wells, fields, channels and pixel size through the XML in TIFF tag 65200; a `.mea` file
lists them; `.res` files hold the per-well results (up to two folders deep, see SEARCH_DEPTH).

Output, per `.res` file, ONE table of kind "wells" (named `Wells`, or `Wells <res file stem>` when
there are several `.res` files) with one row per well and one column per (Area, parameter):
- with a single Area the columns are named by the parameter, as populate_roi names them;
- with several Areas every column is named `<area>: <parameter>` (the Area's `name` attribute, else
  `Area <n>`), so all Areas are kept side by side (populate_roi keeps only the last Area).
One table rather than one per Area because OMERO.web and omero-parade use one per-well table with a
`Well` column; the Area names are listed in the table metadata (`flex.areas`).
A Result a well lacks is NaN (counted in the warnings); a Result whose name is not among its Area's
parameters is an error. Wells in the `.res` without a `.flex` image are kept (populate_roi drops
them). `.res` results carry no object coordinates, so there are no ROIs.
Without `.flex` files, fields per well come from the `RRRCCCFFF` names the `.mea` lists.
The `.flex` images are read for their XML only and listed in the plate layout; they are not hashed
into the provenance (they can be gigabytes): the `.res` and `.mea` files are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..assemble import build_table, finish
from ..errors import InputError
from ..issues_log import WarningLog
from ..model import ColumnInfo, MeasurementTable, Plate, PlateAnalysis, empty_rois, well_keys_frame
from ..wells import infer_geometry
from .base import Evidence, FormatParser, Generator, Located, NotAPlate, ParseOptions, make_source
from .common import files_below, plate_root
from .flex_res import ResFile, is_res, parse_res
from .flex_xml import FLEX_NAME_RE, FlexInfo, flex_info, mea_pictures
from .mias_text import split_unit

SEARCH_DEPTH = 2  # .res/.mea often sit in a sub-folder next to the .flex files (FlexReader looks there too)
AREA_SEPARATOR = ": "




def find_files(root: Path) -> tuple[list[Path], list[Path], list[Path]]:
    files = files_below(root, SEARCH_DEPTH)
    flex = [p for p in files if p.suffix.lower() == ".flex"]
    mea = [p for p in files if p.suffix.lower() == ".mea"]
    res = [p for p in files if is_res(p)]
    return flex, mea, res


def locate(path: Path) -> Located:
    """Acapella .res (sniffed) and .mea (by extension) next to or below the .flex images."""
    flex, mea, res = find_files(path)
    if not (flex or mea or res):
        return NotAPlate(PARSER.name, "no .flex, .mea or Acapella .res up to 2 folders deep")
    evidence = Evidence.CONTENT if res else Evidence.NAMES if mea else Evidence.LAYOUT
    return make_source(PARSER.name, plate_root(path), evidence, images=flex, measurements=mea, results=res)


def _is_file(path: Path) -> bool:
    """Whether a file a .mea names exists; a name no file system takes (too long, NUL) is simply not there."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _flex_files(flex: list[Path], mea: list[Path], warnings: WarningLog) -> tuple[list[Path], list[str]]:
    """The .flex files on disk (found, or listed in a .mea and found), and every name the .mea files list."""
    found = {p.resolve(): p for p in flex}
    listed: list[str] = []
    for m in mea:
        for pic in mea_pictures(m):
            listed.append(pic)
            candidates = [m.parent / pic, m.parent / Path(pic).name, m.parent.parent / pic]
            hit = next((c for c in candidates if _is_file(c)), None)
            if hit is None:
                warnings.add("Flex: .flex files listed in the .mea but not found", f"{m.name}: {pic}")
            else:
                found.setdefault(hit.resolve(), hit)
    return sorted(found.values()), listed


def _named_positions(names: list[str]) -> list[tuple[int, int, int]]:
    """(row, column, field), 0-based, of `RRRCCCFFF.flex` names (a .mea's pictures when the files are absent)."""
    out = []
    for n in names:
        m = FLEX_NAME_RE.match(Path(n).name)
        if m:
            out.append((int(m.group(1)) - 1, int(m.group(2)) - 1, int(m.group(3)) - 1))
    return out


def _layout(infos: list[FlexInfo], root: Path) -> pd.DataFrame:
    records = []
    for info in infos:
        if info.row is None or info.column is None:
            continue
        n_c = max(1, len(info.channels))
        try:
            rel = info.path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            rel = info.path.name
        for i in range(info.planes):
            records.append((info.row, info.column, info.field or 0, i // n_c, 0, i % n_c, rel))
    return pd.DataFrame.from_records(records, columns=["well_row", "well_column", "field", "z", "t", "c", "path"])


def _plate(infos: list[FlexInfo], listed: list[tuple[int, int, int]], results: list[ResFile], root: Path,
           options: ParseOptions, warnings: WarningLog) -> Plate:
    with_plate = [i for i in infos if i.plate_rows and i.plate_columns]
    if options.plate_geometry:
        rows, cols = options.plate_geometry
    elif with_plate:
        rows, cols = with_plate[0].plate_rows, with_plate[0].plate_columns
        if any((i.plate_rows, i.plate_columns) != (rows, cols) for i in with_plate):
            warnings.note(f"Flex: .flex files disagree on the plate geometry; {rows}x{cols} of "
                          f"{with_plate[0].path.name} was used")
    else:
        max_r = max([int(a.well_row.max()) for r in results for a in r.areas if len(a.well_row)]
                    + [i.row for i in infos if i.row is not None] + [r for r, _, _ in listed] + [0])
        max_c = max([int(a.well_column.max()) for r in results for a in r.areas if len(a.well_column)]
                    + [i.column for i in infos if i.column is not None] + [c for _, c, _ in listed] + [0])
        rows, cols = infer_geometry(max_r, max_c)
        warnings.note(f"Flex: no plate geometry in any .flex XML: {rows}x{cols} inferred from the largest well "
                      "(give --plate-geometry to override)")
    name = next((i.plate_name for i in infos if i.plate_name), None)
    barcode = next((i.barcode for i in infos if i.barcode), None)
    channels = next((i.channels for i in infos if i.channels), ())
    pixel = next((i.pixel_size_um for i in infos if i.pixel_size_um), None)
    fields = [i.field for i in infos if i.field is not None] or [f for _, _, f in listed]
    return Plate(
        name=name or barcode or (root.name if root.is_dir() else root.stem),
        rows=rows,
        columns=cols,
        barcode=barcode,
        channels=channels,
        pixel_size_um=pixel,
        fields_per_well=max(fields) + 1 if fields else None,
        images=_layout(infos, root) if infos else None,
    )


def wells_table(res: ResFile, name: str, plate: Plate, warnings: WarningLog) -> MeasurementTable:
    """One row per well of any Area; one column per (Area, parameter); absent values NaN."""
    width = 1 + max((int(a.well_column.max()) for a in res.areas if len(a.well_column)), default=0)
    codes = np.unique(np.concatenate([a.well_row * width + a.well_column for a in res.areas]))
    rows, cols = codes // width, codes % width
    several = len(res.areas) > 1
    measurements: dict[str, np.ndarray] = {}
    infos: dict[str, ColumnInfo] = {}
    for area in res.areas:
        pos = np.searchsorted(codes, area.well_row * width + area.well_column)
        absent = len(codes) - len(area.well_row)
        if absent and area.parameters:
            warnings.add(f"{res.path.name}: wells absent from an Area, its Results stored as NaN",
                         f"area {area.name!r}: {absent} wells", absent * len(area.parameters))
        for j, param in enumerate(area.parameters):
            column = f"{area.name}{AREA_SEPARATOR}{param}" if several else param
            values = np.full(len(codes), np.nan)
            values[pos] = area.values[:, j]
            measurements[column] = values
            bare, unit = split_unit(param)
            infos[column] = ColumnInfo(bare, unit, f"Area {area.name}" if several else None)
    meta: dict[str, str | int | float] = {
        "flex.res_file": res.path.name,
        "flex.areas": "; ".join(a.name for a in res.areas),
        "flex.area_columns": "<area>: <parameter>" if several else "<parameter>",
        **{f"res: {k}": v for k, v in res.attributes.items()},
    }
    return build_table(name, "wells", well_keys_frame(rows, cols, plate.columns), measurements, infos, meta)


def parse(path: Path, options: ParseOptions) -> PlateAnalysis:
    root = path if path.is_dir() else path.parent
    flex, mea, res = find_files(path)
    if not res:
        raise InputError(path, None, "no Acapella .res result files (per-well results) found "
                                     f"up to {SEARCH_DEPTH} folders deep; nothing to import")
    warnings = WarningLog()
    results = [parse_res(p, options.bad_values, warnings) for p in res]
    files, listed = _flex_files(flex, mea, warnings)
    infos = []
    for i, f in enumerate(files, start=1):
        infos.append(flex_info(f))
        if options.progress:
            options.progress(i, len(files))
    if not files:
        warnings.note("Flex: no .flex images found: plate name and geometry come from the results only")
    plate = _plate(infos, _named_positions(listed), results, root, options, warnings)
    tables = []
    for r in results:
        name = "Wells" if len(results) == 1 else f"Wells {r.path.stem}"
        tables.append(wells_table(r, name, plate, warnings))
    return finish(fmt="flex", version=__version__, root=root, plate=plate, tables=tables, rois=empty_rois(),
                  sources=[*res, *mea], warnings=warnings)



PARSER = FormatParser(
    name="flex",
    version=__version__,
    description="PerkinElmer/Evotec Flex (.flex XML in TIFF tag 65200, .mea) with Acapella .res per-well results",
    looks_for="*.res Acapella results, *.flex images or a *.mea measurement file (up to 2 folders deep)",
    locate=locate,
    parse=parse,
    synthesize=Generator("hcs_import.synth.flex:write_flex_plate"),
)
