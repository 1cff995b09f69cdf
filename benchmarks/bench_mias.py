"""MIAS benchmark: floor vs omero-py populate_roi vs hcs-import on a 384-well plate of detail files.

    .venv/bin/python benchmarks/bench_mias.py               # 384 wells, ~500,000 NEO objects

The experiment (template, tiles, one tab-separated `Well<nnnn>_..._detail_<ts>.txt` per well, the run's
log) is generated once with hcs-import's MIAS generator. All contenders read the same detail files:
the floor has pandas read each one (after its parameter preamble), the reference is populate_roi's
MIAS context (its parse and its ellipse ROI building), hcs-import parses the experiment and writes it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import harness

WELLS, ROWS, COLUMNS = 384, 16, 24


def experiment_for(objects: int, seed: int) -> Path:
    """The synthetic MIAS experiment, one NEO analysis run (no MNU run), generated once."""
    per_well = max(1, round(objects / WELLS))
    folder = harness.WORK / f"mias_{WELLS}w_{per_well}o_s{seed}"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        cli = str(Path(sys.executable).parent / "hcs-import")
        subprocess.run([cli, "synth", "mias", str(folder), "--wells", str(WELLS), "--fields", "1",
                        "--objects", str(per_well), "--seed", str(seed), "--populations", "1"], check=True)
        (folder / ".complete").touch()
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=500_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--repeat", type=int, default=harness.REPEAT, help="runs of floor and hcs-import (fastest kept)")
    args = ap.parse_args(argv)

    folder = experiment_for(args.objects, args.seed)
    results_dir = next(folder.glob("*/results"))
    details = sorted(results_dir.glob("*_detail_*.txt"))
    size_mb = sum(p.stat().st_size for p in details) / 1e6
    print(f"experiment {folder} ({len(details)} detail files, {size_mb:.0f} MB)", flush=True)
    out = harness.WORK / "out" / folder.name
    shutil.rmtree(out, ignore_errors=True)

    results = harness.fastest({"floor": ("floor (pandas)", "contenders.py", "mias_floor", str(results_dir)),
                               "hcs": ("hcs-import", "contenders.py", "hcs", str(folder), str(out), "mias")},
                              args.repeat)
    print(results["floor"].line(), results["hcs"].line(), sep="\n", flush=True)
    if not args.skip_reference:
        results["reference"] = harness.run("reference (omero-py)", "contenders.py", "mias_reference",
                                           str(results_dir), str(ROWS), str(COLUMNS))
        print(results["reference"].line(), flush=True)

    floor, hcs = results["floor"], results["hcs"]
    print(f"\nMIAS: {floor.info['rows']:,} objects in {floor.info['files']} detail files, {size_mb:.0f} MB")
    lines = [
        harness.machine_line(),
        harness.ratio_line("MIAS hcs-import / floor (parse only)", hcs, floor, num_s=hcs.phases["parse"]),
        harness.ratio_line("MIAS hcs-import / floor (end to end)", hcs, floor),
    ]
    if "reference" in results:
        lines.append(harness.ratio_line("MIAS reference / hcs-import (end to end)", results["reference"], hcs))
    lines += [harness.memory_line(m) for m in results.values()]
    print("\n".join(lines), flush=True)
    harness.save(harness.WORK / f"results-mias-{floor.info['rows']}.json", {
        "machine": harness.machine(), "command": " ".join(sys.argv), "detail_mb": size_mb,
        "results": {k: vars(v) for k, v in results.items()}, "lines": lines,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
