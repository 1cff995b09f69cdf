"""Run a command with its output folder on a real, small file system, so a full disk is the kernel's ENOSPC.

A tmpfs of a given size is mounted in a private mount namespace (`unshare --user --map-root-user
--mount`: no root needed where user namespaces are allowed), the command runs, and the whole file system
is copied out before the namespace goes away. This reaches what monkeypatching cannot: HDF5 and Arrow
writing from C, SQLite's journal, the final rename.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

PAGE = 4096

_DRIVER = r"""
import json, os, shutil, subprocess, sys
spec = json.loads(sys.argv[1])
mnt = spec["mount"]
os.makedirs(mnt, exist_ok=True)
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk" % spec["kib"], "tmpfs", mnt], check=True)
for src, name in spec["copy"]:
    shutil.copytree(src, os.path.join(mnt, name), symlinks=True)
res = subprocess.run(spec["cmd"], capture_output=True, text=True, env={**os.environ, **spec["env"]},
                     timeout=spec["timeout"])
shutil.copytree(mnt, spec["keep"], symlinks=True)
print(json.dumps({"rc": res.returncode, "stdout": res.stdout, "stderr": res.stderr}))
"""


@cache
def unshare_prefix() -> tuple[str, ...] | None:
    """The command prefix that gives a private mount namespace here, or None when there is none."""
    if shutil.which("unshare") is None:
        return None
    for prefix in (("unshare", "--user", "--map-root-user", "--mount"), ("unshare", "--mount")):
        probe = subprocess.run([*prefix, "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                               capture_output=True, timeout=30)
        if probe.returncode == 0:
            return prefix
    return None


def pages(size: int) -> int:
    return -(-size // PAGE)


def run_on_small_disk(cmd: list[str], mount: Path, kib: int, keep: Path, *, copy: tuple[tuple[Path, str], ...] = (),
                      env: dict[str, str] | None = None, timeout: float = 120) -> dict[str, Any]:
    """Run `cmd` with a `kib` KiB tmpfs at `mount` (pre-filled with `copy`); the file system ends up in
    `keep`. Returns rc, stdout and stderr."""
    prefix = unshare_prefix()
    if prefix is None:
        raise RuntimeError("no private mount namespace on this machine")
    spec = {"mount": str(mount), "kib": kib, "copy": [[str(s), n] for s, n in copy], "cmd": cmd,
            "env": env or {}, "keep": str(keep), "timeout": timeout}
    proc = subprocess.run([*prefix, sys.executable, "-c", _DRIVER, json.dumps(spec)], capture_output=True,
                          text=True, timeout=timeout + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"small-disk driver failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout)  # type: ignore[no-any-return]
