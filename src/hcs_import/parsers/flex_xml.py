"""The XML a PerkinElmer/Evotec `.flex` file carries in TIFF tag 65200, read through tifffile.

Only what the import needs: plate geometry (`Plate/XSize` = rows, `Plate/YSize` = columns, as
Bio-Formats' FlexReader reads them), plate name and barcode, the well (`WellCoordinate Row= Col=`,
1-based), field numbers (`Field No=`), channel names (`Array Name=`), pixel size
(`ImageResolutionX/Y`, in metres) and the number of image planes (IFDs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import tifffile
from lxml import etree

from .. import xmlsafe
from ..errors import InputError

FLEX_TAG = 65200
# `RRRCCCFFF.flex`: 1-based row, column and field (FlexReader groups files by this 14-character name).
FLEX_NAME_RE = re.compile(r"^(\d{3})(\d{3})(\d{3})\.flex$", re.IGNORECASE)
# Some .flex files end their XML with a stray `>` or `%` (FlexReader strips them before parsing).
TRAILING_JUNK = (">>", "%")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
METRES_TO_UM = 1e6


@dataclass(frozen=True)
class FlexInfo:
    path: Path
    row: int | None  # 0-based, from WellCoordinate, else the file name
    column: int | None
    field: int | None  # 0-based, from the file name, else the first Field No
    plate_rows: int | None
    plate_columns: int | None
    plate_name: str | None
    barcode: str | None
    channels: tuple[str, ...]
    pixel_size_um: tuple[float, float] | None
    planes: int


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def clean_xml(text: str) -> bytes:
    """Strip control characters and the stray trailing `>`/`%` some writers leave."""
    text = _CONTROL.sub("", text).strip()
    while text.endswith(TRAILING_JUNK):
        text = text[:-1].rstrip()
    text = re.sub(r"^<\?xml[^>]*\?>", "", text).lstrip()  # the text is already decoded
    return text.encode("utf-8")


def _decode(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        raw = value.rstrip(b"\x00")
        enc = xmlsafe.declared_encoding(raw[:200]) or "utf-8"
        try:
            return raw.decode(enc)
        except (UnicodeDecodeError, LookupError):
            return raw.decode("latin-1")
    raise TypeError(type(value))


def read_flex_xml(path: Path) -> tuple[etree._Element, int]:
    """The parsed XML of a .flex file and its number of IFDs (image planes)."""
    try:
        with tifffile.TiffFile(path) as tif:
            tag = tif.pages.first.tags.get(FLEX_TAG)
            planes = len(tif.pages)
            if tag is None:
                raise InputError(path, f"TIFF tag {FLEX_TAG}", "missing: a .flex file carries its XML metadata there")
            text = _decode(tag.value)
    except (tifffile.TiffFileError, OSError, ValueError, IndexError) as exc:
        raise InputError(path, None, f"cannot read as a TIFF-based .flex file: {exc}") from None
    root = xmlsafe.parse_bytes(clean_xml(text), f"{path} (TIFF tag {FLEX_TAG})")
    return root, planes


def _float(el: etree._Element | None, path: Path) -> float | None:
    if el is None or not (el.text or "").strip():
        return None
    try:
        return float(el.text)
    except ValueError:
        raise InputError(path, f"TIFF tag {FLEX_TAG} line {el.sourceline}, <{_local(el.tag)}>",
                         f"{el.text!r} is not a number") from None


def _int_text(el: etree._Element | None, path: Path) -> int | None:
    value = _float(el, path)
    if value is None:
        return None
    if value != int(value) or value < 1:
        raise InputError(path, f"TIFF tag {FLEX_TAG} line {el.sourceline}, <{_local(el.tag)}>",
                         f"{el.text!r}: expected a whole number >= 1")
    return int(value)


def _int_attr(el: etree._Element, name: str, path: Path) -> int:
    text = el.get(name)
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise InputError(path, f"TIFF tag {FLEX_TAG} line {el.sourceline}, <{_local(el.tag)}>",
                         f"attribute {name}={text!r}: expected a whole number") from None
    if value < 1:
        raise InputError(path, f"TIFF tag {FLEX_TAG} line {el.sourceline}, <{_local(el.tag)}>",
                         f"attribute {name}={value}: expected a 1-based number")
    return value


def flex_info(path: Path) -> FlexInfo:
    root, planes = read_flex_xml(path)
    by_name: dict[str, list[etree._Element]] = {}
    for el in root.iter():
        by_name.setdefault(_local(el.tag), []).append(el)
    plate = next((p for p in by_name.get("Plate", []) if any(_local(c.tag) in ("XSize", "YSize") for c in p)), None)
    rows = cols = None
    name = barcode = None
    if plate is not None:
        children = {_local(c.tag): c for c in plate}
        rows, cols = _int_text(children.get("XSize"), path), _int_text(children.get("YSize"), path)
    for el in by_name.get("PlateName", []):
        name = name or (el.text or "").strip() or None
    for el in by_name.get("Barcode", []):
        barcode = barcode or (el.text or "").strip() or None
    m = FLEX_NAME_RE.match(path.name)
    row = col = field = None
    if m:
        row, col, field = int(m.group(1)) - 1, int(m.group(2)) - 1, int(m.group(3)) - 1
    coords = by_name.get("WellCoordinate", [])
    if coords:
        row, col = _int_attr(coords[0], "Row", path) - 1, _int_attr(coords[0], "Col", path) - 1
    if field is None:
        nos = [_int_attr(f, "No", path) for f in by_name.get("Field", []) if f.get("No") is not None]
        field = min(nos) - 1 if nos else None
    channels: list[str] = []
    for el in by_name.get("Array", []):
        n = el.get("Name")
        if n and n not in channels:
            channels.append(n)
    rx = next((v for v in (_float(e, path) for e in by_name.get("ImageResolutionX", [])) if v), None)
    ry = next((v for v in (_float(e, path) for e in by_name.get("ImageResolutionY", [])) if v), None)
    pixel = (rx * METRES_TO_UM, (ry or rx) * METRES_TO_UM) if rx else None
    return FlexInfo(path, row, col, field, rows, cols, name, barcode, tuple(channels), pixel, planes)


def mea_pictures(path: Path) -> list[str]:
    """The `.flex` files a `.mea` measurement file lists (`<Picture path=...>`, `.flex` appended if absent)."""
    root = xmlsafe.parse_file(path)
    out = []
    for el in root.iter():
        if _local(el.tag) == "Picture" and el.get("path"):
            p = el.get("path").replace("\\", "/")
            out.append(p if p.lower().endswith(".flex") else p + ".flex")
    return out
