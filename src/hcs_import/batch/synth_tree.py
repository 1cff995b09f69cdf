"""A generated tree of synthetic plates of every format that has a generator, for tests and demos.

Plates go two levels deep (ROOT/screen<k>/<format>_<nn>/) so discovery has containers to walk through.
Each plate gets its own plate name (two plates with one name are a batch error, by design). With
`corrupt`, that many InCell plates get their analysis XML cut in half: a realistic bad plate (a copy
interrupted mid-file) that detection still recognises but parsing rejects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..parsers import registry
from ..parsers.base import SynthSpec

SMALL = SynthSpec(wells=96, fields=1, objects=3, measurements=4, populations=2)


@dataclass(frozen=True)
class TreePlate:
    path: Path
    format: str
    corrupt: bool


def generators() -> dict[str, registry.FormatParser]:
    """Every loadable format with a synthetic-plate generator."""
    return {name: p for name, p in registry.available().items() if p.synthesize is not None}


def _uniquify(folder: Path, tag: str) -> Path:
    """Synthetic MIAS experiments always hold plate `001-MIAS0001`: rename it after the tree plate."""
    for template in folder.glob("*/Nugenesistemplate.txt"):
        plate = template.parent
        number = plate.name.split("-", 1)[0]
        target = plate.with_name(f"{number}-{tag}")
        plate.rename(target)
        return target
    return folder


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
    for i in range(plates):
        bad = i < corrupt
        fmt = "incell" if bad else names[i % len(names)]
        folder = root / f"screen{i % 3}" / f"{fmt}_{i:02d}"
        gens[fmt].synthesize(folder, replace(spec, seed=spec.seed + i))  # type: ignore[misc]
        _uniquify(folder, f"{fmt.upper()}{i:04d}")
        if bad:
            corrupt_plate(folder)
        out.append(TreePlate(folder, fmt, bad))
    return out
