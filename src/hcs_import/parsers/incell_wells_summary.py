"""IN Cell per-well analysis XML ("Wells Summary"): the GE layout read by openBIS's screening module.

Seen in a real IN Cell Analyzer 2000 plate (2010, written by a MATLAB pipeline for the GE Explorer /
Cellomics path). Unlike Investigator's per-object XML (`<WellData>`, incell_results), the file holds
no objects:

    <Data version = "1.1">                          root; spaces around `=` are legal XML and occur
      <Application/> <Creation/> <Operator/> ...     the analysis run
      <ImageStack> ... </ImageStack>                 a whole copy of the plate's .xdce (geometry, images)
      <AutoLeadAnalysisProtocol name version>        the analysis; <AutoLeadAssay name version> inside
      <Table title="Wells Summary">
        <Well name="P - 1" row="16" col="1" time="1" z="1">     1-based; column-major order
          <Measure name="Raw Count" source="" value="1410"/>   one per measurement
        </Well> ...
      </Table>
    </Data>

Parsed streaming (lxml iterparse, each Well freed once read), so the embedded image list of thousands
of images costs one element tree at a time. Each `<Table>` becomes a table of its own: per well, or per
field when its Wells carry a `field` attribute. An element inside a Table that is not a Well, or a Well
key that cannot be placed, is an error naming the line: nothing is dropped silently.
Everything here is a pure function of the file: no OMERO, no output.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lxml import etree

from .. import xmlsafe
from ..errors import InputError
from ..issues_log import WarningLog
from ..model import Plate
from ..wells import parse_well_label
from .common import strict_number
from .incell_xdce import MAX_INDEX, plate_from_image_stack

ROOT_TAG = "Data"
TABLE_TAG = "Table"
WELL_TAG = "Well"
MEASURE_TAG = "Measure"
HEAD_BYTES = 64 * 1024
SCAN_BLOCK = 1 << 20
_ROOT_RE = re.compile(rb"<Data[\s>/]")
_TABLE_RE = re.compile(rb"<Table[\s>/]")
_WELLDATA_RE = re.compile(rb"<WellData[\s>/]")
# Well attributes, as the real file writes them; all 1-based ("all indexes are 1 based!" says its comment).
ROW_ATTR, COL_ATTR, TIME_ATTR, Z_ATTR, FIELD_ATTR = "row", "col", "time", "z", "field"


def _root_in_head(head: bytes) -> bool:
    """True when the first element of `head` (after the declaration, comments, a DOCTYPE) is `<Data`."""
    pos = 0
    while True:
        lt = head.find(b"<", pos)
        if lt < 0:
            return False
        if head.startswith((b"<?", b"<!"), lt):
            end = head.find(b"-->", lt) + 3 if head.startswith(b"<!--", lt) else head.find(b">", lt) + 1
            if end <= 0:
                return False
            pos = end
            continue
        return bool(_ROOT_RE.match(head, lt))


def layout_of(path: Path) -> str | None:
    """"wells-summary" for a `<Data>`-rooted XML whose first section is a `<Table>`, "welldata" when a
    `<WellData>` comes first, None otherwise. Scans in blocks: the Table often follows megabytes of
    embedded ImageStack."""
    if path.suffix.lower() != ".xml":
        return None
    try:
        with open(path, "rb") as fh:
            block = fh.read(HEAD_BYTES)
            if not _root_in_head(block):
                return None
            tail = b""
            while block:
                data = tail + block
                table, welldata = _TABLE_RE.search(data), _WELLDATA_RE.search(data)
                if table or welldata:
                    if welldata and (not table or welldata.start() < table.start()):
                        return "welldata"
                    return "wells-summary"
                tail = data[-16:]
                block = fh.read(SCAN_BLOCK)
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class SummaryTable:
    """One `<Table>`: key arrays (0-based) and one array per Measure name, in first-appearance order.

    `values` hold float64 arrays for numeric measures, object arrays of text for measures with no number
    at all (kept as text, as every other format does).
    """

    title: str
    line: int
    kind: str  # "wells" or "fields"
    well_row: np.ndarray
    well_column: np.ndarray
    field: np.ndarray
    z: np.ndarray
    t: np.ndarray
    values: dict[str, np.ndarray]
    sources: dict[str, str]

    def __len__(self) -> int:
        return len(self.well_row)


@dataclass(frozen=True)
class WellsSummaryFile:
    path: Path
    tables: tuple[SummaryTable, ...]
    image_stack: Plate | None
    analysis: dict[str, str]
    warnings: WarningLog = field(default_factory=WarningLog)


@dataclass
class _TableBuilder:
    title: str
    line: int
    keys: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    seen: dict[tuple[int, int, int, int, int], int] = field(default_factory=dict)
    texts: dict[str, list[tuple[int, str, int]]] = field(default_factory=dict)  # name -> (row, text, line)
    sources: dict[str, str] = field(default_factory=dict)
    has_field: bool = False


def _key(el: etree._Element, attr: str, path: Path, default: str | None) -> int:
    text = el.get(attr, default)
    where = f"line {el.sourceline}, <{WELL_TAG}>"
    if text is None:
        raise InputError(path, where, f"missing attribute {attr!r} (expected a 1-based {attr} number)")
    stripped = text.strip()
    if not stripped.isascii() or not stripped.isdigit():
        raise InputError(path, where, f"attribute {attr}={text[:40]!r}: expected a whole number >= 1")
    value = int(stripped) if len(stripped) <= 9 else MAX_INDEX + 1
    if not 1 <= value <= MAX_INDEX:
        raise InputError(path, where, f"attribute {attr}={text[:40]!r}: expected a whole number from 1 to "
                         f"{MAX_INDEX}")
    return value - 1


def _read_well(el: etree._Element, builder: _TableBuilder, path: Path, warnings: WarningLog) -> None:
    row = _key(el, ROW_ATTR, path, None)
    col = _key(el, COL_ATTR, path, None)
    t = _key(el, TIME_ATTR, path, "1")
    z = _key(el, Z_ATTR, path, "1")
    fld = _key(el, FIELD_ATTR, path, "1")
    builder.has_field = builder.has_field or el.get(FIELD_ATTR) is not None
    label = el.get("name")
    if label:
        try:
            named = parse_well_label(label)
        except ValueError:
            named = None
        if named != (row, col):
            warnings.add(f"{path.name}: <Well name> disagrees with its row/col attributes; row/col used",
                         f"line {el.sourceline}: name={label[:40]!r} row={row + 1} col={col + 1}")
    key = (row, col, fld, z, t)
    if key in builder.seen:
        raise InputError(path, f"line {el.sourceline}, <{WELL_TAG}>",
                         f"well row {row + 1}, column {col + 1} (field {fld + 1}, time {t + 1}, z {z + 1}) "
                         f"already given at line {builder.seen[key]} of table {builder.title!r}")
    builder.seen[key] = el.sourceline or 0
    index = len(builder.keys)
    builder.keys.append(key)
    names: set[str] = set()
    for child in el:
        if not isinstance(child.tag, str):
            continue  # comments
        where = f"line {child.sourceline}, <{child.tag}>"
        if child.tag != MEASURE_TAG:
            raise InputError(path, where, f"unexpected element inside <{WELL_TAG}>: expected <{MEASURE_TAG}>")
        name = child.get("name")
        if name is None or not name.strip():
            raise InputError(path, where, "<Measure> without a name attribute")
        if name in names:
            raise InputError(path, where, f"Measure {name[:80]!r} given twice for this well")
        names.add(name)
        value = child.get("value")
        if value is None:
            raise InputError(path, where, f"Measure {name[:80]!r} has no value attribute")
        builder.texts.setdefault(name, []).append((index, value, child.sourceline or 0))
        source = child.get("source")
        if source:
            builder.sources.setdefault(name, source)


def _column(name: str, entries: list[tuple[int, str, int]], n: int, path: Path, bad_values: str,
            warnings: WarningLog) -> np.ndarray:
    """One measure's values for n wells: numbers where any value is one, else text; absent -> NaN/None."""
    parsed = [(i, strict_number(text), text, line) for i, text, line in entries]
    written = [p for p in parsed if p[2].strip()]
    if written and all(v is None for _, v, _, _ in written):  # no number at all: a text measure
        text_out = np.full(n, None, dtype=object)
        for i, _, text, _ in parsed:
            text_out[i] = text
        return text_out
    out = np.full(n, np.nan)
    for i, v, text, line in parsed:
        if v is None:
            if bad_values == "error":
                raise InputError(path, f"line {line}, <{MEASURE_TAG} name={name[:60]!r}>",
                                 f"value {text[:80]!r}: expected a number")
            warnings.add(f"{path.name}: non-numeric values stored as NaN", f"line {line}: {text[:80]!r}")
            continue
        out[i] = v
    missing = n - len(entries)
    if missing:
        warnings.add(f"{path.name}: wells without Measure {name[:80]!r}, stored as NaN",
                     f"{missing} of {n} wells", missing)
    return out


def _finish(builder: _TableBuilder, path: Path, bad_values: str, warnings: WarningLog) -> SummaryTable:
    keys = np.asarray(builder.keys, dtype=np.int64).reshape(-1, 5)
    n = len(keys)
    values = {name: _column(name, entries, n, path, bad_values, warnings) for name, entries in builder.texts.items()}
    return SummaryTable(builder.title, builder.line, "fields" if builder.has_field else "wells",
                        keys[:, 0], keys[:, 1], keys[:, 2], keys[:, 3], keys[:, 4], values, builder.sources)


def _events(path: Path, encoding: str | None) -> Iterator[tuple[str, etree._Element]]:
    kwargs = {"encoding": encoding} if encoding else {}
    try:
        yield from xmlsafe.iterparse(str(path), events=("start", "end"), remove_comments=True, **kwargs)
    except etree.XMLSyntaxError as exc:
        raise xmlsafe.syntax_error(path, exc) from None


def parse_wells_summary(path: Path, bad_values: str = "error") -> WellsSummaryFile:
    """Read a per-well IN Cell analysis XML. Errors name the file and line; see the module docstring."""
    warnings = WarningLog()
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror}") from exc
    xmlsafe.reject_entities(head, path)
    encoding, note = xmlsafe.encoding_override(path)
    if note:
        warnings.note(note)
    tables: list[SummaryTable] = []
    analysis: dict[str, str] = {}
    stack_plate: Plate | None = None
    builder: _TableBuilder | None = None
    table_depth = 0  # depth of the open <Table>: found at any depth, its Wells are its children
    depth = 0
    for event, el in _events(path, encoding):
        if event == "start":
            depth += 1
            if depth == 1 and el.tag != ROOT_TAG:
                raise InputError(path, f"line {el.sourceline}, <{el.tag}>",
                                 f"expected the root element <{ROOT_TAG}> of an IN Cell analysis XML")
            if el.tag == TABLE_TAG and builder is None:
                builder = _TableBuilder(el.get("title") or f"Table {len(tables) + 1}", el.sourceline or 0)
                table_depth = depth
            continue
        depth -= 1
        if builder is not None and depth == table_depth:  # a child of the open Table has ended
            if el.tag != WELL_TAG:
                raise InputError(path, f"line {el.sourceline}, <{el.tag}>",
                                 f"unexpected element inside <Table title={builder.title!r}>: expected <{WELL_TAG}>")
            _read_well(el, builder, path, warnings)
            el.clear()
        elif builder is not None and depth == table_depth - 1 and el.tag == TABLE_TAG:
            tables.append(_finish(builder, path, bad_values, warnings))
            builder = None
            el.clear()
        elif builder is None and el.tag == "ImageStack":
            stack_plate = plate_from_image_stack(el, path, path.stem)
            el.clear()
        elif builder is None and el.tag == "AutoLeadAnalysisProtocol":
            _protocol(el, analysis)
            el.clear()
        elif depth == 1:
            if el.tag in ("Application", "Creation", "Operator", "Computer"):
                for attr, value in el.attrib.items():
                    analysis[f"analysis {el.tag.lower()} {attr}"] = value
            el.clear()
    if not tables:
        raise InputError(path, None, "no <Table> of <Well> results; expected an IN Cell per-well analysis XML")
    for table in tables:
        if not len(table):
            raise InputError(path, f"line {table.line}, <Table title={table.title!r}>", "table holds no <Well>")
    return WellsSummaryFile(path, tuple(tables), stack_plate, analysis, warnings)


def _protocol(el: etree._Element, analysis: dict[str, str]) -> None:
    for attr in ("name", "version"):
        if el.get(attr):
            analysis[f"analysis protocol {attr}"] = el.get(attr, "")
    assay = el.find("AutoLeadAssay")
    if assay is not None:
        for attr in ("name", "version"):
            if assay.get(attr):
                analysis[f"analysis assay {attr}"] = assay.get(attr, "")
