"""Parity with the reference: omero-py's own `omero.util.populate_roi` parsers over the same files.

populate_roi's MIAS and Flex measurement contexts run unmodified, without a server: they get real
omero-py model objects (Plate, Well, WellSample, Image, OriginalFile), a local file provider and a
stand-in service factory whose update service records the ROIs instead of saving them. Every value
they read is compared with ours; the deliberate differences are asserted explicitly:
- MIAS "NEO" ellipses: our radius is `Cell Diam.` / 2, populate_roi's is the diameter;
- MIAS rows keep their z/t from the file name (populate_roi puts every shape on z=0, t=0);
- Flex: we keep every Area (populate_roi returns only the last one);
- Flex: a Result a well lacks is NaN for us; populate_roi's column just comes out shorter, so its
  values slide onto the wrong wells (its -1.0 padding exists only for InCell);
- Flex: a Result name not among the parameters is our InputError, populate_roi's KeyError.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

omero_clients = pytest.importorskip("omero.clients")

pytest.importorskip("omero.clients", reason="needs omero-py: pip install 'hcs-import[omero]' (make setup does)")

import omero.util.populate_roi as populate_roi
from omero.model import ImageI, OriginalFileI, PlateI, WellI, WellSampleI
from omero.rtypes import rint, rlong, rstring

from hcs_import.errors import InputError
from hcs_import.parsers.base import ParseOptions, SynthSpec
from hcs_import.parsers.flex import parse as parse_flex
from hcs_import.parsers.mias import parse as parse_mias
from hcs_import.synth.flex import RES_NAME, write_flex_plate
from hcs_import.synth.mias import PLATE_FOLDER, write_mias_experiment

# -- a plate of real omero-py model objects, and the stand-ins populate_roi needs ---------------------


class RecordingUpdateService:
    """Stand-in IUpdate: gives saved objects an id and keeps the ROIs populate_roi would save."""

    def __init__(self) -> None:
        self.rois: list = []
        self._ids = itertools.count(1)

    def saveAndReturnObject(self, obj):
        obj.id = rlong(next(self._ids))
        return obj

    def saveAndReturnIds(self, rois):
        self.rois.extend(rois)
        return [next(self._ids) for _ in rois]


class StandInServiceFactory:
    def __init__(self) -> None:
        self.update = RecordingUpdateService()

    def getQueryService(self):
        return object()

    def getUpdateService(self):
        return self.update


class LocalFileProvider:
    """populate_roi's file provider interface, reading the OriginalFile's path + name from disk."""

    def __init__(self, service_factory) -> None:
        self.service_factory = service_factory

    def get_original_file_data(self, original_file):
        path = Path(original_file.path.val) / original_file.name.val
        if original_file.name.val.endswith(".res"):
            return open(path, "rb")
        return open(path, encoding="utf-8")


class LocalMIASCtx(populate_roi.MIASPlateAnalysisCtx):
    DEFAULT_ORIGINAL_FILE_PROVIDER = LocalFileProvider


class LocalFlexCtx(populate_roi.FlexPlateAnalysisCtx):
    DEFAULT_ORIGINAL_FILE_PROVIDER = LocalFileProvider


def omero_plate(rows: int, columns: int, fields: int):
    """Loaded Plate -> Wells -> WellSamples -> Images; returns images and id -> (row, column) maps."""
    plate = PlateI(1, True)
    images, image_well, well_pos = [], {}, {}
    ids = itertools.count(1)
    for r in range(rows):
        for c in range(columns):
            well = WellI(next(ids), True)
            well.row, well.column, well.plate = rint(r), rint(c), plate
            well_pos[well.id.val] = (r, c)
            for _ in range(fields):
                image = ImageI(next(ids), True)
                sample = WellSampleI(next(ids), True)
                sample.well, sample.image = well, image
                well.addWellSample(sample)
                image.addWellSample(sample)
                images.append(image)
                image_well[image.id.val] = (r, c)
    return images, image_well, well_pos


def original_files(paths: list[Path], mimetype: str | None) -> list[OriginalFileI]:
    out = []
    for i, p in enumerate(paths, start=1):
        f = OriginalFileI(i, True)
        f.name, f.path, f.size = rstring(p.name), rstring(str(p.parent) + "/"), rlong(p.stat().st_size)
        f.mimetype = rstring(mimetype) if mimetype else None
        out.append(f)
    return out


def same(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


# -- MIAS -------------------------------------------------------------------------------------------

SPEC = SynthSpec(wells=96, objects=12, seed=3, populations=2)


@pytest.fixture(scope="module")
def mias_plate(tmp_path_factory):
    root = tmp_path_factory.mktemp("mias")
    write_mias_experiment(root, SPEC)
    return root


def run_populate_roi_mias(root: Path):
    images, image_well, _ = omero_plate(8, 12, 1)
    results = sorted((root / PLATE_FOLDER / "results").iterdir())
    sf = StandInServiceFactory()
    ctx = LocalMIASCtx(images, original_files(results, None), {}, 1, sf)
    runs = {}
    for i in range(ctx.get_measurement_count()):
        mctx = ctx.get_measurement_ctx(i)
        columns = mctx.parse().sets_of_columns[0]
        before = len(sf.update.rois)
        mctx.create_file_annotation(0)  # as parse_and_populate() does before the ROIs
        mctx.parse_and_populate_roi(columns)
        runs[mctx.get_name()] = (columns, sf.update.rois[before:])
    return runs, image_well


def their_frame(columns, image_well) -> pd.DataFrame:
    """populate_roi's columns as a frame in file order (it reads each file bottom-up)."""
    image = np.array(columns[0].values)
    data = {c.name: np.array(c.values, dtype=np.float64) for c in columns[2:]}
    frame = pd.DataFrame(data)
    frame["well_row"] = [image_well[i][0] for i in image]
    frame["well_column"] = [image_well[i][1] for i in image]
    frame["_pos"] = -np.arange(len(frame))  # reversed within each file
    return frame.sort_values(["well_row", "well_column", "_pos"], kind="stable").reset_index(drop=True)


def test_mias_every_value_equals_populate_roi(mias_plate):
    runs, image_well = run_populate_roi_mias(mias_plate)
    ours = parse_mias(mias_plate, ParseOptions())
    assert len(runs) == 2  # NEOlog... and MNUlog...: one measurement per log file
    compared = 0
    for log_name, (columns, _) in runs.items():
        stamp = re.search(r"log(.+)$", log_name).group(1)
        kind = "NEO" if log_name.startswith("NEO") else "MNU"
        table = ours.table(f"{kind} {stamp}").data.sort_values(["well_row", "well_column"], kind="stable")
        theirs = their_frame(columns, image_well)
        assert len(table) == len(theirs) > 0
        assert np.array_equal(table["well_row"], theirs["well_row"])
        assert np.array_equal(table["well_column"], theirs["well_column"])
        names = [c.name for c in columns[2:]]
        assert names == {"NEO": ["Label", "Row", "Col", "Nucleus Area", "Cell Diam.", "Cell Type",
                                 "Mean Nucleus Intens."], "MNU": ["row", "col", "type"]}[kind]
        for name in names:
            assert same(table[name], theirs[name]), f"{kind} column {name} differs"
            compared += len(table)
    assert compared > 1000


def test_mias_rois_differ_only_in_radius(mias_plate):
    runs, image_well = run_populate_roi_mias(mias_plate)
    ours = parse_mias(mias_plate, ParseOptions())
    for log_name, (_, shapes) in runs.items():
        stamp = re.search(r"log(.+)$", log_name).group(1)
        kind = "NEO" if log_name.startswith("NEO") else "MNU"
        mine = ours.rois[ours.rois["population"] == f"{kind} {stamp}"]
        assert len(mine) == len(shapes) > 0
        theirs = pd.DataFrame({
            "well": [image_well[r.image.id.val] for r in shapes],
            "x": [r.copyShapes()[0].x.val for r in shapes],
            "y": [r.copyShapes()[0].y.val for r in shapes],
            "z": [r.copyShapes()[0].theZ.val for r in shapes],
            "t": [r.copyShapes()[0].theT.val for r in shapes],
            "radius": [r.copyShapes()[0].radiusX.val if kind == "NEO" else np.nan for r in shapes],
            "shape": [type(r.copyShapes()[0]).__name__ for r in shapes],
        })
        assert set(theirs["shape"]) == {"EllipseI" if kind == "NEO" else "PointI"}
        assert set(mine["shape"]) == {"ellipse" if kind == "NEO" else "point"}
        key = ["well", "x", "y"]
        mine = mine.assign(well=list(zip(mine["well_row"], mine["well_column"]))).sort_values(key).reset_index()
        theirs = theirs.sort_values(key).reset_index()
        assert same(mine["x"], theirs["x"]) and same(mine["y"], theirs["y"])
        assert list(mine["well"]) == list(theirs["well"])
        assert (theirs["z"] == 0).all() and (theirs["t"] == 0).all()  # the synthetic files are z000/t000 too
        assert np.array_equal(mine["z"], theirs["z"]) and np.array_equal(mine["t"], theirs["t"])
        if kind == "NEO":
            # The deliberate difference: populate_roi uses the diameter as the radius.
            assert same(mine["radius_x"] * 2, theirs["radius"])
            assert same(mine["radius_y"], mine["radius_x"])
            assert not same(mine["radius_x"], theirs["radius"])


def test_mias_detail_files_sharing_a_timestamp_are_all_kept(tmp_path):
    """populate_roi keys detail files by timestamp: of files sharing one, it keeps one. We keep all."""
    write_mias_experiment(tmp_path, SynthSpec(wells=96, objects=5, seed=1, populations=1))
    results = tmp_path / PLATE_FOLDER / "results"
    first = sorted(results.glob("Well0001_*_detail_*.txt"))[0]
    stamp = first.name.rsplit("_detail_", 1)[1]
    second = sorted(results.glob("Well0002_*_detail_*.txt"))[0]
    second.rename(results / (second.name.rsplit("_detail_", 1)[0] + "_detail_" + stamp))
    runs, image_well = run_populate_roi_mias(tmp_path)
    ((columns, _),) = runs.values()
    theirs = their_frame(columns, image_well)
    ours = parse_mias(tmp_path, ParseOptions()).object_tables[0].data
    lost = {(0, 0), (0, 1)} - set(zip(theirs["well_row"], theirs["well_column"]))
    assert len(lost) == 1  # populate_roi silently lost one of the two wells
    ((r, c),) = lost
    lost_rows = int(((ours["well_row"] == r) & (ours["well_column"] == c)).sum())
    assert lost_rows > 0 and len(ours) == len(theirs) + lost_rows


def test_mias_z_and_t_come_from_the_file_name(tmp_path):
    """populate_roi puts every MIAS shape on z=0, t=0; we take z<zzz> and t<ttt> from the file name."""
    write_mias_experiment(tmp_path, SynthSpec(wells=96, objects=5, seed=2, populations=1))
    results = tmp_path / PLATE_FOLDER / "results"
    detail = sorted(results.glob("Well0003_*_detail_*.txt"))[0]
    detail.rename(results / detail.name.replace("_z000_t000_", "_z002_t001_"))
    runs, image_well = run_populate_roi_mias(tmp_path)
    ((_, shapes),) = runs.values()
    theirs = {(image_well[s.image.id.val], s.copyShapes()[0].theZ.val, s.copyShapes()[0].theT.val) for s in shapes}
    assert ((0, 2), 0, 0) in theirs
    ours = parse_mias(tmp_path, ParseOptions())
    r = ours.rois
    rois = r[(r["well_row"] == 0) & (r["well_column"] == 2) & (r["shape"] == "ellipse")]
    assert len(rois) > 0 and set(rois["z"]) == {2} and set(rois["t"]) == {1}
    table = ours.object_tables[0].data
    a03 = (table["well_row"] == 0) & (table["well_column"] == 2)
    assert set(table.loc[a03, "z"]) == {2} and set(table.loc[a03, "t"]) == {1}
    assert set(table.loc[~a03, "z"]) == {0}


# -- Flex -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flex_plate(tmp_path_factory):
    root = tmp_path_factory.mktemp("flex")
    write_flex_plate(root, SynthSpec(wells=96, fields=2, seed=5, populations=2, measurements=6))
    return root


def run_populate_roi_flex(root: Path, res: Path):
    images, _, well_pos = omero_plate(8, 12, 2)
    files = original_files([res, *sorted(root.glob("*.mea"))], "Companion/Flex")
    ctx = LocalFlexCtx(images, files, {}, 1, StandInServiceFactory())
    assert ctx.get_measurement_count() == 1
    columns = ctx.get_measurement_ctx(0).parse().sets_of_columns[0]
    return columns, well_pos


def test_flex_every_value_equals_populate_roi_for_the_last_area(flex_plate):
    columns, well_pos = run_populate_roi_flex(flex_plate, flex_plate / RES_NAME)
    ours = parse_flex(flex_plate, ParseOptions()).table("Wells")
    assert ours.metadata["flex.areas"] == "Nuclei; Cytoplasm"
    well_col, *values = columns
    assert well_col.name == "Well"
    pos = [well_pos[w] for w in well_col.values]
    data = ours.data.set_index(["well_row", "well_column"])
    assert len(pos) == len(data) == 96
    for col in values:
        # populate_roi's columns are the LAST Area's parameters; ours carry the Area's name in front.
        mine = data.loc[pos, f"Cytoplasm: {col.name}"].to_numpy()
        assert same(mine, col.values), col.name
    # The deliberate difference: every Area is kept. populate_roi has no trace of the first one.
    nuclei = [c for c in ours.data.columns if str(c).startswith("Nuclei: ")]
    assert len(nuclei) == len(values) == 6
    assert not any(same(data[c].to_numpy(), data[c.replace("Nuclei", "Cytoplasm", 1)].to_numpy()) for c in nuclei)


def _edit_res(src: Path, dst: Path, pattern: str, replacement: str) -> None:
    text = src.read_text(encoding="utf-8")
    new, n = re.subn(pattern, replacement, text, count=1)
    assert n == 1
    dst.write_text(new, encoding="utf-8")


def test_flex_missing_result_is_nan_where_populate_roi_misaligns(flex_plate, tmp_path):
    res = tmp_path / RES_NAME
    # Drop the first "Mean Intensity" Result of the last Area (well A01).
    text = (flex_plate / RES_NAME).read_text(encoding="utf-8")
    last_area = text.rindex("<Area ")
    head, tail = text[:last_area], text[last_area:]
    tail, n = re.subn(r'\s*<Result name="Mean Intensity">[^<]*</Result>', "", tail, count=1)
    assert n == 1
    res.write_text(head + tail, encoding="utf-8")
    columns, well_pos = run_populate_roi_flex(flex_plate, res)
    theirs = {c.name: c.values for c in columns}
    assert len(theirs["Mean Intensity"]) == len(theirs["Well"]) - 1  # shorter: values slide one well up
    ours = parse_flex(res, ParseOptions())
    table = ours.table("Wells").data
    a01 = table[(table["well_row"] == 0) & (table["well_column"] == 0)]
    assert np.isnan(a01["Cytoplasm: Mean Intensity"].iloc[0])
    assert any("Results missing from a well stored as NaN: 1 occurrence" in w for w in ours.warnings)
    # Every other well keeps its own value, in the right row.
    pos = [well_pos[w] for w in theirs["Well"]]
    data = table.set_index(["well_row", "well_column"])
    assert same(data.loc[pos[1:], "Cytoplasm: Mean Intensity"].to_numpy(), theirs["Mean Intensity"])


def test_flex_unknown_result_name_is_our_error_and_populate_roi_keyerror(flex_plate, tmp_path):
    res = tmp_path / RES_NAME
    text = (flex_plate / RES_NAME).read_text(encoding="utf-8")
    last_area = text.rindex("<Area ")
    tail = text[last_area:].replace('<Result name="Roundness">', '<Result name="Roundness (typo)">', 1)
    res.write_text(text[:last_area] + tail, encoding="utf-8")
    with pytest.raises(KeyError):
        run_populate_roi_flex(flex_plate, res)
    with pytest.raises(InputError) as err:
        parse_flex(res, ParseOptions())
    msg = str(err.value)
    assert "\n" not in msg and RES_NAME in msg and "Roundness (typo)" in msg and "line " in msg
