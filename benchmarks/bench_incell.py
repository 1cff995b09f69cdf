"""InCell benchmark: floor vs omero-py populate_roi vs hcs-import on one large synthetic plate.

    .venv/bin/python benchmarks/bench_incell.py                 # 384 wells x 4 fields, ~1,000,000 objects
    .venv/bin/python benchmarks/bench_incell.py --objects 4000000 --skip-reference   # memory at 4M

The plate (an .xdce layout and an Investigator XML with 2 populations x 15 keys = 30 measurements per
object) is generated once with hcs-import's own generator into benchmarks/work/ and reused.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import harness

WELLS, ROWS, COLUMNS = 384, 16, 24


def plate_for(objects: int, fields: int, measurements: int, populations: int, seed: int) -> Path:
    """The synthetic plate for this size, generated once (hcs-import's InCell generator)."""
    per_field = max(1, round(objects / (WELLS * fields)))
    folder = harness.WORK / f"incell_{WELLS}w{fields}f_{per_field}o_{populations}x{measurements}m_s{seed}"
    done = folder / ".complete"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.perf_counter()
        # In a child process: this one stays small, so the contenders it forks start small too.
        cli = str(Path(sys.executable).parent / "hcs-import")
        subprocess.run([cli, "synth", "incell", str(folder), "--wells", str(WELLS),
                        "--fields", str(fields), "--objects", str(per_field), "--seed", str(seed),
                        "--measurements", str(measurements), "--populations", str(populations)], check=True)
        print(f"generated {folder.name} in {time.perf_counter() - t0:.1f} s", flush=True)
        done.touch()
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=1_000_000, help="objects on the plate (about)")
    ap.add_argument("--fields", type=int, default=4)
    ap.add_argument("--measurements", type=int, default=15, help="keys per population")
    ap.add_argument("--populations", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-reference", action="store_true", help="do not run omero-py populate_roi")
    ap.add_argument("--skip-floor", action="store_true")
    ap.add_argument("--roi-path", action="store_true", help="also time ROI frame -> omero-py model objects")
    ap.add_argument("--workers", type=int, default=0, help="hcs-import parse workers (0: one per core)")
    ap.add_argument("--repeat", type=int, default=harness.REPEAT, help="runs of floor and hcs-import (fastest kept)")
    args = ap.parse_args(argv)

    plate = plate_for(args.objects, args.fields, args.measurements, args.populations, args.seed)
    xml = next(plate.glob("*_analysis.xml"))
    size_mb = xml.stat().st_size / 1e6
    print(f"file {xml} ({size_mb:.0f} MB)", flush=True)
    out = harness.WORK / "out" / plate.name
    shutil.rmtree(out, ignore_errors=True)

    contenders = {} if args.skip_floor else {"floor": ("floor (lxml)", "contenders.py", "incell_floor", str(xml))}
    contenders["hcs"] = ("hcs-import", "contenders.py", "hcs", str(plate), str(out), "incell", str(args.workers))
    results: dict[str, harness.Measurement] = harness.fastest(contenders, args.repeat)
    for m in results.values():
        print(m.line(), flush=True)
    if not args.skip_reference:
        results["reference"] = harness.run("reference (omero-py)", "contenders.py", "incell_reference", str(xml),
                                           str(ROWS), str(COLUMNS), str(args.fields))
        print(results["reference"].line(), flush=True)
    if args.roi_path:
        bundle = results["hcs"].info["bundle"]
        results["roi_path"] = harness.run("roi path (omero-py)", "contenders.py", "roi_path", bundle)
        print(results["roi_path"].line(), flush=True)

    hcs = results["hcs"]
    objects = sum(v for k, v in hcs.info["tables"].items() if k in ("Cells", "Nuclei")) // max(1, args.populations)
    print(f"\nInCell: {objects:,} objects, {args.populations} populations x {args.measurements} measurements, "
          f"{size_mb:.0f} MB XML, {hcs.info['rois']:,} point ROIs")
    lines = [harness.machine_line()]
    if "floor" in results:
        floor = results["floor"]
        lines.append(harness.ratio_line("InCell hcs-import / floor (parse only)", hcs, floor,
                                        num_s=hcs.phases["parse"]))
        lines.append(harness.ratio_line("InCell hcs-import / floor (end to end)", hcs, floor))
    if "reference" in results:
        lines.append(harness.ratio_line("InCell reference / hcs-import (end to end)", results["reference"], hcs))
    lines += [harness.memory_line(m) for m in results.values() if m.name != "roi path (omero-py)"]
    if "roi_path" in results:
        r = results["roi_path"]
        lines.append(f"ROI PATH: {r.info['shapes']:,} points -> omero-py RoiI/PointI objects in {r.wall_s:.1f} s = "
                     f"{r.info['points_per_s']:,.0f} points/s")
    print("\n".join(lines), flush=True)
    harness.save(harness.WORK / f"results-incell-{objects}.json", {
        "machine": harness.machine(), "command": " ".join(sys.argv), "file_mb": size_mb, "objects": objects,
        "results": {k: vars(v) for k, v in results.items()}, "lines": lines,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
