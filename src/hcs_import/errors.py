"""Errors that reach the user as one line: which file, where in it, and what was expected."""

from __future__ import annotations

from pathlib import Path


class HcsImportError(Exception):
    """Base of every error the CLI reports as a one-line message with exit code 2."""

    exit_code = 2


class InputError(HcsImportError):
    """Bad input: names the file, the place in it (line, element, column) and what was expected."""

    def __init__(self, path: str | Path, where: str | None, message: str) -> None:
        self.path = str(path)
        self.where = where
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        place = f"{self.path}: {self.where}" if self.where else self.path
        return f"{place}: {self.message}"


class FormatNotDetected(HcsImportError):
    """No registered parser recognised a plate folder."""


class OutputError(HcsImportError):
    """The output location cannot be written as asked."""
