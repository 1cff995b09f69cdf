"""IN Carta benchmark: floor (pandas reads the CSV) vs hcs-import on a 1,000,000-object per-object export.

    .venv/bin/python benchmarks/bench_incarta.py                  # 1,000,000 objects, 384 wells x 4 fields
    .venv/bin/python benchmarks/bench_incarta.py --rows 4000000   # memory must stay about the same

omero-py's populate_roi has no IN Carta reader, so there is no reference here. The export (comma-separated,
CRLF, UTF-8, two populations with centres and boxes, as IN Carta writes it) is generated once with
hcs-import's generator, a million rows at a time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import harness

WELLS, FIELDS, PER_PART = 384, 4, 1_000_000
NAME = "bench Object Data.csv"


def export_for(rows: int, measurements: int, seed: int) -> Path:
    """A folder holding one IN Carta object CSV of about `rows` objects (made once)."""
    folder = harness.WORK / f"incarta_{rows}r_{measurements}m_s{seed}"
    code = ("import sys; from pathlib import Path; from hcs_import.parsers.base import SynthSpec; "
            "from hcs_import.synth.incarta import objects_frame; "
            "out, rows, seed, m = Path(sys.argv[1]) / sys.argv[5], int(sys.argv[2]), int(sys.argv[3]), "
            "int(sys.argv[4]); "
            "parts = max(1, round(rows / 1_000_000)); "
            "[objects_frame(SynthSpec(wells=384, fields=4, objects=rows // parts // 1536, populations=2, "
            "measurements=m, seed=seed + i), 16, 24, 'bench').to_csv(out, mode='a' if i else 'w', "
            "header=not i, index=False, lineterminator='\\r\\n') for i in range(parts)]")
    return harness.generated(folder, code, str(rows), str(seed), str(measurements), NAME)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=PER_PART)
    ap.add_argument("--measurements", type=int, default=10, help="measurements per population")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=harness.REPEAT, help="runs of each contender (fastest kept)")
    args = ap.parse_args(argv)
    folder = export_for(args.rows, args.measurements, args.seed)
    return harness.delimited_run("IN Carta", "incarta", folder, [folder / NAME], "incarta", "16x24",
                                 args.rows, args.repeat)


if __name__ == "__main__":
    sys.exit(main())
