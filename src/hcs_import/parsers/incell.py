"""GE InCell (InCell Analyzer + Investigator/Developer): `.xdce` layout and analysis XML results.

Two layouts of analysis XML are read (see docs/formats/incell.md):
- Investigator's per-object XML (`<WellData>`, incell_results): one object table per `source`
  population, the `cell="Summary"` rows as the per-well table (or, when summaries are per field, a
  per-field table plus a computed per-well one), and Point ROIs from every `<Name>: cgX` /
  `<Name>: cgY` pair (`Cell: cgX`, `Nucleus: cgX`, ...);
- the per-well "Wells Summary" XML (`<Data>` root, incell_wells_summary): one per-well (or per-field)
  table per `<Table>`, no ROIs; the plate layout from its embedded `<ImageStack>` when no `.xdce` is
  beside it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..assemble import build_table, concat_rois, finish, measurement_targets, point_rois
from ..errors import InputError
from ..issues_log import WarningLog
from ..model import (
    OBJECT_KEYS,
    WELL,
    WELL_COLUMN,
    WELL_ROW,
    ColumnInfo,
    FrameStream,
    MeasurementTable,
    Plate,
    PlateAnalysis,
    T,
    Z,
    arrays_frame,
    object_keys_frame,
    well_keys_frame,
)
from ..wells import infer_geometry, well_labels
from .base import Evidence, FormatParser, Generator, Located, NotAPlate, ParseOptions, make_source
from .common import files_below, plate_root
from .incell_results import ParsedResults, SpilledPopulation, parse_results
from .incell_wells_summary import SummaryTable, WellsSummaryFile, layout_of, parse_wells_summary
from .incell_xdce import is_xdce, parse_xdce

RESULTS_MARKER = b"<WellData"
HEAD_BYTES = 256 * 1024  # Investigator files carry a parameter header before the first WellData
CENTROID_SUFFIXES = (": cgX", ": cgY")
SEARCH_DEPTH = 2  # results are often one or two folders below the xdce




def results_layout(path: Path) -> str | None:
    """"welldata" (Investigator's per-object XML), "wells-summary" (per-well XML) or None."""
    if path.suffix.lower() != ".xml":
        return None
    try:
        with open(path, "rb") as fh:
            if RESULTS_MARKER in fh.read(HEAD_BYTES):
                return "welldata"
    except OSError:
        return None
    return layout_of(path)


def is_results_xml(path: Path) -> bool:
    return results_layout(path) is not None


def find_files(root: Path) -> tuple[list[Path], list[Path]]:
    files = files_below(root, SEARCH_DEPTH)
    return [p for p in files if is_xdce(p)], [p for p in files if is_results_xml(p)]


def locate(path: Path) -> Located:
    """Results XML (sniffed) with the .xdce of their images; an .xdce alone is a plate with no results yet
    (LAYOUT: an IN Carta folder holds one too, and its CSVs outrank it)."""
    xdce, results = find_files(path)
    if not xdce and not results:
        return NotAPlate(PARSER.name, "no InCell results XML (<WellData> or a Wells Summary <Data>) "
                                      "and no .xdce up to 2 folders deep")
    evidence = Evidence.CONTENT if results else Evidence.LAYOUT
    return make_source(PARSER.name, plate_root(path), evidence, layout=xdce, results=results)


def _centroid_pairs(keys: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for k in keys:
        if k.endswith(CENTROID_SUFFIXES[0]):
            y = k[: -len(CENTROID_SUFFIXES[0])] + CENTROID_SUFFIXES[1]
            if y in keys:
                pairs.append((k, y))
    return pairs


def _plate(xdce: list[Path], parsed: list[ParsedResults], summaries: list[WellsSummaryFile], name: str,
           options: ParseOptions, warnings: WarningLog) -> Plate:
    embedded = next((f for f in summaries if f.image_stack is not None), None)
    if xdce:
        if len(xdce) > 1:
            warnings.note(f"several .xdce files found; the layout of {xdce[0].name} was used")
        plate = parse_xdce(xdce[0], warnings)
        if embedded is not None and embedded.image_stack is not None:
            _compare_layouts(plate, xdce[0], embedded.image_stack, embedded.path, warnings)
        return plate
    if embedded is not None and embedded.image_stack is not None:
        stack = embedded.image_stack
        warnings.note(f"no .xdce beside the results: plate layout ({stack.rows}x{stack.columns}) read from the "
                      f"<ImageStack> embedded in {embedded.path.name}")
        return Plate(name=name, rows=stack.rows, columns=stack.columns, row_labels=stack.row_labels,
                     channels=stack.channels, pixel_size_um=stack.pixel_size_um,
                     fields_per_well=stack.fields_per_well, images=stack.images)
    if options.plate_geometry:
        rows, cols = options.plate_geometry
    else:
        max_r = max([*(p.max_row for r in parsed for p in r.populations.values()),
                     *(int(c["well_row"].max()) for r in parsed for c in r.summary.values() if len(c["well_row"])),
                     *(int(t.well_row.max()) for f in summaries for t in f.tables)],
                    default=0)
        max_c = max([*(p.max_column for r in parsed for p in r.populations.values()),
                     *(int(c["well_column"].max()) for r in parsed for c in r.summary.values()
                       if len(c["well_column"])),
                     *(int(t.well_column.max()) for f in summaries for t in f.tables)], default=0)
        rows, cols = infer_geometry(max_r, max_c)
        warnings.note(f"no .xdce layout found: plate geometry {rows}x{cols} inferred from the largest well "
                      "in the results (give --plate-geometry to override)")
    return Plate(name=name, rows=rows, columns=cols)


def _compare_layouts(plate: Plate, xdce: Path, stack: Plate, results: Path, warnings: WarningLog) -> None:
    """Report where the .xdce and the ImageStack copied into the analysis XML disagree (the .xdce wins)."""
    pairs = {
        "geometry": (f"{plate.rows}x{plate.columns}", f"{stack.rows}x{stack.columns}"),
        "fields per well": (plate.fields_per_well, stack.fields_per_well),
        "channels": (", ".join(plate.channels), ", ".join(stack.channels)),
        "images listed": (len(plate.images) if plate.images is not None else 0,
                          len(stack.images) if stack.images is not None else 0),
    }
    for what, (a, b) in pairs.items():
        if a != b:
            warnings.note(f"layout disagreement: {what} {a} in {xdce.name} but {b} in the <ImageStack> of "
                          f"{results.name}; {xdce.name} used")


def _wells_summary_tables(parsed: WellsSummaryFile, plate: Plate, prefix: str) -> list[MeasurementTable]:
    """One per-well (or per-field) table per <Table>; `z`/`t` keys only where the table has several."""
    out = []
    for table in parsed.tables:
        out.append(_summary_file_table(parsed, table, plate, prefix))
    return out


def _summary_file_table(parsed: WellsSummaryFile, table: SummaryTable, plate: Plate,
                        prefix: str) -> MeasurementTable:
    if table.kind == "fields":
        keys = object_keys_frame(table.well_row, table.well_column, table.field,
                                 np.zeros(len(table), dtype=np.int64), plate.columns).iloc[:, :4]
    else:
        keys = well_keys_frame(table.well_row, table.well_column, plate.columns)
    for key, values in ((Z, table.z), (T, table.t)):
        if len(np.unique(values)) > 1:
            keys[key] = values
    infos = {name: ColumnInfo(name, None, f"source {table.sources[name]!r}" if name in table.sources else None)
             for name in table.values}
    metadata: dict[str, str | int | float] = {"source_file": parsed.path.name, "incell.table": table.title,
                                              **parsed.analysis}
    kind = "fields" if table.kind == "fields" else "wells"
    return build_table(f"{prefix}{table.title}", kind, keys, table.values, infos, metadata)


def _summary_table(parsed: ParsedResults, plate: Plate, prefix: str) -> list[MeasurementTable]:
    if not parsed.summary:
        return []
    # Summary rows of all sources, merged on (row, column, field).
    frames = []
    all_keys: dict[str, int] = {}
    for cols in parsed.summary.values():
        for k in list(cols)[4:]:
            all_keys[k] = all_keys.get(k, 0) + 1
    infos: dict[str, ColumnInfo] = {}
    for source, cols in parsed.summary.items():
        idx = pd.MultiIndex.from_arrays([cols["well_row"], cols["well_column"], cols["field"]],
                                        names=["well_row", "well_column", "field"])
        data = {}
        for k in list(cols)[4:]:
            name = k if all_keys[k] == 1 or not source else f"{source}: {k}"
            data[name] = cols[k]
            infos[name] = ColumnInfo(k if not source else f"{source}: {k}", parsed.summary_units[source].get(k))
        frames.append(pd.DataFrame(data, index=idx).groupby(level=[0, 1, 2]).last())
    merged = pd.concat(frames, axis=1).sort_index()
    idx = merged.index.to_frame(index=False)
    per_well = not idx.duplicated(["well_row", "well_column"]).any()
    if per_well:
        keys = well_keys_frame(idx["well_row"].to_numpy(), idx["well_column"].to_numpy(), plate.columns)
        return [build_table(f"{prefix}Wells", "wells", keys, {c: merged[c].to_numpy() for c in merged.columns},
                            infos, {"source": "InCell cell=\"Summary\" rows"})]
    keys = object_keys_frame(idx["well_row"].to_numpy(), idx["well_column"].to_numpy(), idx["field"].to_numpy(),
                             np.zeros(len(idx), dtype=np.int64), plate.columns).iloc[:, :4]
    return [build_table(f"{prefix}Fields", "fields", keys, {c: merged[c].to_numpy() for c in merged.columns},
                        infos, {"source": "InCell cell=\"Summary\" rows, one per field"})]


def _object_table(name: str, population: SpilledPopulation, plate: Plate, file: Path) -> MeasurementTable:
    """A population's table as a stream over its spilled ranges: its rows are never all in memory."""
    targets = measurement_targets(OBJECT_KEYS, population.keys)  # table column -> InCell key
    empty = np.array([], dtype=np.int64)
    template = object_keys_frame(empty, empty, empty, empty, plate.columns)
    for column in targets:
        template[column] = np.array([], dtype=np.float64)

    def read(columns: Sequence[str] | None) -> Iterator[pd.DataFrame]:
        wanted = list(template.columns) if columns is None else list(columns)
        keys = [targets[c] for c in wanted if c in targets]
        for part in population.read(keys):
            yield arrays_frame({c: part[targets[c]] if c in targets else _key_column(part, c, plate.columns)
                                for c in wanted})

    infos = {c: ColumnInfo(k, population.units.get(k)) for c, k in targets.items()}
    return MeasurementTable(name, "objects", FrameStream(template, population.rows, read), infos,
                            {"source_file": file.name})


def _key_column(part: dict[str, np.ndarray], column: str, plate_columns: int) -> np.ndarray:
    """One key column of a spilled range (whose key arrays carry the model's names); the well label,
    a string per row, only when asked for."""
    if column == WELL:
        return well_labels(part[WELL_ROW], part[WELL_COLUMN], plate_columns)
    if column in (Z, T):
        return np.zeros(len(part[WELL_ROW]), dtype=np.int64)
    return part[column]


def measurement_column(table: MeasurementTable, key: str) -> str:
    """The table column holding InCell key `key` (renamed only when it collides with a key column)."""
    return next(c for c, info in table.columns.items() if info.source_name == key)


def parse(path: Path, options: ParseOptions) -> PlateAnalysis:
    root = path if path.is_dir() else path.parent
    xdce, results = find_files(path)
    if not results:
        where = "folder" if path.is_dir() else "file"
        raise InputError(path, None, f"no InCell results XML (*.xml containing <WellData>, or a per-well "
                         f"<Data> XML with <Table> results) in this {where}")
    warnings = WarningLog()
    layouts = {p: results_layout(p) for p in results}
    per_object = [p for p in results if layouts[p] == "welldata"]
    per_well = [p for p in results if layouts[p] == "wells-summary"]
    parsed = [parse_results(p, options.bad_values, options.workers, options.progress) for p in per_object]
    summaries = [parse_wells_summary(p, options.bad_values) for p in per_well]
    analysis: dict[str, str] = {}
    for item in [*parsed, *summaries]:
        warnings.merge(item.warnings)
    for summary in summaries:
        analysis.update(summary.analysis)
    name = xdce[0].stem if xdce else results[0].stem
    plate = _plate(xdce, parsed, summaries, name, options, warnings)
    tables: list[MeasurementTable] = []
    rois = []
    for file, res in zip(per_object, parsed):
        prefix = f"{file.stem} " if len(results) > 1 else ""
        for source, population in res.populations.items():
            table = _object_table(f"{prefix}{source or 'Objects'}", population, plate, file)
            tables.append(table)
            if options.rois:
                for x, y in _centroid_pairs(list(population.keys)):
                    rois.append(point_rois(table, measurement_column(table, x), measurement_column(table, y),
                                           warnings))
        tables.extend(_summary_table(res, plate, prefix))
    for summary in summaries:
        prefix = f"{summary.path.stem} " if len(results) > 1 else ""
        tables.extend(_wells_summary_tables(summary, plate, prefix))
    return finish(fmt="incell", version=__version__, root=root, plate=plate, tables=tables,
                  rois=concat_rois(rois), sources=[*xdce, *results], warnings=warnings, analysis=analysis)


PARSER = FormatParser(
    name="incell",
    version=__version__,
    description="GE InCell Analyzer .xdce + InCell Investigator/Developer analysis XML",
    looks_for="a *.xdce layout, a *.xml with <WellData> elements, or a per-well <Data> XML with <Table> "
              "results (up to 2 folders deep)",
    locate=locate,
    parse=parse,
    synthesize=Generator("hcs_import.synth.incell:write_incell_plate"),
    synth_layouts=("wells-summary",),
)
