"""IN Cell per-well "Wells Summary" analysis XML: the real openBIS plate, the synthetic twin, bad input."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from hcs_import.errors import InputError
from hcs_import.parsers import incell
from hcs_import.parsers.base import ParseOptions, SynthSpec
from hcs_import.parsers.incell_wells_summary import layout_of, parse_wells_summary
from hcs_import.pipeline import import_plate
from hcs_import.synth.incell import write_incell_plate
from hcs_import.writers.bundle import write_bundle
from hcs_import.xmlsafe import encoding_override

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "incell-openbis"
REAL_XML = REAL / "LC80463-RS101117.xml"
needs_real = pytest.mark.skipif(not REAL_XML.exists(), reason=f"real IN Cell export not present at {REAL}")

_WELL_RE = re.compile(rb'<Well name="([^"]*)" row="(\d+)" col="(\d+)" time="(\d+)" z="(\d+)">(.*?)</Well>', re.S)
_MEASURE_RE = re.compile(rb'<Measure name\s*=\s*"([^"]*)"\s+source\s*=\s*"[^"]*"\s+value\s*=\s*"([^"]*)"\s*/>')


def source_wells(path: Path) -> dict[tuple[int, int], dict[str, float]]:
    """Every Well of the file read with regular expressions, independently of the parser: (row, col) 1-based."""
    out = {}
    for m in _WELL_RE.finditer(path.read_bytes()):
        values = {n.decode("latin-1"): float(v) for n, v in _MEASURE_RE.findall(m.group(6))}
        out[(int(m.group(2)), int(m.group(3)))] = values
    return out


def copy_alone(tmp_path: Path) -> Path:
    folder = tmp_path / "alone"
    folder.mkdir()
    shutil.copy(REAL_XML, folder / REAL_XML.name)
    return folder


@needs_real
def test_real_plate_every_well_value_matches_the_source(tmp_path: Path) -> None:
    from bundle_check import assert_bundle_matches

    expected = source_wells(REAL_XML)
    assert len(expected) == 384 and all(len(v) == 17 for v in expected.values())
    analysis = incell.parse(REAL, ParseOptions())
    assert (analysis.plate.rows, analysis.plate.columns) == (16, 24)
    [table] = analysis.tables
    assert table.name == "Wells Summary" and table.kind == "wells" and table.rows == 384
    assert table.keys == ("well_row", "well_column", "well")  # one time, one z: no t/z keys
    assert len(analysis.rois) == 0
    frame = table.frame()
    names = list(next(iter(expected.values())))
    assert table.measurement_names == names
    for row in frame.itertuples(index=False):
        want = expected[(row.well_row + 1, row.well_column + 1)]
        got = dict(zip(names, row[3:], strict=True))
        assert got == want, (row.well, got, want)
    assert frame.loc[(frame.well_row == 15) & (frame.well_column == 0), "Raw Count"].item() == 2293  # P - 1
    assert frame.loc[(frame.well_row == 0) & (frame.well_column == 23), "NucArea"].item() == 990.452380952381
    # the .xdce beside it: declared ISO-8859-1, bytes UTF-8; read as UTF-8, with a warning
    assert any("small-example.xdce: declares encoding ISO-8859-1 but its bytes are UTF-8" in w
               for w in analysis.warnings)
    assert any("layout disagreement: images listed 4 in small-example.xdce but 3456" in w for w in analysis.warnings)
    prov = dict(analysis.provenance.analysis)
    assert prov["analysis protocol name"] == "NRF2ProdAnalysis"
    assert prov["analysis assay name"] == "MatlabGeneral"
    out = write_bundle(analysis, tmp_path / "out")
    manifest = assert_bundle_matches(out, analysis)
    assert manifest["provenance"]["analysis"]["analysis protocol name"] == "NRF2ProdAnalysis"


@needs_real
def test_real_plate_layout_from_the_embedded_image_stack(tmp_path: Path) -> None:
    analysis = incell.parse(copy_alone(tmp_path), ParseOptions())
    plate = analysis.plate
    assert (plate.rows, plate.columns, plate.fields_per_well) == (16, 24, 3)
    assert plate.channels == ("FITC", "DAPI", "Cy5")
    assert plate.images is not None and len(plate.images) == 3456
    assert sorted(plate.images["field"].unique().tolist()) == [0, 1, 2]
    assert plate.images.groupby(["well_row", "well_column"]).ngroups == 384
    assert any("plate layout (16x24) read from the <ImageStack> embedded" in w for w in analysis.warnings)
    assert not any("declares encoding" in w for w in analysis.warnings)  # the XML itself is real ISO-8859-1
    (tmp_path / "b").mkdir()
    manifest = import_plate(copy_alone(tmp_path / "b"), tmp_path / "out", ParseOptions()).manifest
    assert manifest["layout"]["images"] == 3456 and manifest["plate"]["fields_per_well"] == 3


@needs_real
def test_real_file_is_detected_as_the_wells_summary_layout() -> None:
    assert layout_of(REAL_XML) == "wells-summary"
    assert incell.results_layout(REAL_XML) == "wells-summary"
    assert incell.PARSER.matches(REAL)


def test_synthetic_twin_time_lapse_gets_a_t_key(tmp_path: Path) -> None:
    plate = write_incell_plate(tmp_path / "ws", SynthSpec(wells=96, fields=3, timepoints=3, layout="wells-summary",
                                                          measurements=17, seed=4))
    xml = next(plate.glob("*.xml"))
    data = xml.read_bytes()
    assert b"\r\n" in data and b"\n  <Well" in data and b"\xb5" in data  # mixed line ends, latin-1 µ
    analysis = incell.parse(plate, ParseOptions())
    [table] = analysis.tables
    assert table.keys == ("well_row", "well_column", "well", "t")
    frame = table.frame()
    assert len(frame) == 96 * 3 and sorted(frame["t"].unique()) == [0, 1, 2]
    expected = {}
    for m in re.finditer(rb'row="(\d+)" col="(\d+)" time="(\d+)" z="1">(.*?)</Well>', data, re.S):
        expected[(int(m[1]) - 1, int(m[2]) - 1, int(m[3]) - 1)] = {
            n.decode(): float(v) for n, v in _MEASURE_RE.findall(m[4])}
    for row in frame.to_dict("records"):
        want = expected[(row["well_row"], row["well_column"], row["t"])]
        assert {k: row[k] for k in want} == want
    assert any(".xdce: declares encoding ISO-8859-1 but its bytes are UTF-8" in w for w in analysis.warnings)
    # the per-well table is the plate's: no computed summary is added beside it
    assert [t.kind for t in analysis.tables] == ["wells"]


def test_synthetic_without_xdce_reads_the_embedded_stack(tmp_path: Path) -> None:
    plate = write_incell_plate(tmp_path / "ws", SynthSpec(wells=384, fields=2, layout="wells-summary", seed=1))
    next(plate.glob("*.xdce")).unlink()
    analysis = incell.parse(plate, ParseOptions())
    assert (analysis.plate.rows, analysis.plate.columns, analysis.plate.fields_per_well) == (16, 24, 2)
    assert analysis.tables[0].keys == ("well_row", "well_column", "well")


WELL_XML = """<?xml version="1.0" encoding="ISO-8859-1"?>
<Data version = "1.1">
<Table title="Wells Summary">
{body}
</Table>
{extra}
</Data>
"""


def write(tmp_path: Path, body: str, extra: str = "", name: str = "r.xml") -> Path:
    folder = tmp_path / "p"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(WELL_XML.format(body=body, extra=extra), encoding="iso-8859-1")
    return folder / name


def well(row: int, col: int, value: str = "1.5", time: int = 1, extra: str = "") -> str:
    return (f'<Well name="{"ABCDEFGH"[row - 1]} - {col}" row="{row}" col="{col}" time="{time}" z="1">'
            f'<Measure name = "A" source = "" value = "{value}"/>{extra}</Well>')


def test_other_tables_become_tables_of_their_own(tmp_path: Path) -> None:
    path = write(tmp_path, well(1, 1) + well(2, 3),
                 extra='<Table title="Fields Summary"><Well row="1" col="1" field="2" time="1" z="1">'
                       '<Measure name="B" source="" value="7"/></Well></Table>')
    analysis = incell.parse(path.parent, ParseOptions(plate_geometry=(8, 12)))
    by_name = {t.name: t for t in analysis.tables}
    assert by_name["Wells Summary"].kind == "wells" and by_name["Wells Summary"].rows == 2
    fields = by_name["Fields Summary"]
    assert fields.kind == "fields" and fields.frame()["field"].tolist() == [1]
    assert fields.frame()["B"].tolist() == [7.0]


@pytest.mark.parametrize(("body", "message"), [
    (well(1, 1) + "<Other/>", "line 4, <Other>: unexpected element inside <Table title='Wells Summary'>"),
    # (a measure with no number in any well would be a text measure: the bad value stands beside a number)
    (well(1, 2) + well(1, 1, value="0x1A"), "line 4, <Measure name='A'>: value '0x1A': expected a number"),
    (well(1, 2) + well(1, 1, value="1_000"), "value '1_000': expected a number"),
    (well(1, 2) + well(1, 1, value="&#1633;&#1634;"), "expected a number"),
    (well(1, 1) + well(1, 1), "already given at line 4"),
    ('<Well col="1"><Measure name="A" value="1"/></Well>', "missing attribute 'row'"),
    ('<Well row="1000000000000000000000000" col="1"><Measure name="A" value="1"/></Well>',
     "expected a whole number from 1 to"),
    ('<Well row="0" col="1"><Measure name="A" value="1"/></Well>', "expected a whole number from 1 to"),
    (well(1, 1, extra='<Measure name = "A" source = "" value = "2"/>'), "Measure 'A' given twice"),
    ('<Well row="1" col="1"><Measure name="A"/></Well>', "Measure 'A' has no value attribute"),
])
def test_bad_input_is_one_clear_error(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(InputError) as err:
        parse_wells_summary(path)
    text = str(err.value)
    assert message in text and "r.xml" in text and "\n" not in text and len(text) < 300


def test_non_numbers_are_counted_nan_under_bad_values_nan(tmp_path: Path) -> None:
    path = write(tmp_path, well(1, 1, value="#DIV/0!") + well(1, 2, value="2.5") + well(1, 3, value="NaN"))
    parsed = parse_wells_summary(path, bad_values="nan")
    values = parsed.tables[0].values["A"]
    assert math.isnan(values[0]) and values[1] == 2.5 and math.isnan(values[2])
    assert any("non-numeric values stored as NaN: 1 occurrence" in w for w in parsed.warnings.lines())


def test_text_measure_kept_as_text_and_missing_measure_counted(tmp_path: Path) -> None:
    body = (well(1, 1, extra='<Measure name="Compound" source="" value="DMSO"/>')
            + well(1, 2, extra='<Measure name="Compound" source="" value="Taxol"/>') + well(1, 3))
    parsed = parse_wells_summary(write(tmp_path, body))
    table = parsed.tables[0]
    assert table.values["Compound"].tolist() == ["DMSO", "Taxol", None]
    assert np.array_equal(table.values["A"], [1.5, 1.5, 1.5])


def test_truncated_file_and_entities_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, well(1, 1) + well(1, 2))
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"</Table>") - 5])
    with pytest.raises(InputError, match=r"r.xml: line \d+: malformed XML"):
        parse_wells_summary(path)
    path.write_bytes(data.replace(b"<Data", b'<!DOCTYPE d [<!ENTITY x "y">]><Data', 1))
    with pytest.raises(InputError, match="declares XML entities"):
        parse_wells_summary(path)


def test_a_well_name_that_disagrees_with_row_col_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, '<Well name="C - 9" row="1" col="1"><Measure name="A" value="1"/></Well>')
    parsed = parse_wells_summary(path)
    assert parsed.tables[0].well_row.tolist() == [0]
    assert any("disagrees with its row/col" in w for w in parsed.warnings.lines())


def test_encoding_override_only_when_the_bytes_are_utf8(tmp_path: Path) -> None:
    latin = tmp_path / "latin.xml"
    latin.write_bytes('<?xml version="1.0" encoding="ISO-8859-1"?><a u="\u00b5m"/>'.encode("iso-8859-1"))
    assert encoding_override(latin) == (None, None)
    utf8 = tmp_path / "utf8.xml"
    utf8.write_bytes('<?xml version="1.0" encoding="ISO-8859-1"?><a u="\u00b5m"/>'.encode())
    encoding, note = encoding_override(utf8)
    assert encoding == "utf-8" and "utf8.xml: declares encoding ISO-8859-1 but its bytes are UTF-8" in note
    ascii_only = tmp_path / "ascii.xml"
    ascii_only.write_bytes(b'<?xml version="1.0" encoding="ISO-8859-1"?><a/>')
    assert encoding_override(ascii_only) == (None, None)


def test_cli_synth_and_plate_on_the_wells_summary_layout(tmp_path: Path, cli) -> None:
    result = cli("synth", "incell", tmp_path / "p", "--layout", "wells-summary", "--wells", "96")
    assert result.exit_code == 0
    result = cli("plate", tmp_path / "p", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "Wells_Summary.h5: wells Wells Summary: 96 rows" in result.output


def test_a_table_nested_deeper_is_found_too(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "r.xml").write_text('<?xml version="1.0"?>\n<Data version="1.1"><Results>\n<Table title="Wells Summary">'
                                  + well(1, 1) + well(2, 2) + "</Table></Results></Data>\n")
    parsed = parse_wells_summary(folder / "r.xml")
    assert [t.title for t in parsed.tables] == ["Wells Summary"] and len(parsed.tables[0]) == 2
