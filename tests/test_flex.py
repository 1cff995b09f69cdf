"""Flex/Acapella parser: .flex XML layout, .mea, every Area of the .res, bad input, HdfStorage round trip."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from bundle_check import assert_bundle_matches
from hcs_import.errors import InputError
from hcs_import.parsers.base import ParseOptions, SynthSpec
from hcs_import.parsers.flex import parse
from hcs_import.parsers.flex_xml import FLEX_TAG, clean_xml
from hcs_import.synth.flex import BARCODE, CHANNELS, PLATE_NAME, RES_NAME, write_flex_plate

SPEC = SynthSpec(wells=96, fields=2, seed=11, populations=2, measurements=5)


@pytest.fixture(scope="module")
def plate(tmp_path_factory) -> Path:
    return write_flex_plate(tmp_path_factory.mktemp("flex") / "plate", SPEC)


@pytest.fixture(scope="module")
def analysis(plate: Path):
    return parse(plate, ParseOptions())


@pytest.fixture
def copy(plate: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(plate, tmp_path / "plate"))


def res_values(path: Path) -> dict[tuple[str, int, int, str], str]:
    """Every Result of the file, read with a regex (independent of the parser)."""
    text = path.read_text(encoding="utf-8")
    out = {}
    for area in re.finditer(r'<Area name="([^"]+)">(.*?)</Area>', text, re.S):
        for well in re.finditer(r'<Well row="(\d+)" col="(\d+)">(.*?)</Well>', area.group(2), re.S):
            for res in re.finditer(r'<Result name="([^"]+)">([^<]*)</Result>', well.group(3)):
                out[(area.group(1), int(well.group(1)), int(well.group(2)), res.group(1))] = res.group(2)
    return out


def test_plate_from_flex_xml(analysis) -> None:  # type: ignore[no-untyped-def]
    p = analysis.plate
    assert (p.name, p.barcode, p.rows, p.columns) == (PLATE_NAME, BARCODE, 8, 12)
    assert p.channels == CHANNELS and p.fields_per_well == 2
    assert p.pixel_size_um == pytest.approx((0.645, 0.645))
    assert len(p.images) == 96 * 2 * len(CHANNELS)
    assert set(p.images["field"]) == {0, 1} and set(p.images["c"]) == {0, 1}
    first = p.images[(p.images["well_row"] == 1) & (p.images["well_column"] == 2) & (p.images["field"] == 1)]
    assert set(first["path"]) == {"002003002.flex"}


def test_every_area_every_value(plate: Path, analysis) -> None:  # type: ignore[no-untyped-def]
    (table,) = analysis.tables
    assert table.name == "Wells" and table.kind == "wells" and table.rows == 96
    assert table.metadata["flex.areas"] == "Nuclei; Cytoplasm"
    assert table.metadata["res: creator"] == "Acapella 2.0"
    expected = res_values(plate / RES_NAME)
    assert len(expected) == 96 * 2 * 5
    d = table.data.set_index(["well_row", "well_column"])
    for (area, row, col, name), text in expected.items():
        got = d.loc[(row - 1, col - 1), f"{area}: {name}"]
        assert (np.isnan(got) and text == "NaN") or got == float(text), (area, row, col, name)
    assert table.info("Nuclei: Area [µm²]").unit == "µm²"
    assert analysis.well_table is table and len(analysis.rois) == 0


def test_single_area_columns_are_named_by_parameter(tmp_path: Path) -> None:
    root = write_flex_plate(tmp_path / "one", SynthSpec(wells=96, fields=1, populations=1, measurements=3))
    (table,) = parse(root, ParseOptions()).tables
    assert table.measurement_names == ["Number of Objects", "Area [µm²]", "Mean Intensity"]


def test_stray_trailing_characters_in_flex_xml_are_tolerated() -> None:
    assert clean_xml("<Root><A/></Root>%") == b"<Root><A/></Root>"
    assert clean_xml("<Root><A/></Root>>") == b"<Root><A/></Root>"  # only the doubled '>' is cut
    assert clean_xml('<?xml version="1.0"?>\n<Root>\x01</Root>') == b"<Root></Root>"


def test_several_res_files_make_several_wells_tables(copy: Path) -> None:
    other = copy / "sub" / "An_03_Me01_12132846(2009-06-18_09-00-00).res"
    other.parent.mkdir()
    shutil.copy(copy / RES_NAME, other)
    a = parse(copy, ParseOptions())
    assert sorted(t.name for t in a.tables) == sorted(f"Wells {p.stem}" for p in (copy / RES_NAME, other))
    assert all(t.kind == "wells" for t in a.tables)


def test_without_flex_images_geometry_is_inferred(copy: Path) -> None:
    for f in copy.glob("*.flex"):
        f.unlink()
    a = parse(copy, ParseOptions())
    assert (a.plate.rows, a.plate.columns) == (8, 12)
    assert any("inferred from the largest well" in w for w in a.warnings)
    assert any("listed in the .mea but not found: 192 occurrences" in w for w in a.warnings)
    assert a.plate.fields_per_well == 2  # from the RRRCCCFFF names the .mea lists
    assert parse(copy, ParseOptions(plate_geometry=(16, 24))).plate.columns == 24


# -- bad input -------------------------------------------------------------------------------------


def _one_line(err: pytest.ExceptionInfo[InputError], *needles: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg


def test_truncated_res(copy: Path) -> None:
    res = copy / RES_NAME
    data = res.read_bytes()
    res.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as err:
        parse(copy, ParseOptions())
    _one_line(err, RES_NAME, "line ", "malformed XML")


def test_non_numeric_result(copy: Path) -> None:
    res = copy / RES_NAME
    lines = res.read_text(encoding="utf-8").splitlines(keepends=True)
    i = next(i for i, t in enumerate(lines) if '<Result name="Roundness">' in t)
    lines[i] = re.sub(r">[^<]*<", ">n.a.<", lines[i], count=1)
    res.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(InputError) as err:
        parse(copy, ParseOptions())
    _one_line(err, RES_NAME, f"line {i + 1}", "Roundness", "'n.a.' is not a number")
    a = parse(copy, ParseOptions(bad_values="nan"))
    assert any("not numbers stored as NaN" in w and "1 occurrence" in w for w in a.warnings)
    assert np.isnan(a.tables[0].data.loc[0, "Nuclei: Roundness"])


def test_unknown_result_name_and_missing_result(copy: Path, analysis) -> None:  # type: ignore[no-untyped-def]
    res = copy / RES_NAME
    text = res.read_text(encoding="utf-8")
    assert '<Result name="Intensity SD">' in text
    res.write_text(text.replace('<Result name="Intensity SD">', '<Result name="Intensity S.D.">', 1),
                   encoding="utf-8")
    with pytest.raises(InputError) as err:
        parse(copy, ParseOptions(bad_values="nan"))  # a structural error whatever the value policy
    _one_line(err, RES_NAME, "<Result name='Intensity S.D.'>", "not one of area 'Nuclei'", "'Intensity SD'")
    res.write_text(re.sub(r'\s*<Result name="Intensity SD">[^<]*</Result>', "", text, count=3), encoding="utf-8")
    a = parse(copy, ParseOptions())
    column = a.tables[0].data["Nuclei: Intensity SD"]
    assert column.iloc[:3].isna().all()  # wells A01-A03 lost theirs; the rest keep their own values
    pristine = analysis.tables[0].data["Nuclei: Intensity SD"]
    assert column.iloc[3:].equals(pristine.iloc[3:]) and not pristine.iloc[:3].isna().any()
    assert any("Results missing from a well stored as NaN: 3 occurrences" in w for w in a.warnings)


def test_bad_well_attributes_and_wrong_root(copy: Path) -> None:
    res = copy / RES_NAME
    text = res.read_text(encoding="utf-8")
    res.write_text(text.replace('<Well row="1" col="2">', '<Well row="A" col="2">', 1), encoding="utf-8")
    with pytest.raises(InputError) as err:
        parse(copy, ParseOptions())
    _one_line(err, RES_NAME, "<Well>", "row='A'")
    res.write_text(text.replace('<Well row="1" col="2">', '<Well row="1" col="1">', 1), encoding="utf-8")
    with pytest.raises(InputError) as err:
        parse(copy, ParseOptions())
    _one_line(err, "well listed twice")
    res.write_text("<Results><Areas/></Results>", encoding="utf-8")
    with pytest.raises(InputError) as err:
        parse(copy, ParseOptions())
    _one_line(err, RES_NAME, "not an Acapella .res file")


def test_flex_without_xml_tag(copy: Path) -> None:
    f = copy / "001001001.flex"
    tifffile.imwrite(f, np.zeros((4, 4), np.uint16))
    with pytest.raises(InputError) as err:
        parse(copy, ParseOptions())
    _one_line(err, "001001001.flex", f"TIFF tag {FLEX_TAG}", "missing")
    f.write_bytes(b"not a tiff at all")
    with pytest.raises(InputError) as err:
        parse(copy, ParseOptions())
    _one_line(err, "001001001.flex", "cannot read as a TIFF-based .flex file")


def test_no_res(copy: Path) -> None:
    (copy / RES_NAME).unlink()
    with pytest.raises(InputError) as err:
        parse(copy, ParseOptions())
    _one_line(err, "no Acapella .res result files")


# -- end to end ------------------------------------------------------------------------------------


def test_cli_plate_bundle_read_back_by_hdfstorage(cli, plate: Path, analysis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    result = cli("plate", plate, "--out", out)
    assert result.exit_code == 0, result.output
    manifest = assert_bundle_matches(out / PLATE_NAME, analysis)
    assert [t["kind"] for t in manifest["tables"]] == ["wells"]
    assert manifest["layout"]["images"] == 96 * 2 * len(CHANNELS)


def test_cli_bad_input_exit_2_and_no_output(cli, copy: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = copy / RES_NAME
    text = res.read_text(encoding="utf-8")
    assert '<Result name="Roundness">' in text
    res.write_text(text.replace('<Result name="Roundness">', '<Result name="Roundnes">', 1), encoding="utf-8")
    out = tmp_path / "out"
    result = cli("plate", copy, "--out", out)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and RES_NAME in lines[0] and "Roundnes" in lines[0], result.stderr
    assert not out.exists() or not any(out.iterdir())
