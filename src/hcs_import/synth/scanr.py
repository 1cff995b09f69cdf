"""Synthetic ScanR plate: descriptor, acquisition log and ScanR Analysis ParameterData exports (no pixels).

Realistic on purpose (docs/formats/scanr.md): the descriptor is LabVIEW cluster XML in ISO-8859-1
with no encoding declared and a `µ` in it; ParameterData files are CRLF, tab (.txt) or comma (.csv)
separated, measurement names without a channel end in a space (`Area `, `Well `, `Center X `), gate columns
hold 0/1, a sub-population (`Spots`) links to its main object through `Parent Object ID (MO)` and carries
the parent's gates as `MO.<gate>`, a column name has a latin-1 `µ`, and a few values are `NaN`.
Everything is generated vectorised, so a 100,000-row file takes well under a second.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ..parsers.base import SynthSpec
from ..wells import row_letters
from .common import geometry, objects_per_field, rng

CHANNELS = ("DAPI", "GFP")
EXTRA_MEASURES = ("Perimeter ", "Max Feret Diameter ", "Min Feret Diameter ", "Elongation ", "Compactness ",
                  "Std Intensity DAPI", "Std Intensity GFP", "Max Intensity DAPI", "Max Intensity GFP",
                  "Min Intensity DAPI", "Min Intensity GFP")
LATIN1_COLUMN = "Equivalent Diameter µm"  # a header byte 0xB5: the file must be read as ISO-8859-1
FIELD_SIZE = 1344  # pixels of a field image (x and y)


def _descriptor(name: str, rows: int, cols: int, wells: list[int], fields: int) -> str:
    letters = row_letters(rows)
    parts = [
        "<?xml version='1.0' standalone='yes' ?>",
        '<LVData xmlns="http://www.ni.com/LVData">',
        "<Version>8.6.1</Version>",
        "<Cluster>",
        "<Name>experiment descriptor</Name>",
        "<NumElts>9</NumElts>",
        f"<String>\n<Name>plate name</Name>\n<Val>{name}</Val>\n</String>",
        "<Cluster>\n<Name>format typedef</Name>\n<NumElts>3</NumElts>",
        f"<String>\n<Name>format name</Name>\n<Val>{rows * cols} wells</Val>\n</String>",
        f"<I32>\n<Name>Rows</Name>\n<Val>{rows}</Val>\n</I32>",
        f"<I32>\n<Name>Columns</Name>\n<Val>{cols}</Val>\n</I32>",
        "</Cluster>",
        f"<Array>\n<Name>well selection table + cDNA</Name>\n<Dimsize>{len(wells)}</Dimsize>",
    ]
    for w in wells:
        r, c = divmod(w - 1, cols)
        parts.append(f"<Cluster>\n<Name></Name>\n<NumElts>2</NumElts>\n<I32>\n<Name></Name>\n<Val>{w}</Val>\n</I32>\n"
                     f"<String>\n<Name></Name>\n<Val>{letters[r]}{c + 1}</Val>\n</String>\n</Cluster>")
    parts.append("</Array>")
    parts.append(f"<Array>\n<Name>subposition list</Name>\n<Dimsize>{fields}</Dimsize>")
    for f in range(fields):
        parts.append(f"<Cluster>\n<Name>position</Name>\n<NumElts>2</NumElts>\n<DBL>\n<Name>X</Name>\n"
                     f"<Val>{f * 866.88:.2f}</Val>\n</DBL>\n<DBL>\n<Name>Y</Name>\n<Val>0.00</Val>\n</DBL>\n</Cluster>")
    parts.append("</Array>")
    parts.append("<I32>\n<Name># slices</Name>\n<Val>1</Val>\n</I32>")
    parts.append("<DBL>\n<Name>slices distance [µm]</Name>\n<Val>1.50</Val>\n</DBL>")
    parts.append("<I32>\n<Name>timeloop count</Name>\n<Val>0</Val>\n</I32>")
    parts.append("<DBL>\n<Name>conversion factor um/pixel</Name>\n<Val>0.645</Val>\n</DBL>")
    parts.append("<Array>\n<Name>channels</Name>\n<Dimsize>4</Dimsize>")
    for label, idle, exposure in (("Autofocus", 0, 5), (CHANNELS[0], 0, 20), (CHANNELS[1], 0, 150), ("Cy5", 1, 0)):
        parts.append(f"<Cluster>\n<Name>channel</Name>\n<NumElts>3</NumElts>\n<String>\n<Name>name</Name>\n"
                     f"<Val>{label}</Val>\n</String>\n<DBL>\n<Name>exposure time</Name>\n<Val>{exposure}</Val>\n"
                     f"</DBL>\n<U8>\n<Name>idle</Name>\n<Val>{idle}</Val>\n</U8>\n</Cluster>")
    parts += ["</Array>", "</Cluster>", "</LVData>", ""]
    return "\r\n".join(parts)


def _acquisition_log(wells: list[int], fields: int) -> str:
    lines = ["ScanR acquisition log, experiment started 2024-03-05 10:12:01"]
    for w in wells:
        lines.append(f"Autofocus well {w}: ok")
        for p in range(1, fields + 1):
            lines.append(f"IMAGEPOS\tW={w}\tP={p}\tT=0\tZ=0\tIMAGEX={10000 + p * 866.88:.2f}\t"
                         f"IMAGEY={20000 + w * 9000.0:.2f}")
    return "\r\n".join(lines) + "\r\n"


def main_population(r: np.random.Generator, wells: np.ndarray, fields: np.ndarray, measurements: int) -> pd.DataFrame:
    """Objects of the main population, one row each, columns as ScanR Analysis names them."""
    n = len(wells)
    area = r.gamma(8.0, 40.0, n)
    dapi = r.normal(1200.0, 200.0, n)
    gfp = r.lognormal(5.0, 0.6, n)
    circ = r.uniform(0.5, 1.0, n)
    circ[r.random(n) < 0.002] = np.nan  # ScanR writes NaN where a measure is undefined
    cols: dict[str, np.ndarray] = {
        "Object ID": np.arange(n, dtype=np.int64),
        "Well ": wells,
        "Parent Object ID (Well)": wells - 1,
        "Parent Trace ID": np.full(n, -1, dtype=np.int64),
        "Position ": fields,
        "Area ": area.round(1),
        "Circularity ": circ.round(4),
        "Center X ": r.uniform(0, FIELD_SIZE, n).round(2),
        "Center Y ": r.uniform(0, FIELD_SIZE, n).round(2),
        f"Total Intensity {CHANNELS[0]}": (dapi * area).round(0),
        f"Mean Intensity {CHANNELS[0]}": dapi.round(2),
        f"Total Intensity {CHANNELS[1]}": (gfp * area).round(0),
        f"Mean Intensity {CHANNELS[1]}": gfp.round(2),
        LATIN1_COLUMN: (2 * np.sqrt(area / np.pi) * 0.645).round(3),
    }
    for i in range(max(0, measurements - 10)):
        base = EXTRA_MEASURES[i % len(EXTRA_MEASURES)]
        name = base if i < len(EXTRA_MEASURES) else f"{base.rstrip()} {i // len(EXTRA_MEASURES) + 1} "
        cols[name] = r.normal(50.0, 10.0, n).round(3)
    cols["Cells"] = (area > 150).astype(np.int64)  # gates: 0/1
    cols["R01"] = (gfp > 150).astype(np.int64)
    return pd.DataFrame(cols)


def spots_population(r: np.random.Generator, main: pd.DataFrame) -> pd.DataFrame:
    """Sub-objects: 0-3 per main object, linked through `Parent Object ID (MO)`, parent gates as `MO.`."""
    per = r.integers(0, 4, len(main))
    parent = np.repeat(np.arange(len(main)), per)
    n = len(parent)
    cols = {
        "Object ID": np.arange(n, dtype=np.int64),
        "Well ": main["Well "].to_numpy()[parent],
        "Parent Object ID (Well)": main["Parent Object ID (Well)"].to_numpy()[parent],
        "Parent Object ID (MO)": main["Object ID"].to_numpy()[parent],
        "Parent Trace ID": np.full(n, -1, dtype=np.int64),
        "Position ": main["Position "].to_numpy()[parent],
        "Area ": r.gamma(3.0, 4.0, n).round(1),
        "Center X ": (main["Center X "].to_numpy()[parent] + r.normal(0, 5, n)).round(2),
        "Center Y ": (main["Center Y "].to_numpy()[parent] + r.normal(0, 5, n)).round(2),
        f"Mean Intensity {CHANNELS[1]}": r.lognormal(6.0, 0.4, n).round(2),
        "MO.Cells": main["Cells"].to_numpy()[parent],
        "MO.R01": main["R01"].to_numpy()[parent],
        "Spots": np.ones(n, dtype=np.int64),
    }
    return pd.DataFrame(cols)


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write as ScanR Analysis does: CRLF, tab for .txt and comma for .csv, ISO-8859-1, NaN spelled NaN.

    The numbers go through pyarrow's CSV writer (pandas' to_csv takes seconds for 100,000 rows).
    """
    sep = "," if path.suffix.lower() == ".csv" else "\t"
    table = pa.Table.from_arrays([pa.array(frame[c].to_numpy()) for c in frame.columns],
                                 names=[str(c) for c in frame.columns])
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, delimiter=sep, quoting_style="none"))
    body = buf.getvalue().replace(b"nan", b"NaN").replace(b"\n", b"\r\n")
    header = sep.join(str(c) for c in frame.columns).encode("iso-8859-1") + b"\r\n"
    path.write_bytes(header + body)


def write_parameter_data(path: Path, rows: int, *, wells: int = 96, fields: int = 4, seed: int = 0,
                         measurements: int = 15) -> pd.DataFrame:
    """One main-population ParameterData file of exactly `rows` objects spread over wells 1..`wells`."""
    r = rng(seed)
    order = np.sort(r.integers(0, wells * fields, rows))
    frame = main_population(r, order // fields + 1, order % fields + 1, measurements)
    write_table(frame, path)
    return frame


def write_scanr_plate(out: Path, spec: SynthSpec, *, descriptor: bool = True, acquisition_log: bool = True,
                      csv: bool = False) -> Path:
    """A ScanR experiment folder: descriptor (+ log) and ParameterData_Main (+ _Spots) files."""
    rows, cols = geometry(spec.wells)
    out.mkdir(parents=True, exist_ok=True)
    name = out.name or "plate"
    r = rng(spec.seed)
    well_numbers = list(range(1, rows * cols + 1))
    if descriptor:
        (out / "experiment_descriptor.xml").write_bytes(
            _descriptor(name, rows, cols, well_numbers, spec.fields).encode("iso-8859-1"))
    if acquisition_log:
        (out / "AcquisitionLog.dat").write_bytes(_acquisition_log(well_numbers, spec.fields).encode("iso-8859-1"))
    counts = objects_per_field(r, spec.objects, len(well_numbers) * spec.fields)
    slots = np.repeat(np.arange(len(well_numbers) * spec.fields), counts)
    main = main_population(r, slots // spec.fields + 1, slots % spec.fields + 1, spec.measurements)
    ext = ".csv" if csv else ".txt"
    write_table(main, out / f"ParameterData_Main{ext}")
    if spec.populations >= 2:
        write_table(spots_population(r, main), out / f"ParameterData_Spots{ext}")
    return out
