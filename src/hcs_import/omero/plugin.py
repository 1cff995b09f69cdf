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
        # every parsing option of `hcs-import plate`, with the same names and meanings
        upload.add_argument("--plate-geometry", metavar="RxC", help="Plate rows x columns when no layout file says")
        upload.add_argument("--bad-values", choices=("error", "nan"), default="error",
                            help="A non-numeric value where a number belongs: stop (default), or store NaN counted")
        upload.add_argument("--no-rois", dest="rois", action="store_false", help="Do not build per-object ROIs")
        upload.add_argument("--workers", type=int, help="Processes for parsing one large file (default: CPUs)")
        upload.add_argument("--column-map", help="Column map for formats whose columns vary (BD Pathway)")
        upload.add_argument("--platemap", help="Plate map CSV: well, then compound, concentration, control, ...")
        upload.add_argument("--source-plate", metavar="NAME",
                            help="When PATH holds the exports of several plates: the plate to read")
        upload.add_argument("--keep-previous", action="store_true",
                            help="Keep an earlier upload of this plate and format made from other result files")
        upload.add_argument("--no-object-tables", dest="object_tables", action="store_false",
                            help="Keep the per-object tables off the Plate (ROIs and per-well tables still go)")
        upload.add_login_arguments()

    def upload(self, args: Any) -> None:
        from ..errors import HcsImportError
        from ..manifest import MANIFEST
        from .upload import upload_bundle

        client = self.ctx.conn(args)
        path = Path(args.path)
        common = {"plate_id": args.plate_id, "plate_name": args.plate_name, "dry_run": args.dry_run,
                  "mode": args.mode, "allow_missing": args.allow_missing, "log": self.ctx.err,
                  "keep_previous": args.keep_previous, "object_tables": args.object_tables}
        try:
            if (path / MANIFEST).is_file():
                report = upload_bundle(path, client, **common)
            else:
                import tempfile

                from ..cli.options import build_parse_options
                from ..pipeline import import_plate

                options = build_parse_options(args.plate_geometry, args.bad_values, args.rois, args.workers,
                                              Path(args.column_map) if args.column_map else None,
                                              source_plate=args.source_plate,
                                              platemap=Path(args.platemap) if args.platemap else None)
                with tempfile.TemporaryDirectory(prefix="hcs-import-") as tmp:
                    bundle = import_plate(path, Path(tmp), options, args.format_name).bundle
                    report = upload_bundle(bundle, client, sources=path, **common)
        except HcsImportError as exc:
            self.ctx.die(exc.exit_code, f"hcs-import: error: {exc}")
        for line in report.lines():
            self.ctx.out(line)
