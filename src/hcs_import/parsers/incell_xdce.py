"""InCell `.xdce` plate layout: geometry, channels, pixel size, and the image file of each plane.

The same `<ImageStack>` element is also found copied whole into the per-well analysis XML that some
screening pipelines write (see incell_wells_summary), so the layout is read from an element, wherever
it stands (`plate_from_image_stack`), and `parse_xdce` only adds reading the file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import xmlsafe
from ..errors import InputError
from ..issues_log import WarningLog
from ..model import Plate
from ..wells import row_letters

XDCE_MARKERS = (b"IN Cell Analyzer", b"Cytell")  # within the first 2 KB of every xdce seen


def is_xdce(path: Path) -> bool:
    if path.suffix.lower() != ".xdce":
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(2048)
    except OSError:
        return False
    return b"<ImageStack" in head or any(m in head for m in XDCE_MARKERS)


def _int(el, attr: str, path: Path, default: str | None = None) -> int:
    text = el.get(attr, default)
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise InputError(path, f"line {el.sourceline}, <{el.tag}>",
                         f"attribute {attr}={str(text)[:40]!r}: expected a whole number") from None
    if abs(value) > MAX_INDEX:
        raise InputError(path, f"line {el.sourceline}, <{el.tag}>",
                         f"attribute {attr}={str(text)[:40]!r}: expected a number below {MAX_INDEX}")
    return value


# Largest geometry, field, plane and channel index accepted from a layout: 1536-well plates have 32 x 48
# wells; anything far beyond is a corrupt or hostile number, refused before any array is sized by it.
MAX_PLATE_SIDE = 1000
MAX_INDEX = 100_000


def parse_xdce(path: Path, warnings: WarningLog | None = None) -> Plate:
    """The plate layout of an `.xdce` file; a declared-Latin file whose bytes are UTF-8 is read as UTF-8
    (and `warnings` says so)."""
    encoding, note = xmlsafe.encoding_override(path)
    if note and warnings is not None:
        warnings.note(note)
    root = xmlsafe.parse_file(path, encoding=encoding)
    return plate_from_image_stack(root, path, path.stem)


def plate_from_image_stack(root, path: Path, name: str) -> Plate:
    """The layout held by an `<ImageStack>` element (or a document containing one); `path` for errors."""
    plate_el = root.find(".//AutoLeadAcquisitionProtocol/Plate")
    if plate_el is None:
        plate_el = root.find(".//Plate")
    if plate_el is None:
        raise InputError(path, f"<{root.tag}>", "no <Plate rows= columns=> element: expected an InCell .xdce layout")
    rows, columns = _int(plate_el, "rows", path), _int(plate_el, "columns", path)
    if not (1 <= rows <= MAX_PLATE_SIDE and 1 <= columns <= MAX_PLATE_SIDE):
        raise InputError(path, f"line {plate_el.sourceline}, <Plate>",
                         f"geometry {rows}x{columns}: expected 1 to {MAX_PLATE_SIDE} rows and columns")
    channels = tuple(
        el.get("name", "") for el in root.iterfind(".//Wavelengths/Wavelength/EmissionFilter")
    ) or tuple(el.get("name", "") for el in root.iterfind(".//EmissionFilter"))
    pixel = None
    cal = root.find(".//ObjectiveCalibration")
    if cal is not None and cal.get("pixel_width") and cal.get("pixel_height"):
        try:
            pixel = (float(cal.get("pixel_width")), float(cal.get("pixel_height")))
        except ValueError:
            pixel = None
    offsets = len(root.findall(".//offset_point"))
    records = []
    images = root.find(".//Images")
    for img in images.iterfind("Image") if images is not None else ():
        r = img.find("Well/Row")
        c = img.find("Well/Column")
        ident = img.find("Identifier")
        if r is None or c is None or ident is None:
            raise InputError(path, f"line {img.sourceline}, <Image>",
                             "expected <Well><Row number/><Column number/></Well> and <Identifier>")
        records.append(
            (
                _int(r, "number", path) - 1,
                _int(c, "number", path) - 1,
                _int(ident, "field_index", path),
                _int(ident, "z_index", path, "0"),
                _int(ident, "time_index", path, "0"),
                _int(ident, "wave_index", path, "0"),
                img.get("filename", ""),
            )
        )
    frame = pd.DataFrame.from_records(
        records, columns=["well_row", "well_column", "field", "z", "t", "c", "path"]
    )
    fields = offsets or (int(frame["field"].max()) + 1 if len(frame) else None)
    naming = root.find(".//NamingRows")
    labels = row_letters(rows)
    if naming is not None and (naming.get("begin") or "A").isdigit():
        labels = tuple(str(i + 1) for i in range(rows))
    return Plate(
        name=name,
        rows=rows,
        columns=columns,
        row_labels=labels,
        channels=channels,
        pixel_size_um=pixel,
        fields_per_well=fields,
        images=frame,
    )
