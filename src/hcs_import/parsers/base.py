"""The parser interface: what a format plug-in provides to the core."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import IntEnum
from importlib import import_module
from pathlib import Path
from typing import Any, Literal

from ..errors import HcsImportError
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
        made: Path = getattr(import_module(module), name)(out, spec)
        return made


class Evidence(IntEnum):
    """How strongly a folder's files say "this format": choosing between formats takes the strongest.

    Graded by what was looked at rather than set per format by hand, so a new format competes fairly:
    an InCell .xdce in an IN Carta folder (LAYOUT) loses to the IN Carta CSVs whose headers were read
    (CONTENT) without either parser knowing of the other.
    """

    LAYOUT = 1  # only the acquisition's own files (image layout, images): no analysis results found
    NAMES = 2  # analysis results recognised by their file names or folder structure
    CONTENT = 3  # analysis results recognised by what is in them (a sniffed header, an XML root)


@dataclass(frozen=True)
class PlateSource:
    """What a parser found at a path: one plate's files, grouped by the role they play.

    root: the plate folder (a parser may climb: MIAS given `plate/results` answers `plate`).
    files: role -> files, every file the parser will read (absolute paths, none through a link out of
    root); batch fingerprints exactly these, so an added image never re-imports a plate.
    plates: the plate names the folder's files name, when it can hold several (Columbus, IN Carta,
    CellProfiler); `plate` is the one this source stands for after `split()`.
    """

    format: str
    root: Path
    files: Mapping[str, tuple[Path, ...]]
    evidence: Evidence
    plates: tuple[str, ...] = ()
    plate: str | None = None
    notes: tuple[str, ...] = ()
    # The folder the files may come from when it is wider than root (a MIAS plate's experiment folder
    # holds the batch results of all its plates); None means root.
    scope: Path | None = None

    @property
    def bounds(self) -> Path:
        return self.scope or self.root

    def all_files(self) -> list[Path]:
        seen: dict[Path, None] = {}
        for group in self.files.values():
            seen.update(dict.fromkeys(group))
        return sorted(seen)

    def split(self) -> list[PlateSource]:
        """One source per plate the folder holds (itself when it holds one or names none)."""
        if len(self.plates) <= 1 or self.plate is not None:
            return [self]
        return [replace(self, plate=name) for name in self.plates]

    def describe(self) -> dict[str, Any]:
        """The source as the manifest's provenance and `hcs-import detect --json` show it."""
        def rel(p: Path) -> str:
            try:
                return p.relative_to(self.bounds).as_posix()
            except ValueError:
                return p.as_posix()

        return {"format": self.format, "root": str(self.root), "files_relative_to": str(self.bounds),
                "evidence": self.evidence.name.lower(),
                "plates": list(self.plates), "plate": self.plate, "notes": list(self.notes),
                "files": {role: [rel(p) for p in group] for role, group in self.files.items()}}


@dataclass(frozen=True)
class NotAPlate:
    """Why a path is not a plate of this format. `near`: it looks like one but is not usable as it is
    (a MIAS experiment of several plates): its reason leads the error when no format matches."""

    format: str
    reason: str
    near: bool = False


Located = PlateSource | NotAPlate


def make_source(fmt: str, root: Path, evidence: Evidence, plates: Iterable[str] = (), notes: Iterable[str] = (),
                scope: Path | None = None, **files: Iterable[Path]) -> PlateSource:
    """A PlateSource with empty roles left out (`role=[]` means the role was looked for, not found)."""
    kept = {role: tuple(group) for role, group in files.items()}
    return PlateSource(fmt, root, {role: group for role, group in kept.items() if group}, evidence,
                       tuple(plates), None, tuple(notes), scope)


def plates_or_note(list_plates: Callable[[Path], list[str]], path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(plate names, notes) for a locate that lists plates by reading the files: a file that cannot be
    read leaves the names unknown with a note, and parse reports the file (with its line) as it does for
    any bad input, instead of the folder being "no known format"."""
    try:
        return tuple(list_plates(path)), ()
    except HcsImportError as exc:
        return (), (f"plates not listed: {exc}",)


@dataclass(frozen=True)
class FormatParser:
    """A registered format: locating its plates, parsing and (optionally) a synthetic-plate generator.

    locate must never read more than it needs to answer (headers, names) and must not raise for a
    folder that is simply something else: it returns NotAPlate with the reason. parse must be a pure
    function of the files under the folder: no OMERO, no writing.
    `looks_for` says in one sentence what locate() looks for (shown when nothing matches).
    """

    name: str
    version: str
    description: str
    looks_for: str
    locate: Callable[[Path], Located]
    parse: Callable[[Path, ParseOptions], PlateAnalysis]
    synthesize: Callable[[Path, SynthSpec], Path] | None = None
    # Variant layouts the generator can write besides its usual one (SynthSpec.layout).
    synth_layouts: tuple[str, ...] = ()

    def matches(self, path: Path) -> bool:
        """Whether `path` is a plate of this format (locate's answer as a yes/no, for tests and scripts)."""
        from .registry import locate_with  # lazily: the registry imports this module

        return isinstance(locate_with(self, path), PlateSource)
