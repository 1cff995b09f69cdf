"""Columbus / Harmony benchmark: floor (pandas reads the object export) vs hcs-import on a 1,000,000-object
`Objects_Population - Nuclei.txt`.

    .venv/bin/python benchmarks/bench_columbus.py                  # 1,000,000 objects, 384 wells x 4 fields
    .venv/bin/python benchmarks/bench_columbus.py --rows 4000000   # memory must stay about the same

omero-py's populate_roi has no Columbus reader, so there is no reference here. The export ([General] block,
[Data] line, tab-separated, CRLF, a trailing tab on every line, bounding boxes, as Harmony writes it) is
generated once with hcs-import's generator.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import harness

NAME = "Objects_Population - Nuclei.txt"


def export_for(rows: int, measurements: int, seed: int) -> Path:
    """A folder holding one Harmony object export of about `rows` objects (made once)."""
    folder = harness.WORK / f"columbus_{rows}r_{measurements}m_s{seed}"
    code = ("import sys; from pathlib import Path; import numpy as np; "
            "from hcs_import.parsers.base import SynthSpec; from hcs_import.synth.columbus import write_objects; "
            "out, rows, seed, m = Path(sys.argv[1]) / sys.argv[5], int(sys.argv[2]), int(sys.argv[3]), "
            "int(sys.argv[4]); "
            "write_objects(out, 'Nuclei', SynthSpec(wells=384, fields=4, objects=rows // 1536, "
            "measurements=m, seed=seed), 16, 24, np.random.default_rng(seed))")
    return harness.generated(folder, code, str(rows), str(seed), str(measurements), NAME)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--measurements", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=harness.REPEAT, help="runs of each contender (fastest kept)")
    args = ap.parse_args(argv)
    folder = export_for(args.rows, args.measurements, args.seed)
    return harness.delimited_run("Columbus", "columbus", folder, [folder / NAME], "columbus", "16x24",
                                 args.rows, args.repeat)


if __name__ == "__main__":
    sys.exit(main())
