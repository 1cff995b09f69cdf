"""Synthetic IN Carta exports: a per-object CSV and a per-well CSV for one plate (no pixel data).

Columns as real IN Carta object exports have them (docs/formats/incarta.md): `OBJECT ID` (from 1 in each
field), `Row` (letter), `Column`, `FOV` (the field, 1-based), `WELL LABEL` ("A - 1"), `Z`, `T` (1-based;
`--timepoints N` gives N), `Plate ID`, then `<Population> <Measure> wv<N>` with centres `<Population> cg X
wv<N>` / `cg Y wv<N>` and boxes `<Population> Max left border / top border / width / height wv<N>`. The
per-well export is a summary: one row per well (and T), no object id, and its centre columns are per-well
means, as in the real ones. CRLF line ends, as Windows software writes them. `--layout several-plates`
writes a second acquisition (another `Plate ID`) into the same folder.
"""

from __future__ import annotations

from dataclasses import replace
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
SEVERAL_PLATES_LAYOUT = "several-plates"
BOX_SIZE = 24.0


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
    times = max(1, spec.timepoints)
    n_slots = rows * cols * spec.fields * times
    counts = objects_per_field(r, spec.objects, n_slots)
    slot = np.repeat(np.arange(n_slots), counts)
    well, rest = slot // (spec.fields * times), slot % (spec.fields * times)
    t, field = rest // spec.fields, rest % spec.fields
    row, col = well // cols, well % cols
    letters = np.asarray(row_letters(rows), dtype=object)
    n = len(slot)
    object_id = pd.Series(slot).groupby(slot).cumcount().to_numpy() + 1
    data: dict[str, object] = {
        "OBJECT ID": object_id,
        "Row": letters[row],
        "Column": col + 1,
        "FOV": field + 1,
        "WELL LABEL": letters[row] + " - " + (col + 1).astype(str).astype(object),
        "Z": np.ones(n, dtype=np.int64),
        "T": t + 1,
        "Plate ID": np.full(n, plate_id, dtype=object),
    }
    pops = POPULATIONS[: max(1, min(spec.populations, len(POPULATIONS)))]
    for p, (population, wave) in enumerate(pops):
        names = measure_names(population, wave, max(2, spec.measurements))
        xy = r.uniform(BOX_SIZE, FIELD_SIZE - BOX_SIZE, size=(n, 2))
        data[names[0]] = (xy[:, 0] + p * 0.5).round(2)
        data[names[1]] = (xy[:, 1] + p * 0.5).round(2)
        size = BOX_SIZE * (p + 1)
        data[f"{population} Max left border wv{wave}"] = np.floor(xy[:, 0] - size / 2)
        data[f"{population} Max top border wv{wave}"] = np.floor(xy[:, 1] - size / 2)
        data[f"{population} Max width wv{wave}"] = np.full(n, size)
        data[f"{population} Max height wv{wave}"] = np.full(n, size)
        for name in names[2:]:
            data[name] = r.normal(100.0, 20.0, n).round(4)
    return pd.DataFrame(data)


def wells_frame(objects: pd.DataFrame) -> pd.DataFrame:
    """Per-well rows as IN Carta aggregates them: object count and mean of each measure."""
    keys = ["Plate ID", "Row", "Column", "WELL LABEL", "Z", "T"]
    measures = [c for c in objects.columns[8:] if " border " not in c and " Max " not in c]
    grouped = objects.groupby(keys, sort=False)
    out = grouped.size().rename("Nuclei Count wv1").to_frame()
    means = grouped[measures].mean().round(4)
    means.columns = [f"{c} Mean" for c in measures]
    return pd.concat([out, means], axis=1).reset_index()


def write_incarta_plate(out: Path, spec: SynthSpec, *, per_well: bool = True, per_object: bool = True) -> Path:
    rows, cols = geometry(spec.wells)
    out.mkdir(parents=True, exist_ok=True)
    name = out.name or "plate"
    plates = [name, f"{name} re-imaged"] if spec.layout == SEVERAL_PLATES_LAYOUT else [name]
    for i, plate_id in enumerate(plates):
        objects = objects_frame(replace(spec, seed=spec.seed + i), rows, cols, plate_id)
        suffix = f" {i + 1}" if i else ""
        if per_object:
            objects.to_csv(out / f"{name}{suffix} Object Data.csv", index=False, lineterminator="\r\n",
                           encoding="utf-8")
        if per_well:
            wells_frame(objects).to_csv(out / f"{name}{suffix} Well Data.csv", index=False, lineterminator="\r\n",
                                        encoding="utf-8")
    return out
