"""`hcs-import batch ROOT --out DIR`: import every plate under ROOT, resumably (see hcs_import.batch)."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import click

from ..batch.ledger import LEDGER_NAME
from ..batch.runner import BatchConfig, run_batch
from ..batch.summary import Outcome, Summary
from ..batch.watch import watch as watch_loop
from .options import build_parse_options, build_server_options, parse_options, server_options


@click.command("batch")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write the bundles into (DIR/<plate>/).")
@click.option("--ledger", "ledger", type=click.Path(dir_okay=False, path_type=Path),
              help=f"SQLite ledger of the batch [default: DIR/{LEDGER_NAME}].")
@click.option("--dask-scheduler", metavar="ADDRESS",
              help="Run the plates as tasks on this Dask distributed scheduler (e.g. tcp://host:8786).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object on stdout.")
@click.option("--watch", is_flag=True, help="Keep running: import plates appearing in ROOT once their files "
              "stop changing, until interrupted.")
@click.option("--interval", type=float, default=5.0, show_default=True, help="--watch: seconds between polls.")
@click.option("--settle", type=float, default=10.0, show_default=True,
              help="--watch: seconds a plate's files must stay unchanged before it is imported.")
@parse_options
@server_options
def batch_command(root: Path, out: Path, ledger: Path | None, dask_scheduler: str | None, as_json: bool,
                  watch: bool, interval: float, settle: float, format_name: str | None, plate_geometry: str | None,
                  bad_values: str, rois: bool, workers: int | None, column_map: Path | None,
                 platemap: Path | None, with_report: bool, server: str | None,
                  port: int, user: str | None, session_key: str | None, group: str | None, upload_mode: str,
                  dry_run: bool, allow_missing: bool) -> None:
    """Import every plate folder under ROOT (every supported format), skipping plates already imported.

    A ledger records each plate; re-running skips unchanged plates, re-imports changed ones and retries
    failed ones. The batch can be killed at any moment: running it again finishes the job. The exit code
    is 1 when any plate failed.

    With --server, each bundle is also uploaded to the OMERO Plate of the same name (logged in once;
    the workers share that session). A plate imported earlier without upload is uploaded then.
    """
    options = build_parse_options(plate_geometry, bad_values, rois, 1, column_map,
                                  platemap=platemap, report=with_report)
    config = BatchConfig(root=root, out=out, ledger=ledger or out / LEDGER_NAME, options=options,
                         format_name=format_name, workers=workers or os.cpu_count() or 1,
                         dask_scheduler=dask_scheduler, progress=not as_json)

    def report(outcome: Outcome) -> None:
        if as_json:
            return
        if outcome.status == "failed":
            click.echo(f"hcs-import: {outcome.path}: {outcome.error}", err=True)
        elif watch:  # a drop folder runs for days: say what arrived
            click.echo(f"hcs-import: {outcome.path}: {outcome.format} plate -> {outcome.bundle} ({outcome.reason})",
                       err=True)

    def run(config: BatchConfig) -> Summary:
        if watch:
            click.echo(f"watching {root} (every {interval:g} s, settle {settle:g} s); Ctrl-C to stop", err=True)
            return watch_loop(config, interval, settle, on_outcome=report)
        return run_batch(config, on_outcome=report)

    target = build_server_options(server, port, user, session_key, group)
    if target is None:
        summary = run(config)
    else:
        from ..omero.connect import open_session

        with open_session(target) as client:  # one login; workers join this session by its key
            upload = {"host": target.host, "port": target.port, "session_key": client.getSessionId(),
                      "group": group, "mode": upload_mode, "dry_run": dry_run, "allow_missing": allow_missing}
            summary = run(replace(config, upload=upload))
    if as_json:
        click.echo(summary.dumps())
    else:
        click.echo(summary.table())
    if summary.count("failed"):
        sys.exit(1)


for _param in batch_command.params:  # the shared --workers means plate-level parallelism here
    if _param.name == "workers":
        _param.help = "Plates imported at once (worker processes; default: CPUs). Each plate parses in one process."

COMMANDS = [batch_command]
