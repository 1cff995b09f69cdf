"""The format registry: every declared format loads, and its generator reference resolves and pickles."""

from __future__ import annotations

import pickle
from importlib import import_module

from hcs_import.parsers import registry
from hcs_import.parsers.base import Generator


def test_every_declared_format_loads_with_a_generator() -> None:
    parsers = registry.available()
    assert set(parsers) == {"incell", "incarta", "mias", "flex", "columbus", "scanr", "bdpathway", "cellprofiler"}
    for parser in parsers.values():
        assert isinstance(parser.synthesize, Generator), parser.name
        module, _, name = parser.synthesize.ref.partition(":")
        assert callable(getattr(import_module(module), name)), parser.synthesize.ref
        assert pickle.loads(pickle.dumps(parser.synthesize)) == parser.synthesize
