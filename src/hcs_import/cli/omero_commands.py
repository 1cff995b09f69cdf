"""`hcs-import import` and `hcs-import hook`: the post-import hook, for people and for pipelines.

`import PATH -- ARGS` runs `omero import` itself (joined to our session) and uploads the analysis of each
new Plate; `hook --plate-id ID --path PATH` is for facilities whose own pipeline (OMERO.dropbox, OMERO-ADI,
cron) already imported the images and knows the Plate.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import HcsImportError
from .options import build_parse_options, build_server_options, connection_options, parse_options, server_options


def _require_server(server: str | None) -> None:
    if not server:
        raise click.UsageError("--server is required")


def _print(lines: list[str]) -> None:
    for line in lines:
        click.echo(line)


@click.command("import", context_settings={"ignore_unknown_options": True})
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.argument("omero_args", nargs=-1, type=click.UNPROCESSED)
@parse_options
@server_options
def import_command(path: Path, omero_args: tuple[str, ...], format_name: str | None, plate_geometry: str | None,
                   bad_values: str, rois: bool, workers: int | None, column_map: Path | None,
                 platemap: Path | None, with_report: bool, server: str | None,
                   port: int, user: str | None, session_key: str | None, group: str | None, upload_mode: str,
                   dry_run: bool, allow_missing: bool) -> None:
    """Run `omero import PATH [-- OMERO_ARGS]`, then upload the analysis results of each new Plate.

    Arguments after `--` go to `omero import` unchanged (e.g. `-- -T Screen:name:MyScreen`).
    """
    _require_server(server)
    target = build_server_options(server, port, user, session_key, group)
    from ..omero.connect import open_session
    from ..omero.hook import import_and_upload

    options = build_parse_options(plate_geometry, bad_values, rois, workers, column_map,
                                  platemap=platemap, report=with_report)
    with open_session(target) as client:
        result = import_and_upload(client.getSession(), target.host, target.port, client.getSessionId(), path,
                                   omero_args, options, mode=upload_mode,  # type: ignore[arg-type]
                                   dry_run=dry_run, allow_missing=allow_missing,
                                   log=lambda m: click.echo(f"  {m}", err=True))
    for report in result.reports:
        _print(report.lines())
    for problem in result.problems:
        click.echo(f"hcs-import: error: {problem}", err=True)
    if result.problems:
        sys.exit(HcsImportError.exit_code)


@click.command("hook")
@click.option("--plate-id", "plate_id", type=int, required=True, help="The OMERO Plate the images went into.")
@click.option("--path", "path", type=click.Path(exists=True, path_type=Path), required=True,
              help="The plate folder with the analysis results.")
@parse_options
@server_options
def hook_command(plate_id: int, path: Path, format_name: str | None, plate_geometry: str | None, bad_values: str,
                 rois: bool, workers: int | None, column_map: Path | None,
                 platemap: Path | None, with_report: bool, server: str | None, port: int,
                 user: str | None, session_key: str | None, group: str | None, upload_mode: str, dry_run: bool,
                 allow_missing: bool) -> None:
    """Upload the analysis results at PATH to Plate ID (for import pipelines that already know the Plate)."""
    _require_server(server)
    target = build_server_options(server, port, user, session_key, group)
    from ..omero.connect import open_session
    from ..omero.hook import upload_folder

    options = build_parse_options(plate_geometry, bad_values, rois, workers, column_map,
                                  platemap=platemap, report=with_report)
    with open_session(target) as client:
        report = upload_folder(client.getSession(), plate_id, path, options, format_name=format_name,
                               mode=upload_mode, dry_run=dry_run,  # type: ignore[arg-type]
                               allow_missing=allow_missing, log=lambda m: click.echo(f"  {m}", err=True))
    _print(report.lines())


@click.command("status")
@click.argument("target", metavar="TARGET")
@connection_options
def status_command(target: str, server: str, port: int, user: str | None, session_key: str | None,
                   group: str | None) -> None:
    """Every hcs-import upload on TARGET (Plate:ID or Screen:ID), which table each OMERO viewer shows, and
    images with more ROIs than OMERO.web draws."""
    from ..omero.connect import open_session
    from ..omero.status import parse_target, status

    parse_target(target)  # a bad target is an error before any login
    with open_session(build_server_options(server, port, user, session_key, group)) as client:
        _print(status(client.getSession(), target))


@click.command("remove")
@click.argument("target", metavar="TARGET")
@connection_options
@click.option("--dry-run", is_flag=True, help="Print what would be deleted; change nothing.")
def remove_command(target: str, server: str, port: int, user: str | None, session_key: str | None,
                   group: str | None, dry_run: bool) -> None:
    """Delete what hcs-import uploaded to TARGET (Plate:ID or Screen:ID): its ROIs, tables and attached source
    files. Nothing else on the server is touched."""
    from ..omero.connect import open_session
    from ..omero.status import parse_target, remove

    parse_target(target)
    with open_session(build_server_options(server, port, user, session_key, group)) as client:
        _print(remove(client.getSession(), target, dry_run=dry_run))


COMMANDS = [import_command, hook_command, status_command, remove_command]
