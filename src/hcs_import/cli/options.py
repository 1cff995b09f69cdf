"""Options shared by `plate` and `batch`, turned into ParseOptions in one place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..errors import HcsImportError
from ..parsers.base import ParseOptions
from ..wells import parse_geometry


def parse_options(func: Callable[..., Any]) -> Callable[..., Any]:
    decorators = [
        click.option("--format", "format_name", help="Format name (default: detected). See `hcs-import formats`."),
        click.option("--plate-geometry", metavar="RxC",
                     help="Plate rows x columns when no layout file says (e.g. 16x24)."),
        click.option("--bad-values", type=click.Choice(["error", "nan"]), default="error", show_default=True,
                     help="A non-numeric value where a number belongs: stop with an error, or store NaN and count it."),
        click.option("--rois/--no-rois", default=True, show_default=True, help="Build per-object ROIs."),
        click.option("--workers", type=int, default=None, help="Processes for parsing one large file (default: CPUs)."),
        click.option("--column-map", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Column map for formats whose columns vary (BD Pathway)."),
    ]
    for deco in reversed(decorators):
        func = deco(func)
    return func


def build_parse_options(plate_geometry: str | None, bad_values: str, rois: bool, workers: int | None,
                        column_map: Path | None, progress: Callable[[int, int], None] | None = None) -> ParseOptions:
    geometry = None
    if plate_geometry:
        try:
            geometry = parse_geometry(plate_geometry)
        except ValueError as exc:
            raise HcsImportError(f"--plate-geometry: {exc}") from None
    return ParseOptions(plate_geometry=geometry, bad_values=bad_values,  # type: ignore[arg-type]
                        rois=rois, workers=workers, column_map=column_map, progress=progress)
