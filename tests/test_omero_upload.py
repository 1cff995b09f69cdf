"""upload_bundle against the in-memory fake server: exact objects, links, namespaces and column values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("omero.clients", reason="needs omero-py: pip install 'hcs-import[omero]' (make setup does)")

from omero.rtypes import unwrap

from fake_omero import FakeServer, oid
from hcs_import.omero import NS_BULK, NS_MEASUREMENT, NS_RAW, provenance_tag
from hcs_import.omero.connect import OmeroError
from hcs_import.omero.resolve import PLATE_QUERY
from hcs_import.omero.tables import read_local_table
from hcs_import.omero.upload import UploadError, upload_bundle
from hcs_import.parsers.base import ParseOptions, SynthSpec
from hcs_import.pipeline import import_plate
from hcs_import.synth.incell import write_incell_plate


@pytest.fixture(scope="module")
def plate96(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A synthetic 96-well InCell plate (2 fields, ~5 objects per field) and its bundle."""
    root = tmp_path_factory.mktemp("plate96")
    src = write_incell_plate(root / "src", SynthSpec(wells=96, fields=2, objects=5))
    result = import_plate(src, root / "out", ParseOptions())
    return src, result.bundle


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


def manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def test_server_mode_creates_linked_tables_and_rois(plate96: tuple[Path, Path], server: FakeServer) -> None:
    src, bundle = plate96
    plate = server.add_plate("P1", 8, 12, 2)
    m = manifest(bundle)
    report = upload_bundle(bundle, server.sf(), plate_id=oid(plate), sources=src, batch_bytes=20_000)

    # One query loads the whole plate.
    assert [c[0] for c in server.calls_to("query.findAllByQuery")] == [PLATE_QUERY]

    tag = provenance_tag(m["provenance"]["key"])
    objects = {t["population"]: t for t in m["tables"] if t["kind"] == "objects"}
    n_objects = sum(t["rows"] for t in objects.values())
    assert server.counts_by_type()["Roi"] == n_objects == m["rois"]["count"]
    assert server.counts_by_type()["Shape"] == m["rois"]["count"]
    anns = server.all("FileAnnotation")
    by_ns: dict[str, list] = {}
    for a in anns.values():
        by_ns.setdefault(unwrap(a.ns), []).append(a)
        assert unwrap(a.description).endswith(f"[hcs-import format incell; {tag}]")
    # OMERO.insight lists tables by description: each says in words which table it is, and no two are alike
    descriptions = sorted(unwrap(a.description) for a in anns.values())
    assert len(set(descriptions)) == len(descriptions)
    labels = {unwrap(a.description).split(" [")[0] for a in by_ns[NS_MEASUREMENT] + by_ns[NS_BULK]}
    assert labels == {f"P1 {t['population']}: {'objects' if t['kind'] == 'objects' else 'per well'}, {t['rows']} rows "
                      f"x {t['columns']} columns (hcs-import)" for t in m["tables"]}
    assert len(by_ns[NS_MEASUREMENT]) == len(objects)
    assert len(by_ns[NS_BULK]) == 1
    assert len(by_ns[NS_RAW]) == len(m["sources"])
    # Every FileAnnotation hangs off the Plate.
    for a in anns.values():
        assert [oid(lk.getParent()) for lk in server.links("PlateAnnotationLink", child=oid(a))] == [oid(plate)]

    # Per-well table: "Well" WellColumn with the plate's Well ids, one row per well.
    wells = server.tables[oid(by_ns[NS_BULK][0].getFile())]
    v, types = wells.values(), wells.types()
    assert next(iter(v)) == "Well" and types["Well"] == "WellColumn"
    # viewer rules: no Image column on the per-well table (a field image shows its objects, not the well's
    # row); the per-well table is the newest table on the Plate (OMERO.web tries the newest first)
    assert "Image" not in types
    table_anns = [oid(a) for a in by_ns[NS_MEASUREMENT] + by_ns[NS_BULK]]
    assert oid(by_ns[NS_BULK][0]) == max(table_anns)
    expected = [server.well_id(plate, r, c) for r, c in zip(v["well_row"], v["well_column"])]
    assert v["Well"] == expected and len(set(expected)) == 96
    assert wells.metadata["hcs_import.provenance_key"] == m["provenance"]["key"]
    assert wells.metadata["hcs_import.parser"] == m["provenance"]["parser"]
    assert json.loads(wells.metadata["hcs_import.sources"])[0]["sha256"] == m["sources"][0]["sha256"]

    # Per-object tables: Image and Roi filled, each Roi on that row's Image, ROI linked to the table.
    colours = set()
    for ann in by_ns[NS_MEASUREMENT]:
        table = server.tables[oid(ann.getFile())]
        v, types = table.values(), table.types()
        assert (types["Image"], types["Roi"], types["Well"]) == ("ImageColumn", "RoiColumn", "WellColumn")
        assert len(table.batches) > 1 and sum(table.batches) == len(v["Roi"])  # batched addData
        # Every other column, batch after batch, is the bundle file's, row for row.
        local = read_local_table(bundle / next(e["path"] for e in m["tables"]
                                               if e["kind"] == "objects" and e["rows"] == len(v["Roi"])
                                               and set(e["column_names"]) == set(v)))
        stored = local.columns(local.names)
        for name in local.names:
            if name not in ("Image", "Roi", "Well"):
                expected = stored[name].tolist()
                if local.kinds[local.names.index(name)] == "StringColumn":
                    expected = [b.decode("utf-8") for b in expected]
                assert v[name] == pytest.approx(expected, nan_ok=True) if isinstance(expected[0], float) \
                    else v[name] == expected, name
        assert v["Image"] == [server.image_id(plate, r, c, f)
                              for r, c, f in zip(v["well_row"], v["well_column"], v["field"])]
        assert -1 not in v["Roi"] and len(set(v["Roi"])) == len(v["Roi"])
        linked = {oid(lk.getParent()) for lk in server.links("RoiAnnotationLink", child=oid(ann))}
        assert linked == set(v["Roi"])
        for row in (0, len(v["Roi"]) - 1):
            roi = server.all("Roi")[v["Roi"][row]]
            assert oid(roi.getImage()) == v["Image"][row]
            shape = roi.copyShapes()[0]
            assert type(shape).__name__ == "PointI"
            assert (unwrap(shape.theZ), unwrap(shape.theT), shape.theC) == (0, 0, None)
            assert unwrap(shape.textValue).endswith(f" {v['object'][row]}")
            colours.add(unwrap(shape.strokeColor))
    assert len(colours) == len(objects)  # one colour per population

    # ROIs saved in batches of at most 1000.
    roi_batches = [n for k, n in server.calls_to("update.saveAndReturnIds") if k == "Roi"]
    assert max(roi_batches) <= 1000 and sum(roi_batches) == n_objects

    # Raw source attached with its bytes.
    raw = by_ns[NS_RAW][0]
    assert bytes(server.file_bytes[oid(raw.getFile())]) == (src / m["sources"][0]["path"]).read_bytes()

    assert report.created["Roi"] == n_objects and report.created["FileAnnotation"] == len(anns)
    assert report.created["RoiAnnotationLink"] == len(server.all("RoiAnnotationLink"))
    assert report.well_table is not None and report.well_table.annotation_id == oid(by_ns[NS_BULK][0])


def test_file_mode_uploads_filled_hdf5(plate96: tuple[Path, Path], server: FakeServer) -> None:
    _, bundle = plate96
    plate = server.add_plate("P1", 8, 12, 2)
    upload_bundle(bundle, server.sf(), plate_id=oid(plate), mode="file")
    assert not server.calls_to("sharedResources.newTable")
    anns = [a for a in server.all("FileAnnotation").values() if unwrap(a.ns) in (NS_MEASUREMENT, NS_BULK)]
    measured = [a for a in anns if unwrap(a.ns) == NS_MEASUREMENT]
    assert len(measured) == 2 and len(anns) == 3
    for ann in anns:
        f = server.all("OriginalFile")[oid(ann.getFile())]
        assert unwrap(f.mimetype) == "OMERO.tables"
        served = server.served_table(oid(f))  # read through omero-py's real table servant
        assert served.column("Well").values == [server.well_id(plate, r, c) for r, c in
                                                 zip(served.column("well_row").values,
                                                     served.column("well_column").values)]
        if ann in measured:
            rois = served.column("Roi").values
            assert rois and -1 not in rois
            assert {oid(lk.getParent()) for lk in server.links("RoiAnnotationLink", child=oid(ann))} == set(rois)
            assert served.column("Image").type_id == "::omero::grid::ImageColumn"


def test_reimport_replaces_previous(plate96: tuple[Path, Path], server: FakeServer) -> None:
    _, bundle = plate96
    plate = server.add_plate("P1", 8, 12, 2)
    first = upload_bundle(bundle, server.sf(), plate_id=oid(plate))
    after_first = server.counts_by_type()
    old_anns, old_rois = set(server.all("FileAnnotation")), set(server.all("Roi"))
    dry = upload_bundle(bundle, server.sf(), plate_id=oid(plate), dry_run=True)
    assert server.counts_by_type() == after_first  # dry run changes nothing
    assert set(dry.deleted["FileAnnotation"]) == old_anns and set(dry.deleted["Roi"]) == old_rois
    assert dry.created == first.created
    second = upload_bundle(bundle, server.sf(), plate_id=oid(plate))
    assert server.counts_by_type() == after_first  # replaced, not duplicated
    assert not (set(server.all("FileAnnotation")) & old_anns) and not (set(server.all("Roi")) & old_rois)
    assert set(second.deleted["Roi"]) == old_rois


def test_missing_images_are_refused_before_anything_is_created(plate96: tuple[Path, Path],
                                                               server: FakeServer) -> None:
    _, bundle = plate96
    plate = server.add_plate("P1", 8, 12, 2, without={(1, 2, 1)})  # B03 field 2
    before = server.counts_by_type()
    with pytest.raises(UploadError, match="B03 field 2"):
        upload_bundle(bundle, server.sf(), plate_id=oid(plate))
    assert server.counts_by_type() == before
    assert not [c for c in server.calls if c[0].startswith("update.")]

    report = upload_bundle(bundle, server.sf(), plate_id=oid(plate), allow_missing=True)
    assert any("B03 field 2" in w for w in report.warnings)
    table = server.tables[report.tables[0].file_id]
    v = table.values()
    lost = [i for i, (r, c, f) in enumerate(zip(v["well_row"], v["well_column"], v["field"])) if (r, c, f) == (1, 2, 1)]
    assert lost and all(v["Image"][i] == -1 and v["Roi"][i] == -1 for i in lost)


def test_failure_midway_rolls_back(plate96: tuple[Path, Path], server: FakeServer) -> None:
    _, bundle = plate96
    plate = server.add_plate("P1", 8, 12, 2)
    before = server.counts_by_type()
    server.fail_on("table.addData", 3)
    with pytest.raises(UploadError, match="rolled back"):
        upload_bundle(bundle, server.sf(), plate_id=oid(plate), batch_bytes=20_000)
    assert server.counts_by_type() == before
    deletes = server.calls_to("submit")
    assert len(deletes) == 1 and deletes[0][1]["Roi"]


def test_plate_by_name(plate96: tuple[Path, Path], server: FakeServer) -> None:
    _, bundle = plate96
    server.add_plate("twin", 8, 12, 2)
    server.add_plate("twin", 8, 12, 2)
    plate = server.add_plate("unique", 8, 12, 2)
    with pytest.raises(OmeroError, match="2 Plates are named 'twin'"):
        upload_bundle(bundle, server.sf(), plate_name="twin", dry_run=True)
    report = upload_bundle(bundle, server.sf(), plate_name="unique", dry_run=True)
    assert report.plate_id == oid(plate)


def test_per_well_xml_rows_link_to_their_wells(tmp_path: Path, server: FakeServer) -> None:
    """The IN Cell per-well layout (with two timepoints): every row's Well id is its well's, no ROIs."""
    src = write_incell_plate(tmp_path / "ws", SynthSpec(wells=96, fields=2, timepoints=2, layout="wells-summary"))
    bundle = import_plate(src, tmp_path / "out", ParseOptions()).bundle
    plate = server.add_plate("ws", 8, 12, 2)
    report = upload_bundle(bundle, server.sf(), plate_id=oid(plate), sources=src)
    [entry] = manifest(bundle)["tables"]
    assert entry["kind"] == "wells" and entry["rows"] == 192
    [table] = server.tables.values()
    v = table.values()
    rows, cols, ts = v["well_row"], v["well_column"], v["t"]
    assert v["Well"] == [server.well_id(plate, r, c) for r, c in zip(rows, cols, strict=True)]
    assert sorted(set(ts)) == [0, 1] and len(set(zip(rows, cols, ts, strict=True))) == 192
    assert server.counts_by_type().get("Roi", 0) == 0
    assert report.tables[0].namespace == NS_BULK


def test_reanalysis_replaces_the_previous_analysis_unless_kept(plate96: tuple[Path, Path], server: FakeServer,
                                                              tmp_path: Path) -> None:
    """New result files (other checksums) of the same plate and format replace the earlier upload by default;
    --keep-previous keeps it beside the new one. Objects of other formats or not made by hcs-import stay."""
    _src, bundle = plate96
    plate = server.add_plate("P1", 8, 12, 2)
    first = upload_bundle(bundle, server.sf(), plate_id=oid(plate))
    foreign = server.add_file(bundle / "manifest.json", "notes.json")
    from omero.model import FileAnnotationI, OriginalFileI, PlateAnnotationLinkI, PlateI
    from omero.rtypes import rstring

    ann = FileAnnotationI()
    ann.ns, ann.description, ann.file = rstring(NS_BULK), rstring("someone else's table"), OriginalFileI(foreign, False)
    link = PlateAnnotationLinkI()
    link.parent, link.child = PlateI(oid(plate), False), ann
    server.sf().getUpdateService().saveAndReturnObject(link)
    reanalysed = write_incell_plate(tmp_path / "src2", SynthSpec(wells=96, fields=2, objects=5, seed=9))
    bundle2 = import_plate(reanalysed, tmp_path / "out2", ParseOptions()).bundle
    assert manifest(bundle2)["provenance"]["key"] != manifest(bundle)["provenance"]["key"]
    kept = upload_bundle(bundle2, server.sf(), plate_id=oid(plate), keep_previous=True)
    assert not any(kept.deleted.values()) and "no previous import of this source" in "\n".join(kept.lines())
    n_rois = server.counts_by_type()["Roi"]
    assert n_rois == first.created["Roi"] + kept.created["Roi"]
    bundle3 = import_plate(write_incell_plate(tmp_path / "src3", SynthSpec(wells=96, fields=2, objects=4, seed=11)),
                           tmp_path / "out3", ParseOptions()).bundle
    replaced = upload_bundle(bundle3, server.sf(), plate_id=oid(plate))
    assert len(replaced.deleted["Roi"]) == first.created["Roi"] + kept.created["Roi"]
    assert server.counts_by_type()["Roi"] == replaced.created["Roi"]
    descriptions = [unwrap(a.description) for a in server.all("FileAnnotation").values()]
    assert "someone else's table" in descriptions  # not made by hcs-import: never touched
    keys = {manifest(b)["provenance"]["key"] for b in (bundle, bundle2)}
    assert not [d for d in descriptions if any(k in d for k in keys)]


def test_object_tables_can_be_kept_off_the_plate(plate96: tuple[Path, Path], server: FakeServer) -> None:
    """--no-object-tables: the Plate's only OMERO.tables file is the per-well one (what omero-parade should
    find first); the ROIs are still made, with their Roi links to no table."""
    _src, bundle = plate96
    plate = server.add_plate("P1", 8, 12, 2)
    report = upload_bundle(bundle, server.sf(), plate_id=oid(plate), object_tables=False)
    assert [t.kind for t in report.tables] == ["wells"]
    tables_on_plate = [a for a in server.all("FileAnnotation").values()
                       if unwrap(server.all("OriginalFile")[oid(a.getFile())].mimetype) == "OMERO.tables"]
    assert [unwrap(a.ns) for a in tables_on_plate] == [NS_BULK]
    assert server.counts_by_type()["Roi"] == manifest(bundle)["rois"]["count"]
    assert not server.all("RoiAnnotationLink")


def test_plate_in_a_screen_also_gets_a_screen_level_per_well_table(plate96: tuple[Path, Path],
                                                                   server: FakeServer) -> None:
    """omero-parade and IDR tooling read a Screen's per-well table by its Plate and Well columns."""
    _src, bundle = plate96
    plate = server.add_plate("P1", 8, 12, 2)
    other = server.add_plate("P2", 8, 12, 2)
    screen = server.add_screen("S", [plate, other])
    report = upload_bundle(bundle, server.sf(), plate_id=oid(plate))
    [planned] = report.screen_tables
    links = server.links("ScreenAnnotationLink", parent=screen)
    assert [oid(lk.getChild()) for lk in links] == [planned.annotation_id]
    ann = server.all("FileAnnotation")[planned.annotation_id]
    assert unwrap(ann.ns) == NS_BULK and f"hcs-import plate {oid(plate)};" in unwrap(ann.description)
    table = server.tables[planned.file_id]
    v, types = table.values(), table.types()
    assert list(v)[:2] == ["Plate", "Well"] and (types["Plate"], types["Well"]) == ("PlateColumn", "WellColumn")
    assert set(v["Plate"]) == {oid(plate)} and len(v["Well"]) == 96
    assert v["Well"] == [server.well_id(plate, r, c) for r, c in zip(v["well_row"], v["well_column"], strict=True)]
    plate_wells = server.tables[report.well_table.file_id].values()
    assert {k: x for k, x in v.items() if k != "Plate"} == plate_wells  # the same rows as the Plate's table
    # a re-import replaces this plate's Screen table, and leaves another plate's alone
    other_report = upload_bundle(bundle, server.sf(), plate_id=oid(other))
    again = upload_bundle(bundle, server.sf(), plate_id=oid(plate))
    assert planned.annotation_id in again.deleted["FileAnnotation"]
    remaining = {oid(lk.getChild()) for lk in server.links("ScreenAnnotationLink", parent=screen)}
    assert remaining == {other_report.screen_tables[0].annotation_id, again.screen_tables[0].annotation_id}


@pytest.mark.parametrize("mode", ["server", "file"])
def test_every_value_reads_back_through_the_real_servant(plate96: tuple[Path, Path], server: FakeServer,
                                                         mode: str) -> None:
    """Numbers sent as numpy arrays, strings decoded once per distinct value, ids filled block by block:
    every cell the servant reads back equals the bundle's, in both upload modes."""
    import numpy as np

    _, bundle = plate96
    plate = server.add_plate("P1", 8, 12, 2)
    upload_bundle(bundle, server.sf(), plate_id=oid(plate), mode=mode, batch_bytes=30_000)
    by_name = {}
    for ann in server.all("FileAnnotation").values():
        if unwrap(ann.ns) in (NS_MEASUREMENT, NS_BULK):
            f = server.all("OriginalFile")[oid(ann.getFile())]
            if mode == "server":
                values = server.tables[oid(f)].values()
            else:
                served_file = server.served_table(oid(f))
                values = {c.name: c.values for c in served_file.columns}
            by_name[unwrap(f.name).split(" ", 1)[1]] = values
    for entry in manifest(bundle)["tables"]:
        local = read_local_table(bundle / entry["path"])
        served = by_name[entry["path"]]
        assert list(served) == local.names
        data = local.columns(local.names)
        for name in local.names:
            if name in ("Image", "Roi", "Well"):
                assert -1 not in served[name]
                continue
            want = data[name]
            got = served[name]
            assert len(got) == local.rows
            if want.dtype.kind == "S":
                assert got == [v.decode("utf-8") for v in want.tolist()], name
            elif want.dtype.kind == "f":
                assert np.array_equal(np.asarray(got, dtype=np.float64), want, equal_nan=True), name
            else:
                assert np.array_equal(np.asarray(got), want), name
