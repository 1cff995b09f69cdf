"""MIAS parser: layout, runs, columns, ROIs, masks, bad input, and the CLI round trip through HdfStorage."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from bundle_check import assert_bundle_matches
from hcs_import.errors import InputError
from hcs_import.parsers import registry
from hcs_import.parsers.base import ParseOptions, SynthSpec
from hcs_import.parsers.mias import parse
from hcs_import.synth.mias import BARCODE, CHANNELS, NEO_HEADER, PLATE_FOLDER, write_mias_experiment

SPEC = SynthSpec(wells=96, objects=8, seed=7, populations=2)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    return write_mias_experiment(tmp_path_factory.mktemp("mias") / "exp", SPEC)


@pytest.fixture(scope="module")
def analysis(experiment: Path):
    """The pristine experiment, parsed once (tests must not modify it)."""
    return parse(experiment, ParseOptions())


@pytest.fixture
def copy(experiment: Path, tmp_path: Path) -> Path:
    """A private copy of the experiment, for tests that damage files."""
    return Path(shutil.copytree(experiment, tmp_path / "exp"))


def results(root: Path) -> Path:
    return root / PLATE_FOLDER / "results"


def detail_files(root: Path, mode: int = 1) -> list[Path]:
    return sorted(results(root).glob(f"Well*_mode{mode}_*_detail_*.txt"))


def read_detail(path: Path) -> tuple[list[str], pd.DataFrame]:
    lines = path.read_text().splitlines()
    h = next(i for i, t in enumerate(lines) if t.startswith(("Label\t", "row\t")))
    rows = [t.split("\t") for t in lines[h + 1 :] if t]
    return lines[:h], pd.DataFrame(rows, columns=lines[h].split("\t")).astype(float)


def test_located_from_the_experiment_the_plate_or_its_results(experiment: Path) -> None:
    """One plate whichever folder is given; the experiment's Batchresults file belongs to it too (scope)."""
    for given in (experiment, experiment / PLATE_FOLDER, experiment / PLATE_FOLDER / "results"):
        source = registry.locate(given)
        assert source.format == "mias" and source.root == experiment / PLATE_FOLDER, given
        assert source.scope == experiment and source.files["batch_results"][0].parent.name == "Batchresults"


def test_plate_from_layout_and_template(experiment: Path) -> None:
    a = parse(experiment, ParseOptions())
    p = a.plate
    assert (p.name, p.rows, p.columns, p.barcode) == (BARCODE, 8, 12, BARCODE)
    assert p.channels == CHANNELS and p.pixel_size_um == (0.645, 0.645) and p.fields_per_well == 1
    for where in (experiment / PLATE_FOLDER, results(experiment)):
        b = parse(where, ParseOptions())
        assert [t.name for t in b.tables] == [t.name for t in a.tables]
        assert b.tables[0].data.equals(a.tables[0].data)


def test_one_table_per_run_named_by_log_timestamp(experiment: Path, analysis) -> None:
    a = analysis
    logs = sorted(p.name for p in results(experiment).glob("*log*.txt"))
    stamps = {n[:3]: n[6:-4] for n in logs}  # NEOlog<ts>.txt, MNUlog<ts>.txt
    assert [t.name for t in a.tables] == [f"NEO {stamps['NEO']}", f"MNU {stamps['MNU']}", "Overlay masks", "Wells"]
    neo = a.table(f"NEO {stamps['NEO']}")
    assert neo.metadata["mias.run"] == stamps["NEO"] and neo.metadata["mias.log_file"] == f"NEOlog{stamps['NEO']}.txt"
    assert neo.metadata["mias.detail_files"] == 96 and neo.metadata["mias.column_set"] == "NEO"
    assert a.table("Wells").kind == "wells"  # computed: MIAS has no per-well detail table


def test_every_value_and_key_of_a_detail_file(experiment: Path, analysis) -> None:
    a = analysis
    neo = a.object_tables[0].data
    total = 0
    for path in detail_files(experiment):
        well = int(path.name[4:8])
        _, expected = read_detail(path)
        got = neo[(neo["well_row"] == (well - 1) // 12) & (neo["well_column"] == (well - 1) % 12)]
        total += len(got)
        assert len(got) == len(expected)
        for col in NEO_HEADER:
            assert np.allclose(got[col].to_numpy(float), expected[col].to_numpy(float), equal_nan=True, rtol=0,
                               atol=0), (path.name, col)
        assert (got["object"].to_numpy() == expected["Label"].to_numpy()).all()
        assert (got["mode"] == 1).all() and (got["field"] == 0).all()
    assert total == len(neo)
    assert neo.loc[neo["well_row"].eq(1) & neo["well_column"].eq(0), "well"].iloc[0] == "B01"  # Well0013
    assert neo["Label"].dtype == np.int64 and neo["Row"].dtype == np.float64
    assert neo["Mean Nucleus Intens."].isna().sum() >= 0


def test_preamble_kept_as_metadata_and_varying_parameters_as_columns(experiment: Path, analysis) -> None:
    neo = analysis.object_tables[0]
    assert neo.metadata["parameter: Nucleus threshold"] == "0.35"
    assert neo.metadata["parameter: Split touching nuclei"] == "Yes"
    assert neo.metadata["template: Objective_ID"] == "Nikon Plan Fluor 10x/0.30"
    # "Well\t0001" differs per file: kept per row, not dropped
    d = neo.data
    assert (d["parameter: Well"] == d["well_row"] * 12 + d["well_column"] + 1).all()


def test_rois_neo_ellipses_and_mnu_points(experiment: Path, analysis) -> None:
    a = analysis
    neo, mnu = a.object_tables[0], a.object_tables[1]
    rois = a.rois
    ell = rois[rois["population"] == neo.name]
    assert (ell["shape"] == "ellipse").all() and len(ell) == len(neo.data)
    rows = neo.data.iloc[ell["table_row"].to_numpy()]
    assert np.array_equal(ell["x"].to_numpy(), rows["Col"].to_numpy())
    assert np.array_equal(ell["y"].to_numpy(), rows["Row"].to_numpy())
    assert np.array_equal(ell["radius_x"].to_numpy(), rows["Cell Diam."].to_numpy() / 2)
    assert np.array_equal(ell["object"].to_numpy(), rows["Label"].to_numpy())
    pts = rois[rois["population"] == mnu.name]
    assert (pts["shape"] == "point").all() and len(pts) == len(mnu.data)
    assert np.array_equal(pts["x"].to_numpy(), mnu.data["col"].to_numpy()[pts["table_row"]])
    assert np.array_equal(pts["y"].to_numpy(), mnu.data["row"].to_numpy()[pts["table_row"]])


def test_overlay_masks_decode_to_the_label_image(experiment: Path, analysis) -> None:
    a = analysis
    table = a.table("Overlay masks").data
    masks = a.rois[a.rois["shape"] == "mask"]
    assert len(masks) == len(table) > 0
    overlay = sorted(results(experiment).glob("*Overlay.tif"))[0]
    labels = tifffile.imread(overlay)
    mine = masks[(masks["well_row"] == 0) & (masks["well_column"] == 0)]
    assert sorted(mine["object"]) == sorted(set(np.unique(labels)) - {0})
    for _, m in mine.iterrows():
        x, y, w, h = int(m["x"]), int(m["y"]), int(m["width"]), int(m["height"])
        bits = np.unpackbits(np.frombuffer(m["mask"], dtype=np.uint8))[: w * h].reshape(h, w).astype(bool)
        assert np.array_equal(bits, labels[y : y + h, x : x + w] == m["object"])
        assert table.loc[m["table_row"], "Mask pixels"] == int((labels == m["object"]).sum())
    # the synthetic overlay draws NEO objects of run 1: labels are NEO Labels of that well
    neo = a.object_tables[0].data
    assert set(mine["object"]) <= set(neo.loc[(neo["well_row"] == 0) & (neo["well_column"] == 0), "Label"])


def test_no_rois_option(experiment: Path) -> None:
    a = parse(experiment, ParseOptions(rois=False))
    assert len(a.rois) == 0 and len(a.tables) == 4


def test_every_run_kept_and_details_newer_than_every_log(copy: Path) -> None:
    res = results(copy)
    # A re-analysis of well 1, newer than every log: kept as its own run, named by its timestamp.
    src = detail_files(copy)[0]
    (res / "Well0001_mode1_z000_t000_detail_2008-09-18-16h00m00s.txt").write_bytes(src.read_bytes())
    a = parse(copy, ParseOptions())
    names = [t.name for t in a.tables]
    assert "NEO 2008-09-18-16h00m00s" in names and len(names) == 5
    assert any("newer than every log file" in w for w in a.warnings)
    # Add its log: the run gets the log's name instead.
    (res / "NEOlog2008-09-18-16h00m05s.txt").write_text("done\r\n")
    b = parse(copy, ParseOptions())
    assert "NEO 2008-09-18-16h00m05s" in [t.name for t in b.tables]
    assert not any("newer than every log" in w for w in b.warnings)


def test_unknown_column_set_imported_without_rois(copy: Path) -> None:
    res = results(copy)
    (res / "Well0005_mode3_z000_t000_detail_2008-09-18-13h00m00s.txt").write_text(
        "Texture analysis\r\nKernel\t5\r\n\r\nObject\tEntropy\tContrast\tClass\r\n1\t4.2\t0.33\tround\r\n"
        "2\t3.9\t0.41\telongated\r\n")
    a = parse(copy, ParseOptions())
    t = a.table(next(t.name for t in a.tables if t.name.startswith("Objects ")))
    assert list(t.data.columns[7:]) == ["Object", "Entropy", "Contrast", "Class", "mode"]
    assert t.data["Class"].tolist() == ["round", "elongated"]  # a text column stays text
    assert t.data["Entropy"].tolist() == [4.2, 3.9]
    assert t.metadata["parameter: Kernel"] == "5"
    assert not (a.rois["population"] == t.name).any()
    assert any("unknown column set imported as tables without ROIs" in w for w in a.warnings)


def test_geometry_without_batchresults(copy: Path) -> None:
    shutil.rmtree(copy / "Batchresults")
    a = parse(copy / PLATE_FOLDER, ParseOptions())
    assert (a.plate.rows, a.plate.columns) == (8, 12)  # 96 Well folders
    for w in (copy / PLATE_FOLDER).glob("Well00[5-9]*"):
        shutil.rmtree(w)
    b = parse(copy / PLATE_FOLDER, ParseOptions())
    assert (b.plate.rows, b.plate.columns) == (8, 12)
    assert any("inferred from the largest well number" in w for w in b.warnings)
    c = parse(copy / PLATE_FOLDER, ParseOptions(plate_geometry=(16, 24)))
    assert (c.plate.rows, c.plate.columns) == (16, 24)
    neo = c.object_tables[0].data
    assert neo.loc[neo["object"].index[neo["well"] == "A13"], "well_column"].eq(12).all()  # Well0013 -> A13


# -- bad input -------------------------------------------------------------------------------------


def _one_line(err: pytest.ExceptionInfo[InputError], *needles: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg


def test_truncated_detail_file(copy: Path) -> None:
    path = detail_files(copy)[3]
    data = path.read_bytes()
    cut = data.rindex(b"\t", 0, len(data) - 3)
    path.write_bytes(data[:cut])
    n_lines = data[:cut].count(b"\n") + 1
    with pytest.raises(InputError) as err:
        parse(copy, ParseOptions())
    _one_line(err, path.name, f"line {n_lines}", "expected 7 tab-separated fields", "found 6")
    a = parse(copy, ParseOptions(bad_values="nan"))
    assert any("fewer fields than the header" in w and "1 occurrence" in w for w in a.warnings)
    neo = a.object_tables[0].data
    well = int(path.name[4:8]) - 1
    mine = neo[(neo["well_row"] == well // 12) & (neo["well_column"] == well % 12)]
    n_rows = data[: data.index(b"Label\t")].count(b"\n")  # lines before the header
    assert len(mine) == data[:cut].count(b"\n") - n_rows  # every row kept, the cut one too
    assert np.isnan(mine["Mean Nucleus Intens."].iloc[-1])


def test_non_numeric_value(copy: Path) -> None:
    path = detail_files(copy)[2]
    lines = path.read_bytes().split(b"\r\n")
    i = next(i for i, t in enumerate(lines) if t.startswith(b"Label\t")) + 2
    cells = lines[i].split(b"\t")
    cells[4] = b"12,5"
    lines[i] = b"\t".join(cells)
    path.write_bytes(b"\r\n".join(lines))
    with pytest.raises(InputError) as err:
        parse(copy, ParseOptions())
    _one_line(err, path.name, f"line {i + 1}", "column 'Cell Diam.'", "'12,5' is not a number")
    a = parse(copy, ParseOptions(bad_values="nan"))
    assert any("not numbers stored as NaN: 1 occurrence" in w for w in a.warnings)
    assert any("objects without Row/Col/Cell Diam., no ROI made" in w for w in a.warnings)
    neo = a.object_tables[0]
    assert len(a.rois[a.rois["population"] == neo.name]) == len(neo.data) - 1


def test_garbled_and_empty_detail_files(copy: Path) -> None:
    path = detail_files(copy)[1]
    path.write_bytes(b"\x00\x13binary junk\xff\xfe" * 20)
    with pytest.raises(InputError) as err:
        parse(copy, ParseOptions())
    _one_line(err, path.name, "no column header line found")
    path.write_bytes(b"")
    with pytest.raises(InputError) as err:
        parse(copy, ParseOptions())
    _one_line(err, path.name, "file is empty")


def test_missing_column_makes_an_unknown_set(copy: Path) -> None:
    """A NEO file without `Cell Diam.` cannot give ellipses: imported, without ROIs, with a warning."""
    path = detail_files(copy)[0]
    pre, frame = read_detail(path)
    frame = frame.drop(columns=["Cell Diam."])
    path.write_text("\r\n".join([*pre, "\t".join(frame.columns)] + ["\t".join(map(str, r)) for r in
                                                                      frame.itertuples(index=False)]) + "\r\n")
    a = parse(copy, ParseOptions())
    odd = [t for t in a.tables if t.name.startswith("Objects ")]
    assert len(odd) == 1 and len(odd[0].data) == len(frame)
    assert any("unknown column set" in w for w in a.warnings)


def test_bad_timestamp_and_well_outside_plate(copy: Path) -> None:
    res = results(copy)
    bad = res / "Well0001_mode1_z000_t000_detail_2008-13-45-14h00m00s.txt"
    bad.write_bytes(detail_files(copy)[0].read_bytes())
    with pytest.raises(InputError) as err:
        parse(copy, ParseOptions())
    _one_line(err, bad.name, "file name", "not a date and time")
    bad.unlink()
    far = res / "Well0200_mode1_z000_t000_detail_2008-09-18-13h00m00s.txt"
    far.write_bytes(detail_files(copy)[0].read_bytes())
    with pytest.raises(InputError) as err:
        parse(copy, ParseOptions())
    _one_line(err, "well row 17, column 8 lies outside the 8x12 plate")


def test_not_a_mias_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        parse(tmp_path, ParseOptions())
    _one_line(err, "not a MIAS plate or experiment folder")


# -- end to end ------------------------------------------------------------------------------------


def test_cli_plate_bundle_read_back_by_hdfstorage(cli, experiment: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    result = cli("plate", experiment, "--out", out)
    assert result.exit_code == 0, result.output
    manifest = assert_bundle_matches(out / BARCODE, parse(experiment, ParseOptions()))
    assert manifest["rois"]["by_shape"].keys() == {"ellipse", "point", "mask"}
    assert {t["kind"] for t in manifest["tables"]} == {"objects", "wells"}


def test_cli_bad_input_exit_2_and_no_output(cli, copy: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = detail_files(copy)[5]
    path.write_bytes(path.read_bytes().replace(b"\t", b";", 40))
    out = tmp_path / "out"
    result = cli("plate", copy, "--out", out)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and path.name in lines[0] and "line " in lines[0], result.stderr
    assert not out.exists() or not any(out.iterdir())
