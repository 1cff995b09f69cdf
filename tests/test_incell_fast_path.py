"""The InCell fast tokenizer gives exactly what the lxml path gives, and steps aside whenever it should."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hcs_import.parsers import incell_results as ir
from hcs_import.parsers.base import SynthSpec
from hcs_import.synth.incell import write_incell_plate

BLOCKS = """<WellData row="2" col="3" field="1" cell="1">
      <Measure source="Cells" key="Cell: cgX" value="10.5"/>
      <Measure source="Cells" key="Cell: cgY" value="20.25"/>
      <Measure source="Cells" key="Cell: Area" value="100" unit="\u00b5m\u00b2"/>
      <Measure source="Nuclei" key="Nucleus: cgX" value="11"/>
    </WellData>
    <WellData row="2" col="3" field="2" cell="7">
      <Measure source="Cells" key="Cell: cgX" value="1.#INF"/>
      <Measure source="Cells" key="Cell: Area" value="5" unit="px"/>
      <Measure source="Cells" key="Cell: Form" value="0.5"/>
    </WellData>
    <WellData row="2" col="3" field="2" cell="8">
      <Measure source="" key="Other" value="-1.#IND"/>
      <Measure source="Cells" key="Cell: cgY" value="NaN"/>
    </WellData>
    <WellData row="2" col="3" field="2" cell="9">
    </WellData>
    <WellData row="2" col="3" field="1" cell="Summary">
      <Measure source="Cells" key="Cell Count" value="3"/>
    </WellData>
    """


def assert_same(a: ir.ParsedChunk, b: ir.ParsedChunk) -> None:
    assert (a.welldata, a.measures) == (b.welldata, b.measures)
    assert a.warnings.lines() == b.warnings.lines()
    for group in ("populations", "summary"):
        x, y = getattr(a, group), getattr(b, group)
        assert list(x) == list(y)
        for name in x:
            p, q = x[name], y[name]
            for attr in ("well_row", "well_column", "field_", "object_"):
                assert np.array_equal(np.asarray(getattr(p, attr)), np.asarray(getattr(q, attr)))
            assert list(p.values) == list(q.values)
            for key in p.values:
                assert np.array_equal(np.asarray(p.values[key]), np.asarray(q.values[key]), equal_nan=True)
            assert p.units == q.units


def test_fast_path_equals_lxml_on_hand_written_blocks() -> None:
    data = BLOCKS.encode("utf-8")
    fast = ir.parse_welldata_fast(data, "utf-8")
    assert fast is not None
    assert_same(fast, ir.parse_welldata_lxml(data, 0, "utf-8", "error"))
    assert fast.populations["Cells"].units == {"Cell: Area": "\u00b5m\u00b2"}


def test_fast_path_equals_lxml_on_a_synthetic_plate(tmp_path: Path) -> None:
    plate = write_incell_plate(tmp_path / "p", SynthSpec(wells=96, fields=2, objects=6, seed=3, populations=3))
    data = next(plate.glob("*_analysis.xml")).read_bytes()
    start, end = data.find(b"<WellData"), data.rfind(b"</WellData>") + len(b"</WellData>")
    fast = ir.parse_welldata_fast(data[start:end], "utf-8")
    assert fast is not None
    assert_same(fast, ir.parse_welldata_lxml(data[start:end], start, "utf-8", "error"))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.replace('key="Cell: Form"', 'key="Cell: cgX"'),  # duplicate key: lxml warns
        lambda t: t.replace('value="0.5"', 'value="abc"'),  # not a number
        lambda t: t.replace(' field="2" cell="8"', ' cell="8"'),  # no field: lxml warns
        lambda t: t.replace('cell="7"', 'cell="seven"'),
        lambda t: t.replace('row="2" col="3" field="1" cell="1"', 'row="0" col="3" field="1" cell="1"'),
        lambda t: t.replace('key="Other"', 'key="A &amp; B"'),  # entity reference
        lambda t: t.replace('key="Other"', 'key="A\tB"'),  # attribute-value normalisation
        lambda t: t.replace("<WellData row=\"2\" col=\"3\" field=\"2\" cell=\"9\">", "<!-- c --><WellData "
                            "row=\"2\" col=\"3\" field=\"2\" cell=\"9\">"),
        lambda t: t.replace('source="Cells" key="Cell: cgY"', 'key="Cell: cgY" source="Cells"'),  # other order
        lambda t: t.replace('key="Other"', "key='Other'"),
        lambda t: t.replace("<Measure source=\"\" key=\"Other\" value=\"-1.#IND\"/>", "<Measure source=\"\" "
                            "key=\"Other\" value=\"1\"><x/></Measure>"),
        lambda t: t[:-40],  # truncated
    ],
)
def test_anything_unusual_goes_to_lxml(mutate) -> None:  # type: ignore[no-untyped-def]
    data = mutate(BLOCKS).encode("utf-8")
    assert ir.parse_welldata_fast(data, "utf-8") is None
    try:
        expected = ir.parse_welldata_lxml(data, 0, "utf-8", "nan")
    except ir.ChunkError:
        with pytest.raises(ir.ChunkError):
            ir.parse_welldata_bytes(data, 0, "utf-8", "nan")
        return
    assert_same(ir.parse_welldata_bytes(data, 0, "utf-8", "nan"), expected)


def test_long_keys_and_odd_whitespace_still_match_lxml() -> None:
    text = BLOCKS.replace('key="Other"', 'key="' + "K" * 400 + '"').replace("<WellData row=\"2\" col=\"3\" field=\"2\" "
                                                                             "cell=\"8\">", "<WellData\r\n row=\"2\"  "
                                                                             "col=\"3\"\tfield=\"2\" cell=\"8\" >")
    data = text.encode("utf-8")
    fast = ir.parse_welldata_fast(data, "utf-8")
    assert fast is not None
    assert_same(fast, ir.parse_welldata_lxml(data, 0, "utf-8", "error"))
    spaced = BLOCKS.replace("</WellData>", "</WellData>" + " " * 300, 1).encode("utf-8")
    expected = ir.parse_welldata_lxml(spaced, 0, "utf-8", "error")
    assert_same(ir.parse_welldata_bytes(spaced, 0, "utf-8", "error"), expected)


def test_encodings() -> None:
    latin = BLOCKS.encode("iso-8859-1")
    fast = ir.parse_welldata_fast(latin, "ISO-8859-1")
    assert fast is not None
    assert_same(fast, ir.parse_welldata_lxml(latin, 0, "ISO-8859-1", "error"))
    assert ir.parse_welldata_fast(latin, "utf-8") is None  # not UTF-8: lxml reports it
    assert ir.parse_welldata_fast(BLOCKS.encode("utf-8"), "windows-1252") is None
