"""Benchmark harness: each contender runs in a fresh Python process, timed and memory-measured from outside.

- wall time: the contender times its own work (imports and set-up excluded) and reports it on stdout as
  one `RESULT {json}` line, with per-phase times and counts;
- CPU time: user + system seconds of the process and every worker it started and waited for (`os.wait4`);
- peak memory: the largest sum of resident set sizes of the process and all its descendants, sampled
  from /proc every 20 ms (so both parse workers of hcs-import count), and the largest single process seen.
  A sum of RSS counts every page shared between a parent and its forked workers (libraries, the parent's
  heap at fork time) once per process, so the largest sum of proportional set sizes (PSS, from
  /proc/<pid>/smaps_rollup, sampled every ~0.25 s: shared pages split between their sharers) is
  reported beside it: the memory the run really took. (`ru_maxrss` is not used: Linux carries it over
  from the forking parent across exec.)
- the machine is shared: CPU time is reported beside wall time, since other load stretches wall time.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
SAMPLE_S = 0.02
# PSS costs the kernel a walk of every mapped page (~8 ms for a 550 MB process): read every 12th sample
# (~0.25 s) so the sampler stays a few percent of one core.
PSS_EVERY = 12
RESULT_PREFIX = "RESULT "


@dataclass
class Measurement:
    """One contender run."""

    name: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    max_process_rss_mb: float
    peak_pss_mb: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        phases = ", ".join(f"{k} {v:.2f} s" for k, v in self.phases.items())
        return (f"{self.name:<22} wall {self.wall_s:8.2f} s  cpu {self.cpu_s:8.2f} s  "
                f"peak RSS {self.peak_rss_mb:8.0f} MB (PSS {self.peak_pss_mb:.0f} MB; largest process "
                f"{self.max_process_rss_mb:.0f} MB)"
                + (f"  [{phases}]" if phases else ""))


def _children_map() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        out.setdefault(ppid, []).append(int(entry))
    return out


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, IndexError, ValueError):
        return 0


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return 0


def tree_rss_kb(root: int, with_pss: bool = True) -> tuple[int, int, int]:
    """Resident memory of a process and all its descendants (RSS sum, largest RSS, PSS sum), in KiB."""
    children = _children_map()
    total = largest = pss = 0
    stack = [root]
    while stack:
        pid = stack.pop()
        rss = _rss_kb(pid)
        total += rss
        largest = max(largest, rss)
        pss += _pss_kb(pid) if with_pss else 0
        stack.extend(children.get(pid, ()))
    return total, largest, pss


def run(name: str, script: str, *args: str, env: dict[str, str] | None = None) -> Measurement:
    """Run `python benchmarks/<script> args...` in a fresh process; measure it."""
    cmd = [sys.executable, str(HERE / script), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    peak = largest = peak_pss = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, largest, peak_pss
        tick = 0
        while not done.is_set():
            total, one, pss = tree_rss_kb(proc.pid, tick % PSS_EVERY == 0)
            tick += 1
            peak, largest, peak_pss = max(peak, total), max(largest, one), max(peak_pss, pss)
            done.wait(SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: {' '.join(cmd)} exited with {proc.returncode}")
    lines = [ln for ln in out.splitlines() if ln.startswith(RESULT_PREFIX)]
    if not lines:
        raise RuntimeError(f"{name}: no result line in its output:\n{out[-2000:]}")
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    return Measurement(
        name=name,
        wall_s=float(result["wall_s"]),
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=peak / 1024,
        max_process_rss_mb=largest / 1024,
        peak_pss_mb=peak_pss / 1024,
        phases={k: float(v) for k, v in result.get("phases", {}).items()},
        info=result.get("info", {}),
    )


REPEAT = 3  # runs of each contender by default: the machine is shared, and its load changes run to run


def fastest(contenders: dict[str, tuple[str, ...]], repeat: int = REPEAT) -> dict[str, Measurement]:
    """Each contender (name -> run() arguments) run `repeat` times, interleaved (a, b, a, b, ...) so a spell
    of load on the machine falls on both; the fastest run (wall) of each is kept, with its CPU time and
    phases, and the highest memory peaks of all its runs (memory does not get better by luck).

    Why: on a shared 2-core VM one contender's wall time varied 2x between runs minutes apart (pandas
    reading the same 1M-row file: 0.53 s and 1.08 s); a ratio of two single runs then says more about
    the neighbours than about the code."""
    runs: dict[str, list[Measurement]] = {k: [] for k in contenders}
    for i in range(max(1, repeat)):
        for key, (name, *args) in contenders.items():
            m = run(name, *args)
            print(f"  run {i + 1}/{repeat}: {m.line()}", flush=True)
            runs[key].append(m)
    out: dict[str, Measurement] = {}
    for key, ms in runs.items():
        best = min(ms, key=lambda m: m.wall_s)
        best.peak_rss_mb = max(m.peak_rss_mb for m in ms)
        best.peak_pss_mb = max(m.peak_pss_mb for m in ms)
        best.max_process_rss_mb = max(m.max_process_rss_mb for m in ms)
        best.info = {**best.info, "runs": len(ms), "walls_s": [round(m.wall_s, 3) for m in ms]}
        out[key] = best
    return out


def report(result: dict[str, Any]) -> None:
    """Print the one `RESULT` line a contender process hands back to the harness."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_gb, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def machine_line() -> str:
    """One line naming the machine a run's figures belong to (printed first, saved with every result)."""
    m = machine()
    load = ", ".join(f"{x:.1f}" for x in m["load_average"])
    return (f"MACHINE {m['cpu'] or 'unknown CPU'}, {m['cores']} cores, {m['memory_gb']} GB; Python {m['python']}; "
            f"{m['platform']}; load {load}; {m['date']}")


def ratio_line(label: str, num: Measurement, den: Measurement, num_s: float | None = None,
               den_s: float | None = None) -> str:
    """`RATIO label: wall ratio (a s / b s); cpu ratio` (CPU: whole processes, so imports included)."""
    a = num.wall_s if num_s is None else num_s
    b = den.wall_s if den_s is None else den_s
    return (f"RATIO {label}: {a / b:.2f}  (wall {a:.2f} s / {b:.2f} s; "
            f"cpu {num.cpu_s:.1f} s / {den.cpu_s:.1f} s = {num.cpu_s / den.cpu_s:.2f})")


def memory_line(m: Measurement) -> str:
    return (f"PEAK RSS {m.name}: {m.peak_rss_mb:.0f} MB (PSS {m.peak_pss_mb:.0f} MB; largest single process "
            f"{m.max_process_rss_mb:.0f} MB)")


def save(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")


def delimited_run(label: str, kind: str, folder: Path, files: list[Path], fmt: str, geometry: str,
                  argv_rows: int, repeat: int = REPEAT) -> int:
    """Floor (pandas reads `files`) vs hcs-import end to end on `folder` (fastest of `repeat` interleaved runs
    each), printed and saved as one run."""
    import shutil

    print(machine_line(), flush=True)
    size_mb = sum(f.stat().st_size for f in files) / 1e6
    print(f"files {', '.join(f.name for f in files)} ({size_mb:.0f} MB)", flush=True)
    out = WORK / "out" / folder.name
    shutil.rmtree(out, ignore_errors=True)
    best = fastest({"floor": ("floor (pandas)", "contenders.py", "csv_floor", *map(str, files)),
                    "hcs": ("hcs-import", "contenders.py", "hcs", str(folder), str(out), fmt, "0", geometry)},
                   repeat)
    floor, hcs = best["floor"], best["hcs"]
    print(floor.line(), hcs.line(), sep="\n", flush=True)
    print(f"\n{label}: {floor.info['rows']:,} rows, {size_mb:.0f} MB")
    lines = [
        machine_line(),
        ratio_line(f"{label} hcs-import / floor (parse only)", hcs, floor, num_s=hcs.phases["parse"]),
        ratio_line(f"{label} hcs-import / floor (end to end)", hcs, floor),
        f"RATIO {label} reference / hcs-import: n/a (omero-py populate_roi has no {label} reader)",
        memory_line(floor),
        memory_line(hcs),
    ]
    print("\n".join(lines), flush=True)
    save(WORK / f"results-{kind}-{argv_rows}.json", {
        "machine": machine(), "command": " ".join(sys.argv), "file_mb": size_mb,
        "results": {"floor": vars(floor), "hcs": vars(hcs)}, "lines": lines,
    })
    return 0


def generated(folder: Path, code: str, *args: str) -> Path:
    """`folder`, filled once by running `code` (with `folder` and `args` as sys.argv[1:]) in a fresh Python;
    a `.complete` mark says it finished, so an interrupted generation is redone."""
    import shutil

    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        subprocess.run([sys.executable, "-c", code, str(folder), *args], check=True)
        (folder / ".complete").touch()
    return folder
