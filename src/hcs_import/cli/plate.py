"""`hcs-import plate PATH --out DIR`: parse one plate and write its bundle."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..pipeline import import_plate
from .options import build_parse_options, parse_options
from .progress import byte_progress


@click.command("plate")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="Folder to write the bundle into (DIR/<plate>/).")
@parse_options
def command(path: Path, out: Path, format_name: str | None, plate_geometry: str | None, bad_values: str,
            rois: bool, workers: int | None, column_map: Path | None) -> None:
    """Parse the analysis results of the plate at PATH and write OMERO.tables files and ROIs."""
    started = time.perf_counter()
    with byte_progress(f"parsing {path.name}") as progress:
        options = build_parse_options(plate_geometry, bad_values, rois, workers, column_map, progress)
        result = import_plate(path, out, options, format_name)
    m = result.manifest
    click.echo(f"{m['format']} plate {m['plate']['name']} ({m['plate']['rows']}x{m['plate']['columns']}) "
               f"-> {result.bundle}")
    for t in m["tables"]:
        part = f" part {t['part']}/{t['parts']}" if t["parts"] > 1 else ""
        click.echo(f"  {t['path']}: {t['kind']} {t['population']}{part}: {t['rows']} rows x {t['columns']} columns")
    click.echo(f"  {m['rois']['path']}: {m['rois']['count']} ROIs")
    for w in m["warnings"]:
        click.echo(f"  warning: {w}")
    click.echo(f"  done in {time.perf_counter() - started:.2f} s")
