"""`hcs-import synth FORMAT DIR`: write a realistic synthetic plate for demos, tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import HcsImportError
from ..parsers import registry
from ..parsers.base import SynthSpec


@click.command("synth")
@click.argument("format_name", metavar="FORMAT")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--wells", type=int, default=96, show_default=True, help="96, 384 or 1536.")
@click.option("--fields", type=int, default=2, show_default=True, help="Fields per well.")
@click.option("--objects", type=int, default=50, show_default=True, help="Objects per field (about).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--measurements", type=int, default=15, show_default=True, help="Measurements per population.")
@click.option("--populations", type=int, default=2, show_default=True)
@click.option("--timepoints", type=int, default=1, show_default=True, help="Timepoints (formats that have them).")
@click.option("--layout", default="", help="A variant layout of the format, e.g. incell 'wells-summary'.")
def command(format_name: str, out: Path, wells: int, fields: int, objects: int, seed: int, measurements: int,
            populations: int, timepoints: int, layout: str) -> None:
    """Write a synthetic plate of FORMAT into the folder OUT."""
    parser = registry.get(format_name)
    if parser.synthesize is None:
        raise HcsImportError(f"format {format_name!r} has no synthetic-plate generator")
    if layout and layout not in parser.synth_layouts:
        known = ", ".join(parser.synth_layouts) or "none"
        raise HcsImportError(f"format {format_name!r} has no synthetic layout {layout!r} (known: {known})")
    spec = SynthSpec(wells=wells, fields=fields, objects=objects, seed=seed, measurements=measurements,
                     populations=populations, timepoints=timepoints, layout=layout)
    path = parser.synthesize(out, spec)
    click.echo(f"wrote synthetic {format_name} plate: {path}")
