"""Parse one plate and write its bundle: the one path every entry point (CLI, batch, hook) shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import GeometryError, InputError
from .model import PlateAnalysis
from .parsers import registry
from .parsers.base import ParseOptions
from .writers.bundle import read_manifest, write_bundle


@dataclass(frozen=True)
class ImportResult:
    analysis: PlateAnalysis
    bundle: Path
    manifest: dict[str, Any]


def parse_plate(path: Path, options: ParseOptions, format_name: str | None = None) -> PlateAnalysis:
    parser = registry.get(format_name) if format_name else registry.detect(path)
    try:
        analysis = parser.parse(path, options)
    except GeometryError as exc:  # raised where no file is known: the plate folder is the place
        raise InputError(path, None, str(exc)) from None
    if options.platemap is not None:
        from .platemap import apply_platemap, read_platemap

        analysis = apply_platemap(analysis, read_platemap(options.platemap), options.platemap)
    return analysis


def write_plate_bundle(analysis: PlateAnalysis, out: Path, options: ParseOptions) -> Path:
    """The bundle of a parsed plate, with its report unless options.report is off (plate and batch alike)."""
    finalize = None
    if options.report:
        from .report import write_report

        finalize = write_report
    return write_bundle(analysis, out, finalize=finalize)


def import_plate(path: Path, out: Path, options: ParseOptions, format_name: str | None = None) -> ImportResult:
    analysis = parse_plate(path, options, format_name)
    bundle = write_plate_bundle(analysis, out, options)
    return ImportResult(analysis, bundle, read_manifest(bundle))
