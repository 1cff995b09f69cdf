"""Format registry: parsers come from the `hcs_import.parsers` entry-point group.

A third party adds a format by publishing a package with an entry point in that group whose value is a
`FormatParser`; nothing in the core changes. A plug-in that fails to load is reported, not fatal:
one broken third-party package must not stop the formats that work.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path

from ..errors import FormatNotDetected, HcsImportError
from .base import FormatParser

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
    return dict(sorted(found.items(), key=lambda kv: (kv[1].priority, kv[0])))


def get(name: str) -> FormatParser:
    parsers = available()
    if name not in parsers:
        raise HcsImportError(f"unknown format {name!r}; known formats: {', '.join(parsers)}")
    return parsers[name]


def detect_all(path: Path) -> list[FormatParser]:
    return [p for p in available().values() if p.detect(path)]


def detect(path: Path) -> FormatParser:
    """The format of a plate folder, or FormatNotDetected saying what each format looked for."""
    if not path.exists():
        raise FormatNotDetected(f"{path}: no such file or folder")
    matches = detect_all(path)
    if matches:
        return matches[0]
    if path.is_dir() and not any(path.iterdir()):
        raise FormatNotDetected(f"{path}: folder is empty; expected a plate folder with analysis results")
    looked = "; ".join(f"{p.name}: {p.looks_for}" for p in available().values())
    raise FormatNotDetected(f"{path}: no known plate format found. Looked for: {looked}")
