"""Parse one plate and write its bundle: the one path every entry point (CLI, batch, hook) shares."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .errors import GeometryError, InputError
from .manifest import Manifest, read_manifest
from .model import PlateAnalysis
from .parsers import registry
from .parsers.base import ParseOptions, PlateSource
from .writers.bundle import write_bundle


@dataclass(frozen=True)
class ImportResult:
    analysis: PlateAnalysis
    bundle: Path
    manifest: Manifest


def parse_plate(path: Path, options: ParseOptions, format_name: str | None = None,
                located: PlateSource | None = None) -> PlateAnalysis:
    """Locate the plate at `path` (as `format_name` when given; batch passes the source its discovery
    located, so the folder is not looked at twice), parse it, record the source in the provenance, and
    merge the plate map when one is given."""
    if located is None:
        located = registry.locate(path, format_name)
    if options.source_plate is not None:
        located = replace(located, plate=options.source_plate)
    parser = registry.get(located.format)
    try:
        analysis = parser.parse(path, options)
    except GeometryError as exc:  # raised where no file is known: the plate folder is the place
        raise InputError(path, None, str(exc)) from None
    analysis = replace(analysis, provenance=replace(analysis.provenance, located=located.describe()))
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
