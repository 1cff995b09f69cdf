"""Synthetic CellProfiler ExportToSpreadsheet output (no pixel data).

    DIR/MyExpt_Image.csv     one row per image: ImageNumber, Metadata_Plate, Metadata_Well (B03),
                             Metadata_Site (1-based), FileName_DNA, Count_<population>, image quality
    DIR/MyExpt_Nuclei.csv    one row per object: ImageNumber, ObjectNumber, AreaShape_* (bounding box
                             included), Location_Center_X/Y, Intensity_*
    DIR/MyExpt_Cells.csv     (populations >= 2), with Parent_Nuclei

`--layout object-header-rows` writes the object CSVs with the object name above every column (two header
rows), as ExportToSpreadsheet does when several objects share one file.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..parsers.base import SynthSpec
from ..wells import row_letters
from .common import geometry, objects_per_field, rng

PREFIX = "MyExpt_"
POPULATIONS = ("Nuclei", "Cells", "Cytoplasm")
HEADER_ROWS_LAYOUT = "object-header-rows"
FEATURES = ("AreaShape_Area", "AreaShape_Eccentricity", "Intensity_MeanIntensity_DNA",
            "Intensity_IntegratedIntensity_DNA", "Texture_Contrast_DNA_3_00", "AreaShape_Perimeter",
            "AreaShape_Solidity", "Intensity_StdIntensity_DNA")
FIELD_SIZE = 1024


def write_cellprofiler_export(out: Path, spec: SynthSpec) -> Path:
    rows, cols = geometry(spec.wells)
    r = rng(spec.seed)
    out.mkdir(parents=True, exist_ok=True)
    plate = out.name or "plate"
    pops = POPULATIONS[: max(1, min(spec.populations, len(POPULATIONS)))]
    n_images = rows * cols * spec.fields
    counts = objects_per_field(r, spec.objects, n_images)
    letters = row_letters(rows)
    image_rows = []
    for i in range(n_images):
        well, site = divmod(i, spec.fields)
        row, col = divmod(well, cols)
        image_rows.append([i + 1, plate, f"{letters[row]}{col + 1:02d}", site + 1,
                           f"{plate}_{letters[row]}{col + 1:02d}_s{site + 1}_w1.tif",
                           *[int(counts[i])] * len(pops), f"{r.normal(0.8, 0.05):.4f}"])
    with open(out / f"{PREFIX}Image.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["ImageNumber", "Metadata_Plate", "Metadata_Well", "Metadata_Site", "FileName_DNA",
                    *(f"Count_{p}" for p in pops), "ImageQuality_FocusScore_DNA"])
        w.writerows(image_rows)
    features = list(FEATURES[: max(1, min(spec.measurements, len(FEATURES)))])
    for p, pop in enumerate(pops):
        header = ["ImageNumber", "ObjectNumber", *features, "AreaShape_BoundingBoxMinimum_X",
                  "AreaShape_BoundingBoxMinimum_Y", "AreaShape_BoundingBoxMaximum_X", "AreaShape_BoundingBoxMaximum_Y",
                  "Location_Center_X", "Location_Center_Y", *(["Parent_Nuclei"] if p else [])]
        lines = []
        for i in range(n_images):
            n = int(counts[i])
            xy = r.uniform(20, FIELD_SIZE - 20, size=(n, 2))
            values = r.normal(100.0, 20.0, size=(n, len(features)))
            half = 6 * (p + 1)
            for k in range(n):
                x, y = xy[k]
                lines.append([i + 1, k + 1, *(f"{v:.5g}" for v in values[k]), int(x) - half, int(y) - half,
                              int(x) + half, int(y) + half, f"{x:.3f}", f"{y:.3f}", *([k + 1] if p else [])])
        with open(out / f"{PREFIX}{pop}.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            if spec.layout == HEADER_ROWS_LAYOUT:
                w.writerow(["Image", *[pop] * (len(header) - 1)])
            w.writerow(header)
            w.writerows(lines)
    return out
