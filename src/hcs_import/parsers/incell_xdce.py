"""InCell `.xdce` plate layout: geometry, channels, pixel size, and the image file of each plane."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import xmlsafe
from ..errors import InputError
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


def _int(el, attr: str, path: Path) -> int:
    text = el.get(attr)
    try:
        return int(text)
    except (TypeError, ValueError):
        raise InputError(path, f"line {el.sourceline}, <{el.tag}>",
                         f"attribute {attr}={text!r}: expected a whole number") from None


def parse_xdce(path: Path) -> Plate:
    root = xmlsafe.parse_file(path)
    plate_el = root.find(".//AutoLeadAcquisitionProtocol/Plate")
    if plate_el is None:
        plate_el = root.find(".//Plate")
    if plate_el is None:
        raise InputError(path, f"<{root.tag}>", "no <Plate rows= columns=> element: expected an InCell .xdce layout")
    rows, columns = _int(plate_el, "rows", path), _int(plate_el, "columns", path)
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
                int(ident.get("z_index", "0")),
                int(ident.get("time_index", "0")),
                int(ident.get("wave_index", "0")),
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
        name=path.stem,
        rows=rows,
        columns=columns,
        row_labels=labels,
        channels=channels,
        pixel_size_um=pixel,
        fields_per_well=fields,
        images=frame,
    )
