"""A generated tree of synthetic plates of every format that has a generator, for tests and demos.

Plates go two levels deep (ROOT/screen<k>/<format>_<nn>/) so discovery has containers to walk through.
Each plate gets its own plate name (two plates with one name are a batch error, by design). With
`corrupt`, that many InCell plates get their analysis XML cut in half: a realistic bad plate (a copy
interrupted mid-file) that detection still recognises but parsing rejects.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from ..parsers import registry
from ..parsers.base import FormatParser, SynthSpec

SMALL = SynthSpec(wells=96, fields=1, objects=3, measurements=4, populations=2)


@dataclass(frozen=True)
class TreePlate:
    path: Path
    format: str
    corrupt: bool


def generators() -> dict[str, FormatParser]:
    """Every loadable format with a synthetic-plate generator."""
    return {name: p for name, p in registry.available().items() if p.synthesize is not None}


# Generators whose plate name is fixed, not the folder's: the name, replaced in place by one of the same
# length (binary files such as .flex TIFFs keep their offsets). SynthSpec has no plate name (yet).
FIXED_NAMES = {"flex": b"FlexPlate01", "columbus": b"ColumbusPlate01"}


def _uniquify(folder: Path, fmt: str, i: int) -> None:
    """Give the plate at `folder` a name of its own (MIAS: the plate folder; Flex, Columbus: the name in its files)."""
    for template in folder.glob("*/Nugenesistemplate.txt"):  # MIAS experiments always hold `001-MIAS0001`
        plate = template.parent
        plate.rename(plate.with_name(f"{plate.name.split('-', 1)[0]}-{fmt.upper()}{i:04d}"))
    fixed = FIXED_NAMES.get(fmt)
    if fixed is None:
        return
    unique = f"{fmt.upper()}{i:0{len(fixed) - len(fmt)}d}".encode()
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if fixed in data:
                path.write_bytes(data.replace(fixed, unique))


def corrupt_plate(folder: Path) -> Path:
    """Cut every analysis XML of an InCell plate in half; returns the first file cut."""
    cut = sorted(folder.rglob("*_analysis.xml"))
    if not cut:
        raise ValueError(f"{folder}: no InCell analysis XML to corrupt")
    for path in cut:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return cut[0]


def write_tree(root: Path, plates: int = 20, spec: SynthSpec = SMALL, corrupt: int = 1,
               formats: list[str] | None = None) -> list[TreePlate]:
    """Write `plates` plates cycling through `formats` (default: all generators); returns them."""
    gens = generators()
    names = formats or list(gens)
    if corrupt and "incell" not in gens:
        raise ValueError("a corrupt plate needs the incell generator")
    out: list[TreePlate] = []
    broken: set[str] = set()
    for i in range(plates):
        bad = i < corrupt
        while True:
            usable = [n for n in names if n not in broken]
            if not usable:
                raise ValueError("no format generator works")
            fmt = "incell" if bad else usable[i % len(usable)]
            folder = root / f"screen{i % 3}" / f"{fmt}_{i:02d}"
            try:
                gens[fmt].synthesize(folder, replace(spec, seed=spec.seed + i))
                break
            except Exception as exc:  # a generator still being written must not stop the others
                if fmt == "incell":
                    raise
                warnings.warn(f"synthetic {fmt} plate failed, format left out: {exc}", stacklevel=2)
                broken.add(fmt)
                shutil.rmtree(folder, ignore_errors=True)
        _uniquify(folder, fmt, i)
        if bad:
            corrupt_plate(folder)
        out.append(TreePlate(folder, fmt, bad))
    return out
