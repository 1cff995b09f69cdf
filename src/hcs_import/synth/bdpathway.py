"""Synthetic BD Pathway plate: Attovision layout files, RoiSummary.txt and per-well measurement tables.

Layout as docs/formats/bdpathway.md and Bio-Formats' BDReader describe it: `Experiment.exp`, a `.plt`, one `.dye` per
channel (INI, CRLF, ISO-8859-1) and one `Well A01/` folder per well. No pixel data is written. The
measurement tables (`Well A01/Measurements.txt`, tab-separated, one row per object, no well column: the
folder gives it) use the default column map's names; Attovision's real export layout is not public.
RoiSummary.txt in the plate folder holds two analysis rectangles that apply to every well.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..parsers.base import SynthSpec
from ..wells import row_letters
from .common import geometry, objects_per_field, rng

DYES = (("DAPI", "380/10", "435LP", 0.05), ("FITC", "488/10", "515LP", 0.2))
IMAGE_SIZE = (672, 512)  # pixels of one field (binning 2)
MEASURES = ("Perimeter", "Shape Factor", "Major Axis", "Minor Axis", "Eccentricity", "Solidity", "Texture",
            "Granularity", "Std DAPI", "Std FITC", "Max DAPI", "Max FITC")
TABLE_NAME = "Measurements.txt"


def _ini(sections: dict[str, dict[str, object]]) -> bytes:
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{k}={v}" for k, v in values.items())
        lines.append("")
    return "\r\n".join(lines).encode("iso-8859-1")


def well_table(r: np.random.Generator, n_fields: int, mean_objects: int, measurements: int) -> pd.DataFrame:
    counts = objects_per_field(r, mean_objects, n_fields)
    field = np.repeat(np.arange(1, n_fields + 1), counts)
    n = len(field)
    w, h = r.integers(8, 40, n), r.integers(8, 40, n)
    left = r.integers(0, IMAGE_SIZE[0] - 40, n)
    top = r.integers(0, IMAGE_SIZE[1] - 40, n)
    area = (w * h * r.uniform(0.6, 0.8, n)).round(0)
    dapi = r.normal(900.0, 150.0, n).round(2)
    fitc = r.lognormal(5.0, 0.5, n).round(2)
    data: dict[str, np.ndarray] = {
        "Object #": np.arange(1, n + 1),
        "Field": field,
        "Centroid X": (left + w / 2).round(1),
        "Centroid Y": (top + h / 2).round(1),
        "Left": left,
        "Top": top,
        "Width": w,
        "Height": h,
        "Area [pixel^2]": area,
        "Mean DAPI": dapi,
        "Total DAPI": (dapi * area).round(0),
        "Mean FITC": fitc,
        "Total FITC": (fitc * area).round(0),
    }
    for i in range(max(0, measurements - 6)):
        data[MEASURES[i % len(MEASURES)] + (f" {i // len(MEASURES) + 1}" if i >= len(MEASURES) else "")] = \
            r.normal(10.0, 2.0, n).round(3)
    return pd.DataFrame(data)


def roi_summary_text(plate: str) -> str:
    w, h = IMAGE_SIZE
    rows = [
        "BD Attovision ROI summary",
        f'Analysis definition: "C:\\BD Data\\{plate}\\Analysis\\Run 1\\segmentation.adf"',
        "",
        "ROI\tName\tX\tY\tWidth\tHeight\tArea",
        "\t\tpixel\tpixel\tpixel\tpixel\tpixel^2",
        "-" * 60,
        f"1\tCentre\t{w // 4}\t{h // 4}\t{w // 2}\t{h // 2}\t{(w // 2) * (h // 2)}",
        f"2\tTop left\t0\t0\t{w // 4}\t{h // 4}\t{(w // 4) * (h // 4)}",
        "",
    ]
    return "\r\n".join(rows)


def write_bdpathway_plate(out: Path, spec: SynthSpec, *, roi_summary: bool = True) -> Path:
    rows, cols = geometry(spec.wells)
    out.mkdir(parents=True, exist_ok=True)
    name = out.name or "plate"
    r = rng(spec.seed)
    montaged = spec.fields > 1
    (out / "Experiment.exp").write_bytes(_ini({
        "General": {"Version": "5.1.0", "Dyes": len(DYES)},
        "Dyes": {str(i + 1): d[0] for i, d in enumerate(DYES)},
        "Camera": {"BinX": 2, "BinY": 2, "BitdepthUsed": 12},
        "Geometry": {"Name": "20x Olympus NA 075"},
        "Image": {"Montaged": int(montaged), "TilesX": spec.fields if montaged else 1, "TilesY": 1},
    }))
    (out / f"{name}.plt").write_bytes(_ini({"PlateType": {"Brand": "BD Falcon", "Description":
                                                           f"{rows * cols} Well Imaging Plate", "Wells": rows * cols}}))
    for dye, ex, em, exposure in DYES:
        (out / f"{dye}.dye").write_bytes(_ini({"Numerator": {"Excitation": f"{ex} Filter", "Emission": f"{em} Filter",
                                                              "Exposure": exposure, "Gain": 10, "Offset": 255}}))
    letters = row_letters(rows)
    for w in range(rows * cols):
        row, col = divmod(w, cols)
        folder = out / f"Well {letters[row]}{col + 1:02d}"
        folder.mkdir(exist_ok=True)
        table = well_table(r, spec.fields, spec.objects, spec.measurements)
        table.to_csv(folder / TABLE_NAME, sep="\t", index=False, lineterminator="\r\n", encoding="iso-8859-1")
    if roi_summary:
        (out / "RoiSummary.txt").write_bytes(roi_summary_text(name).encode("iso-8859-1"))
    return out
