"""Format registry: parsers come from the `hcs_import.parsers` entry-point group.

A third party adds a format by publishing a package with an entry point in that group whose value is a
`FormatParser`; nothing in the core changes. A plug-in that fails to load is reported, not fatal:
one broken third-party package must not stop the formats that work.

Every question "what is at this path" goes through `locate_all`: the CLI's detect, `plate`, the hook and
batch discovery ask it the same way, so a parser that raises is treated alike everywhere (as "not this
format", with the error as its reason) and the choice between formats follows one rule (`rank`).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path

from ..errors import FormatNotDetected, HcsImportError
from .base import FormatParser, NotAPlate, PlateSource
from .common import inside

GROUP = "hcs_import.parsers"


@lru_cache(maxsize=1)
def available() -> dict[str, FormatParser]:
    found: dict[str, FormatParser] = {}
    for ep in entry_points(group=GROUP):
        try:
            parser = ep.load()
        except Exception as exc:  # a broken plug-in must not take the others down
            warnings.warn(f"hcs-import: format plug-in {ep.name!r} failed to load: {exc}", stacklevel=2)
            continue
        if not isinstance(parser, FormatParser):
            warnings.warn(f"hcs-import: entry point {ep.name!r} is not a FormatParser", stacklevel=2)
            continue
        found[parser.name] = parser
    return dict(sorted(found.items()))


def get(name: str) -> FormatParser:
    parsers = available()
    if name not in parsers:
        raise HcsImportError(f"unknown format {name!r}; known formats: {', '.join(parsers)}")
    return parsers[name]


def locate_with(parser: FormatParser, path: Path) -> PlateSource | NotAPlate:
    """One parser's answer for `path`, never an exception: a parser that chokes on an odd folder says
    "not mine" with the error as its reason, for `plate` and `batch` alike. Files that lie, links
    resolved, outside the folder it answers for are dropped (a link out of the folder is never read)."""
    try:
        found = parser.locate(path)
    except HcsImportError as exc:  # a file it recognised but cannot read: that is the error to show
        return NotAPlate(parser.name, str(exc), near=True)
    except Exception as exc:  # third-party code: anything may escape
        return NotAPlate(parser.name, f"could not look at it: {type(exc).__name__}: {exc}", near=True)
    if isinstance(found, PlateSource):
        bounds = found.bounds.resolve()
        kept = {role: tuple(p for p in group if inside(p, bounds)) for role, group in found.files.items()}
        if kept != dict(found.files):
            dropped = sum(len(g) for g in found.files.values()) - sum(len(g) for g in kept.values())
            notes = (*found.notes, f"{dropped} file(s) behind links out of the plate folder ignored")
            found = replace(found, files={r: g for r, g in kept.items() if g}, notes=notes)
    return found


def rank(source: PlateSource) -> tuple[int, int, str]:
    """Sort key, best first: the strongest evidence, then the source that accounts for more files (the
    fuller reading of the folder), then the format name so the choice never depends on install order."""
    return (-int(source.evidence), -len(source.all_files()), source.format)


def locate_all(path: Path, formats: list[str] | None = None) -> tuple[list[PlateSource], list[NotAPlate]]:
    """Every format's answer for `path`: the sources found, best first, and the reasons of the others."""
    sources: list[PlateSource] = []
    refusals: list[NotAPlate] = []
    for name, parser in available().items():
        if formats is not None and name not in formats:
            continue
        found = locate_with(parser, path)
        if isinstance(found, PlateSource):
            sources.append(found)
        else:
            refusals.append(found)
    return sorted(sources, key=rank), refusals


def locate(path: Path, format_name: str | None = None) -> PlateSource:
    """The plate source at `path` (of `format_name` when given), or FormatNotDetected saying why not."""
    if not path.exists():
        raise FormatNotDetected(f"{path}: no such file or folder")
    if format_name is not None:
        found = locate_with(get(format_name), path)
        if isinstance(found, NotAPlate):
            raise FormatNotDetected(f"{path}: not a {format_name} plate: {found.reason}")
        return found
    sources, refusals = locate_all(path)
    if sources:
        return sources[0]
    if path.is_dir() and not any(path.iterdir()):
        raise FormatNotDetected(f"{path}: folder is empty; expected a plate folder with analysis results")
    near = [r for r in refusals if r.near]
    if near:
        raise FormatNotDetected(f"{path}: {near[0].format}: {near[0].reason}")
    raise FormatNotDetected(f"{path}: no known plate format found (looked for {', '.join(available())}; "
                            f"`hcs-import detect --all` says what each format looks for)")
