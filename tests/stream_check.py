"""Shared by the block-reader tests: parse a plate read whole or in blocks, and compare two parsed plates."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import hcs_import.parsers.delimited_stream as ds
from hcs_import.parsers.base import ParseOptions
from hcs_import.pipeline import parse_plate


def parse_in_blocks(plate: Path, fmt: str, streamed: bool, monkeypatch: pytest.MonkeyPatch, block: int = 4096,
                    **options: object) -> object:
    """The plate parsed with every large-file export read in `block`-byte blocks (streamed), or whole."""
    monkeypatch.setattr(ds, "STREAM_BYTES", 0 if streamed else 1 << 40)
    monkeypatch.setattr(ds, "BLOCK_BYTES", block)
    return parse_plate(plate, ParseOptions(**options), fmt)  # type: ignore[arg-type]


def assert_same_plate(a: object, b: object) -> None:
    """Tables (values and dtypes), column notes, metadata, ROIs and warnings all equal."""
    assert [t.name for t in a.tables] == [t.name for t in b.tables]
    for ta, tb in zip(a.tables, b.tables):
        pd.testing.assert_frame_equal(ta.frame(), tb.frame())
        assert dict(ta.columns) == dict(tb.columns), ta.name
        assert dict(ta.metadata) == dict(tb.metadata), ta.name
    pd.testing.assert_frame_equal(a.roi_frame(), b.roi_frame())
    assert a.warnings == b.warnings
