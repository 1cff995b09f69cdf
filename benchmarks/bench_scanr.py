"""ScanR benchmark: floor (pandas reads the CSV) vs hcs-import on a 1,000,000-row ParameterData export.

    .venv/bin/python benchmarks/bench_scanr.py              # 1,000,000 rows x 20 columns, 384 wells x 4 fields

omero-py's populate_roi has no ScanR support, so there is no reference here. The export (tab-separated,
CRLF, ISO-8859-1, as ScanR Analysis writes it) is generated once with hcs-import's generator.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import harness

WELLS, FIELDS = 384, 4
BASE_COLUMNS = 16  # the generator's fixed columns (ids, well, position, shape, intensities, 2 gates)


def export_for(rows: int, columns: int, seed: int) -> Path:
    """A folder holding only ParameterData_Main.txt with `rows` objects and `columns` columns (made once)."""
    folder = harness.WORK / f"scanr_{rows}r_{columns}c_s{seed}"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        measurements = columns - BASE_COLUMNS + 10  # main_population adds measurements - 10 extra columns
        code = ("import sys; from pathlib import Path; from hcs_import.synth.scanr import write_parameter_data; "
                "write_parameter_data(Path(sys.argv[1]), int(sys.argv[2]), wells=int(sys.argv[3]), "
                "fields=int(sys.argv[4]), seed=int(sys.argv[5]), measurements=int(sys.argv[6]))")
        subprocess.run([sys.executable, "-c", code, str(folder / "ParameterData_Main.txt"), str(rows), str(WELLS),
                        str(FIELDS), str(seed), str(measurements)], check=True)
        (folder / ".complete").touch()
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--columns", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=harness.REPEAT, help="runs of each contender (fastest kept)")
    args = ap.parse_args(argv)

    folder = export_for(args.rows, args.columns, args.seed)
    return harness.delimited_run("ScanR", "scanr", folder, [folder / "ParameterData_Main.txt"], "scanr", "16x24",
                                 args.rows, args.repeat)

if __name__ == "__main__":
    sys.exit(main())
