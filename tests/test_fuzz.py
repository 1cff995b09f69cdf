"""Every registered format, mutated as drop folders break files (tests/fuzz.py): each mutant is imported in
a fresh process and must end with a bundle OMERO's HdfStorage reads, or one line of at most 300
characters with exit 2; never a traceback, a run over 30 s or a peak over 1 GiB.

Bounded in CI: one mutant of each kind per format (FUZZ_MUTANTS raises it); `make fuzz` runs 250 a format.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import fuzz

PER_FORMAT = int(os.environ.get("FUZZ_MUTANTS", str(len(fuzz.MUTATIONS))))
SEED = int(os.environ.get("FUZZ_SEED", "20261202"))


@pytest.mark.parametrize("fmt", fuzz.formats())
def test_mutants_end_cleanly(fmt: str, tmp_path: Path) -> None:
    pristine = fuzz.generate(fmt, tmp_path / "pristine")
    findings = []
    seen = set()
    for i, mutant in enumerate(fuzz.mutants(fmt, pristine, PER_FORMAT, SEED)):
        work = tmp_path / f"m{i}"
        verdict = fuzz.run(mutant, fuzz.apply(mutant, pristine, work), work / "out")
        seen.add(verdict.how)
        if not verdict.ok:
            findings.append(f"{mutant.label()}: {verdict.how}: {verdict.detail[:500]}")
    assert not findings, "\n".join(findings)
    assert seen <= {"imported", "refused"}


# Every file through the block reader (parsers/delimited_stream.py), in blocks of 4 KiB.
STREAMED = {"HCS_IMPORT_STREAM_BYTES": "0", "HCS_IMPORT_BLOCK_BYTES": "4096"}


@pytest.mark.parametrize("fmt", ["scanr", "incarta", "columbus"])
def test_streamed_mutants_end_cleanly(fmt: str, tmp_path: Path) -> None:
    pristine = fuzz.generate(fmt, tmp_path / "pristine")
    findings = []
    seen = set()
    for i, mutant in enumerate(fuzz.mutants(fmt, pristine, PER_FORMAT, SEED + 1)):
        work = tmp_path / f"m{i}"
        verdict = fuzz.run(mutant, fuzz.apply(mutant, pristine, work), work / "out", STREAMED)
        seen.add(verdict.how)
        if not verdict.ok:
            findings.append(f"{mutant.label()}: {verdict.how}: {verdict.detail[:500]}")
    assert not findings, "\n".join(findings)
    assert seen <= {"imported", "refused"}


def test_the_harness_catches_a_traceback(tmp_path: Path) -> None:
    """A mutant that makes the importer crash, or a too long error line, is a finding, not a pass."""
    plate = tmp_path / "p"
    plate.mkdir()
    (plate / "x.xml").write_text("<x/>")
    verdict = fuzz.run(fuzz.Mutant("incell", "none", "x.xml", 0), plate, tmp_path / "out")
    assert verdict.ok and verdict.how == "refused"  # not InCell: one clear line
    assert fuzz.judge(1, "Traceback (most recent call last):\nRuntimeError: boom\n", tmp_path / "none").how == "exit 1"
    assert not fuzz.judge(2, "hcs-import: error: " + "x" * 400, tmp_path / "none").ok  # one line, but too long
