"""The unit of work of a batch: import one plate. Runs in a worker process or on a Dask worker.

It never raises for a bad plate: the outcome is a plain dict (picklable, small) with status `ok` or
`failed` and a one-line error, so one bad plate cannot stop the batch and no traceback or large object
crosses the process boundary. It never touches the ledger: only the coordinating process writes it.

Each plate folder writes under its own path below DIR (see runner.bundle_parent), so plates of one name
in different folders both import. Within one such folder a claim file <folder>/.hcs-import-claims/<plate>
(created atomically, holding the source path) still makes a second source of the same bundle fail with a
clear error instead of replacing the first; it lives on the output file system, so it also works when
the workers are Dask workers on other machines.
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import HcsImportError
from ..manifest import Manifest, read_manifest
from ..parsers.base import ParseOptions, PlateSource
from ..pipeline import parse_plate, write_plate_bundle
from ..writers.bundle import safe_name

CLAIMS = ".hcs-import-claims"


def one_line(exc: BaseException) -> str:
    """The error as one line: the message of an HcsImportError, else `Type: message`."""
    text = str(exc) if isinstance(exc, HcsImportError) else f"{type(exc).__name__}: {exc}"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " ".join(lines)[:1000] or type(exc).__name__


def claim(out: Path, name: str, source: str) -> None:
    """Reserve bundle `name` for `source`; raise when another source plate already holds it."""
    folder = out / CLAIMS
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    tmp = folder / f".{name}.{uuid.uuid4().hex[:8]}"
    tmp.write_text(source, encoding="utf-8")
    try:
        os.link(tmp, target)  # atomic: fails if the claim exists
    except FileExistsError:
        holder = target.read_text(encoding="utf-8")
        if holder != source and Path(holder).exists():
            raise HcsImportError(f"plate name {name!r} is already imported from {holder}; "
                                 "two source plates would write the same bundle") from None
        target.write_text(source, encoding="utf-8")  # ours from an earlier run, or its source is gone
    finally:
        tmp.unlink(missing_ok=True)


def release(out: Path, name: str, source: str) -> None:
    """Drop the claim of `name` if `source` holds it (a re-imported plate whose name changed)."""
    target = out / CLAIMS / name
    try:
        if target.read_text(encoding="utf-8") == source:
            target.unlink()
    except OSError:
        pass


def summarize(manifest: Manifest) -> dict[str, Any]:
    """The ledger's view of a bundle: counts, not contents."""
    tables = manifest.get("tables", [])
    return {
        "tables": len(tables),
        "objects": sum(int(t["rows"]) for t in tables if t.get("kind") == "objects" and t.get("part", 1) == 1),
        "rois": int(manifest.get("rois", {}).get("count", 0)),
        "warnings": len(manifest.get("warnings", [])),
        "sources": {s["path"]: s["sha256"] for s in manifest.get("sources", [])},
    }


def run_plate(path: str, out: str, options: ParseOptions, source: PlateSource,
              upload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Parse the plate discovery located at `path` (`source.plate` of it, when the folder holds several),
    write its bundle under `out` (and upload it when asked)."""
    plate = source.plate
    started = time.perf_counter()
    # The coordinator has already warned about format plug-ins that fail to load; once is enough.
    warnings.filterwarnings("ignore", message="hcs-import: format plug-in")
    # One plate per worker: parsing with more processes inside would oversubscribe the CPUs.
    options = replace(options, workers=1, progress=None, source_plate=plate or options.source_plate)
    try:
        analysis = parse_plate(Path(path), options, source.format, source)
        name = safe_name(analysis.plate.name)
        claim(Path(out), name, path if plate is None else f"{path}#{plate}")
        bundle = write_plate_bundle(analysis, Path(out), options)
        result: dict[str, Any] = {"status": "ok", "plate": analysis.plate.name, "bundle": str(bundle),
                                  **summarize(read_manifest(bundle))}
        if upload is not None:
            from .upload import upload_bundle_for_batch  # lazily: omero is an optional dependency

            result["upload"] = upload_bundle_for_batch(bundle, analysis.plate.name, upload, Path(path))
    except Exception as exc:
        return {"status": "failed", "error": one_line(exc), "seconds": time.perf_counter() - started}
    result["seconds"] = time.perf_counter() - started
    return result
