"""Olympus ScanR: ScanR Analysis `ParameterData_<population>.txt|.csv` exports, with the acquisition layout.

Input (docs/formats/scanr.md):
- `ParameterData_<population>.txt` (tab) or `.csv` (comma), CRLF, one row per object; one object table
  per file, named after the population (`Main`, `Spots`, ...). Every column is kept, in file order, with
  its name trimmed (`Area ` -> `Area`); the vendor's exact header is the column's source name.
- Keys: `Well ` (1-based, row-major) -> well_row / well_column; `Position ` (1-based) -> field;
  `Object ID` -> object; `Time` (whole numbers from 1), when present, -> t. These columns are ALSO kept
  as ordinary measurement columns, unchanged, so nothing of the file is lost in the conversion.
  Without `Well `, `Parent Object ID (Well)` (= well - 1) gives the well; without `Position `, field 0.
- Gate columns (0/1 integers, named without the trailing space measurement names carry, e.g. `Cells`,
  `R01`, `MO.Cells`) become bool columns; 0/1 maps exactly onto False/True.
- Sub-populations keep `Parent Object ID (MO)`, the Object ID of their main object, as a column; the
  table's metadata names the main population, and parent ids missing from it are counted in the warnings.
- `Center X ` / `Center Y ` (pixels of the field image) -> one Point ROI per object.
- `experiment_descriptor.xml` (optional) gives plate geometry, name, channels, positions and pixel size;
  `AcquisitionLog.dat` (optional) becomes a per-image "Image positions" table (every KEY= of its
  IMAGEPOS lines); `data/*.tif` names are listed as the plate's images.
- A folder with ParameterData files only imports too: the geometry comes from --plate-geometry, else from
  the largest well number (<= 96: 8x12, <= 384: 16x24, else 32x48), noted in the manifest's warnings.
No per-well table exists in ScanR exports: the computed per-well summary (assemble.finish) is the one
OMERO.web and omero-parade show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..assemble import build_table, concat_rois, finish, measurement_targets, point_rois
from ..errors import InputError
from ..issues_log import WarningLog
from ..model import (
    FIELD_KEYS,
    OBJECT_KEYS,
    ColumnInfo,
    MeasurementTable,
    Plate,
    PlateAnalysis,
    object_keys_frame,
)
from ..spill import LazySpill, SpillDir
from ..wells import infer_geometry_from_well_number, well_number_to_row_col
from .base import Evidence, FormatParser, Generator, Located, NotAPlate, ParseOptions, make_source
from .common import files_below, plate_root
from .delimited import DelimitedTable, read_delimited, whole_numbers
from .delimited_stream import BlockSpill, spilled_table, stream_delimited, streams
from .scanr_layout import (
    ACQUISITION_LOG_NAME,
    DESCRIPTOR_NAME,
    Descriptor,
    list_images,
    parse_acquisition_log,
    parse_descriptor,
)

PARAMETER_DATA = re.compile(r"^ParameterData_(?P<population>.+)\.(?P<ext>txt|csv)$", re.IGNORECASE)
SEARCH_DEPTH = 2  # ScanR Analysis writes its exports in the experiment folder or a folder or two below

# ParameterData column names, trimmed (as ScanR writes them, docs/formats/scanr.md).
COL_OBJECT = "Object ID"  # 0-based object number
COL_WELL = "Well"  # written `Well ` (trailing space): 1-based, row-major
COL_WELL_PARENT = "Parent Object ID (Well)"  # well - 1
COL_POSITION = "Position"  # written `Position `: 1-based field within the well
COL_TIME = "Time"  # time point, 1-based like Well and Position (seen in a time-lapse analysis script)
COL_CENTER_X = "Center X"  # written `Center X `: pixels of the field image
COL_CENTER_Y = "Center Y"
COL_PARENT_MO = "Parent Object ID (MO)"  # sub-populations: Object ID of the main object
COL_PARENT_TRACE = "Parent Trace ID"  # -1 without tracking
NEVER_GATES = frozenset({COL_OBJECT, COL_WELL, COL_WELL_PARENT, COL_POSITION, COL_TIME, COL_CENTER_X,
                         COL_CENTER_Y, COL_PARENT_MO, COL_PARENT_TRACE})
GATE_NOTE = "gate (vendor 0/1)"
TIME_NOTE = f"from the {COL_TIME!r} column, 1-based"
IDENTIFIERS = frozenset({COL_OBJECT, COL_WELL, COL_WELL_PARENT, COL_POSITION, COL_TIME, COL_PARENT_MO,
                         COL_PARENT_TRACE})  # numbers that name things: not averaged in the per-well summary




def find_files(path: Path) -> tuple[Path | None, Path | None, list[Path]]:
    """(descriptor, acquisition log, ParameterData files) under a plate folder (or a single file)."""
    files = files_below(path, SEARCH_DEPTH, shallow_first=True)
    descriptor = next((p for p in files if p.name.lower() == DESCRIPTOR_NAME.lower()), None)
    params = [p for p in files if PARAMETER_DATA.match(p.name)]
    log = None
    for folder in ([descriptor.parent] if descriptor else []) + ([path] if path.is_dir() else []):
        candidate = folder / ACQUISITION_LOG_NAME
        if candidate.is_file():
            log = candidate
            break
    return descriptor, log, params


def locate(path: Path) -> Located:
    """The experiment descriptor, the acquisition log and the ParameterData exports (by name)."""
    descriptor, log, params = find_files(path)
    if descriptor is None and not params:
        return NotAPlate(PARSER.name, f"no {DESCRIPTOR_NAME} and no ParameterData_*.txt up to 2 folders deep")
    evidence = Evidence.NAMES if params else Evidence.LAYOUT
    return make_source(PARSER.name, plate_root(path), evidence, descriptor=[descriptor] if descriptor else [],
                       log=[log] if log else [], exports=params)


def _is_gate(table: DelimitedTable, name: str) -> bool:
    """0/1 integers under a name without the trailing space ScanR gives measurement names."""
    col = table.data[name]
    raw = table.source(name)
    if name in NEVER_GATES or raw != raw.rstrip() or name.startswith("Parent ") or not len(col):
        return False
    if pd.api.types.is_bool_dtype(col):
        return True
    if not pd.api.types.is_integer_dtype(col):
        return False
    values = col.to_numpy()
    return bool(((values == 0) | (values == 1)).all())


def _require(table: DelimitedTable, *names: str) -> str:
    for n in names:
        if n in table.data.columns:
            return n
    wanted = " or ".join(repr(n) for n in names)
    raise InputError(table.path, f"line {table.header.line} (header)",
                     f"no {wanted} column; expected ScanR ParameterData columns such as 'Object ID', 'Well '")


def _wells(table: DelimitedTable, warnings: WarningLog) -> np.ndarray:
    """1-based well numbers of every row (from `Well `, else `Parent Object ID (Well)` + 1)."""
    col = _require(table, COL_WELL, COL_WELL_PARENT)
    if col == COL_WELL_PARENT:
        return whole_numbers(table, col, minimum=0, expected="a 0-based well index (well number - 1)") + 1
    wells = whole_numbers(table, col, minimum=1, expected="a 1-based well number")
    if COL_WELL_PARENT in table.data.columns:
        parent = table.data[COL_WELL_PARENT].to_numpy(dtype=np.float64, na_value=np.nan)
        differ = int((parent != wells - 1).sum())
        if differ:
            warnings.add(f"{table.path.name}: '{COL_WELL_PARENT}' is not 'Well ' - 1 (the 'Well ' column was used)",
                         f"{differ} rows", differ)
    return wells


def _geometry(descriptor: Descriptor | None, max_well: int, options: ParseOptions,
              warnings: WarningLog) -> tuple[int, int]:
    described = (descriptor.rows, descriptor.columns) if descriptor and descriptor.rows and descriptor.columns \
        else None
    if options.plate_geometry:
        if described and tuple(options.plate_geometry) != described:
            warnings.note(f"--plate-geometry {options.plate_geometry[0]}x{options.plate_geometry[1]} used "
                          f"instead of the {described[0]}x{described[1]} of {DESCRIPTOR_NAME}")
        return options.plate_geometry
    if described:
        return described
    rows, cols = infer_geometry_from_well_number(max_well)
    source = f"{DESCRIPTOR_NAME} names no plate geometry" if descriptor else f"no {DESCRIPTOR_NAME}"
    warnings.note(f"{source}: plate geometry {rows}x{cols} inferred from the largest well number "
                  f"({max_well}) in the ParameterData files (give --plate-geometry to override)")
    return rows, cols


def _table_names(params: list[Path], root: Path) -> list[str]:
    names = [PARAMETER_DATA.match(p.name).group("population") for p in params]  # type: ignore[union-attr]
    out = []
    for p, n in zip(params, names):
        if names.count(n) > 1:
            try:
                rel = p.relative_to(root).with_suffix("")
            except ValueError:
                rel = Path(p.stem)
            n = f"{n} ({rel.as_posix()}{p.suffix})"
        out.append(n)
    return out


def _fields_and_objects(table: DelimitedTable) -> tuple[np.ndarray, np.ndarray]:
    """0-based fields (from `Position `, else all 0) and object numbers of every row; bad keys are errors."""
    fields = (whole_numbers(table, COL_POSITION, minimum=1, expected="a 1-based position (field) number") - 1
              if COL_POSITION in table.data.columns else np.zeros(len(table.data), dtype=np.int64))
    return fields, whole_numbers(table, COL_OBJECT, minimum=0, expected="a whole object number")


def _time_points(table: DelimitedTable) -> bool:
    """Whether `Time` holds time points: numbers, all whole and from 1 (else it stays a measurement only)."""
    data = table.data
    if COL_TIME not in data.columns or not len(data) or not pd.api.types.is_numeric_dtype(data[COL_TIME]):
        return False
    times = data[COL_TIME].to_numpy(dtype=np.float64, na_value=np.nan)
    return bool(np.isfinite(times).all() and (times == np.round(times)).all() and times.min() >= 1)


def _measure_info(name: str, info: ColumnInfo, gate: bool) -> ColumnInfo:
    if gate:
        return ColumnInfo(info.source_name, None, GATE_NOTE if not info.note else f"{GATE_NOTE}; {info.note}")
    return replace(info, identifier=True) if name in IDENTIFIERS else info


def _object_table(name: str, table: DelimitedTable, wells: np.ndarray, columns: int) -> MeasurementTable:
    data = table.data
    row, col = well_number_to_row_col(wells, columns)
    field, objects = _fields_and_objects(table)
    metadata: dict[str, str | int | float] = {"source_file": table.path.name, "population": name}
    t: np.ndarray | int = 0
    if _time_points(table):
        t = data[COL_TIME].to_numpy(dtype=np.float64, na_value=np.nan).astype(np.int64) - 1
        metadata["t"] = TIME_NOTE
    keys = object_keys_frame(row, col, field, objects, columns, t=t)
    measures: dict[str, np.ndarray] = {}
    infos: dict[str, ColumnInfo] = {}
    for c in data.columns:
        gate = _is_gate(table, c)
        measures[c] = data[c].to_numpy().astype(bool) if gate else data[c].to_numpy()
        infos[c] = _measure_info(c, table.infos[c], gate)
    return build_table(name, "objects", keys, measures, infos, metadata)


def _link_parents(tables: list[MeasurementTable], warnings: WarningLog) -> list[MeasurementTable]:
    """Name the main population of each sub-population and count parent ids it does not hold."""
    mains = [t for t in tables if COL_PARENT_MO not in t.data.columns]
    out = []
    for t in tables:
        if COL_PARENT_MO not in t.data.columns:
            out.append(t)
            continue
        info = t.info(COL_PARENT_MO)
        if len(mains) == 1:
            main = mains[0]
            note = f"Object ID of the parent object in population {main.name!r}"
            key = COL_OBJECT if COL_OBJECT in main.data.columns else "object"
            known = np.unique(np.concatenate([b[key].to_numpy(dtype=np.float64) for b in main.batches([key])]
                                             or [np.zeros(0)]))
            missing = total = 0
            for b in t.batches([COL_PARENT_MO]):
                parents = b[COL_PARENT_MO].to_numpy(dtype=np.float64, na_value=np.nan)
                missing += int((~np.isin(parents, known)).sum())
                total += len(parents)
            if missing:
                warnings.add(f"{t.name}: '{COL_PARENT_MO}' values not found among the Object IDs of {main.name!r}",
                             f"{missing} of {total} objects", missing)
            metadata = {**t.metadata, "parent_population": main.name}
        else:
            note = "Object ID of the parent object in the main population"
            metadata = dict(t.metadata)
        columns = dict(t.columns)
        columns[COL_PARENT_MO] = ColumnInfo(info.source_name, info.unit, note, identifier=True)
        out.append(MeasurementTable(t.name, t.kind, t.data, columns, metadata))
    return out


def _positions_table(log: pd.DataFrame, plate: Plate, path: Path) -> MeasurementTable:
    wells = log["W"].to_numpy(dtype=np.int64)
    row, col = well_number_to_row_col(wells, plate.columns)
    keys = object_keys_frame(row, col, log["P"].to_numpy(dtype=np.int64) - 1, np.zeros(len(log), dtype=np.int64),
                             plate.columns)[list(FIELD_KEYS)]
    measures = {c: log[c].to_numpy() for c in log.columns if c != "line"}
    infos = {c: ColumnInfo(c, None, f"{path.name} IMAGEPOS {c}=") for c in measures}
    return build_table("Image positions", "fields", keys, measures, infos,
                       {"source_file": path.name, "rows": "one per IMAGEPOS line (image acquired)"})


# Key columns a streamed export keeps beside its own columns until the plate geometry is known (a NUL
# starts them: no header name does).
_WELL_KEY, _FIELD_KEY, _OBJECT_KEY = "\0well", "\0field", "\0object"


@dataclass
class _StreamedExport:
    """A ParameterData file read in blocks (delimited_stream): its converted blocks on disk, and what the
    whole-file decisions need (gates, whether Time is a time point, the largest well)."""

    name: str
    path: Path
    blocks: BlockSpill
    infos: dict[str, ColumnInfo] = field(default_factory=dict)
    gates: dict[str, bool] = field(default_factory=dict)
    time_ok: bool = True
    max_well: int = 0
    outside: int = 0
    log: WarningLog = field(default_factory=WarningLog)

    def reset(self) -> None:
        self.blocks.reset()
        self.gates, self.time_ok, self.max_well, self.outside, self.log = {}, True, 0, 0, WarningLog()

    def consume(self, block: DelimitedTable, selected: np.ndarray | None) -> None:
        data = block.data
        if block.first_row == 0:
            _require(block, COL_OBJECT)
        wells = _wells(block, self.log)
        fields, objects = _fields_and_objects(block)
        for c in data.columns:
            self.gates[c] = self.gates.get(c, True) and _is_gate(block, c)
        self.time_ok = self.time_ok and _time_points(block)
        self.max_well = max(self.max_well, int(wells.max()) if len(wells) else 0)
        if selected is not None:
            self.outside += int((~np.isin(wells, selected)).sum())
        self.blocks.add({_WELL_KEY: wells, _FIELD_KEY: fields, _OBJECT_KEY: objects,
                         **{c: data[c].to_numpy() for c in data.columns}})

    def table(self, columns: int) -> MeasurementTable:
        """The object table, streamed from the blocks (wells placed with the plate's `columns`)."""
        names = [c for c in self.blocks.kinds if not c.startswith("\0")]
        uses_time = COL_TIME in names and self.time_ok and self.blocks.rows > 0
        metadata: dict[str, str | int | float] = {"source_file": self.path.name, "population": self.name}
        if uses_time:
            metadata["t"] = TIME_NOTE
        infos = {c: _measure_info(c, self.infos.get(c, ColumnInfo(c)), bool(self.gates.get(c))) for c in names}
        targets = measurement_targets(OBJECT_KEYS, names)
        gates = self.gates

        def keys_of(arrays: dict[str, np.ndarray]) -> pd.DataFrame:
            row, col = well_number_to_row_col(arrays[_WELL_KEY], columns)
            t = arrays[COL_TIME].astype(np.int64) - 1 if uses_time else 0
            return object_keys_frame(row, col, arrays[_FIELD_KEY], arrays[_OBJECT_KEY], columns, t=t)

        stream = spilled_table(self.blocks, [_WELL_KEY, _FIELD_KEY, _OBJECT_KEY, *([COL_TIME] if uses_time else [])],
                               keys_of, targets, lambda c, v: v.astype(bool) if gates.get(c) else v)
        out_infos = {target: infos[c] for target, c in targets.items()}
        return MeasurementTable(self.name, "objects", stream, out_infos, metadata)


def _separator(p: Path) -> str:
    """The separator a ParameterData file is read with unless its header says otherwise."""
    return "," if p.suffix.lower() == ".csv" else "\t"


def _stream_export(name: str, p: Path, options: ParseOptions, warnings: WarningLog, selected: np.ndarray | None,
                   spill: SpillDir, index: int) -> _StreamedExport:
    export = _StreamedExport(name, p, BlockSpill(spill, f"export{index}"))
    _, infos, _ = stream_delimited(p, lambda block: export.consume(block, selected), export.reset,
                                   what="ScanR ParameterData", bad_values=options.bad_values, warnings=warnings,
                                   default_sep=_separator(p))
    export.infos = infos
    warnings.merge(export.log)
    return export


def parse(path: Path, options: ParseOptions) -> PlateAnalysis:
    root = path if path.is_dir() else path.parent
    descriptor_path, log_path, params = find_files(path)
    if not params:
        where = "folder" if path.is_dir() else "file"
        raise InputError(path, None, f"no ScanR analysis export (ParameterData_<population>.txt or .csv) in this "
                         f"{where}; the ScanR importer reads ScanR Analysis results")
    warnings = WarningLog()
    descriptor = parse_descriptor(descriptor_path) if descriptor_path else None
    total = sum(p.stat().st_size for p in params)
    done = 0
    read: list[tuple[str, DelimitedTable, np.ndarray]] = []
    streamed: list[_StreamedExport] = []
    selected = np.asarray(descriptor.wells) if descriptor and descriptor.wells else None
    spill = LazySpill("scanr-")
    try:
        for index, (name, p) in enumerate(zip(_table_names(params, root), params)):
            if streams(p):
                streamed.append(_stream_export(name, p, options, warnings, selected, spill(), index))
            else:
                table = read_delimited(p, what="ScanR ParameterData", bad_values=options.bad_values,
                                       warnings=warnings, default_sep=_separator(p))
                _require(table, COL_OBJECT)
                read.append((name, table, _wells(table, warnings)))
            done += p.stat().st_size
            if options.progress:
                options.progress(done, total)
    except BaseException:
        spill.remove()
        raise
    log = parse_acquisition_log(log_path, warnings) if log_path else None
    max_well = max([int(w.max()) for _, _, w in read if len(w)] + [e.max_well for e in streamed] +
                   ([int(log["W"].max())] if log is not None and len(log) else []) +
                   (list(descriptor.wells) if descriptor else []) + [1])
    rows, columns = _geometry(descriptor, max_well, options, warnings)
    if selected is not None:
        outside_counts = [(name, int((~np.isin(wells, selected)).sum())) for name, _, wells in read]
        outside_counts += [(e.name, e.outside) for e in streamed]
        for name, outside in outside_counts:
            if outside:
                warnings.add(f"{name}: objects in wells the descriptor did not select", f"{outside} objects",
                             outside)
    by_name = {name: _object_table(name, table, wells, columns) for name, table, wells in read}
    by_name.update({e.name: e.table(columns) for e in streamed})
    tables = [by_name[name] for name in _table_names(params, root)]
    tables = _link_parents(tables, warnings)
    rois = []
    if options.rois:
        for t in tables:
            if COL_CENTER_X in t.data.columns and COL_CENTER_Y in t.data.columns:
                rois.append(point_rois(t, COL_CENTER_X, COL_CENTER_Y, warnings))
    plate_name = (descriptor.plate_name if descriptor and descriptor.plate_name else None) or \
        (root.name if path.is_dir() else path.stem)
    pixel = (descriptor.pixel_size_um, descriptor.pixel_size_um) if descriptor and descriptor.pixel_size_um \
        else None
    channels = descriptor.channels if descriptor else ()
    plate = Plate(
        name=plate_name,
        rows=rows,
        columns=columns,
        channels=channels,
        pixel_size_um=pixel,
        fields_per_well=descriptor.fields_per_well if descriptor else None,
        images=list_images(descriptor_path.parent if descriptor_path else root, columns, channels),
    )
    if log is not None:
        tables.append(_positions_table(log, plate, log_path))  # type: ignore[arg-type]
    sources = [*params, *([descriptor_path] if descriptor_path else []), *([log_path] if log_path else [])]
    return finish(fmt="scanr", version=__version__, root=root, plate=plate, tables=tables, rois=concat_rois(rois),
                  sources=sources, warnings=warnings)



PARSER = FormatParser(
    name="scanr",
    version=__version__,
    description="Olympus ScanR: ScanR Analysis ParameterData exports (+ experiment_descriptor.xml layout)",
    looks_for="experiment_descriptor.xml or ParameterData_<population>.txt/.csv (up to 2 folders deep)",
    locate=locate,
    parse=parse,
    synthesize=Generator("hcs_import.synth.scanr:write_scanr_plate"),
)
