#!/usr/bin/env python3
"""Build (once) and cache a zeroc-ice 3.6.5 wheel that works on Python 3.11+.

Why this exists: omero-py needs zeroc-ice 3.6.x, which PyPI ships only as an sdist whose C++
does not compile on Python 3.11: ``src/Slice.cpp`` includes the removed ``eval.h`` and
``IcePy::getFunction`` in ``src/Util.cpp`` reads ``PyThreadState->frame``, which is gone.
This script downloads the sdist from PyPI, applies those two fixes, compiles the ~200 C++ files
in parallel (setuptools compiles one extension's sources serially) and stores the wheel in a cache
directory outside the repository, so the ~10 CPU-minutes are paid once per machine.

Prints the path of the wheel on stdout (last line). Idempotent: a cached wheel is reused.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ICE_VERSION = "3.6.5"
DEFAULT_CACHE = Path(os.environ.get("HCS_IMPORT_CACHE", Path.home() / ".cache" / "hcs-import")) / "wheels"

# (file, old text, new text): each must match exactly once, or the build stops.
PATCHES: tuple[tuple[str, str, str], ...] = (
    ("src/Slice.cpp", "#include <eval.h>\n", ""),
    (
        "src/Util.cpp",
        "PyFrameObject *f = PyThreadState_GET()->frame;",
        "PyFrameObject *f = PyEval_GetFrame();",
    ),
)

# Runs setup.py with distutils' CCompiler.compile swapped for a thread-pooled one.
_PARALLEL_SETUP = r"""
import os, runpy, sys
from concurrent.futures import ThreadPoolExecutor
import setuptools  # noqa: F401  (installs the distutils shim)
from distutils import ccompiler

JOBS = int(os.environ.get("ICE_BUILD_JOBS", os.cpu_count() or 1))

def compile(self, sources, output_dir=None, macros=None, include_dirs=None, debug=0,
            extra_preargs=None, extra_postargs=None, depends=None):
    macros, objects, extra_postargs, pp_opts, build = self._setup_compile(
        output_dir, macros, include_dirs, sources, depends, extra_postargs)
    cc_args = self._get_cc_args(pp_opts, debug, extra_preargs)
    def one(obj):
        src, ext = build[obj]
        self._compile(obj, src, ext, cc_args, extra_postargs, pp_opts)
    with ThreadPoolExecutor(JOBS) as pool:
        list(pool.map(one, objects))
    return objects

ccompiler.CCompiler.compile = compile
sys.argv = ["setup.py", "bdist_wheel", "--dist-dir", sys.argv[1]]
runpy.run_path("setup.py", run_name="__main__")
"""


def cached_wheel(cache: Path) -> Path | None:
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    found = sorted(cache.glob(f"zeroc_ice-{ICE_VERSION}-{tag}-*.whl"))
    return found[0] if found else None


def apply_patches(src: Path) -> None:
    for rel, old, new in PATCHES:
        path = src / rel
        text = path.read_text(encoding="latin-1")
        if text.count(old) != 1:
            raise SystemExit(f"build_ice_wheel: {path}: expected exactly one {old!r}; sdist changed?")
        path.write_text(text.replace(old, new), encoding="latin-1")


def build(cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ice-build-") as tmp:
        work = Path(tmp)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             f"zeroc-ice=={ICE_VERSION}", "-d", str(work)],
            check=True, stdout=sys.stderr,
        )
        sdist = next(work.glob("zeroc-ice-*.tar.gz"))
        with tarfile.open(sdist) as tar:
            tar.extractall(work, filter="data")
        src = work / f"zeroc-ice-{ICE_VERSION}"
        apply_patches(src)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "setuptools", "wheel"],
                       check=True, stdout=sys.stderr)
        dist = work / "dist"
        subprocess.run([sys.executable, "-c", _PARALLEL_SETUP, str(dist)], cwd=src, check=True,
                       stdout=sys.stderr)
        built = next(dist.glob("*.whl"))
        target = cache / built.name
        # Move into place atomically so a killed build never leaves a truncated cached wheel.
        partial = target.with_suffix(".partial")
        partial.write_bytes(built.read_bytes())
        partial.replace(target)
        return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    wheel = cached_wheel(args.cache) or build(args.cache)
    print(wheel)


if __name__ == "__main__":
    main()
