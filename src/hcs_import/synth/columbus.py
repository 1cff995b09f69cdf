"""Synthetic Harmony/Columbus evaluation export: a per-well table and one per-object table per population.

    DIR/Evaluation1/PlateResults.txt                   one row per well
    DIR/Evaluation1/Objects_Population - Nuclei.txt    one row per object (Row, Column, Field, Object No, X, Y, ...)
    DIR/Evaluation1/Objects_Population - Cells.txt     (with populations >= 2)

Each file starts with the `[General]` block and a `[Data]` line, as Harmony writes them; columns carry
units in brackets, `Bounding Box` (`[x1,y1,x2,y2]`) and `Compound` are text, a `NaN` appears now and then,
and every line ends with a tab (as in real Harmony exports). With `--timepoints N` (N > 1) the plate is a
time-lapse: objects and PlateResults rows per Timepoint, numbered from -(N // 4) as a real export
numbered -4..11. `--layout several-plates` writes the exports of two plates (two `Plate Name`s) into one
folder, as real drop folders hold them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..parsers.base import SynthSpec
from .common import geometry, objects_per_field, rng

PLATE_NAME = "ColumbusPlate01"
SEVERAL_PLATES_LAYOUT = "several-plates"
SECOND_PLATE = "ColumbusPlate02"
EVALUATION = "Evaluation1"
POPULATIONS = ("Nuclei", "Cells", "Spots")
FIELD_PIXELS = 1080
PIXEL_UM = 0.598
MEASURES = (("Area", "µm²"), ("Roundness", None), ("Width", "µm"), ("Length", "µm"), ("Intensity Mean", None),
            ("Intensity Sum", None), ("Intensity Max", None), ("Ratio Width to Length", None),
            ("Intensity Contrast", None), ("Intensity StdDev", None))
COMPOUNDS = ("DMSO", "Staurosporine", "Nocodazole", "Taxol")
CRLF = "\r\n"


def first_timepoint(spec: SynthSpec) -> int:
    return -(spec.timepoints // 4) if spec.timepoints > 1 else 0


def general_block(population: str | None, plate: str = PLATE_NAME) -> list[str]:
    lines = ["[General]", "Version\t1.0", f"Plate Name\t{plate}", "Measurement\tMeasurement 1",
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


def write_lines(path: Path, lines: list[str], data_from: int) -> None:
    """CRLF lines; every line of the table (header and rows) ends with a tab, as Harmony writes them."""
    text = CRLF.join([*lines[:data_from], *(line + "\t" for line in lines[data_from:])]) + CRLF
    path.write_text(text, encoding="utf-8", newline="")


def write_objects(path: Path, population: str, spec: SynthSpec, rows: int, cols: int, r: np.random.Generator,
                  plate: str = PLATE_NAME) -> int:
    times = max(1, spec.timepoints)
    counts = objects_per_field(r, spec.objects, rows * cols * spec.fields * times)
    names = measure_names(population, max(1, spec.measurements))
    header = ["Row", "Column", "Plate ID", "Measurement", "Evaluation", "Plane", "Timepoint", "Field", "Object No",
              "X", "Y", "Bounding Box", "Position X [µm]", "Position Y [µm]", "Compound", "Concentration", *names]
    out = [*general_block(population, plate), "\t".join(header)]
    data_from = len(out) - 1
    k = 0
    for row in range(rows):
        for col in range(cols):
            compound = COMPOUNDS[(row * cols + col) % len(COMPOUNDS)]
            for t in range(times):
                for field in range(spec.fields):
                    n = int(counts[k])
                    k += 1
                    xy = r.uniform(10, FIELD_PIXELS - 10, size=(n, 2))
                    vals = r.normal(100.0, 25.0, size=(n, len(names)))
                    for i in range(n):
                        x, y = xy[i]
                        box = f"[{int(x) - 6},{int(y) - 6},{int(x) + 6},{int(y) + 6}]"
                        measured = ["NaN" if (k + i + j) % 211 == 0 else f"{v:.6g}" for j, v in enumerate(vals[i])]
                        out.append("\t".join([str(row + 1), str(col + 1), plate, "Measurement 1", EVALUATION, "1",
                                              str(first_timepoint(spec) + t), str(field + 1), str(i + 1),
                                              f"{x:.2f}", f"{y:.2f}", box, f"{x * PIXEL_UM:.3f}",
                                              f"{y * PIXEL_UM:.3f}", compound, f"{(col % 4) * 0.5:g}", *measured]))
    write_lines(path, out, data_from)
    return int(counts.sum())


def write_plate_results(path: Path, populations: tuple[str, ...], rows: int, cols: int,
                        r: np.random.Generator, spec: SynthSpec, plate: str = PLATE_NAME) -> None:
    """One row per well, or per (well, Timepoint) for a time-lapse plate."""
    header = ["Row", "Column", "Plane", "Timepoint", "Plate ID", "Measurement", "Evaluation", "Compound",
              "Concentration", *(f"{p} - Number of Objects" for p in populations),
              *(f"{p} - Area [µm²] - Mean per Well" for p in populations)]
    out = [*general_block(None, plate), "\t".join(header)]
    data_from = len(out) - 1
    for row in range(rows):
        for col in range(cols):
            for t in range(max(1, spec.timepoints)):
                counts = [str(int(v)) for v in r.integers(20, 200, len(populations))]
                areas = [f"{v:.4g}" for v in r.normal(100, 10, len(populations))]
                out.append("\t".join([str(row + 1), str(col + 1), "1", str(first_timepoint(spec) + t), plate,
                                      "Measurement 1", EVALUATION, COMPOUNDS[(row * cols + col) % len(COMPOUNDS)],
                                      f"{(col % 4) * 0.5:g}", *counts, *areas]))
    write_lines(path, out, data_from)


def write_columbus_export(out: Path, spec: SynthSpec) -> Path:
    rows, cols = geometry(spec.wells)
    r = rng(spec.seed)
    folder = out / EVALUATION
    folder.mkdir(parents=True, exist_ok=True)
    pops = POPULATIONS[: max(1, min(spec.populations, len(POPULATIONS)))]
    for p in pops:
        write_objects(folder / f"Objects_Population - {p}.txt", p, spec, rows, cols, r)
    write_plate_results(folder / "PlateResults.txt", pops, rows, cols, r, spec)
    if spec.layout == SEVERAL_PLATES_LAYOUT:  # a second plate's exports beside the first's, as drop folders hold
        write_objects(folder / f"Objects_Population - {pops[0]} {SECOND_PLATE}.txt", pops[0], spec, rows, cols, r,
                      SECOND_PLATE)
        write_plate_results(folder / f"PlateResults {SECOND_PLATE}.txt", pops, rows, cols, r, spec, SECOND_PLATE)
    return out
