"""The parser interface: what a format plug-in provides to the core."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Literal

from ..model import PlateAnalysis

# Called with (done, total) in bytes of input read so far; total may be 0 when unknown.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ParseOptions:
    """Options every parser accepts (a parser ignores those that do not apply to its format).

    bad_values: "error" stops at the first value that is not a number where a number is expected
    (naming file and place); "nan" stores it as NaN and counts it in the manifest's warnings.
    """

    plate_geometry: tuple[int, int] | None = None
    bad_values: Literal["error", "nan"] = "error"
    rois: bool = True
    workers: int | None = None
    column_map: Path | None = None
    progress: Progress | None = None
    # For a folder holding the exports of several plates: the one plate to read. Without it such a
    # folder is an error that lists the plates found (never a silent merge).
    source_plate: str | None = None
    # A plate map CSV (well, then compound, concentration, control, ...): not read by the parsers, merged
    # into the result by the pipeline (platemap.py).
    platemap: Path | None = None
    # Write the HTML report into the bundle (pipeline-level too; see report.py).
    report: bool = True


@dataclass(frozen=True)
class SynthSpec:
    """What `hcs-import synth` asks of a format's generator. `objects` is per field."""

    wells: int = 96
    fields: int = 2
    objects: int = 50
    seed: int = 0
    measurements: int = 15
    populations: int = 2
    timepoints: int = 1
    # A format's variant layout ("" = its usual one), e.g. incell "wells-summary" (see
    # FormatParser.synth_layouts).
    layout: str = ""


@dataclass(frozen=True)
class Generator:
    """A synthetic-plate generator named as `"package.module:function"`, imported on first call.

    Lazy on purpose: generators pull in numpy-heavy helpers (and tifffile for Flex) that parsing never
    needs, and the registry loads every format at start-up. A dataclass, not a closure, so it pickles.
    """

    ref: str

    def __call__(self, out: Path, spec: SynthSpec) -> Path:
        module, _, name = self.ref.partition(":")
        return getattr(import_module(module), name)(out, spec)


@dataclass(frozen=True)
class FormatParser:
    """A registered format: detection, parsing and (optionally) a synthetic-plate generator.

    parse must be a pure function of the files under the folder: no OMERO, no writing.
    `looks_for` says in one sentence what detect() looks for (shown when nothing matches).
    Lower `priority` wins when several formats recognise one folder.
    """

    name: str
    version: str
    description: str
    looks_for: str
    detect: Callable[[Path], bool]
    parse: Callable[[Path, ParseOptions], PlateAnalysis]
    synthesize: Callable[[Path, SynthSpec], Path] | None = None
    priority: int = 50
    # Variant layouts the generator can write besides its usual one (SynthSpec.layout).
    synth_layouts: tuple[str, ...] = ()
    # For formats whose folder may hold the exports of several plates: the plate names it holds (each
    # readable with ParseOptions.source_plate), so batch imports each of them.
    plates: Callable[[Path], list[str]] | None = None
