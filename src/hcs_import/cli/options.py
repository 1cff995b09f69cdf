"""Options shared by `plate` and `batch`, turned into ParseOptions in one place."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..errors import HcsImportError
from ..omero.connect import SESSION_ENV
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
        click.option("--platemap", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Plate map CSV: well, then compound, concentration, control, ... (merged per well)."),
        click.option("--report/--no-report", "with_report", default=True, show_default=True,
                     help="Write the HTML report (heatmaps, missing wells, warnings, Z') into the bundle."),
    ]
    for deco in reversed(decorators):
        func = deco(func)
    return func


def build_parse_options(plate_geometry: str | None, bad_values: str, rois: bool, workers: int | None,
                        column_map: Path | None, progress: Callable[[int, int], None] | None = None,
                        source_plate: str | None = None, platemap: Path | None = None,
                        report: bool = True) -> ParseOptions:
    geometry = None
    if plate_geometry:
        try:
            geometry = parse_geometry(plate_geometry)
        except ValueError as exc:
            raise HcsImportError(f"--plate-geometry: {exc}") from None
    return ParseOptions(plate_geometry=geometry, bad_values=bad_values,  # type: ignore[arg-type]
                        rois=rois, workers=workers, column_map=column_map, progress=progress,
                        source_plate=source_plate, platemap=platemap, report=report)


def _refuse_key_on_command_line(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        raise click.BadParameter(
            f"a session key on the command line is visible to every local user (ps, /proc, shell history); "
            f"set {SESSION_ENV} or use --session-key-file FILE", ctx, param)


def _read_session_key(ctx: click.Context, param: click.Parameter, value: Path | None) -> str | None:
    """The session key from --session-key-file (`-` for standard input), else from OMERO_SESSION_KEY."""
    if value is None:
        return os.environ.get(SESSION_ENV) or None
    try:
        text = sys.stdin.read() if str(value) == "-" else value.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {value}: {getattr(exc, 'strerror', None) or exc}", ctx,
                                 param) from None
    key = text.strip()
    if not key or "\n" in key:
        raise click.BadParameter(f"{value}: expected one line holding the session key", ctx, param)
    return key


def session_key_options() -> list[Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """A session key comes from a file or the environment, never from the command line.

    `--session-key KEY` is kept as a hidden option only to say why it is refused: a key given there shows
    in `ps` for as long as the run lasts, and whoever reads it is logged in as that user."""
    return [
        click.option("--session-key-file", "session_key",
                     type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
                     callback=_read_session_key,
                     help=f"Join an existing session: read its key from FILE (- for standard input). "
                          f"Default: ${SESSION_ENV}."),
        click.option("--session-key", "session_key_given", hidden=True, expose_value=False,
                     callback=_refuse_key_on_command_line),
    ]


def server_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """OMERO connection and upload options, shared by `plate`, `hook`, `import` and `batch`.

    There is deliberately no --password: a password on the command line shows in `ps` and shell history.
    It comes from OMERO_PASSWORD or a prompt; a session key (OMERO_SESSION_KEY or --session-key-file) is the
    alternative for unattended use.
    """
    decorators: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        click.option("--server", "server", metavar="HOST", help="OMERO server to upload to."),
        click.option("--port", type=int, default=4064, show_default=True, help="OMERO server port."),
        click.option("--user", "user", help="OMERO user name (password: OMERO_PASSWORD or a prompt)."),
        *session_key_options(),
        click.option("--group", "group", help="OMERO group to work in (default: the user's default group)."),
        click.option("--mode", "upload_mode", type=click.Choice(["server", "file"]), default="server",
                     show_default=True,
                     help="server: tables built by the tables service in batches; file: upload the local "
                          ".h5 as one file."),
        click.option("--dry-run", is_flag=True, help="Print what would be created and deleted; change nothing."),
        click.option("--allow-missing", is_flag=True,
                     help="Store results of wells/fields without an image with id -1 (reported) instead of stopping."),
    ]
    for deco in reversed(decorators):
        func = deco(func)
    return func


def connection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Only the OMERO connection (for commands that read or remove, not upload): no --password, as above."""
    decorators: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        click.option("--server", "server", metavar="HOST", required=True, help="OMERO server."),
        click.option("--port", type=int, default=4064, show_default=True, help="OMERO server port."),
        click.option("--user", "user", help="OMERO user name (password: OMERO_PASSWORD or a prompt)."),
        *session_key_options(),
        click.option("--group", "group", help="OMERO group to work in (default: the user's default group)."),
    ]
    for deco in reversed(decorators):
        func = deco(func)
    return func


def plate_target_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Which OMERO Plate receives the results."""
    func = click.option("--plate-name", "plate_name", help="Name of the OMERO Plate (must be unique).")(func)
    return click.option("--plate-id", "plate_id", type=int, help="Id of the OMERO Plate.")(func)


def build_server_options(server: str | None, port: int, user: str | None, session_key: str | None,
                         group: str | None = None) -> Any:
    """ServerOptions for the given flags, or None when no --server was given (local-only run)."""
    if not server:
        if user:
            raise HcsImportError("--user needs --server")
        return None
    from ..omero.connect import ServerOptions

    def prompt() -> str:
        return click.prompt(f"OMERO password for {user}@{server}", hide_input=True, err=True)

    return ServerOptions(server, port, user, session_key, group, prompt)
