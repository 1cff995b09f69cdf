"""ROI path benchmark: 1,000,000 points of a bundle's ROI frame -> omero-py model objects ready to save.

    .venv/bin/python benchmarks/bench_rois.py                  # the 1M-object InCell bundle (bench_incell.py)
    .venv/bin/python benchmarks/bench_rois.py --bundle DIR --points 200000

Times hcs-import's own upload path (hcs_import.omero.rois: plan_rois, then build_rois in batches of
1,000, exactly as save_rois hands them to saveAndReturnIds), without a server.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import harness


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = next(iter(sorted((harness.WORK / "out").glob("incell_384w4f_651o_*/*/rois.parquet"))), None)
    ap.add_argument("--bundle", type=Path, default=default.parent if default else None)
    ap.add_argument("--points", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    if args.bundle is None:
        ap.error("no bundle: run bench_incell.py first or give --bundle")
    m = harness.run("roi path (omero-py)", "contenders.py", "roi_path", str(args.bundle), str(args.points))
    print(m.line())
    line = (f"ROI PATH: {m.info['shapes']:,} points -> omero-py RoiI/PointI objects in {m.wall_s:.1f} s = "
            f"{m.info['points_per_s']:,.0f} points/s (cpu {m.cpu_s:.1f} s; peak RSS {m.peak_rss_mb:.0f} MB)")
    print(line)
    harness.save(harness.WORK / f"results-rois-{m.info['shapes']}.json",
                 {"machine": harness.machine(), "command": " ".join(sys.argv), "result": vars(m), "lines": [line]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
