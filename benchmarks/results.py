"""Write RESULTS.md from the saved runs (benchmarks/work/results-*.json): every figure as the run printed it,
under the machine line of the run that printed it. Nothing is typed in by hand.

    .venv/bin/python benchmarks/results.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import harness

# sections, in this order; sizes ascending within
ORDER = ("incell", "scanr", "incarta", "columbus", "mias", "rois", "upload")
TITLES = {
    "incell": "InCell (Investigator XML): hcs-import end to end vs the lxml floor vs populate_roi",
    "scanr": "ScanR (ParameterData export): hcs-import end to end vs pandas read_csv",
    "incarta": "IN Carta (object CSV): hcs-import end to end vs pandas read_csv",
    "columbus": "Columbus / Harmony (object export): hcs-import end to end vs pandas read_csv",
    "mias": "MIAS (detail files): hcs-import end to end vs pandas vs populate_roi",
    "rois": "ROI building for upload: hcs-import vs populate_roi, same plate, same run",
    "upload": "Table upload through omero-py's real OMERO.tables servant on loopback",
}


def _key(path: Path) -> tuple[int, int]:
    kind, _, size = path.stem.removeprefix("results-").partition("-")
    return (ORDER.index(kind) if kind in ORDER else len(ORDER), int(size) if size.isdigit() else 0)


def render(work: Path) -> str:
    out = [
        "# Benchmark results",
        "",
        "Written by `benchmarks/results.py` from the runs saved in `benchmarks/work/results-*.json`; how each is",
        "measured and how to rerun it: [README.md](README.md). Each block is one run, on the machine its",
        "`MACHINE` line names; ratios compare contenders of the same run only. Wall times on a shared machine",
        "stretch with other load, so every ratio line also gives the CPU-time ratio (all processes of each side).",
        "",
    ]
    section = None
    for path in sorted(work.glob("results-*.json"), key=_key):
        data = json.loads(path.read_text(encoding="utf-8"))
        kind = path.stem.removeprefix("results-").partition("-")[0]
        if kind != section:
            section = kind
            out += [f"## {TITLES.get(kind, kind)}", ""]
        lines = [ln for ln in data.get("lines", []) if not ln.startswith("MACHINE")]
        m = data.get("machine", {})
        machine = (f"MACHINE {m.get('cpu') or 'unknown CPU'}, {m.get('cores')} cores, {m.get('memory_gb')} GB; "
                   f"Python {m.get('python')}; load {', '.join(f'{x:.1f}' for x in m.get('load_average', []))}; "
                   f"{m.get('date')}")
        out += [f"`{data.get('command', '')}`", "", "```", machine, *lines, "```", ""]
    return "\n".join(out)


def main() -> int:
    text = render(harness.WORK)
    (harness.HERE / "RESULTS.md").write_text(text, encoding="utf-8")
    print(f"wrote {harness.HERE / 'RESULTS.md'} ({text.count('```') // 2} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
