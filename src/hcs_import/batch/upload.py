"""Upload a batch-written bundle to OMERO, from a worker process.

The coordinator logs in once (password prompt or OMERO_PASSWORD) and hands the workers only the
session key, so no password crosses a process boundary and no worker prompts. Each worker joins that
session, uploads to the Plate named like the bundle's plate, and leaves (joined sessions are reference
counted: leaving does not end the coordinator's session). omero-py is imported only here, lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def target_id(upload: dict[str, Any]) -> str:
    """Which server a plate was uploaded to, as the ledger remembers it."""
    return f"{upload['host']}:{upload['port']}"


def upload_bundle_for_batch(bundle: Path, plate_name: str, upload: dict[str, Any], sources: Path) -> dict[str, Any]:
    """Upload `bundle` to the Plate called `plate_name`; returns what the ledger keeps of the report."""
    from ..omero.connect import ServerOptions
    from ..omero.upload import upload_bundle

    server = ServerOptions(upload["host"], upload["port"], session_key=upload["session_key"],
                           group=upload.get("group"))
    report = upload_bundle(bundle, server, plate_name=plate_name, dry_run=bool(upload.get("dry_run")),
                           mode=upload.get("mode", "server"), sources=sources,
                           allow_missing=bool(upload.get("allow_missing")))
    return {"target": target_id(upload), "plate_id": report.plate_id, "dry_run": report.dry_run,
            "created": dict(report.created), "warnings": len(report.warnings), "seconds": round(report.seconds, 3)}
