"""Errors that reach the user as one line: which file, where in it, and what was expected."""

from __future__ import annotations

import re
from pathlib import Path

# A value quoted in a message is cut to this many characters, so a 1 MB field or a binary blob in a
# broken file never makes a 1 MB error line; 48 lets a path, a place and a quote fit in 300 characters.
# The file and line still say where to look.
MAX_QUOTED = 48
MAX_PART = 120  # `where` (an element, a column name) is cut likewise, more generously
_RUN = "{%d,}" % MAX_QUOTED  # noqa: UP031 (braces of a regex quantifier, not a format field)
_QUOTED = re.compile("'(?:[^'\\\\]|\\\\.)" + _RUN + "'|\"(?:[^\"\\\\]|\\\\.)" + _RUN + "\"")


def shorten(text: str, limit: int = MAX_QUOTED) -> str:
    """`text` with every quoted value longer than `limit` cut to its first characters and `...`."""
    def cut(m: re.Match[str]) -> str:
        quote = m.group(0)[0]
        return f"{m.group(0)[: limit - 3]}...{quote}"

    return _QUOTED.sub(cut, text)


class HcsImportError(Exception):
    """Base of every error the CLI reports as a one-line message with exit code 2."""

    exit_code = 2


class InputError(HcsImportError):
    """Bad input: names the file, the place in it (line, element, column) and what was expected."""

    def __init__(self, path: str | Path, where: str | None, message: str) -> None:
        self.path = str(path)
        where = None if where is None else shorten(where)
        self.where = where if where is None or len(where) <= MAX_PART else where[: MAX_PART - 3] + "..."
        self.message = shorten(" ".join(message.split("\n")))
        super().__init__(str(self))

    def __str__(self) -> str:
        place = f"{self.path}: {self.where}" if self.where else self.path
        return f"{place}: {self.message}"


class FormatNotDetected(HcsImportError):
    """No registered parser recognised a plate folder."""


class OutputError(HcsImportError):
    """The output location cannot be written as asked."""


class GeometryError(HcsImportError, ValueError):
    """A plate geometry no plate has (0 rows, or thousands): raised by the geometry helpers, which know no
    file; the pipeline names the plate folder. A ValueError too, for callers that check values."""
