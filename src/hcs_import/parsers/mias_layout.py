"""MIAS (Maia Scientific MIAS-2) folder layout: plate folders, the template file, result file names, runs.

An experiment folder holds `Batchresults/` and one folder per plate (`<NNN>` or `<NNN>-<barcode>`); a
plate folder holds `Nugenesistemplate.txt`, `results/` and `Well<nnnn>/` image folders (docs/formats/mias.md,
Bio-Formats' MIASReader). Detail files are grouped into analysis runs by the timestamps in their names:
a detail file belongs to the earliest log whose timestamp is later than its own (omero-py's rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..issues_log import WarningLog
from ..wells import parse_well_label
from .common import inside
from .mias_text import choose_encoding, split_lines

TEMPLATE_NAME = "Nugenesistemplate.txt"
RESULTS_DIR = "results"
BATCH_DIR = "Batchresults"
TIMESTAMP_FORMAT = "%Y-%m-%d-%Hh%Mm%Ss"
_TS = r"(\d+-\d+-\d+-\d+h\d+m\d+s)"
# omero-py's populate_roi patterns (its `.txt` leaves the dot unescaped; here it is a literal dot).
LOG_RE = re.compile(r"^(?P<prefix>.*)log" + _TS + r"\.txt$")
DETAIL_RE = re.compile(r"^Well(?P<well>\d+)_(?P<middle>.*)_detail_(?P<ts>" + _TS[1:-1] + r")\.txt$")
# Label overlays of the detected objects, e.g. `Well0001_mode1_z000_t000_AllModesOverlay.tif`
# (MIASReader accepts any name ending in `overlay.tif`; the case varies).
OVERLAY_RE = re.compile(r"^Well(?P<well>\d+)_(?P<middle>.*)overlay\.tiff?$", re.IGNORECASE)
MODE_RE = re.compile(r"(?:^|_)mode(\d+)(?:_|$)", re.IGNORECASE)
Z_RE = re.compile(r"(?:^|_)z(\d+)(?:_|$)", re.IGNORECASE)
T_RE = re.compile(r"(?:^|_)t(\d+)(?:_|$)", re.IGNORECASE)
WELL_DIR_RE = re.compile(r"^Well(\d{4})$")
PLATE_DIR_RE = re.compile(r"^(\d{3})(?:-(.+))?$")
# Batchresults/NEO_Results*: key/value lines up to the second line of asterisks, then a table whose
# `AreaCode` column ends in the well's column number (MIASReader takes the plate's columns from it).
STAR_LINE = re.compile(r"^\*{6,}.*\*{6,}$")
AREA_CODE = "AreaCode"
# Wells per plate -> columns, when no AreaCode says otherwise (MIASReader's fallback).
COLUMNS_BY_WELL_COUNT = {96: 12, 384: 24, 1536: 48}


@dataclass(frozen=True)
class Template:
    """`Nugenesistemplate.txt`: `key=value` lines (CRLF)."""

    path: Path
    values: dict[str, str]
    barcode: str | None
    carrier: str | None
    pixel_size_um: tuple[float, float] | None
    channels: tuple[str, ...]


@dataclass(frozen=True)
class DetailFile:
    path: Path
    well: int  # 1-based, row-major
    mode: int | None
    z: int
    t: int
    timestamp: datetime
    stamp: str


@dataclass(frozen=True)
class OverlayFile:
    path: Path
    well: int
    mode: int | None
    z: int
    t: int


@dataclass
class Run:
    """One analysis run: its log (None for detail files newer than every log) and detail files."""

    name: str
    log: Path | None
    timestamp: datetime
    details: list[DetailFile] = field(default_factory=list)


@dataclass(frozen=True)
class PlateFolder:
    root: Path  # the plate folder
    experiment: Path | None
    number: int | None
    name: str
    template: Path | None
    logs: tuple[Path, ...]
    details: tuple[Path, ...]
    overlays: tuple[Path, ...]
    well_dirs: int
    batch_results: tuple[Path, ...]


def _results_files(plate: Path) -> list[Path]:
    out = []
    real = plate.resolve()
    for folder in (plate / RESULTS_DIR, plate):
        if folder.is_dir():
            out.extend(p for p in folder.iterdir() if p.is_file() and inside(p, real))
    return out


def is_plate_folder(path: Path) -> bool:
    if not path.is_dir():
        return False
    if (path / TEMPLATE_NAME).is_file():
        return True
    res = path / RESULTS_DIR
    if res.is_dir():
        return any(DETAIL_RE.match(p.name) or LOG_RE.match(p.name) for p in res.iterdir())
    return False


def plate_folders(experiment: Path) -> list[Path]:
    if not experiment.is_dir():
        return []
    return sorted(p for p in experiment.iterdir() if p.is_dir() and p.name != BATCH_DIR and is_plate_folder(p))


def locate(path: Path) -> PlateFolder:
    """The plate folder for PATH: a plate folder itself, its `results/`, or an experiment of one plate."""
    if path.is_file():
        path = path.parent
    if path.name == RESULTS_DIR and is_plate_folder(path.parent):
        path = path.parent
    if not is_plate_folder(path):
        plates = plate_folders(path)
        if not plates:
            raise InputError(path, None, f"not a MIAS plate or experiment folder (expected {TEMPLATE_NAME} or "
                                         f"{RESULTS_DIR}/Well<nnnn>_..._detail_<timestamp>.txt files)")
        if len(plates) > 1:
            names = ", ".join(p.name for p in plates)
            raise InputError(path, None, f"MIAS experiment with {len(plates)} plates ({names}); "
                                         "give one plate folder")
        path = plates[0]
    experiment = path.parent if (path.parent / BATCH_DIR).is_dir() else None
    m = PLATE_DIR_RE.match(path.name)
    number = int(m.group(1)) if m else None
    # MIASReader names the plate by the folder name after the `-` (the barcode part) when there is one.
    name = m.group(2) if m and m.group(2) else path.name
    files = _results_files(path)
    logs = tuple(sorted(p for p in files if LOG_RE.match(p.name)))
    details = tuple(sorted(p for p in files if DETAIL_RE.match(p.name)))
    overlays = tuple(sorted(p for p in files if OVERLAY_RE.match(p.name)))
    well_dirs = sum(1 for p in path.iterdir() if p.is_dir() and WELL_DIR_RE.match(p.name))
    batch: tuple[Path, ...] = ()
    if experiment is not None:
        batch = tuple(sorted(p for p in (experiment / BATCH_DIR).iterdir()
                             if p.is_file() and p.name.startswith("NEO_Results")))
    template = path / TEMPLATE_NAME
    return PlateFolder(path, experiment, number, name, template if template.is_file() else None, logs, details,
                       overlays, well_dirs, batch)


def parse_template(path: Path) -> Template:
    data = path.read_bytes()
    text = data.decode(choose_encoding(data))
    values: dict[str, str] = {}
    for line in text.splitlines():
        if "=" not in line:
            continue
        key, value = line.split("=", 1)
        values.setdefault(key.strip(), value.strip())

    def number(key: str) -> float | None:
        if key not in values or values[key] == "":
            return None
        try:
            return float(values[key])
        except ValueError:
            line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.split("=", 1)[0].strip() == key)
            raise InputError(path, f"line {line}, {key}", f"{values[key]!r} is not a number") from None

    px, py = number("Pixel_X"), number("Pixel_Y")
    pixel = (px, py if py is not None else px) if px is not None else None
    modes = sorted((int(k[5:]), v) for k, v in values.items() if k.startswith("Mode_") and k[5:].isdigit())
    return Template(path, values, values.get("Barcode") or None, values.get("Carrier") or None, pixel,
                    tuple(v for _, v in modes))


def _stamp(text: str, path: Path) -> datetime:
    try:
        return datetime.strptime(text, TIMESTAMP_FORMAT)
    except ValueError:
        raise InputError(path, "file name", f"timestamp {text!r} is not a date and time "
                                            "(expected YYYY-MM-DD-HHhMMmSSs)") from None


def _plane(middle: str, regex: re.Pattern[str]) -> int | None:
    m = regex.search(middle)
    return int(m.group(1)) if m else None


def describe_detail(path: Path, warnings: WarningLog) -> DetailFile:
    m = DETAIL_RE.match(path.name)
    assert m is not None
    well = int(m.group("well"))
    if well < 1:
        raise InputError(path, "file name", f"well number {well} must be >= 1")
    middle = m.group("middle")
    z, t = _plane(middle, Z_RE), _plane(middle, T_RE)
    if z is None or t is None:
        warnings.add("detail file names without z<nnn>/t<nnn>: taken as plane 0", path.name)
    return DetailFile(path, well, _plane(middle, MODE_RE), z or 0, t or 0, _stamp(m.group("ts"), path),
                      m.group("ts"))


def describe_overlay(path: Path, warnings: WarningLog) -> OverlayFile:
    m = OVERLAY_RE.match(path.name)
    assert m is not None
    middle = m.group("middle")
    z, t = _plane(middle, Z_RE), _plane(middle, T_RE)
    if z is None or t is None:
        warnings.add("overlay file names without z<nnn>/t<nnn>: taken as plane 0", path.name)
    return OverlayFile(path, int(m.group("well")), _plane(middle, MODE_RE), z or 0, t or 0)


def group_runs(logs: tuple[Path, ...], details: list[DetailFile], warnings: WarningLog) -> list[Run]:
    """Detail files into runs: each goes to the earliest log stamped strictly later than itself.

    Every run is kept (omero-py's populate_roi keys files by timestamp, so detail files sharing one
    lose all but one, and drops those newer than every log). Detail files newer than every log form
    a run of their own, named by the newest of them, with a warning.
    """
    runs: list[Run] = []
    for log in logs:
        m = LOG_RE.match(log.name)
        assert m is not None
        runs.append(Run(m.group(2), log, _stamp(m.group(2), log)))
    runs.sort(key=lambda r: (r.timestamp, r.log.name if r.log else ""))
    stamps = np.array([np.datetime64(r.timestamp) for r in runs], dtype="datetime64[s]")
    orphans: list[DetailFile] = []
    for d in sorted(details, key=lambda d: (d.timestamp, d.path.name)):
        i = int(np.searchsorted(stamps, np.datetime64(d.timestamp, "s"), side="right"))
        if i < len(runs):
            runs[i].details.append(d)
        else:
            orphans.append(d)
    if orphans:
        newest = max(orphans, key=lambda d: d.timestamp)
        runs.append(Run(newest.stamp, None, newest.timestamp, orphans))
        what = "no log file" if not logs else "detail files newer than every log file"
        warnings.add(f"MIAS: {what}: kept as run {newest.stamp} (named by its newest detail file)",
                     f"{len(orphans)} detail files, first {orphans[0].path.name}", 1)
    return [r for r in runs if r.details or r.log is not None]


def area_code_columns(path: Path, plate_number: int | None) -> int | None:
    """Plate columns from the `AreaCode` column of Batchresults/NEO_Results (largest column number)."""
    data = path.read_bytes()
    enc = choose_encoding(data)
    lines = split_lines(data)
    stars = 0
    header: list[str] | None = None
    best: int | None = None
    for i in range(len(lines)):
        line = lines.text(data, i, enc).strip()
        if not line:
            continue
        if stars < 2:
            if STAR_LINE.match(line):
                stars += 1
            continue
        cells = line.split("\t")
        if header is None:
            header = cells
            if AREA_CODE not in header:
                return None
            continue
        code_at = header.index(AREA_CODE)
        if len(cells) <= code_at:
            continue
        if plate_number is not None and cells[0].strip().isdigit() and int(cells[0]) != plate_number:
            continue
        code = cells[code_at].strip()
        try:
            col = parse_well_label(code)[1] + 1
        except ValueError:
            digits = re.sub(r"\D", "", code)
            if not digits:
                continue
            col = int(digits)
        best = col if best is None else max(best, col)
    return best
