"""ScanR acquisition layout: `experiment_descriptor.xml`, `AcquisitionLog.dat` and the `data/` TIFF names.

The descriptor is LabVIEW's XML flattening of a cluster (`<Cluster>` / `<Array>` holding elements with a
`<Name>` and a `<Val>`); what a key means follows Bio-Formats' ScanrReader (docs/formats/scanr.md): plate geometry
in "format typedef" (`Rows`, `Columns`), "plate name", wells in "well selection table + cDNA" (a 1-based
row-major well number followed by its label), positions in "subposition list" (X, Y pairs), channels as
clusters with `name` and `idle` (idle 0 = acquired), "conversion factor um/pixel". The file is parsed as
ISO-8859-1 when it declares no encoding, as ScanR writes it (`µ` as one byte).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from lxml import etree

from .. import xmlsafe
from ..errors import InputError
from ..issues_log import WarningLog

DESCRIPTOR_NAME = "experiment_descriptor.xml"
ACQUISITION_LOG_NAME = "AcquisitionLog.dat"
DATA_FOLDER = "data"
DESCRIPTOR_ENCODING = "ISO-8859-1"  # ScanR writes the descriptor without declaring its latin-1 encoding

# Keys of the descriptor (LabVIEW <Name> texts) as Bio-Formats' ScanrReader reads them.
KEY_GEOMETRY = "format typedef"
KEY_ROWS = "Rows"
KEY_COLUMNS = "Columns"
KEY_PLATE_NAME = "plate name"
KEY_WELLS = "well selection table + cDNA"
KEY_POSITIONS = "subposition list"
KEY_FIELD_ROWS = "rows/well"
KEY_FIELD_COLUMNS = "columns/well"
KEY_SLICES = "# slices"
KEY_TIMELOOP_COUNT = "timeloop count"  # number of repeats: time points = count + 1 (ScanrReader)
KEY_TIMELOOP_REAL = "timeloop real"
KEY_CHANNEL_NAME = "name"
KEY_CHANNEL_IDLE = "idle"  # "0": the channel was acquired; anything else: skipped
AUTOFOCUS_CHANNEL = "Autofocus"  # listed like a channel but never stored as one (ScanrReader)
KEY_PIXEL_SIZE = "conversion factor um/pixel"

_STRUCTURE_TAGS = {"Name", "Val", "NumElts", "Dimsize", "Version"}

# data/<label>--W00001--P00001--Z00000--T00000--<channel>.tif (W, P 1-based; Z, T 0-based)
TIFF_NAME = re.compile(
    r"^(?P<label>.*?)--W(?P<w>\d+)--P(?P<p>\d+)(?:--Z(?P<z>\d+))?(?:--T(?P<t>\d+))?--(?P<channel>.+?)\.tiff?$",
    re.IGNORECASE,
)
ACQ_MARKER = "IMAGEPOS"  # AcquisitionLog.dat: one such line per image acquired
_ACQ_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=\s*([^\s=]*)")  # KEY=value, or KEY= value (tab / spaces)


@dataclass(frozen=True)
class LVNode:
    """One LabVIEW element: its type tag, <Name>, <Val> (scalars), <Dimsize> (arrays) and children."""

    kind: str
    name: str
    value: str | None
    dims: int | None
    children: tuple[LVNode, ...]
    line: int

    def walk(self) -> Iterator[LVNode]:
        yield self
        for c in self.children:
            yield from c.walk()

    def find(self, name: str) -> LVNode | None:
        return next((n for n in self.walk() if n.name == name), None)

    def values(self) -> list[LVNode]:
        return [n for n in self.walk() if n.value is not None]

    def child(self, name: str) -> LVNode | None:
        return next((c for c in self.children if c.name == name), None)


def _local(tag: object) -> str | None:
    return etree.QName(tag).localname if isinstance(tag, str) else None


def _to_node(el: etree._Element) -> LVNode:
    name, value, dims = "", None, None
    children = []
    for c in el:
        tag = _local(c.tag)
        if tag is None:
            continue
        if tag == "Name":
            name = (c.text or "").strip()
        elif tag == "Val":
            value = (c.text or "").strip()
        elif tag == "Dimsize":
            try:
                dims = int((c.text or "").strip())
            except ValueError:
                dims = None
        elif tag not in _STRUCTURE_TAGS:
            children.append(_to_node(c))
    return LVNode(_local(el.tag) or "", name, value, dims, tuple(children), el.sourceline or 0)


@dataclass(frozen=True)
class Descriptor:
    """What the descriptor says about the plate (None / empty where it says nothing)."""

    path: Path
    plate_name: str | None
    rows: int | None
    columns: int | None
    wells: tuple[int, ...]  # selected wells, 1-based row-major numbers
    well_labels: dict[int, str]
    positions: tuple[tuple[float, float], ...]
    fields_per_well: int | None
    channels: tuple[str, ...]
    pixel_size_um: float | None
    slices: int | None
    timepoints: int | None


def _int(node: LVNode | None, path: Path, what: str) -> int | None:
    if node is None or node.value is None or node.value == "":
        return None
    try:
        return int(float(node.value))
    except (ValueError, OverflowError):  # OverflowError: a number too large to be one (`1e999`, 1 MB of digits)
        raise InputError(path, f"line {node.line}, <Name>{node.name}</Name>",
                         f"value {node.value!r}: expected a whole number ({what})") from None


def _float(node: LVNode | None, path: Path, what: str) -> float | None:
    if node is None or not node.value:
        return None
    try:
        return float(node.value.replace(",", "."))
    except ValueError:
        raise InputError(path, f"line {node.line}, <Name>{node.name}</Name>",
                         f"value {node.value!r}: expected a number ({what})") from None


def _positions(node: LVNode | None) -> tuple[tuple[float, float], ...]:
    if node is None:
        return ()
    numbers: list[float] = []
    pairs: list[tuple[float, float]] = []
    clustered = node.children and all(c.children for c in node.children)
    for c in node.children if clustered else (node,):
        vals = []
        for v in c.values():
            try:
                vals.append(float(v.value.replace(",", ".")))  # type: ignore[union-attr]
            except ValueError:
                continue
        if clustered and len(vals) >= 2:
            pairs.append((vals[0], vals[1]))
        elif not clustered:
            numbers = vals
    if not clustered:
        pairs = list(zip(numbers[0::2], numbers[1::2]))
    if node.dims is not None:
        pairs = pairs[: node.dims]
    return tuple(pairs)


def parse_descriptor(path: Path) -> Descriptor:
    """Read an experiment_descriptor.xml. Errors name the file and line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror}") from None
    if not data.strip():
        raise InputError(path, None, "file is empty; expected a ScanR experiment descriptor (LabVIEW XML)")
    declared = xmlsafe.declared_encoding(data[:200])
    root = xmlsafe.parse_bytes(data, path, encoding=None if declared else DESCRIPTOR_ENCODING)
    tree = _to_node(root)
    geometry = tree.find(KEY_GEOMETRY)
    rows = _int(geometry.find(KEY_ROWS), path, "well rows") if geometry is not None else None
    columns = _int(geometry.find(KEY_COLUMNS), path, "well columns") if geometry is not None else None
    if rows is not None and columns is not None and (rows < 1 or columns < 1):
        raise InputError(path, f"line {geometry.line}, <Name>{KEY_GEOMETRY}</Name>",  # type: ignore[union-attr]
                         f"plate geometry {rows}x{columns}: expected at least one row and column")
    name_node = tree.find(KEY_PLATE_NAME)
    wells: list[int] = []
    labels: dict[int, str] = {}
    table = tree.find(KEY_WELLS)
    if table is not None:
        current: int | None = None
        for v in table.values():
            text = v.value or ""
            if not text:
                continue
            if text[0].isdigit():
                number = _int(v, path, "a 1-based well number")
                if number is not None:
                    current = number
                    wells.append(number)
            elif current is not None:
                labels[current] = text
    positions = _positions(tree.find(KEY_POSITIONS))
    fr = _int(tree.find(KEY_FIELD_ROWS), path, "fields per well, rows")
    fc = _int(tree.find(KEY_FIELD_COLUMNS), path, "fields per well, columns")
    fields = len(positions) or ((fr * fc) if fr and fc else None)
    channels: list[str] = []
    for n in tree.walk():
        name, idle = n.child(KEY_CHANNEL_NAME), n.child(KEY_CHANNEL_IDLE)
        if (name is not None and idle is not None and name.value and idle.value == "0"
                and name.value != AUTOFOCUS_CHANNEL and name.value not in channels):
            channels.append(name.value)
    count = _int(tree.find(KEY_TIMELOOP_COUNT), path, "time loop count")
    real = _int(tree.find(KEY_TIMELOOP_REAL), path, "time points")
    return Descriptor(
        path=path,
        plate_name=(name_node.value or None) if name_node is not None else None,
        rows=rows,
        columns=columns,
        wells=tuple(wells),
        well_labels=labels,
        positions=positions,
        fields_per_well=fields,
        channels=tuple(channels),
        pixel_size_um=_float(tree.find(KEY_PIXEL_SIZE), path, "micrometres per pixel"),
        slices=_int(tree.find(KEY_SLICES), path, "z slices"),
        timepoints=real if real is not None else (count + 1 if count is not None else None),
    )


def parse_acquisition_log(path: Path, warnings: WarningLog) -> pd.DataFrame:
    """`IMAGEPOS` lines of AcquisitionLog.dat as columns, in file order (other lines are log text).

    Every KEY=value of those lines becomes a column named KEY (numbers where they are numbers), plus
    `line` (the file line). `W` and `P` must be 1-based whole numbers: they place the image.
    """
    try:
        text = path.read_bytes().decode("iso-8859-1")
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror}") from None
    records: list[dict[str, str]] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped.startswith(ACQ_MARKER):
            continue
        record = dict(_ACQ_TOKEN.findall(stripped[len(ACQ_MARKER):]))
        for key in ("W", "P"):
            value = record.get(key)
            if value is None or not value.isdigit() or int(value) < 1:
                raise InputError(path, f"line {number}",
                                 f"{ACQ_MARKER} line has {key}={value!r}: expected a 1-based whole number")
        records.append(record)
        lines.append(number)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=["W", "P"])
    for col in list(frame.columns):
        numeric = pd.to_numeric(frame[col], errors="coerce")
        bad = frame[col].notna() & numeric.isna() & (frame[col].astype(str).str.strip() != "")
        if not bad.any():
            frame[col] = numeric.astype(np.float64) if numeric.isna().any() else numeric
        elif bad.all():
            frame[col] = frame[col].astype(object)
        else:
            i = int(np.flatnonzero(bad.to_numpy())[0])
            warnings.add("AcquisitionLog values that are not numbers stored as NaN",
                         f"{path.name} line {lines[i]} {col}={frame[col].iloc[i]!r}", int(bad.sum()))
            frame[col] = numeric.astype(np.float64)
    frame["line"] = np.asarray(lines, dtype=np.int64)
    return frame


def list_images(root: Path, columns: int, channels: tuple[str, ...]) -> pd.DataFrame | None:
    """One row per `data/*.tif` named as ScanR names them (well_row, well_column, field, z, t, c, path)."""
    folder = root / DATA_FOLDER
    if not folder.is_dir():
        return None
    rows = []
    names = list(channels)
    for p in sorted(folder.iterdir()):
        m = TIFF_NAME.match(p.name)
        if not m:
            continue
        channel = m.group("channel")
        if channel not in names:
            names.append(channel)
        w = int(m.group("w")) - 1
        rows.append((w // columns, w % columns, int(m.group("p")) - 1, int(m.group("z") or 0),
                     int(m.group("t") or 0), names.index(channel), f"{DATA_FOLDER}/{p.name}"))
    if not rows:
        return None
    return pd.DataFrame.from_records(rows, columns=["well_row", "well_column", "field", "z", "t", "c", "path"])
