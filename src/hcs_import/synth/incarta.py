"""Synthetic IN Carta exports: a per-object CSV and a per-well CSV for one plate (no pixel data).

Columns as FORMATS.md describes IN Carta files: `Plate ID`, `Row` (letter), `Column`, `WELL LABEL`
("A - 1"), `FIELD`, `Z`, `T` (1-based), then `<Population> <Measure> wv<N>` with centres
`<Population> cg X wv<N>` / `cg Y wv<N>`. CRLF line ends, as Windows software writes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..parsers.base import SynthSpec
from ..wells import row_letters
from .common import geometry, objects_per_field, rng

POPULATIONS = (("Nuclei", 1), ("Cells", 2), ("Organelles", 3))  # population, wavelength index (wv<N>)
MEASURES = ("Area", "Intensity", "Form Factor", "Perimeter", "Gyration", "Elongation", "Diameter",
            "Intensity CV", "Intensity SD", "Major Axis", "Minor Axis", "Texture", "Light Flux")
FIELD_SIZE = 2048


def measure_names(population: str, wave: int, n: int) -> list[str]:
    names = [f"{population} cg X wv{wave}", f"{population} cg Y wv{wave}"]
    i = 0
    while len(names) < n:
        base = MEASURES[i % len(MEASURES)] + (f" {i // len(MEASURES) + 1}" if i >= len(MEASURES) else "")
        names.append(f"{population} {base} wv{wave}")
        i += 1
    return names[: max(n, 2)]


def objects_frame(spec: SynthSpec, rows: int, cols: int, plate_id: str) -> pd.DataFrame:
    r = rng(spec.seed)
    n_slots = rows * cols * spec.fields
    counts = objects_per_field(r, spec.objects, n_slots)
    slot = np.repeat(np.arange(n_slots), counts)
    well, field = slot // spec.fields, slot % spec.fields
    row, col = well // cols, well % cols
    letters = np.asarray(row_letters(rows), dtype=object)
    n = len(slot)
    data: dict[str, object] = {
        "Plate ID": np.full(n, plate_id, dtype=object),
        "Row": letters[row],
        "Column": col + 1,
        "WELL LABEL": letters[row] + " - " + (col + 1).astype(str).astype(object),
        "FIELD": field + 1,
        "Z": np.ones(n, dtype=np.int64),
        "T": np.ones(n, dtype=np.int64),
    }
    pops = POPULATIONS[: max(1, min(spec.populations, len(POPULATIONS)))]
    for p, (population, wave) in enumerate(pops):
        names = measure_names(population, wave, max(2, spec.measurements))
        xy = r.uniform(0, FIELD_SIZE, size=(n, 2))
        data[names[0]] = (xy[:, 0] + p * 0.5).round(2)
        data[names[1]] = (xy[:, 1] + p * 0.5).round(2)
        for name in names[2:]:
            data[name] = r.normal(100.0, 20.0, n).round(4)
    return pd.DataFrame(data)


def wells_frame(objects: pd.DataFrame) -> pd.DataFrame:
    """Per-well rows as IN Carta aggregates them: object count and mean of each measure."""
    keys = ["Plate ID", "Row", "Column", "WELL LABEL", "Z", "T"]
    measures = [c for c in objects.columns[7:] if " cg " not in c]
    grouped = objects.groupby(keys, sort=False)
    out = grouped.size().rename("Nuclei Count wv1").to_frame()
    means = grouped[measures].mean().round(4)
    means.columns = [f"{c} Mean" for c in measures]
    return pd.concat([out, means], axis=1).reset_index()


def write_incarta_plate(out: Path, spec: SynthSpec, *, per_well: bool = True, per_object: bool = True) -> Path:
    rows, cols = geometry(spec.wells)
    out.mkdir(parents=True, exist_ok=True)
    name = out.name or "plate"
    objects = objects_frame(spec, rows, cols, name)
    if per_object:
        objects.to_csv(out / f"{name} Object Data.csv", index=False, lineterminator="\r\n", encoding="utf-8")
    if per_well:
        wells_frame(objects).to_csv(out / f"{name} Well Data.csv", index=False, lineterminator="\r\n",
                                    encoding="utf-8")
    return out
