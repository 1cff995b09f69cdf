"""`hcs-import detect PATH`: name the format of a plate folder and what it would read there."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..parsers import registry
from ..parsers.base import PlateSource


def _describe(source: PlateSource) -> list[str]:
    lines = [f"  root: {source.root}", f"  evidence: {source.evidence.name.lower()}"]
    for role, files in source.files.items():
        lines.append(f"  {role}: {len(files)} file(s), e.g. {files[0].name}")
    if len(source.plates) > 1:
        lines.append(f"  plates: {', '.join(source.plates)} (choose one with --source-plate)")
    lines.extend(f"  note: {note}" for note in source.notes)
    return lines


@click.command("detect")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--all", "show_all", is_flag=True, help="Show every format's answer, with the reason of those "
              "that do not match.")
@click.option("--json", "as_json", is_flag=True, help="Print the located source as JSON.")
def command(path: Path, show_all: bool, as_json: bool) -> None:
    """Print the format of the plate folder PATH and the files it would read (exit 2 if none matches)."""
    if show_all:
        sources, refusals = registry.locate_all(path)
        if as_json:
            click.echo(json.dumps({"sources": [s.describe() for s in sources],
                                   "refused": {r.format: r.reason for r in refusals}}, indent=2))
            return
        for rank, found in enumerate(sources, start=1):
            click.echo(f"{rank}. {found.format}")
            for line in _describe(found):
                click.echo(line)
        for refused in refusals:
            click.echo(f"-  {refused.format}: {refused.reason}")
            click.echo(f"   looks for {registry.get(refused.format).looks_for}")
        if not sources:
            raise SystemExit(2)
        return
    source = registry.locate(path)
    if as_json:
        click.echo(json.dumps(source.describe(), indent=2))
        return
    click.echo(f"{source.format}\t{registry.get(source.format).description}")
    for line in _describe(source):
        click.echo(line)


@click.command("formats")
def formats() -> None:
    """List the registered formats."""
    for parser in registry.available().values():
        click.echo(f"{parser.name}\t{parser.version}\t{parser.description}")
