"""`hcs-import report BUNDLE [--out report.html]`: the plate's HTML report (see report.py)."""

from __future__ import annotations

from pathlib import Path

import click

from ..report import write_report


@click.command("report")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the page here (default: report.html inside the bundle).")
@click.option("--measure", "measures", multiple=True, metavar="COLUMN",
              help="A per-well column to draw as a heatmap (repeatable; default: a few per population).")
def command(bundle: Path, out: Path | None, measures: tuple[str, ...]) -> None:
    """Write the HTML report of BUNDLE: heatmaps, missing wells and fields, warnings, provenance, Z'."""
    click.echo(str(write_report(bundle, measures or None, out)))
