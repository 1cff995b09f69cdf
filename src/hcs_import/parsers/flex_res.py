"""Acapella `.res` result files: per-well results of every `Area`, columnar.

Structure (omero-py's populate_roi XPaths, docs/formats/flex.md): root `AnalysisResults`; under `.//Areas/Area`,
`.//Wells/ResultParameters/Parameter` (text = a result's name), then `.//Wells/Well row= col=`
(1-based) holding `<Result name="...">number</Result>`. Every Area is kept (populate_roi returns only
the last one). A Result a well lacks is NaN (counted); a Result whose name is not one of the Area's
parameters is an error naming file, line and the known names (populate_roi fails with a KeyError).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lxml import etree

from .. import xmlsafe
from ..errors import InputError
from ..issues_log import WarningLog
from .common import SPECIAL_NUMBERS

ROOT_TAG = "AnalysisResults"
AREA_NAME_ATTRIBUTES = ("name", "Name", "id", "ID")  # an Area's label, when it has one; else "Area <n>"


@dataclass(frozen=True)
class AreaResults:
    """One Area: its label, parameter names in file order, wells (0-based) and a (wells x parameters) array."""

    name: str
    parameters: tuple[str, ...]
    well_row: np.ndarray
    well_column: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class ResFile:
    path: Path
    attributes: dict[str, str]
    areas: tuple[AreaResults, ...]


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _children(el: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in el if _local(c.tag) == name]


def _descendants(el: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in el.iter() if c is not el and _local(c.tag) == name]


MAX_WELL_INDEX = 100_000  # a row or column number beyond any plate: a damaged file, refused before use


def _well_number(el: etree._Element, attr: str, path: Path) -> int:
    text = el.get(attr)
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise InputError(path, f"line {el.sourceline}, <Well>",
                         f"attribute {attr}={text!r}: expected a 1-based whole number") from None
    if not 1 <= value <= MAX_WELL_INDEX:
        raise InputError(path, f"line {el.sourceline}, <Well>",
                         f"attribute {attr}={text!r}: expected a whole number from 1 to {MAX_WELL_INDEX}")
    return value - 1


def _value(el: etree._Element, path: Path, bad_values: str, warnings: WarningLog) -> float:
    text = (el.text or "").strip()
    if not text:
        warnings.add(f"{path.name}: empty <Result> values stored as NaN", f"line {el.sourceline}")
        return math.nan
    try:
        return float(text)
    except ValueError:
        special = SPECIAL_NUMBERS.get(text.lower())
        if special is not None:
            return special
        if bad_values == "error":
            raise InputError(path, f"line {el.sourceline}, <Result name={el.get('name')!r}>",
                             f"value {text!r} is not a number") from None
        warnings.add(f"{path.name}: <Result> values that are not numbers stored as NaN",
                     f"line {el.sourceline}: {text!r}")
        return math.nan


def _area(area: etree._Element, index: int, path: Path, bad_values: str, warnings: WarningLog) -> AreaResults:
    name = next((area.get(a).strip() for a in AREA_NAME_ATTRIBUTES if (area.get(a) or "").strip()), f"Area {index}")
    wells_groups = _descendants(area, "Wells")
    params: list[str] = []
    for group in wells_groups:
        for rp in _children(group, "ResultParameters"):
            for p in _children(rp, "Parameter"):
                text = (p.text or "").strip()
                if not text:
                    raise InputError(path, f"line {p.sourceline}, <Parameter>", "empty parameter name")
                if text in params:
                    raise InputError(path, f"line {p.sourceline}, <Parameter>",
                                     f"parameter {text!r} is listed twice in area {name!r}")
                params.append(text)
    index_of = {p: i for i, p in enumerate(params)}
    wells = [w for g in wells_groups for w in _children(g, "Well")]
    values = np.full((len(wells), len(params)), np.nan)
    rows = np.empty(len(wells), dtype=np.int64)
    cols = np.empty(len(wells), dtype=np.int64)
    seen: dict[tuple[int, int], int] = {}
    missing = 0
    first_missing = ""
    for i, w in enumerate(wells):
        rows[i], cols[i] = _well_number(w, "row", path), _well_number(w, "col", path)
        key = (int(rows[i]), int(cols[i]))
        if key in seen:
            raise InputError(path, f"line {w.sourceline}, <Well row={w.get('row')} col={w.get('col')}>",
                             f"well listed twice in area {name!r} (first on line {seen[key]})")
        seen[key] = w.sourceline or 0
        got = np.zeros(len(params), dtype=bool)
        for r in _descendants(w, "Result"):
            rname = r.get("name")
            j = index_of.get(rname) if rname is not None else None
            if j is None:
                known = ", ".join(repr(p) for p in params[:8]) + (", ..." if len(params) > 8 else "")
                raise InputError(path, f"line {r.sourceline}, <Result name={rname!r}>",
                                 f"not one of area {name!r}'s ResultParameters ({known or 'none listed'})")
            if got[j]:
                raise InputError(path, f"line {r.sourceline}, <Result name={rname!r}>",
                                 "this well has this Result twice")
            got[j] = True
            values[i, j] = _value(r, path, bad_values, warnings)
        if (~got).any() and not missing:
            first_missing = (f"well row {rows[i] + 1} col {cols[i] + 1} (line {w.sourceline}) lacks "
                             f"{params[int(np.flatnonzero(~got)[0])]!r}")
        missing += int((~got).sum())
    if missing:
        warnings.add(f"{path.name}: Results missing from a well stored as NaN", first_missing, missing)
    if not params:
        warnings.add(f"{path.name}: areas without ResultParameters (no values)", f"area {name!r}")
    return AreaResults(name, tuple(params), rows, cols, values)


def parse_res(path: Path, bad_values: str, warnings: WarningLog) -> ResFile:
    if path.stat().st_size == 0:
        raise InputError(path, None, "file is empty; expected Acapella AnalysisResults XML")
    root = xmlsafe.parse_file(path)
    if _local(root.tag) != ROOT_TAG:
        raise InputError(path, f"line {root.sourceline}, <{_local(root.tag)}>",
                         f"root element is not <{ROOT_TAG}>: not an Acapella .res file")
    areas_el = [a for areas in _descendants(root, "Areas") for a in _children(areas, "Area")]
    if not areas_el:
        raise InputError(path, f"<{ROOT_TAG}>", "no <Areas><Area> elements: no results in this file")
    areas = tuple(_area(a, i, path, bad_values, warnings) for i, a in enumerate(areas_el, start=1))
    names = [a.name for a in areas]
    if len(set(names)) != len(names):  # unnamed or same-named areas: number them so columns stay distinct
        areas = tuple(AreaResults(f"{a.name} ({i})" if names.count(a.name) > 1 else a.name, a.parameters,
                                  a.well_row, a.well_column, a.values) for i, a in enumerate(areas, start=1))
    return ResFile(path, {str(k): str(v) for k, v in root.attrib.items()}, areas)


def is_res(path: Path) -> bool:
    """Any readable `*.res` file: a broken one must reach parse_res and fail there with a clear error."""
    return path.suffix.lower() == ".res" and path.is_file()
