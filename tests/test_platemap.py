"""--platemap: read and checked against the plate, merged per well, kept in the bundle, Well annotations on upload."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("omero.clients", reason="needs omero-py: pip install 'hcs-import[omero]' (make setup does)")

from omero.rtypes import unwrap

from fake_omero import FakeServer, oid
from hcs_import.errors import InputError
from hcs_import.omero import NS_BULK
from hcs_import.omero.platemap_upload import NS_CONFIG
from hcs_import.omero.upload import upload_bundle
from hcs_import.parsers.base import ParseOptions, SynthSpec
from hcs_import.pipeline import import_plate
from hcs_import.platemap import control_groups, read_platemap
from hcs_import.synth.incell import write_incell_plate
from hcs_import.wells import row_letters


def write_map(path: Path, wells: list[tuple[int, int]], label: str = "{r}{c:02d}") -> Path:
    letters = row_letters(16)
    lines = ["Well,Compound,Concentration [uM],Control"]
    for i, (r, c) in enumerate(wells):
        control = "positive" if c == 0 else "negative" if c == 11 else ""
        lines.append(f"{label.format(r=letters[r], c=c + 1)},cmpd-{i % 7},{(i % 4) * 0.5:g},{control}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_incell_plate(tmp_path_factory.mktemp("pm") / "P", SynthSpec(wells=96, fields=1, objects=3))


def test_read_labels_numbers_and_refusals(tmp_path: Path) -> None:
    for label in ("{r}{c:02d}", "{r}{c}", "{r} - {c}"):
        frame = read_platemap(write_map(tmp_path / "m.csv", [(0, 0), (1, 2)], label))
        assert frame[["well_row", "well_column"]].to_numpy().tolist() == [[0, 0], [1, 2]]
        assert frame["Concentration [uM]"].dtype.kind == "f" and frame["Compound"].tolist() == ["cmpd-0", "cmpd-1"]
    bad = tmp_path / "bad.csv"
    for body, message in (("Well,C\nZ99x,1\n", "line 2, column 'Well': value 'Z99x': expected a well"),
                          ("Well,C\nA01,1\nA1,2\n", "line 3: well 'A1' is given twice"),
                          ("Well,C\nA01,1,2\n", "line 2: 3 fields, the header has 2"),
                          ("Well\n", "expected a header line and one line per well")):
        bad.write_text(body)
        with pytest.raises(InputError, match=message):
            read_platemap(bad)


def test_merged_into_the_per_well_table_and_mismatches_reported(plate: Path, tmp_path: Path) -> None:
    wells = [(r, c) for r in range(8) for c in range(12) if (r, c) != (7, 11)] + [(8, 0)]
    mapped = write_map(tmp_path / "map.csv", wells[:-1])
    result = import_plate(plate, tmp_path / "out", ParseOptions(platemap=mapped))
    table = result.analysis.well_table
    frame = table.frame().set_index("well")
    assert frame.loc["A01", "Compound"] == "cmpd-0" and frame.loc["A02", "Concentration [uM]"] == 0.5
    assert pd.isna(frame.loc["H12", "Compound"])
    warnings = result.manifest["warnings"]
    assert any("map.csv: 1 wells with results not in the plate map: H12" in w for w in warnings)
    assert (result.bundle / "platemap.parquet").is_file() and result.manifest["platemap"]["wells"] == 95
    outside = write_map(tmp_path / "outside.csv", wells)
    with pytest.raises(InputError, match=r"outside.csv: line 97: well row 9, column 1 lies outside the 8x12 plate"):
        import_plate(plate, tmp_path / "out2", ParseOptions(platemap=outside))
    groups = control_groups(read_platemap(mapped))
    assert groups is not None and groups[0] == "Control" and len(groups[1]) == 8 and len(groups[2]) == 7


def test_cli_platemap_option(plate: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    mapped = write_map(tmp_path / "map.csv", [(r, c) for r in range(8) for c in range(12)])
    result = cli("plate", plate, "--out", tmp_path / "out", "--platemap", mapped)
    assert result.exit_code == 0, result.output
    assert "Wells.h5: wells Wells: 96 rows x 9 columns" in result.output  # 6 + Compound, Concentration, Control


def test_upload_annotates_every_mapped_well(plate: Path, tmp_path: Path) -> None:
    mapped = write_map(tmp_path / "map.csv", [(r, c) for r in range(8) for c in range(12)])
    bundle = import_plate(plate, tmp_path / "out", ParseOptions(platemap=mapped)).bundle
    server = FakeServer()
    omero_plate = server.add_plate("P", 8, 12, 1)
    report = upload_bundle(bundle, server.sf(), plate_id=oid(omero_plate))
    assert report.created["MapAnnotation (plate map)"] == 96
    links = server.all("WellAnnotationLink")
    assert len(links) == 96
    a01 = next(lk for lk in links.values() if oid(lk.getParent()) == server.well_id(omero_plate, 0, 0))
    ann = server.all("MapAnnotation")[oid(a01.getChild())]
    assert unwrap(ann.ns) == NS_BULK
    assert {nv.name: nv.value for nv in ann.getMapValue()} == {"Compound": "cmpd-0", "Concentration [uM]": "0",
                                                               "Control": "positive"}
    config = [a for a in server.all("FileAnnotation").values() if unwrap(a.ns) == NS_CONFIG]
    assert len(config) == 1
    text = bytes(server.file_bytes[oid(config[0].getFile())]).decode()
    assert 'name: "Compound"' in text and "include: yes" in text
    again = upload_bundle(bundle, server.sf(), plate_id=oid(omero_plate))
    assert len(again.deleted["MapAnnotation"]) == 96 and len(server.all("MapAnnotation")) == 96
    assert len(server.all("WellAnnotationLink")) == 96  # the old links went with the old annotations
