"""`hcs-import plate PATH --out DIR`: parse one plate and write its bundle; with --server, upload it too.

PATH may also be a bundle (a folder with manifest.json): then nothing is parsed and the bundle is uploaded.
Without --server the command behaves and prints exactly as before.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click

from ..manifest import MANIFEST
from ..pipeline import ImportResult, import_plate
from .options import (
    build_parse_options,
    build_server_options,
    parse_options,
    plate_target_options,
    server_options,
)
from .progress import byte_progress


def _print_bundle(result: ImportResult) -> None:
    m = result.manifest
    click.echo(f"{m['format']} plate {m['plate']['name']} ({m['plate']['rows']}x{m['plate']['columns']}) "
               f"-> {result.bundle}")
    for t in m["tables"]:
        part = f" part {t['part']}/{t['parts']}" if t["parts"] > 1 else ""
        click.echo(f"  {t['path']}: {t['kind']} {t['population']}{part}: {t['rows']} rows x {t['columns']} columns")
    click.echo(f"  {m['rois']['path']}: {m['rois']['count']} ROIs")
    for w in m["warnings"]:
        click.echo(f"  warning: {w}")


@click.command("plate")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path),
              help="Folder to write the bundle into (DIR/<plate>/). Required unless --server is given.")
@click.option("--keep-previous", is_flag=True,
              help="Keep what an earlier hcs-import upload of this plate and format made from other result files "
                   "(a re-analysis); by default it is replaced. An upload of the same files always replaces.")
@click.option("--object-tables/--no-object-tables", "object_tables", default=True, show_default=True,
              help="Upload the per-object tables to the Plate (OMERO.insight's measurement tool needs them); "
                   "without, viewers that take the first table on a Plate (omero-parade) find the per-well one.")
@click.option("--source-plate", "source_plate", metavar="NAME",
              help="When PATH holds the exports of several plates: the plate to read (as its files name it).")
@parse_options
@server_options
@plate_target_options
def command(path: Path, out: Path | None, keep_previous: bool, object_tables: bool, source_plate: str | None,
            format_name: str | None,
            plate_geometry: str | None, bad_values: str, rois: bool, workers: int | None, column_map: Path | None,
                 platemap: Path | None, with_report: bool,
            server: str | None, port: int, user: str | None, session_key: str | None, group: str | None,
            upload_mode: str, dry_run: bool, allow_missing: bool, plate_id: int | None,
            plate_name: str | None) -> None:
    """Parse the analysis results of the plate at PATH and write OMERO.tables files and ROIs.

    With --server, also upload them to the OMERO Plate given by --plate-id or --plate-name (PATH may then
    be a bundle written earlier).
    """
    started = time.perf_counter()
    target = build_server_options(server, port, user, session_key, group)
    if target is None:
        if out is None:
            raise click.UsageError("--out is required (or give --server to upload)")
        with byte_progress(f"parsing {path.name}") as progress:
            options = build_parse_options(plate_geometry, bad_values, rois, workers, column_map, progress,
                                          source_plate, platemap=platemap, report=with_report)
            result = import_plate(path, out, options, format_name)
        _print_bundle(result)
        click.echo(f"  done in {time.perf_counter() - started:.2f} s")
        return
    if (plate_id is None) == (plate_name is None):
        raise click.UsageError("give one of --plate-id / --plate-name with --server")
    from ..omero.upload import upload_bundle

    def upload(bundle: Path, sources: Path | None) -> None:
        report = upload_bundle(bundle, target, plate_id=plate_id, plate_name=plate_name, dry_run=dry_run,
                               mode=upload_mode, sources=sources,  # type: ignore[arg-type]
                               allow_missing=allow_missing, log=lambda msg: click.echo(f"  {msg}", err=True),
                               keep_previous=keep_previous, object_tables=object_tables)
        for line in report.lines():
            click.echo(line)

    if (path / MANIFEST).is_file():
        upload(path, None)
    else:
        with tempfile.TemporaryDirectory(prefix="hcs-import-") as tmp:
            with byte_progress(f"parsing {path.name}") as progress:
                options = build_parse_options(plate_geometry, bad_values, rois, workers, column_map, progress,
                                              source_plate, platemap=platemap, report=with_report)
                result = import_plate(path, out or Path(tmp), options, format_name)
            _print_bundle(result)
            upload(result.bundle, path if path.is_dir() else path.parent)
    click.echo(f"  done in {time.perf_counter() - started:.2f} s")
