"""Synthetic Harmony/Columbus evaluation export: a per-well table and one per-object table per population.

    DIR/Evaluation1/PlateResults.txt                   one row per well
    DIR/Evaluation1/Objects_Population - Nuclei.txt    one row per object (Row, Column, Field, Object No, X, Y, ...)
    DIR/Evaluation1/Objects_Population - Cells.txt     (with populations >= 2)

Each file starts with the `[General]` block and a `[Data]` line, as Harmony writes them; columns carry
units in brackets, `Bounding Box` and `Compound` are text, and a `NaN` appears now and then.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..parsers.base import SynthSpec
from .common import geometry, objects_per_field, rng

PLATE_NAME = "ColumbusPlate01"
EVALUATION = "Evaluation1"
POPULATIONS = ("Nuclei", "Cells", "Spots")
FIELD_PIXELS = 1080
PIXEL_UM = 0.598
MEASURES = (("Area", "µm²"), ("Roundness", None), ("Width", "µm"), ("Length", "µm"), ("Intensity Mean", None),
            ("Intensity Sum", None), ("Intensity Max", None), ("Ratio Width to Length", None),
            ("Intensity Contrast", None), ("Intensity StdDev", None))
COMPOUNDS = ("DMSO", "Staurosporine", "Nocodazole", "Taxol")
CRLF = "\r\n"


def general_block(population: str | None) -> list[str]:
    lines = ["[General]", "Version\t1.0", f"Plate Name\t{PLATE_NAME}", "Measurement\tMeasurement 1",
             f"Evaluation\t{EVALUATION}"]
    if population:
        lines.append(f"Population\t{population}")
    return [*lines, "Date\t17.06.2009 11:56:17", "[Data]"]


def measure_names(population: str, n: int) -> list[str]:
    out = []
    for i in range(n):
        base, unit = MEASURES[i % len(MEASURES)]
        name = f"{population} - {base}" + (f" {i // len(MEASURES) + 1}" if i >= len(MEASURES) else "")
        out.append(f"{name} [{unit}]" if unit else name)
    return out


def write_objects(path: Path, population: str, spec: SynthSpec, rows: int, cols: int, r: np.random.Generator) -> int:
    counts = objects_per_field(r, spec.objects, rows * cols * spec.fields)
    names = measure_names(population, max(1, spec.measurements))
    header = ["Row", "Column", "Plate ID", "Measurement", "Evaluation", "Timepoint", "Field", "Object No", "X", "Y",
              "Bounding Box", "Position X [µm]", "Position Y [µm]", "Compound", "Concentration", *names]
    out = [*general_block(population), "\t".join(header)]
    k = 0
    for row in range(rows):
        for col in range(cols):
            compound = COMPOUNDS[(row * cols + col) % len(COMPOUNDS)]
            for field in range(spec.fields):
                n = int(counts[k])
                k += 1
                xy = r.uniform(10, FIELD_PIXELS - 10, size=(n, 2))
                vals = r.normal(100.0, 25.0, size=(n, len(names)))
                for i in range(n):
                    x, y = xy[i]
                    box = f"[{int(x) - 6},{int(y) - 6},{int(x) + 6},{int(y) + 6}]"
                    measured = ["NaN" if (k + i + j) % 211 == 0 else f"{v:.6g}" for j, v in enumerate(vals[i])]
                    out.append("\t".join([str(row + 1), str(col + 1), PLATE_NAME, "Measurement 1", EVALUATION, "0",
                                          str(field + 1), str(i + 1), f"{x:.2f}", f"{y:.2f}", box,
                                          f"{x * PIXEL_UM:.3f}", f"{y * PIXEL_UM:.3f}", compound,
                                          f"{(col % 4) * 0.5:g}", *measured]))
    path.write_text(CRLF.join(out) + CRLF, encoding="utf-8", newline="")
    return int(counts.sum())


def write_plate_results(path: Path, populations: tuple[str, ...], rows: int, cols: int,
                        r: np.random.Generator) -> None:
    header = ["Row", "Column", "Plate ID", "Measurement", "Evaluation", "Compound", "Concentration",
              *(f"{p} - Number of Objects" for p in populations), *(f"{p} - Area [µm²] - Mean per Well"
                                                                     for p in populations)]
    out = [*general_block(None), "\t".join(header)]
    for row in range(rows):
        for col in range(cols):
            counts = [str(int(v)) for v in r.integers(20, 200, len(populations))]
            areas = [f"{v:.4g}" for v in r.normal(100, 10, len(populations))]
            out.append("\t".join([str(row + 1), str(col + 1), PLATE_NAME, "Measurement 1", EVALUATION,
                                  COMPOUNDS[(row * cols + col) % len(COMPOUNDS)], f"{(col % 4) * 0.5:g}", *counts,
                                  *areas]))
    path.write_text(CRLF.join(out) + CRLF, encoding="utf-8", newline="")


def write_columbus_export(out: Path, spec: SynthSpec) -> Path:
    rows, cols = geometry(spec.wells)
    r = rng(spec.seed)
    folder = out / EVALUATION
    folder.mkdir(parents=True, exist_ok=True)
    pops = POPULATIONS[: max(1, min(spec.populations, len(POPULATIONS)))]
    for p in pops:
        write_objects(folder / f"Objects_Population - {p}.txt", p, spec, rows, cols, r)
    write_plate_results(folder / "PlateResults.txt", pops, rows, cols, r)
    return out
