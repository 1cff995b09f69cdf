"""Flush an HDF5 file and check that HDF5 really wrote it.

PyTables calls `H5Fflush` and `H5Fclose` without looking at what they return. When the disk fills while
HDF5 writes its cached chunks and metadata, both fail inside HDF5 (the kernel answers ENOSPC to every
`pwrite`) and PyTables returns as if all went well: the file then reads back with its last rows as zeros,
no error anywhere (seen on a full tmpfs with PyTables 3.11 and its bundled HDF5 1.14). So before a table
file is closed, `H5Fflush` is called here directly, through the HDF5 library PyTables has loaded, and a
negative result is an error.

The library is found among the process's mapped files (/proc/self/maps) rather than by name, so it is the
very copy PyTables uses, whether from its wheel (`tables.libs/libhdf5-<hash>.so`) or the system's
(`libhdf5_serial.so`). Where it cannot be found (no /proc), the check is skipped rather than guessed: the
writes are then as safe as PyTables makes them.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
from functools import cache
from pathlib import Path

import tables

H5F_SCOPE_GLOBAL = 1
_LIBHDF5 = re.compile(r"^libhdf5(_serial)?([-.].*)?\.so")
LOW_SPACE = 1 << 20  # bytes free below which a failed flush is reported as a full disk


@cache
def _hdf5() -> ctypes.CDLL | None:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split(None, 5)[-1].strip() for line in maps if "/libhdf5" in line}
    except OSError:
        return None
    for path in sorted(paths):
        if _LIBHDF5.match(os.path.basename(path)):
            lib = ctypes.CDLL(path)
            lib.H5Fflush.argtypes = [ctypes.c_int64, ctypes.c_int]
            lib.H5Fflush.restype = ctypes.c_int
            return lib
    return None


def flush_checked(h5: tables.File, path: Path) -> None:
    """Flush PyTables' buffers and then HDF5's, raising OSError when HDF5 could not write the file."""
    h5.flush()
    lib = _hdf5()
    if lib is None:
        return
    if lib.H5Fflush(h5._v_objectid, H5F_SCOPE_GLOBAL) < 0:
        code = errno.ENOSPC if disk_nearly_full(path.parent) else errno.EIO
        raise OSError(code, os.strerror(code), str(path))


def disk_nearly_full(folder: Path) -> bool:
    """Whether FOLDER's file system has less than LOW_SPACE left: how a write failure that HDF5 or Arrow
    words in its own way ("Problems writing chunk") is told to be a full disk. False when it cannot say."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < LOW_SPACE


def checking_available() -> bool:
    """Whether flush_checked can check here (the tests assert it on Linux, so it is never skipped unseen)."""
    return _hdf5() is not None
