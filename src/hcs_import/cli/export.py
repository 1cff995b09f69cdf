"""`hcs-import export BUNDLE --parquet DIR | --csv DIR`: every table with pycytominer/CytoTable keys."""

from __future__ import annotations

from pathlib import Path

import click

from ..export import export_bundle


@click.command("export")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--parquet", "parquet", type=click.Path(file_okay=False, path_type=Path), help="Write Parquet here.")
@click.option("--csv", "csv", type=click.Path(file_okay=False, path_type=Path), help="Write CSV here.")
def command(bundle: Path, parquet: Path | None, csv: Path | None) -> None:
    """Export every table of BUNDLE (Metadata_Plate, Metadata_Well, Metadata_Site, object number, hcs-import's
    keys and, after an upload, the OMERO ids), streamed in batches."""
    if (parquet is None) == (csv is None):
        raise click.UsageError("give one of --parquet DIR / --csv DIR")
    target, fmt = (parquet, "parquet") if parquet is not None else (csv, "csv")
    assert target is not None
    for path in export_bundle(bundle, target, fmt):  # type: ignore[arg-type]
        click.echo(str(path))
