"""Real Harmony and IN Carta exports (../shared/realdata): keys, t, fields, ROI kinds, per-well rows, values.

Every expectation is worked out here from the source file itself, read with plain string splitting
(independently of the parsers), so a parser that misreads a key or a value fails.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bundle_check import assert_bundle_matches
from hcs_import.errors import InputError
from hcs_import.parsers import columbus, incarta
from hcs_import.parsers.base import ParseOptions
from hcs_import.wells import row_index
from hcs_import.writers.bundle import write_bundle

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
HARMONY = REALDATA / "harmony-batli"
INCARTA = REALDATA / "incarta-cytotable"
needs_harmony = pytest.mark.skipif(not HARMONY.is_dir(), reason=f"real Harmony exports not present at {HARMONY}")
needs_incarta = pytest.mark.skipif(not INCARTA.is_dir(), reason=f"real IN Carta exports not present at {INCARTA}")
HARMONY_FILES = sorted(p.name for p in HARMONY.glob("*.txt")) if HARMONY.is_dir() else []
INCARTA_FILES = sorted(p.name for p in INCARTA.glob("*.csv")) if INCARTA.is_dir() else []


def harmony_source(path: Path) -> tuple[dict[str, str], list[str], list[list[str]]]:
    """([General] block, header, rows) of a Harmony export, by plain splitting; the trailing tab kept."""
    lines = path.read_text(encoding="utf-8").splitlines()
    data_at = lines.index("[Data]")
    general = dict(line.split("\t", 1) for line in lines[:data_at] if "\t" in line)
    header = lines[data_at + 1].split("\t")
    rows = [line.split("\t") for line in lines[data_at + 2:] if line.strip()]
    return general, header, rows


def as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def same(got: object, want: str) -> bool:
    """A parsed cell equals the source text: the same text, the same number, or missing for empty."""
    if want.strip() == "":
        return got is None or got == "" or (isinstance(got, float) and math.isnan(got))
    number = as_number(want)
    if isinstance(got, str) or got is None:
        return (got or "") == want
    if number is None:
        return False
    return (math.isnan(number) and math.isnan(float(got))) or float(got) == number  # type: ignore[arg-type]


@needs_harmony
@pytest.mark.parametrize("name", HARMONY_FILES)
def test_harmony_file_keys_t_values_rois(name: str, tmp_path: Path) -> None:
    path = HARMONY / name
    general, header, rows = harmony_source(path)
    assert header[-1] == "" and all(r[-1] == "" for r in rows)  # the real quirk: every line ends with a tab
    analysis = columbus.parse(path, ParseOptions())
    assert analysis.plate.name == general["Plate Name"]
    col = {h: i for i, h in enumerate(header)}
    times = sorted({float(r[col["Timepoint"]]) for r in rows})
    is_objects = "Object No" in col
    table = analysis.object_tables[0] if is_objects else analysis.well_table
    assert table is not None
    frame = table.frame()
    assert len(frame) == len(rows)
    # keys
    assert frame["well_row"].tolist() == [int(r[col["Row"]]) - 1 for r in rows]
    assert frame["well_column"].tolist() == [int(r[col["Column"]]) - 1 for r in rows]
    expected_t = [times.index(float(r[col["Timepoint"]])) for r in rows]
    if is_objects:
        assert frame["field"].tolist() == [int(r[col["Field"]]) - 1 for r in rows]
        assert frame["object"].tolist() == [int(r[col["Object No"]]) for r in rows]
        assert frame["t"].tolist() == expected_t
        assert (frame["z"] == 0).all()
    elif len(times) > 1:
        assert table.keys == ("well_row", "well_column", "well", "t")
        assert frame["t"].tolist() == expected_t
        assert not frame.duplicated(["well_row", "well_column", "t"]).any()
    if times[0] != 0:
        offset = -int(times[0])
        assert any(f"Timepoint {int(times[0])}..{int(times[-1])} ({len(times)} distinct) stored as t 0.."
                   f"{len(times) - 1} (t = Timepoint {'+' if offset >= 0 else '-'} {abs(offset)})" in w
                   for w in analysis.warnings), analysis.warnings
    # every value of every named column, as written (keys consumed into the key columns)
    consumed = {"Row", "Column", "Field", "Object No"} if is_objects else {"Row", "Column"}
    assert "" not in frame.columns and f"column {len(header)}" not in frame.columns  # empty trailing column dropped
    for h, i in col.items():
        if h in consumed or h == "":
            continue
        got = frame[h.strip()].tolist()  # names are trimmed (the vendor's spelling stays in the description)
        bad = [k for k, r in enumerate(rows) if not same(got[k], r[i])]
        assert not bad, (h, bad[:3], [got[k] for k in bad[:3]], [rows[k][i] for k in bad[:3]])
    # ROIs: one Rectangle per object from its Bounding Box, on the object's own t
    rois = analysis.roi_frame()
    if is_objects:
        assert set(rois["shape"]) == {"rectangle"} and len(rois) == len(rows)
        rois = rois.sort_values("table_row")
        boxes = np.array([[float(v) for v in r[col["Bounding Box"]].strip("[]").split(",")] for r in rows])
        rr = rois["table_row"].to_numpy()
        assert np.array_equal(rois["x"].to_numpy(), boxes[rr, 0])
        assert np.array_equal(rois["y"].to_numpy(), boxes[rr, 1])
        assert np.array_equal(rois["width"].to_numpy(), boxes[rr, 2] - boxes[rr, 0])
        assert np.array_equal(rois["height"].to_numpy(), boxes[rr, 3] - boxes[rr, 1])
        assert rois["t"].tolist() == [expected_t[k] for k in rr]
        # the computed per-well table: one row per (well, t), counts from the source, no ids or positions
        wells = analysis.well_table
        assert wells is not None
        per = pd.DataFrame({"r": frame["well_row"], "c": frame["well_column"], "t": expected_t})
        sizes = per.groupby(["r", "c", "t"]).size()
        w = wells.frame()
        assert len(w) == len(sizes)
        count = f"{table.name} count"
        if len(times) > 1:
            assert wells.keys[-1] == "t"
            got_counts = w.set_index(["well_row", "well_column", "t"])[count]
        else:
            got_counts = w.set_index(["well_row", "well_column"])[count]
            sizes = sizes.droplevel("t")
        assert got_counts.sort_index().tolist() == sizes.sort_index().tolist()
        for name in ("X", "Y", "Position X [µm]", "Position Y [µm]", "Timepoint", "Plane", "Field"):
            assert f"{table.name} {name} mean" not in w.columns, name
        assert not [c for c in w.columns if "Object No" in c or "Track Point" in c]
    else:
        assert len(rois) == 0
    assert_bundle_matches(write_bundle(analysis, tmp_path / "out"), analysis)


@needs_harmony
def test_harmony_folder_of_four_plates_is_refused_with_the_list(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        columbus.parse(HARMONY, ParseOptions())
    text = str(err.value)
    assert "holds exports of 4 plates" in text and "--source-plate" in text and len(text) < 300
    for plate in ("EP128-TMRM", "EP167", "EP209", "EP149bis"):
        assert repr(plate) in text
    chosen = columbus.parse(HARMONY, ParseOptions(source_plate="EP209"))
    assert chosen.plate.name == "EP209" and [t.name for t in chosen.object_tables] == ["Population - Nuclei"]
    assert [s.path for s in chosen.provenance.sources] == ["Objects_Population - Nuclei.txt"]


def incarta_source(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


@needs_incarta
@pytest.mark.parametrize("name", INCARTA_FILES)
def test_incarta_file_keys_fov_values_rois(name: str, tmp_path: Path) -> None:
    path = INCARTA / name
    header, rows = incarta_source(path)
    col = {h: i for i, h in enumerate(header)}
    analysis = incarta.parse(path, ParseOptions())
    assert analysis.plate.name == rows[0][col["Plate ID"]]
    [table] = analysis.object_tables
    frame = table.frame()
    assert len(frame) == len(rows)
    assert frame["well_row"].tolist() == [row_index(r[col["Row"]]) for r in rows]
    assert frame["well_column"].tolist() == [int(r[col["Column"]]) - 1 for r in rows]
    assert frame["field"].tolist() == [int(r[col["FOV"]]) - 1 for r in rows]  # FOV is the field, 1-based
    assert sorted(frame["field"].unique()) == [0, 1, 2, 3]
    assert frame["object"].tolist() == [int(r[col["OBJECT ID"]]) for r in rows]
    assert frame["z"].tolist() == [int(r[col["Z"]]) - 1 for r in rows]
    assert frame["t"].tolist() == [int(r[col["T"]]) - 1 for r in rows]
    assert not frame.duplicated(["well_row", "well_column", "field", "object"]).any()
    for h, i in col.items():
        got = frame[h].tolist()
        bad = [k for k, r in enumerate(rows) if not same(got[k], r[i])]
        assert not bad, (h, bad[:3], [got[k] for k in bad[:3]], [rows[k][i] for k in bad[:3]])
    # ROIs: per row one Rectangle for each population with a box (Primary Target wv1, Cells wv3)
    rois = analysis.roi_frame()
    assert set(rois["shape"]) == {"rectangle"}
    for pop, wave in (("Primary Target", 1), ("Cells", 3)):
        parts = [f"{pop} Max {p} wv{wave}" for p in ("left border", "top border", "width", "height")]
        mine = rois[rois["c"] == wave - 1].sort_values("table_row")
        assert len(mine) == len(rows)
        geo = np.array([[float(r[col[p]]) for p in parts] for r in rows])
        assert np.array_equal(mine[["x", "y", "width", "height"]].to_numpy(), geo)
        assert mine["field"].tolist() == frame["field"].tolist()
    wells = analysis.well_table
    assert wells is not None
    w = wells.frame()
    assert len(w) == frame.groupby(["well_row", "well_column"]).ngroups == 12
    assert (w[f"{table.name} count"] == 12).all()
    for excluded in ("OBJECT ID", "FOV", "Column", "Z", "T", "Primary Target Max left border wv1",
                     "Primary Target cg X wv1", "Cells Max top border wv3", "Class Color"):
        assert f"{table.name} {excluded} mean" not in w.columns, excluded
    assert f"{table.name} Primary Target Area wv1 mean" in w.columns
    assert_bundle_matches(write_bundle(analysis, tmp_path / "out"), analysis)


@needs_incarta
def test_incarta_folder_of_four_acquisitions_is_refused_with_the_list() -> None:
    with pytest.raises(InputError) as err:
        incarta.parse(INCARTA, ParseOptions())
    text = str(err.value)
    assert "holds exports of 4 plates" in text and len(text) < 300
    chosen = incarta.parse(INCARTA, ParseOptions(source_plate="2023-05-06 DAY3 iSMR IMR90 Phall Mito Dapi"))
    assert len(chosen.object_tables) == 1 and "Day2" in chosen.object_tables[0].name


@needs_harmony
@needs_incarta
def test_batch_imports_every_plate_of_the_real_multi_plate_folders(tmp_path: Path) -> None:
    """Both real folders hold 4 plates each: batch imports the 8 as 8 bundles, none merged."""
    import shutil

    from hcs_import.batch.ledger import LEDGER_NAME
    from hcs_import.batch.runner import BatchConfig, run_batch

    root = tmp_path / "root"
    shutil.copytree(HARMONY, root / "harmony")
    shutil.copytree(INCARTA, root / "incarta")
    out = tmp_path / "out"
    summary = run_batch(BatchConfig(root=root, out=out, ledger=out / LEDGER_NAME, workers=2, progress=False))
    assert (summary.count("ok"), summary.count("failed")) == (8, 0), [p.error for p in summary.plates]
    bundles = sorted(str(p.parent.relative_to(out)) for p in out.rglob("manifest.json"))
    assert [b for b in bundles if b.startswith("harmony/")] == [
        "harmony/EP128-TMRM", "harmony/EP149bis", "harmony/EP167", "harmony/EP209"]
    assert len([b for b in bundles if b.startswith("incarta/")]) == 4
