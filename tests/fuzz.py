"""A seeded mutation harness over every registered format (used by tests/test_fuzz.py and `make fuzz`).

Each mutant is a small synthetic plate of one format with one file broken in one way a drop folder
sees: cut short, bytes flipped, NUL bytes, a 1 MB field, a number written the way no instrument writes
one, an enormous well number, a file deleted or renamed. It is imported in a fresh process (so a hang or
a memory bomb is caught by a time and memory limit, not by the test runner) and must end one of two ways:
exit 0 with a bundle whose every table reads back through omero-py's HdfStorage, or exit 2 with exactly
one line on stderr of at most 300 characters. Anything else (a traceback, another exit code, more
lines, a run over the limits) is a finding, reported with the seed that reproduces it.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hcs_import.parsers import registry
from hcs_import.parsers.base import SynthSpec

SPEC = SynthSpec(wells=96, fields=1, objects=2, measurements=4, populations=2, seed=11)
TIME_LIMIT_S = 30
MEMORY_LIMIT = 1 << 30  # peak resident memory allowed for one small mutant (1 GiB)
# A hard cap on address space, so a memory bomb fails inside its own process instead of taking the
# machine: far above MEMORY_LIMIT, because thread pools (pyarrow, BLAS) reserve address space they never use.
ADDRESS_SPACE = 8 << 30
MAX_LINE = 300
NON_NUMBERS = ("0x1A", "1_000", "#DIV/0!", "\u0661\u0662", "1e999999", "--5", "NaNa", "١٫٥")
TEXT_SUFFIXES = (".txt", ".csv", ".xml", ".xdce", ".res", ".mea", ".exp", ".plt", ".dye", ".dat", ".tsv")


@dataclass(frozen=True)
class Mutant:
    format: str
    kind: str
    file: str
    seed: int

    def label(self) -> str:
        return f"{self.format}:{self.kind}:{self.file}:seed={self.seed}"


def _files(plate: Path) -> list[Path]:
    return sorted(p for p in plate.rglob("*") if p.is_file())


def _text_files(plate: Path) -> list[Path]:
    return [p for p in _files(plate) if p.suffix.lower() in TEXT_SUFFIXES] or _files(plate)


def _truncate(path: Path, rnd: random.Random) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: rnd.randrange(0, max(1, len(data)))])


def _flip(path: Path, rnd: random.Random) -> None:
    data = bytearray(path.read_bytes())
    for _ in range(max(1, len(data) // 2000)):
        if data:
            data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
    path.write_bytes(bytes(data))


def _nul(path: Path, rnd: random.Random) -> None:
    data = bytearray(path.read_bytes())
    at = rnd.randrange(max(1, len(data)))
    path.write_bytes(bytes(data[:at]) + b"\x00" * rnd.randrange(1, 64) + bytes(data[at:]))


def _huge_field(path: Path, rnd: random.Random) -> None:
    data = path.read_bytes()
    at = _token_start(data, rnd)
    path.write_bytes(data[:at] + b"9" * 1_000_000 + data[at:])


def _token_start(data: bytes, rnd: random.Random) -> int:
    """A position just after a separator or quote in the middle part of the file (where values are)."""
    lo, hi = len(data) // 3, max(len(data) // 3 + 1, 2 * len(data) // 3)
    for _ in range(200):
        i = rnd.randrange(lo, hi) if hi > lo else 0
        if i > 0 and data[i - 1 : i] in (b"\t", b",", b'"', b";", b">"):
            return i
    return lo


def _bad_number(path: Path, rnd: random.Random) -> None:
    data = path.read_bytes()
    at = _token_start(data, rnd)
    end = at
    while end < len(data) and data[end : end + 1] not in (b"\t", b",", b'"', b";", b"<", b"\n", b"\r"):
        end += 1
    path.write_bytes(data[:at] + rnd.choice(NON_NUMBERS).encode() + data[end:])


def _huge_key(path: Path, rnd: random.Random) -> None:
    """An enormous number where a well, field or row number stands (the first number after a separator)."""
    data = path.read_bytes()
    at = _token_start(data, rnd)
    end = at
    while end < len(data) and data[end : end + 1].isdigit():
        end += 1
    if end == at:
        path.write_bytes(data[:at] + b"1" * 25 + data[at:])
    else:
        path.write_bytes(data[:at] + b"9" * 25 + data[end:])


def _delete(path: Path, rnd: random.Random) -> None:
    path.unlink()


def _rename(path: Path, rnd: random.Random) -> None:
    path.rename(path.with_name(f"renamed_{rnd.randrange(1000)}_{path.name}.bak"))


MUTATIONS: dict[str, Callable[[Path, random.Random], None]] = {
    "truncate": _truncate, "flip": _flip, "nul": _nul, "huge-field": _huge_field, "bad-number": _bad_number,
    "huge-key": _huge_key, "delete": _delete, "rename": _rename,
}


def generate(fmt: str, where: Path) -> Path:
    parser = registry.get(fmt)
    assert parser.synthesize is not None
    return parser.synthesize(where / fmt, SPEC)


def mutants(fmt: str, pristine: Path, n: int, seed: int) -> list[Mutant]:
    rnd = random.Random(f"{fmt}-{seed}")
    files = [str(p.relative_to(pristine)) for p in _text_files(pristine)]
    kinds = sorted(MUTATIONS)
    return [Mutant(fmt, kinds[i % len(kinds)], rnd.choice(files), rnd.randrange(1 << 30)) for i in range(n)]


def apply(mutant: Mutant, pristine: Path, where: Path) -> Path:
    plate = Path(shutil.copytree(pristine, where / pristine.name))
    MUTATIONS[mutant.kind](plate / mutant.file, random.Random(mutant.seed))
    return plate


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


@dataclass(frozen=True)
class Verdict:
    ok: bool
    how: str  # "imported", "refused" or what went wrong
    detail: str = ""


def run(mutant: Mutant, plate: Path, out: Path, env_extra: dict[str, str] | None = None) -> Verdict:
    """Import the mutant in a fresh process (with `env_extra` set) and judge how it ended."""
    cmd = [sys.executable, "-m", "hcs_import.cli", "plate", str(plate), "--out", str(out), "--no-report",
           "--format", mutant.format, "--workers", "1"]
    env = {**os.environ, "PYTHONWARNINGS": "default", **(env_extra or {})}
    with open(out.parent / "stderr.txt", "w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=_limits, env=env)
        try:
            proc.wait(timeout=TIME_LIMIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return Verdict(False, f"ran over {TIME_LIMIT_S} s")
        err.seek(0)
        stderr = err.read()
    peak = _peak_rss(proc.pid)
    if peak > MEMORY_LIMIT:
        return Verdict(False, f"peak memory {peak >> 20} MiB", stderr[-500:])
    return judge(proc.returncode, stderr, out)


def judge(returncode: int, stderr: str, out: Path) -> Verdict:
    """How a finished import ended: the rules of the module docstring."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    if returncode == 2:
        if len(lines) == 1 and lines[0].startswith("hcs-import: error: ") and len(lines[0]) <= MAX_LINE:
            return Verdict(True, "refused", lines[0])
        return Verdict(False, "refused badly", "\n".join(lines[-6:])[:2000])
    if returncode != 0:
        return Verdict(False, f"exit {returncode}", "\n".join(lines[-6:])[:2000])
    if lines:
        return Verdict(False, "imported but printed on stderr", "\n".join(lines[-6:])[:2000])
    return _check_bundle(out)


_RSS: dict[int, int] = {}


def _peak_rss(pid: int) -> int:
    """Peak resident bytes of the last waited-for child (Linux reports ru_maxrss in KiB)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = usage.ru_maxrss * 1024
    before = _RSS.get(0, 0)
    _RSS[0] = max(before, peak)
    return peak if peak > before else 0  # RUSAGE_CHILDREN is a running maximum: only a new peak is this child's


def _check_bundle(out: Path) -> Verdict:
    from omero_reader import read_table

    manifests = list(out.glob("*/manifest.json"))
    if len(manifests) != 1:
        return Verdict(False, "imported but no single bundle", str([str(m) for m in manifests]))
    manifest = json.loads(manifests[0].read_text())
    for entry in manifest["tables"]:
        try:
            served = read_table(manifests[0].parent / entry["path"])
        except Exception as exc:  # what OMERO's own reader cannot open is no bundle
            return Verdict(False, "HdfStorage cannot read the bundle", f"{entry['path']}: {type(exc).__name__}: {exc}")
        if served.rows != entry["rows"]:
            return Verdict(False, "bundle disagrees with its manifest", entry["path"])
    return Verdict(True, "imported", f"{len(manifest['tables'])} tables, {len(manifest['warnings'])} warnings")


def formats() -> list[str]:
    return sorted(name for name, p in registry.available().items() if p.synthesize is not None)


if __name__ == "__main__":  # `make fuzz`: the long run (run from the project root)
    sys.path.insert(0, str(Path(__file__).parent))
    import tempfile

    per_format = int(os.environ.get("FUZZ_MUTANTS", "250"))
    seed = int(os.environ.get("FUZZ_SEED", "1"))
    findings = 0
    with tempfile.TemporaryDirectory(prefix="hcs-fuzz-") as tmp:
        for fmt in formats():
            pristine = generate(fmt, Path(tmp) / "pristine")
            counts: dict[str, int] = {}
            for i, m in enumerate(mutants(fmt, pristine, per_format, seed)):
                work = Path(tmp) / f"{fmt}-{i}"
                verdict = run(m, apply(m, pristine, work), work / "out")
                counts[verdict.how] = counts.get(verdict.how, 0) + 1
                if not verdict.ok:
                    findings += 1
                    print(f"FINDING {m.label()}: {verdict.how}: {verdict.detail}", flush=True)
                shutil.rmtree(work, ignore_errors=True)
            print(f"{fmt}: {counts}", flush=True)
    print(f"{findings} findings")
    sys.exit(1 if findings else 0)
