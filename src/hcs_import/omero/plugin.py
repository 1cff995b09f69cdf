"""`omero hcs-import ...`: the uploader as an OMERO CLI plugin, reusing the CLI's login and session.

omero-py loads every `omero/plugins/*.py` found on sys.path by exec'ing it with a `register` function;
the shim src/omero/plugins/hcs_import.py calls register() with the control defined here. Logging in is the
OMERO CLI's job (`omero login`, -s/-u/-k, its password prompt), so no secret passes through this code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omero.cli import BaseControl

HELP = """Import high-content-screening analysis results into OMERO.tables and ROIs.

Examples:
    omero hcs-import upload /data/plate1 --plate-id 51          # parse and upload
    omero hcs-import upload /bundles/plate1 --plate-id 51 --dry-run
    omero hcs-import upload /data/plate1 --plate-name "Plate 1" --mode file
"""


class HcsImportControl(BaseControl):
    """Sub-commands of `omero hcs-import`."""

    def _configure(self, parser: Any) -> None:
        parser.add_login_arguments()
        sub = parser.sub()
        upload = parser.add(sub, self.upload, help="Upload a plate folder's analysis results (or a bundle) to a Plate")
        upload.add_argument("path", help="Plate folder with analysis results, or a bundle folder (manifest.json)")
        target = upload.add_mutually_exclusive_group(required=True)
        target.add_argument("--plate-id", type=int, help="Id of the OMERO Plate")
        target.add_argument("--plate-name", help="Name of the OMERO Plate (must be unique)")
        upload.add_argument("--mode", choices=("server", "file"), default="server",
                            help="server: tables service in batches (default); file: upload the .h5 in one go")
        upload.add_argument("--format", dest="format_name", help="Format name (default: detected)")
        upload.add_argument("--dry-run", action="store_true", help="Print what would be created and deleted")
        upload.add_argument("--allow-missing", action="store_true",
                            help="Store results of wells/fields without an image with id -1 instead of stopping")
        upload.add_login_arguments()

    def upload(self, args: Any) -> None:
        from ..errors import HcsImportError
        from ..parsers.base import ParseOptions
        from ..writers.bundle import MANIFEST
        from .upload import upload_bundle

        client = self.ctx.conn(args)
        path = Path(args.path)
        try:
            if (path / MANIFEST).is_file():
                report = upload_bundle(path, client, plate_id=args.plate_id, plate_name=args.plate_name,
                                       dry_run=args.dry_run, mode=args.mode, allow_missing=args.allow_missing,
                                       log=self.ctx.err)
            else:
                import tempfile

                from ..pipeline import import_plate

                with tempfile.TemporaryDirectory(prefix="hcs-import-") as tmp:
                    bundle = import_plate(path, Path(tmp), ParseOptions(), args.format_name).bundle
                    report = upload_bundle(bundle, client, plate_id=args.plate_id, plate_name=args.plate_name,
                                           dry_run=args.dry_run, mode=args.mode, sources=path,
                                           allow_missing=args.allow_missing, log=self.ctx.err)
        except HcsImportError as exc:
            self.ctx.die(exc.exit_code, f"hcs-import: error: {exc}")
        for line in report.lines():
            self.ctx.out(line)
