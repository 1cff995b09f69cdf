"""Table-upload benchmark: one bundle table through omero-py's real OMERO.tables servant on loopback.

    .venv/bin/python benchmarks/bench_upload.py                 # ScanR Main table, 1,000,000 rows x 30 columns
    .venv/bin/python benchmarks/bench_upload.py --rows 4000000  # memory at 4M rows

Contenders (upload_contenders.py, each in a fresh process, all against the same servant code):
- hcs-import server mode: `create_server_table` (initialize with empty columns, addData batches);
- hcs-import file mode: `upload_table_file` (the .h5 copied with ids filled, sent as bytes), then the
  servant opens the uploaded file and counts its rows;
- omero2pandas `create_table` (what `upload_table` calls) on the same rows as a DataFrame, read into
  memory before its clock starts; skipped with a line saying so when omero2pandas is not installed
  (`pip install omero2pandas`).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import harness
from bench_scanr import export_for


def table_for(rows: int) -> Path:
    """The Main.h5 of the ScanR bundle for `rows` objects (export and bundle made once)."""
    folder = export_for(rows, 20, 0)
    out = harness.WORK / "out-upload" / folder.name
    found = sorted(out.glob("*/Main.h5"))
    if found:
        return found[0]
    harness.run("hcs-import (bundle)", "contenders.py", "hcs", str(folder), str(out), "scanr", "0", "16x24")
    return sorted(out.glob("*/Main.h5"))[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    print(harness.machine_line(), flush=True)
    h5 = table_for(args.rows)
    results: dict[str, harness.Measurement] = {}
    names = {"server": "hcs-import server mode", "file": "hcs-import file mode", "omero2pandas": "omero2pandas"}
    lines = [harness.machine_line()]
    for key, name in names.items():
        if key == "omero2pandas" and importlib.util.find_spec("omero2pandas") is None:
            lines.append("omero2pandas: not installed (pip install omero2pandas), not run")
            continue
        results[key] = m = harness.run(name, "upload_contenders.py", key, str(h5))
        print(m.line(), flush=True)
    first = next(iter(results.values()))
    lines.append(f"TABLE UPLOAD {first.info['rows']:,} rows x {first.info['columns']} columns through the real "
                 "OMERO.tables servant (loopback)")
    for m in results.values():
        lines.append(f"  {m.name}: {m.info['rows_per_s']:,.0f} rows/s (peak RSS {m.peak_rss_mb:.0f} MB, "
                     f"PSS {m.peak_pss_mb:.0f} MB)")
    if "omero2pandas" in results:
        o2p = results["omero2pandas"]
        for key in ("server", "file"):
            m = results[key]
            lines.append(f"RATIO table upload rate {m.name} / omero2pandas: "
                         f"{m.info['rows_per_s'] / o2p.info['rows_per_s']:.2f}")
    print("\n".join(lines), flush=True)
    harness.save(harness.WORK / f"results-upload-{args.rows}.json", {
        "machine": harness.machine(), "command": " ".join(sys.argv),
        "results": {k: vars(v) for k, v in results.items()}, "lines": lines})
    return 0


if __name__ == "__main__":
    sys.exit(main())
