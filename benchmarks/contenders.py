"""The contenders the benchmarks compare; each runs in its own process: `python contenders.py NAME ARGS...`.

Every contender times its own work only (imports excluded) and prints one `RESULT {json}` line
(see harness.py), which the benchmark script reads while it measures the process from outside.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from harness import report

warnings.simplefilter("ignore")  # plug-ins of other formats that fail to load say so on every import


def incell_floor(xml: str) -> None:
    """Only reading: lxml iterparse over every WellData, each freed as read (the streaming idiom), no work."""
    from lxml import etree

    t0 = time.perf_counter()
    n = 0
    for _, el in etree.iterparse(xml, events=("end",), tag="WellData", huge_tree=True):
        n += 1
        el.clear()
        parent = el.getparent()
        while el.getprevious() is not None:
            del parent[0]
    report({"wall_s": time.perf_counter() - t0, "info": {"welldata": n}})


def csv_floor(*files: str) -> None:
    """Only reading: pandas reads every delimited file (C engine, types inferred; after Harmony's [Data] line),
    nothing else."""
    import pandas as pd

    t0 = time.perf_counter()
    rows = 0
    for f in files:
        with open(f, encoding="utf-8", errors="replace") as fh:
            head = fh.read(65536)
        sep = "\t" if head.count("\t") >= head.count(",") else ","
        lines = head.splitlines()
        skip = lines.index("[Data]") + 1 if "[Data]" in lines else 0  # Harmony's [General] block
        rows += len(pd.read_csv(f, sep=sep, engine="c", low_memory=False, encoding_errors="replace",
                                skiprows=skip))
    report({"wall_s": time.perf_counter() - t0, "info": {"rows": rows}})


def mias_floor(folder: str) -> None:
    """Only reading: pandas reads every detail file (tab-separated, after its parameter preamble)."""
    import pandas as pd

    t0 = time.perf_counter()
    rows = files = 0
    for f in sorted(Path(folder).glob("*_detail_*.txt")):
        with open(f, encoding="utf-8", errors="replace") as fh:
            lines = fh.read(16384).splitlines()[:-1]
        header = max(i for i, ln in enumerate(lines) if ln.count("\t") >= 2 and not _numeric_row(ln))
        rows += len(pd.read_csv(f, sep="\t", skiprows=header, engine="c", encoding_errors="replace"))
        files += 1
    report({"wall_s": time.perf_counter() - t0, "info": {"rows": rows, "files": files}})


def _numeric_row(line: str) -> bool:
    try:
        [float(x) for x in line.split("\t") if x.strip()]
    except ValueError:
        return False
    return True


def incell_reference(xml: str, rows: str, columns: str, fields: str) -> None:
    """omero-py populate_roi: parse() plus its ROI building, stand-in services (see reference.py)."""
    import reference

    run = reference.run_incell(Path(xml), int(rows), int(columns), int(fields))
    report({"wall_s": run.total_s, "phases": {"parse": run.parse_s, "rois": run.rois_s},
            "info": {"rows": run.rows, "rois": run.rois}})


def mias_reference(results: str, rows: str, columns: str) -> None:
    """omero-py populate_roi on MIAS detail files: parse() plus its ROI building."""
    import reference

    run = reference.run_mias(Path(results), int(rows), int(columns))
    report({"wall_s": run.total_s, "phases": {"parse": run.parse_s, "rois": run.rois_s},
            "info": {"rows": run.rows, "rois": run.rois}})


def hcs(path: str, out: str, format_name: str, workers: str = "0", geometry: str = "") -> None:
    """hcs-import end to end: parse (tables + ROI frame) and the local bundle written (.h5, parquet)."""
    from hcs_import.parsers.base import ParseOptions
    from hcs_import.pipeline import parse_plate
    from hcs_import.writers.bundle import write_bundle

    rows_cols = tuple(int(x) for x in geometry.split("x")) if geometry else None
    options = ParseOptions(workers=int(workers) or None, plate_geometry=rows_cols)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    analysis = parse_plate(Path(path), options, format_name)
    t1 = time.perf_counter()
    bundle = write_bundle(analysis, Path(out))
    t2 = time.perf_counter()
    report({"wall_s": t2 - t0, "phases": {"parse": t1 - t0, "write": t2 - t1},
            "info": {"tables": {t.name: t.rows for t in analysis.tables}, "rois": len(analysis.rois),
                     "bundle": str(bundle)}})


def roi_path(bundle: str, limit: str = "0") -> None:
    """hcs-import's upload ROI path: rois.parquet streamed a row group at a time (scan_rois, plans) into
    omero-py model objects in batches of 1,000, as save_rois hands them to saveAndReturnIds (no server).

    Image ids: one per (well, field), as a real plate resolves them."""
    import numpy as np
    import omero.clients  # noqa: F401

    from hcs_import.omero.rois import ROI_BATCH, batches, build_rois, population_colours, scan_rois

    def lookup(rows: np.ndarray, cols: np.ndarray, fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = (rows.astype(np.int64) * 100 + cols) * 100 + fields + 1
        return ids, np.zeros(len(ids), dtype=bool)

    stop_at = int(limit) or None
    t0 = time.perf_counter()
    source = scan_rois(Path(bundle) / "rois.parquet", lookup)
    colours = population_colours([p.population for p in source.populations])
    made = shapes = 0
    for plan, image_ids in source.plans():
        for start, stop in batches(plan.count, ROI_BATCH):
            rois = build_rois(plan, image_ids, colours[plan.population], "bench", start, stop)
            made += len(rois)
            shapes += int(plan.starts[stop] - plan.starts[start])
        if stop_at and shapes >= stop_at:
            break
    wall = time.perf_counter() - t0
    report({"wall_s": wall, "info": {"rois": made, "shapes": shapes, "points_per_s": shapes / wall}})


CONTENDERS: dict[str, Callable[..., None]] = {
    "incell_floor": incell_floor,
    "csv_floor": csv_floor,
    "mias_floor": mias_floor,
    "incell_reference": incell_reference,
    "mias_reference": mias_reference,
    "hcs": hcs,
    "roi_path": roi_path,
}

if __name__ == "__main__":
    CONTENDERS[sys.argv[1]](*sys.argv[2:])
