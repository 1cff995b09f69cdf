"""BD Pathway layout files: `Experiment.exp`, `*.plt`, `<dye>.dye` (INI), `Well A01/` folders, RoiSummary.txt.

What each key means follows Bio-Formats' BDReader (docs/formats/bdpathway.md): `[General] Dyes` and
`[Dyes] 1=<name>` are the channels, `[Image] Montaged/TilesX/TilesY` the fields (tiles) per well,
`[PlateType] Wells` of the .plt the plate size, `[Numerator]` of a .dye the channel's acquisition settings.
RoiSummary.txt: after the line starting with `ROI`, two lines are skipped; each following tab-separated
row with at least six fields is a rectangle with X, Y, width, height in fields 3-6 (the first row with
fewer fields ends the list); its `.adf` line names the analysis definition, whose folder three levels up
is the plate.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..issues_log import WarningLog
from ..wells import geometry_for_well_count, parse_well_label

EXPERIMENT_FILE = "Experiment.exp"
PLATE_SUFFIX = ".plt"
DYE_SUFFIX = ".dye"
ROI_SUMMARY = "RoiSummary.txt"
TOP_SECTION = "(no section)"
INI_ENCODING = "iso-8859-1"  # Windows software of the BD Pathway era; never declared
WELL_FOLDER = re.compile(r"^Well\s+(?P<label>[A-Za-z]{1,2}\s*\d{1,3})(?:[\s.].*)?$")  # "Well A01" (BDReader)
TIFF_NAME = re.compile(r"^(?P<dye>.+) - n(?P<n>\d+)\.tiff?$", re.IGNORECASE)  # "<dye> - n000000.tif"
ROI_HEADER_PREFIX = "ROI"
ROI_LINES_SKIPPED = 2  # after the ROI header line (BDReader)
ROI_MIN_FIELDS = 6
ROI_DEFAULT_NAMES = ("ROI", "Name", "X", "Y", "Width", "Height")
ADF_PATH = re.compile(r'"([^"]*\.adf)"', re.IGNORECASE)
ADF_LEVELS_UP = 3  # the plate folder is three levels above the folder of the .adf


def read_ini(path: Path) -> configparser.ConfigParser:
    """An INI file as BD writes it (case-sensitive keys, no interpolation); errors name file and line."""
    try:
        text = path.read_bytes().decode(INI_ENCODING)
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror}") from None
    ini = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",), comment_prefixes=(";", "#"))
    ini.optionxform = str  # type: ignore[assignment,method-assign]
    if text.lstrip() and not text.lstrip().startswith("["):
        text = f"[{TOP_SECTION}]\n" + text  # keys before any section: keep them
    try:
        ini.read_string(text, source=str(path))
    except configparser.Error as exc:
        line = getattr(exc, "lineno", None)
        raise InputError(path, f"line {line}" if line else None,
                         f"not an INI file as BD Pathway writes it ({type(exc).__name__})") from None
    return ini


def _get(ini: configparser.ConfigParser, section: str, key: str) -> str | None:
    if not ini.has_section(section):
        return None
    value = ini.get(section, key, fallback=None)
    return value.strip() if value is not None else None


def _int(ini: configparser.ConfigParser, path: Path, section: str, key: str) -> int | None:
    value = _get(ini, section, key)
    if value in (None, ""):
        return None
    try:
        return int(float(value))
    except ValueError:
        raise InputError(path, f"[{section}] {key}", f"value {value!r}: expected a whole number") from None


@dataclass(frozen=True)
class Experiment:
    """What Experiment.exp, the .plt and the .dye files say (None / empty where they say nothing)."""

    channels: tuple[str, ...] = ()
    fields_per_well: int | None = None
    plate_wells: int | None = None
    geometry: tuple[int, int] | None = None
    plate_description: str | None = None
    metadata: dict[str, str | int | float] = field(default_factory=dict)


def parse_experiment(root: Path, warnings: WarningLog) -> Experiment:
    exp_path = root / EXPERIMENT_FILE
    channels: list[str] = []
    fields = None
    meta: dict[str, str | int | float] = {}
    if exp_path.is_file():
        exp = read_ini(exp_path)
        n = _int(exp, exp_path, "General", "Dyes")
        if n is not None:
            for i in range(1, n + 1):
                name = _get(exp, "Dyes", str(i))
                if not name:
                    raise InputError(exp_path, f"[Dyes] {i}", f"missing: [General] Dyes = {n} names {n} dyes")
                channels.append(name)
        if _get(exp, "Image", "Montaged") == "1":
            tx, ty = _int(exp, exp_path, "Image", "TilesX"), _int(exp, exp_path, "Image", "TilesY")
            fields = (tx or 1) * (ty or 1)
        else:
            fields = 1
        for section, key, label in (("Geometry", "Name", "objective"), ("Camera", "BinX", "camera bin x"),
                                    ("Camera", "BinY", "camera bin y"), ("Camera", "BitdepthUsed", "bit depth")):
            value = _get(exp, section, key)
            if value:
                meta[f"experiment {label}"] = value
    wells = geometry = description = None
    plates = sorted(root.glob(f"*{PLATE_SUFFIX}"))
    if plates:
        if len(plates) > 1:
            warnings.note(f"several {PLATE_SUFFIX} files found; {plates[0].name} was used")
        plt = read_ini(plates[0])
        wells = _int(plt, plates[0], "PlateType", "Wells")
        if wells is not None:
            geometry = geometry_for_well_count(wells)
            if geometry is None:
                raise InputError(plates[0], "[PlateType] Wells", f"{wells}: expected a standard plate size (96, 384)")
        description = " ".join(v for v in (_get(plt, "PlateType", "Brand"), _get(plt, "PlateType", "Description")) if v)
    for dye in channels:
        dye_path = root / f"{dye}{DYE_SUFFIX}"
        if not dye_path.is_file():
            continue
        ini = read_ini(dye_path)
        for key in ("Excitation", "Emission", "Exposure", "Gain", "Offset"):
            value = _get(ini, "Numerator", key)
            if value:
                meta[f"dye {dye} {key.lower()}"] = value
    return Experiment(tuple(channels), fields, wells, geometry, description or None, meta)


def well_folders(root: Path) -> dict[Path, tuple[int, int]]:
    """`Well A01` folders of the plate folder -> 0-based (row, column)."""
    out: dict[Path, tuple[int, int]] = {}
    if not root.is_dir():
        return out
    for p in sorted(root.iterdir()):
        m = WELL_FOLDER.match(p.name)
        if m and p.is_dir():
            out[p] = parse_well_label(m.group("label"))
    return out


def list_images(root: Path, wells: dict[Path, tuple[int, int]], channels: tuple[str, ...],
                fields_per_well: int | None) -> pd.DataFrame | None:
    """`Well A01/<dye> - n000000.tif` files: one row per field (montage tile) of each file.

    n is the plane index (time point), 0-based, as BDReader reads it; a montaged file holds every tile
    (field) of its well, so it is listed once per field.
    """
    names = list(channels)
    rows = []
    tiles = fields_per_well or 1
    for folder, (r, c) in wells.items():
        for p in sorted(folder.iterdir()):
            m = TIFF_NAME.match(p.name)
            if not m:
                continue
            dye = m.group("dye")
            if dye not in names:
                names.append(dye)
            for f in range(tiles):
                rows.append((r, c, f, 0, int(m.group("n")), names.index(dye), p.relative_to(root).as_posix()))
    if not rows:
        return None
    return pd.DataFrame.from_records(rows, columns=["well_row", "well_column", "field", "z", "t", "c", "path"])


@dataclass(frozen=True)
class RoiSummary:
    """Rectangles of one RoiSummary.txt: columns by name (X, Y, Width, Height at fixed positions)."""

    path: Path
    columns: dict[str, np.ndarray]
    sources: dict[str, str]  # column -> vendor header
    geometry: tuple[str, str, str, str]  # names of the X, Y, width, height columns
    objects: np.ndarray
    plate_name: str | None
    skipped: int


def _number(text: str) -> float | None:
    try:
        return float(text.strip().replace(",", "."))
    except ValueError:
        return None


def parse_roi_summary(path: Path, bad_values: str, warnings: WarningLog) -> RoiSummary:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror}") from None
    lines = raw.decode(INI_ENCODING).splitlines()
    plate_name = None
    for line in lines:
        m = ADF_PATH.search(line)
        if m:
            parts = [p for p in re.split(r"[\\/]", m.group(1)) if p]
            if len(parts) > ADF_LEVELS_UP:
                plate_name = parts[-(ADF_LEVELS_UP + 1)]
            break
    start = next((i for i, line in enumerate(lines) if line.startswith(ROI_HEADER_PREFIX)), None)
    if start is None:
        raise InputError(path, None, f"no line starting with {ROI_HEADER_PREFIX!r}: expected a BD Attovision "
                         "RoiSummary.txt (an 'ROI' header line, two lines, then one rectangle per line)")
    header = [h.strip() for h in lines[start].split("\t")]
    rows: list[tuple[int, list[str]]] = []
    skipped = 0
    for number in range(start + 1 + ROI_LINES_SKIPPED, len(lines)):
        fields = lines[number].split("\t")
        if len(fields) < ROI_MIN_FIELDS:
            break
        if not fields[2].strip():
            skipped += 1
            continue
        rows.append((number + 1, fields))
    width = max([len(header), ROI_MIN_FIELDS] + [len(f) for _, f in rows])
    names: list[str] = []
    sources: dict[str, str] = {}
    for i in range(width):
        vendor = header[i] if i < len(header) and header[i] else ""
        name = vendor or (ROI_DEFAULT_NAMES[i] if i < len(ROI_DEFAULT_NAMES) else f"column {i + 1}")
        while name in names:
            name += f" ({i + 1})"
        names.append(name)
        sources[name] = vendor or f"column {i + 1} (no header)"
    columns: dict[str, np.ndarray] = {}
    for i, name in enumerate(names):
        texts = [f[i].strip() if i < len(f) else "" for _, f in rows]
        numbers = [_number(t) if t else np.nan for t in texts]
        bad = [k for k, v in enumerate(numbers) if v is None]
        geometric = 2 <= i <= 5
        if bad and (geometric or len(bad) * 2 < len(texts)):
            k = bad[0]
            if bad_values == "error" or geometric:
                what = "rectangle " + ("X", "Y", "width", "height")[i - 2] if geometric else "a number"
                raise InputError(path, f"line {rows[k][0]}, column {sources[name]!r}",
                                 f"value {texts[k]!r} is not a number (expected {what})")
            warnings.add("RoiSummary values that are not numbers stored as NaN",
                         f"{path.name} line {rows[k][0]} column {sources[name]!r} value {texts[k]!r}", len(bad))
            numbers = [np.nan if v is None else v for v in numbers]
        if bad and not (geometric or len(bad) * 2 < len(texts)):
            columns[name] = np.asarray(texts, dtype=object)
        else:
            arr = np.asarray(numbers, dtype=np.float64)
            whole = (len(arr) and np.isfinite(arr).all() and (arr == np.round(arr)).all()
                     and (np.abs(arr) < 2**53).all())  # exact in float64: else kept as floats, never wrapped
            columns[name] = arr.astype(np.int64) if whole else arr
    first = columns[names[0]]
    if first.dtype.kind == "i" and len(first) and len(np.unique(first)) == len(first):
        objects = first.astype(np.int64)
    else:
        objects = np.arange(1, len(rows) + 1, dtype=np.int64)
    return RoiSummary(path, columns, sources, (names[2], names[3], names[4], names[5]), objects, plate_name, skipped)
