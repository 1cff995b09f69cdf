"""Post-import hook: run `omero import`, take the new Plate ids, find the analysis results beside the
imported files and upload them; or, for facilities with their own pipeline, upload for a known Plate.

The uploader gets the same session the import used, so the password is asked once and never passed to a
subprocess or written to a log. The session key is not on any command line either: `omero import` runs in
a child process that reads it from standard input and starts Java through a private argument file
(`import_child`).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HcsImportError
from ..parsers import registry
from ..parsers.base import ParseOptions
from ..parsers.common import inside
from ..pipeline import import_plate
from .connect import OmeroError
from .resolve import load_plate
from .upload import Mode, UploadReport, upload_bundle

_PLATE_LINE = re.compile(r"^\s*Plate:\s*([\d,\s]+)\s*$")
Log = Callable[[str], None]


def parse_plate_ids(output: str) -> list[int]:
    """Plate ids from `omero import --output ids` (lines such as `Plate:51` or `Plate:51,52`)."""
    ids: list[int] = []
    for line in output.splitlines():
        m = _PLATE_LINE.match(line)
        if m:
            ids += [int(x) for x in re.split(r"[,\s]+", m.group(1).strip()) if x]
    return list(dict.fromkeys(ids))


IMPORT_CHILD = (sys.executable, "-m", "hcs_import.omero.import_child")


def run_omero_import(host: str, port: int, session_key: str, args: Sequence[str], path: Path,
                     child: Sequence[str] = IMPORT_CHILD) -> str:
    """Run `omero import` joined to our session; returns its stdout.

    The key goes to the child on standard input, never on its command line (see `import_child`)."""
    request = {"host": host, "port": port, "session_key": session_key, "args": list(args), "path": str(path)}
    proc = subprocess.run(list(child), input=json.dumps(request), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:]).replace(session_key, "<session key>")
        raise HcsImportError(f"omero import failed with exit code {proc.returncode}: {tail}")
    return proc.stdout


def analysis_folders(path: Path) -> list[Path]:
    """The plate folder(s) with analysis results at or under PATH (PATH itself, else its sub-folders)."""
    folder = path if path.is_dir() else path.parent
    if registry.locate_all(folder)[0]:
        return [folder]
    return [sub for sub in sorted(p for p in folder.iterdir() if p.is_dir() and inside(p, folder.resolve()))
            if registry.locate_all(sub)[0]]


def pair_plates(plates: dict[int, str], folders: list[Path]) -> tuple[list[tuple[int, Path]], list[str]]:
    """Match new Plates to analysis folders: the only one to the only one, otherwise by name."""
    if len(plates) == 1 and len(folders) == 1:
        return [(next(iter(plates)), folders[0])], []
    pairs, problems = [], []
    by_name = {f.name: f for f in folders}
    for pid, name in plates.items():
        folder = by_name.get(name)
        if folder is None:
            problems.append(f"Plate {pid} ({name}): no analysis folder of that name")
        else:
            pairs.append((pid, folder))
    return pairs, problems


@dataclass
class HookResult:
    reports: list[UploadReport]
    problems: list[str]


def upload_folder(sf: Any, plate_id: int, folder: Path, options: ParseOptions, *, format_name: str | None = None,
                  mode: Mode = "server", dry_run: bool = False, allow_missing: bool = False,
                  log: Log | None = None) -> UploadReport:
    """Parse the plate folder into a temporary bundle and upload it to the Plate (the hook's unit of work)."""
    with tempfile.TemporaryDirectory(prefix="hcs-import-") as tmp:
        result = import_plate(folder, Path(tmp), options, format_name)
        return upload_bundle(result.bundle, sf, plate_id=plate_id, dry_run=dry_run, mode=mode, sources=folder,
                             allow_missing=allow_missing, log=log)


def import_and_upload(sf: Any, host: str, port: int, session_key: str, path: Path, omero_args: Sequence[str],
                      options: ParseOptions, *, mode: Mode = "server", dry_run: bool = False,
                      allow_missing: bool = False, log: Log | None = None,
                      runner: Callable[..., str] | None = None) -> HookResult:
    """`omero import PATH`, then the analysis upload for every Plate it created."""
    say = log or (lambda _: None)
    output = (runner or run_omero_import)(host, port, session_key, omero_args, path)
    plate_ids = parse_plate_ids(output)
    if not plate_ids:
        raise OmeroError("omero import reported no Plate (was PATH a plate?)")
    say(f"omero import created Plate(s) {', '.join(map(str, plate_ids))}")
    query = sf.getQueryService()
    names = {pid: load_plate(query, pid).name for pid in plate_ids}
    pairs, problems = pair_plates(names, analysis_folders(path))
    reports = []
    for pid, folder in pairs:
        say(f"Plate {pid}: analysis results in {folder}")
        try:
            reports.append(upload_folder(sf, pid, folder, options, mode=mode, dry_run=dry_run,
                                         allow_missing=allow_missing, log=log))
        except HcsImportError as exc:  # one plate failing must not hide the others' results
            problems.append(f"Plate {pid}: {exc}")
    return HookResult(reports, problems)
