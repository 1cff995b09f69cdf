"""Synthetic MIAS experiment: one plate folder with template, image tiles, detail files, logs, overlays.

Laid out as MIAS-2 writes it (docs/formats/mias.md, Bio-Formats' MIASReader):

    DIR/Batchresults/NEO_Results_<date>.txt           per-well batch results (AreaCode gives the columns)
    DIR/001-<barcode>/Nugenesistemplate.txt          key=value, CRLF
    DIR/001-<barcode>/Well<nnnn>/mode<c>_z000_t000_im<r>_<c>.tif   2x2 tiles per channel
    DIR/001-<barcode>/results/Well<nnnn>_mode1_z000_t000_detail_<ts>.txt   run 1: "NEO" nuclei
    DIR/001-<barcode>/results/NEOlog<ts>.txt                                run 1's log
    DIR/001-<barcode>/results/Well<nnnn>_mode2_z000_t000_detail_<ts>.txt   run 2: "MNU" points
    DIR/001-<barcode>/results/MNUlog<ts>.txt
    DIR/001-<barcode>/results/Well<nnnn>_mode1_z000_t000_AllModesOverlay.tif  label images (first wells)

Every detail file has its own timestamp (the analysis writes one well after the other), a preamble of
analysis parameters, CRLF line endings, and now and then a `NaN` intensity, as real exports do.
`objects` is per well (a MIAS well is one stitched image); `fields` and `measurements` do not apply.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import tifffile

from ..parsers.base import SynthSpec
from ..wells import row_letters
from .common import geometry, objects_per_field, rng

BARCODE = "MIAS0001"
PLATE_FOLDER = f"001-{BARCODE}"
STAMP = "%Y-%m-%d-%Hh%Mm%Ss"
RUN1_START = datetime(2008, 9, 18, 14, 0, 0)
SECONDS_PER_WELL = 2
TILE = 128  # pixels; 2x2 tiles make one 256x256 stitched well image
IMAGE = 2 * TILE
OVERLAY_WELLS = 4  # label overlays are written for the first few wells only (they are large in real data)
SOFTWARE = "eaZYX MIAS-2"  # MIASReader recognises MIAS TIFFs by a Software tag starting "eaZYX"
CHANNELS = ("Hoechst 33342", "FITC")
NEO_HEADER = ("Label", "Row", "Col", "Nucleus Area", "Cell Diam.", "Cell Type", "Mean Nucleus Intens.")
MNU_HEADER = ("row", "col", "type")
CRLF = "\r\n"


def _ts(t: datetime) -> str:
    return t.strftime(STAMP)


def write_template(path: Path) -> None:
    lines = [f"Barcode={BARCODE}", "Carrier=Greiner 96 black", "Pixel_X=0.645", "Pixel_Y=0.645",
             "Objective_ID=Nikon Plan Fluor 10x/0.30", "Magnification=10", *(f"Mode_{i + 1}={c}" for i, c in
                                                                            enumerate(CHANNELS)),
             "Date=18/09/2008", "Time=13:42:10", "Exposure=0.25", "Autofocus=1"]
    path.write_bytes((CRLF.join(lines) + CRLF).encode("ascii"))


def write_tiles(well_dir: Path, r: np.random.Generator) -> None:
    well_dir.mkdir(parents=True, exist_ok=True)
    base = (np.add.outer(np.arange(TILE), np.arange(TILE)) * 4).astype(np.uint16)
    for mode in range(1, len(CHANNELS) + 1):
        for ty in (1, 2):
            for tx in (1, 2):
                tifffile.imwrite(well_dir / f"mode{mode}_z000_t000_im{ty}_{tx}.tif", base + int(r.integers(100, 200)),
                                 software=SOFTWARE, compression="zlib", photometric="minisblack")


def neo_rows(r: np.random.Generator, n: int) -> np.ndarray:
    """Columns of NEO_HEADER for n nuclei (floats; Label and Cell Type whole numbers)."""
    out = np.empty((n, len(NEO_HEADER)))
    out[:, 0] = np.arange(1, n + 1)
    out[:, 1] = np.round(r.uniform(8, IMAGE - 8, n), 1)  # Row (y)
    out[:, 2] = np.round(r.uniform(8, IMAGE - 8, n), 1)  # Col (x)
    out[:, 3] = np.round(r.normal(95, 20, n).clip(20, None))
    out[:, 4] = np.round(r.normal(11.5, 2.0, n).clip(5, None), 2)
    out[:, 5] = r.integers(1, 4, n)
    out[:, 6] = np.round(r.normal(812.0, 90.0, n), 3)
    out[r.random(n) < 0.01, 6] = np.nan
    return out


def _fmt(v: float, whole: bool) -> str:
    if v != v:
        return "NaN"
    return str(int(v)) if whole else repr(float(v))


def write_neo_detail(path: Path, well: int, rows: np.ndarray, threshold: float) -> None:
    pre = ["NEO cell detection - detail results", f"Well\t{well:04d}", "Mode\t1", f"Nucleus threshold\t{threshold}",
           "Min nucleus area\t20", "Max nucleus area\t600", "Split touching nuclei\tYes", "Smoothing radius\t2", ""]
    body = [CRLF.join(pre), "\t".join(NEO_HEADER)]
    whole = (True, False, False, True, False, True, False)
    body.extend("\t".join(_fmt(v, w) for v, w in zip(row, whole)) for row in rows)
    path.write_bytes((CRLF.join(body) + CRLF).encode("ascii"))


def write_mnu_detail(path: Path, well: int, r: np.random.Generator, n: int) -> None:
    pre = ["MNU micronucleus detection - detail results", f"Well\t{well:04d}", "Mode\t2", "Spot threshold\t0.6",
           "Max spot distance\t12", ""]
    body = [CRLF.join(pre), "\t".join(MNU_HEADER)]
    ys, xs, kinds = r.uniform(0, IMAGE, n), r.uniform(0, IMAGE, n), r.integers(1, 3, n)
    body.extend(f"{y:.1f}\t{x:.1f}\t{k}" for y, x, k in zip(ys, xs, kinds))
    path.write_bytes((CRLF.join(body) + CRLF).encode("ascii"))


def write_overlay(path: Path, rows: np.ndarray) -> None:
    """A 16-bit label image: object `Label` drawn as a disk of diameter `Cell Diam.`."""
    labels = np.zeros((IMAGE, IMAGE), dtype=np.uint16)
    yy, xx = np.mgrid[0:IMAGE, 0:IMAGE]
    for label, y, x, diam in zip(rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 4]):
        r = diam / 2.0
        y0, y1 = int(max(0, y - r - 1)), int(min(IMAGE, y + r + 2))
        x0, x1 = int(max(0, x - r - 1)), int(min(IMAGE, x + r + 2))
        disk = (yy[y0:y1, x0:x1] - y) ** 2 + (xx[y0:y1, x0:x1] - x) ** 2 <= r * r
        labels[y0:y1, x0:x1][disk] = int(label)
    tifffile.imwrite(path, labels, software=SOFTWARE, compression="zlib", photometric="minisblack")


def write_batch_results(path: Path, rows: int, cols: int, counts: np.ndarray) -> None:
    letters = row_letters(rows)
    lines = ["Experiment\tsynthetic MIAS experiment", "Date:\t18/09/2008", "*" * 40, "NEO batch results",
             "*" * 40, "Plate\tBarcode\tWell\tAreaCode\tCell Count\tMean Nucleus Area"]
    for w in range(rows * cols):
        rr, cc = divmod(w, cols)
        lines.append(f"1\t{BARCODE}\t{w + 1}\t{letters[rr]}{cc + 1}\t{int(counts[w])}\t{95 + (w % 7) * 0.5:.1f}")
    path.write_bytes((CRLF.join(lines) + CRLF).encode("ascii"))


def write_mias_experiment(out: Path, spec: SynthSpec) -> Path:
    """Write the experiment folder OUT (one plate); returns OUT."""
    rows, cols = geometry(spec.wells)
    n_wells = rows * cols
    r = rng(spec.seed)
    plate = out / PLATE_FOLDER
    results = plate / "results"
    results.mkdir(parents=True, exist_ok=True)
    (out / "Batchresults").mkdir(parents=True, exist_ok=True)
    write_template(plate / "Nugenesistemplate.txt")
    counts = objects_per_field(r, spec.objects, n_wells)
    t = RUN1_START
    for w in range(1, n_wells + 1):
        write_tiles(plate / f"Well{w:04d}", r)
        t += timedelta(seconds=SECONDS_PER_WELL)
        neo = neo_rows(r, int(counts[w - 1]))
        write_neo_detail(results / f"Well{w:04d}_mode1_z000_t000_detail_{_ts(t)}.txt", w, neo, 0.35)
        if w <= OVERLAY_WELLS:
            write_overlay(results / f"Well{w:04d}_mode1_z000_t000_AllModesOverlay.tif", neo)
    t += timedelta(seconds=5)
    (results / f"NEOlog{_ts(t)}.txt").write_bytes(
        f"NEO analysis finished{CRLF}Wells analysed\t{n_wells}{CRLF}".encode("ascii"))
    if spec.populations >= 2:
        t += timedelta(minutes=10)
        for w in range(1, n_wells + 1):
            t += timedelta(seconds=SECONDS_PER_WELL)
            write_mnu_detail(results / f"Well{w:04d}_mode2_z000_t000_detail_{_ts(t)}.txt", w, r,
                             max(1, int(counts[w - 1]) // 3))
        t += timedelta(seconds=5)
        (results / f"MNUlog{_ts(t)}.txt").write_bytes(
            f"MNU analysis finished{CRLF}Wells analysed\t{n_wells}{CRLF}".encode("ascii"))
    write_batch_results(out / "Batchresults" / "NEO_Results_2008-09-18.txt", rows, cols, counts)
    return out
