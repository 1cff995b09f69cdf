"""The `hcs-import` command: a thin layer over parsers and writers.

Each sub-command lives in its own module; an error the user can act on (HcsImportError) is printed
as one line on stderr with exit code 2, never as a traceback.
"""

from __future__ import annotations

import sys

import click

from ..errors import HcsImportError


class Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except HcsImportError as exc:
            click.echo(f"hcs-import: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("hcs-import: interrupted; no partial output was kept", err=True)
            sys.exit(130)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hcs-import")
def main() -> None:
    """Import high-content-screening analysis results into OMERO.tables and ROIs."""


def _register() -> None:
    from . import detect, export, plate, report, synth

    for module in (detect, plate, synth, export, report):
        main.add_command(module.command)
    main.add_command(detect.formats)
    # Optional command modules (batch ingestion, OMERO upload) register themselves when present.
    import importlib

    for name in ("batch", "omero_commands"):
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        for command in getattr(module, "COMMANDS", ()):
            main.add_command(command)


_register()
