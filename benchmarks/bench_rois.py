"""ROI path benchmark: building ROIs for upload, hcs-import against omero-py's populate_roi, one run.

    .venv/bin/python benchmarks/bench_rois.py                      # 100,000-object InCell plate (200,996 points)
    .venv/bin/python benchmarks/bench_rois.py --memory 1000000     # also: peak memory at 1M objects

Both sides build the same points of the same InCell plate into omero-py model objects ready to save,
without a server:
- reference: omero-py's populate_roi (`parse_and_populate_roi`, its own batches of 1,000 through its
  thread pool), timed by its ROI phase alone (its parse is not counted);
- hcs-import: the upload path, rois.parquet streamed a row group at a time (`scan_rois`, `plans`) and
  `build_rois` in batches of 1,000, as `save_rois` hands them to saveAndReturnIds.
Printed as points per second each, and their ratio. With --memory, the hcs-import ROI path also runs on a
plate of that many objects: its peak memory beside the small plate's shows whether memory grows with it.
"""

from __future__ import annotations

import argparse
import shutil
import sys

import harness
from bench_incell import COLUMNS, ROWS, plate_for


def bundle_for(objects: int) -> str:
    """The plate's hcs-import bundle (made once by the hcs contender)."""
    plate = plate_for(objects, 4, 15, 2, 0)
    out = harness.WORK / "out-rois" / plate.name
    found = sorted(out.glob("*/rois.parquet"))
    if found:
        return str(found[0].parent)
    shutil.rmtree(out, ignore_errors=True)
    m = harness.run("hcs-import (bundle)", "contenders.py", "hcs", str(plate), str(out), "incell", "0")
    return str(m.info["bundle"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--memory", type=int, default=0, help="also run the hcs-import ROI path at this many objects")
    args = ap.parse_args(argv)
    print(harness.machine_line(), flush=True)
    plate = plate_for(args.objects, 4, 15, 2, 0)
    xml = next(plate.glob("*_analysis.xml"))
    bundle = bundle_for(args.objects)
    ref = harness.run("reference (populate_roi)", "contenders.py", "incell_reference", str(xml), str(ROWS),
                      str(COLUMNS), "4")
    print(ref.line(), flush=True)
    hcs = harness.run("hcs-import ROI path", "contenders.py", "roi_path", bundle)
    print(hcs.line(), flush=True)
    ref_rate = ref.info["rois"] / ref.phases["rois"]
    hcs_rate = hcs.info["points_per_s"]
    lines = [
        harness.machine_line(),
        f"ROI BUILD reference (populate_roi): {ref.info['rois']:,} points in {ref.phases['rois']:.2f} s = "
        f"{ref_rate:,.0f} points/s",
        f"ROI BUILD hcs-import: {hcs.info['shapes']:,} points in {hcs.wall_s:.2f} s = {hcs_rate:,.0f} points/s "
        f"(peak RSS {hcs.peak_rss_mb:.0f} MB, PSS {hcs.peak_pss_mb:.0f} MB)",
        f"RATIO ROI build rate hcs-import / reference: {hcs_rate / ref_rate:.2f}",
    ]
    results = {"reference": vars(ref), "hcs": vars(hcs)}
    if args.memory:
        big = harness.run("hcs-import ROI path (large)", "contenders.py", "roi_path", bundle_for(args.memory))
        print(big.line(), flush=True)
        results["hcs_large"] = vars(big)
        lines.append(f"ROI PATH MEMORY: {hcs.info['shapes']:,} points peak RSS {hcs.peak_rss_mb:.0f} MB (PSS "
                     f"{hcs.peak_pss_mb:.0f}); {big.info['shapes']:,} points peak RSS {big.peak_rss_mb:.0f} MB "
                     f"(PSS {big.peak_pss_mb:.0f}); ratio {big.peak_rss_mb / hcs.peak_rss_mb:.2f} for "
                     f"{big.info['shapes'] / hcs.info['shapes']:.1f}x the points; "
                     f"{big.info['points_per_s']:,.0f} points/s")
    print("\n".join(lines), flush=True)
    harness.save(harness.WORK / f"results-rois-{args.objects}.json",
                 {"machine": harness.machine(), "command": " ".join(sys.argv), "results": results, "lines": lines})
    return 0


if __name__ == "__main__":
    sys.exit(main())
