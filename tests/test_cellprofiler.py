"""CellProfiler ExportToSpreadsheet CSVs: keys from the image table, every value, ROIs, refusals."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from bundle_check import assert_bundle_matches
from hcs_import.errors import InputError
from hcs_import.parsers import cellprofiler, registry
from hcs_import.parsers.base import ParseOptions, SynthSpec
from hcs_import.synth.cellprofiler import PREFIX, write_cellprofiler_export
from hcs_import.writers.bundle import write_bundle

SPEC = SynthSpec(wells=96, fields=2, objects=4, seed=2, populations=2, measurements=4)


def rows_of(path: Path, header_rows: int = 1) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[header_rows - 1], rows[header_rows:]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_cellprofiler_export(tmp_path_factory.mktemp("cp") / "CPPlate", SPEC)


def test_detected_and_every_key_and_value(export: Path, tmp_path: Path) -> None:
    assert registry.locate(export).format == "cellprofiler"
    a = cellprofiler.parse(export, ParseOptions())
    assert a.plate.name == "CPPlate" and (a.plate.rows, a.plate.columns) == (8, 12)
    image_header, images = rows_of(export / f"{PREFIX}Image.csv")
    by_number = {int(r[0]): r for r in images}
    for population in ("Nuclei", "Cells"):
        header, rows = rows_of(export / f"{PREFIX}{population}.csv")
        frame = a.table(population).frame()
        assert len(frame) == len(rows)
        wells = [by_number[int(r[0])][image_header.index("Metadata_Well")] for r in rows]
        assert frame["well"].tolist() == [f"{w[0]}{int(w[1:]):02d}" for w in wells]
        assert frame["field"].tolist() == [int(by_number[int(r[0])][3]) - 1 for r in rows]
        assert frame["object"].tolist() == [int(r[1]) for r in rows]
        for i, name in enumerate(header):
            assert np.array_equal(frame[name].to_numpy(float), np.array([float(r[i]) for r in rows])), name
    image = a.table("Image")
    assert image.kind == "fields" and image.rows == 192
    wells = a.well_table
    assert wells is not None
    w = wells.frame().set_index("well")
    counts = {}
    for r in images:
        counts[r[2]] = counts.get(r[2], 0) + int(r[image_header.index("Count_Nuclei")])
    assert w["Nuclei count"].to_dict() == {f"{k[0]}{int(k[1:]):02d}": v for k, v in counts.items()}
    for left_out in ("ImageNumber", "ObjectNumber", "Location_Center_X", "AreaShape_BoundingBoxMinimum_X",
                     "Parent_Nuclei"):
        assert f"Cells {left_out} mean" not in w.columns, left_out
    assert_bundle_matches(write_bundle(a, tmp_path / "out"), a)


def test_rectangles_from_the_bounding_box(export: Path) -> None:
    a = cellprofiler.parse(export, ParseOptions())
    rois = a.roi_frame()
    nuclei = a.table("Nuclei").frame()
    mine = rois[rois["population"] == "Nuclei"].sort_values("table_row")
    assert (mine["shape"] == "rectangle").all() and len(mine) == len(nuclei)
    assert np.array_equal(mine["x"].to_numpy(), nuclei["AreaShape_BoundingBoxMinimum_X"].to_numpy(float))
    assert np.array_equal(mine["width"].to_numpy(), (nuclei["AreaShape_BoundingBoxMaximum_X"]
                                                     - nuclei["AreaShape_BoundingBoxMinimum_X"]).to_numpy(float))


def test_two_header_rows(tmp_path: Path) -> None:
    spec = SynthSpec(wells=96, fields=1, objects=2, layout="object-header-rows")
    src = write_cellprofiler_export(tmp_path / "P", spec)
    a = cellprofiler.parse(src, ParseOptions())
    nuclei = a.table("Nuclei").frame()
    assert "Nuclei_AreaShape_Area" in nuclei.columns and "ObjectNumber" in nuclei.columns
    assert (a.roi_frame()["shape"] == "rectangle").all() and len(a.roi_frame()) == 2 * len(nuclei)


def test_images_without_well_metadata_are_refused(export: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(export, tmp_path / "c"))
    image = copy / f"{PREFIX}Image.csv"
    header, rows = rows_of(image)
    keep = [i for i, h in enumerate(header) if h != "Metadata_Well"]
    with open(image, "w", newline="") as fh:
        csv.writer(fh).writerows([[header[i] for i in keep], *([r[i] for i in keep] for r in rows)])
    with pytest.raises(InputError) as err:
        cellprofiler.parse(copy, ParseOptions())
    text = str(err.value)
    assert "MyExpt_Image.csv" in text and "cannot be placed on a plate" in text and "\n" not in text


def test_object_of_an_unknown_image_and_several_plates(export: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(export, tmp_path / "c"))
    nuclei = copy / f"{PREFIX}Nuclei.csv"
    text = nuclei.read_text().splitlines()
    text.append("9999,1," + ",".join(text[1].split(",")[2:]))
    nuclei.write_text("\n".join(text) + "\n")
    with pytest.raises(InputError, match=r"MyExpt_Nuclei.csv: line \d+, column 'ImageNumber': image 9999 is not in"):
        cellprofiler.parse(copy, ParseOptions())
    two = Path(shutil.copytree(export, tmp_path / "two"))
    (two / "other").mkdir()
    body = (two / f"{PREFIX}Image.csv").read_text().replace("CPPlate", "CPPlate2")
    (two / "other" / f"{PREFIX}Image.csv").write_text(body)
    with pytest.raises(InputError, match="holds exports of 2 plates: 'CPPlate', 'CPPlate2'"):
        cellprofiler.parse(two, ParseOptions())
