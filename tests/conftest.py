"""Shared fixtures: small synthetic plates and an in-process CLI runner."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).parent))  # test helpers (omero_reader, ...) import as modules

from hcs_import.cli import main
from hcs_import.parsers.base import SynthSpec
from hcs_import.synth.incell import write_incell_plate


@pytest.fixture
def cli() -> Callable[..., Result]:
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture
def incell_plate(tmp_path: Path) -> Path:
    """A 96-well, 2-field InCell plate with about 6 objects per field."""
    return write_incell_plate(tmp_path / "plateA", SynthSpec(wells=96, fields=2, objects=6, seed=3))
