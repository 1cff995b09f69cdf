"""`hcs-import detect PATH`: name the format of a plate folder."""

from __future__ import annotations

from pathlib import Path

import click

from ..parsers import registry


@click.command("detect")
@click.argument("path", type=click.Path(path_type=Path))
def command(path: Path) -> None:
    """Print the format of the plate folder PATH (exit 2 if none is recognised)."""
    parser = registry.detect(path)
    click.echo(f"{parser.name}\t{parser.description}")


@click.command("formats")
def formats() -> None:
    """List the registered formats."""
    for parser in registry.available().values():
        click.echo(f"{parser.name}\t{parser.version}\t{parser.description}")
