"""IN Carta object CSVs above the streaming threshold are read in blocks (parsers/incarta_stream.py) and give
the same plate as a whole read: tables, dtypes, column notes, metadata, ROIs and warnings, on the project's
synthetic plates and on the real exports; the decisions a whole read takes from every row (field numbering,
object numbers without an id column, the plate id) come out the same when only a late block decides them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

import hcs_import.parsers.delimited_stream as ds
from hcs_import.errors import InputError
from hcs_import.parsers.base import SynthSpec
from hcs_import.synth.incarta import write_incarta_plate
from stream_check import assert_same_plate, parse_in_blocks

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "incarta-cytotable"


def _parse(plate: Path, streamed: bool, monkeypatch: pytest.MonkeyPatch, block: int = 4096,
           **options: object) -> object:
    return parse_in_blocks(plate, "incarta", streamed, monkeypatch, block, **options)


_same = assert_same_plate


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_incarta_plate(tmp_path_factory.mktemp("incarta") / "plate", SynthSpec(wells=24, objects=40))


def _csv(plate: Path, tmp_path: Path, edit) -> Path:
    """A copy of the plate with its object CSV edited as a frame (every cell as text)."""
    copy = Path(shutil.copytree(plate, tmp_path / "p"))
    target = next(copy.glob("* Object Data.csv"))
    frame = pd.read_csv(target, dtype=str, keep_default_na=False)
    edit(frame)
    frame.to_csv(target, index=False, lineterminator="\r\n")
    return copy


@pytest.mark.parametrize("block", [2048, 1 << 20])
def test_blocks_give_the_same_plate_as_one_read(plate: Path, block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _parse(plate, False, monkeypatch)
    streamed = _parse(plate, True, monkeypatch, block)
    assert [t.streamed for t in streamed.tables if t.kind == "objects"] == [True]
    assert not any(t.streamed for t in whole.tables)
    assert len(streamed.roi_frame()) > 0
    _same(whole, streamed)


@pytest.mark.skipif(not REAL.is_dir(), reason=f"real IN Carta exports not present at {REAL}")
@pytest.mark.parametrize("name", sorted(p.name for p in REAL.glob("*.csv")) if REAL.is_dir() else [])
def test_real_exports_read_in_blocks_give_the_same_plate(name: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    one = tmp_path / name
    shutil.copy(REAL / name, one)
    whole = _parse(one, False, monkeypatch)
    streamed = _parse(one, True, monkeypatch, 16384)
    assert streamed.tables[0].streamed and streamed.tables[0].rows == whole.tables[0].rows > 100
    _same(whole, streamed)


def test_without_an_id_column_rows_are_numbered_on_across_blocks(plate: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    copy = _csv(plate, tmp_path, lambda f: f.pop("OBJECT ID"))
    whole = _parse(copy, False, monkeypatch)
    streamed = _parse(copy, True, monkeypatch, 2048)
    objects = streamed.object_tables[0].frame()
    assert objects.groupby(["well_row", "well_column", "field"])["object"].max().max() > 1
    assert "row number" in streamed.object_tables[0].metadata["object"]
    _same(whole, streamed)


def test_a_zero_in_a_middle_block_makes_the_field_0_based_for_every_row(plate: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def edit(frame: pd.DataFrame) -> None:
        frame.loc[len(frame) // 2, "FIELD" if "FIELD" in frame.columns else "FOV"] = "0"  # neither first nor last

    copy = _csv(plate, tmp_path, edit)
    whole = _parse(copy, False, monkeypatch)
    streamed = _parse(copy, True, monkeypatch, 2048)
    table = streamed.object_tables[0]
    assert "0-based" in table.metadata["FIELD numbering"]
    assert table.frame()["field"].iloc[0] >= 1  # the first rows (1 in the file) read as 0-based too
    _same(whole, streamed)


def test_a_second_plate_id_in_a_late_block_is_the_same_error(plate: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def edit(frame: pd.DataFrame) -> None:
        frame.loc[len(frame) - 1, "Plate ID"] = "another plate"

    copy = _csv(plate, tmp_path, edit)
    messages = []
    for streamed in (False, True):
        with pytest.raises(InputError) as err:
            _parse(copy, streamed, monkeypatch, 2048)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and "rows of 2 plates" in messages[0]


def test_a_bad_well_late_in_the_file_names_the_same_line(plate: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def edit(frame: pd.DataFrame) -> None:
        frame.loc[len(frame) - 3, "Column"] = "x7"

    copy = _csv(plate, tmp_path, edit)
    rows = len(pd.read_csv(next(copy.glob("* Object Data.csv"))))
    messages = []
    for streamed in (False, True):
        with pytest.raises(InputError) as err:
            _parse(copy, streamed, monkeypatch, 2048)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and f"line {rows - 1}" in messages[0], messages


def test_a_large_per_well_file_is_still_a_wells_table(plate: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A per-well CSV above the threshold has no object id and no repeated keys: it is read whole."""
    whole = _parse(plate, False, monkeypatch)
    streamed = _parse(plate, True, monkeypatch, 2048)
    kinds = {t.name: (t.kind, t.streamed) for t in streamed.tables}
    assert {k for k, _ in kinds.values()} >= {"wells", "objects"}
    assert all(not s for k, s in kinds.values() if k == "wells")
    _same(whole, streamed)


def test_discovery_of_large_csvs_reads_only_their_plate_id_column(plate: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from hcs_import.parsers import incarta

    several = write_incarta_plate(tmp_path / "two", SynthSpec(wells=24, objects=40, layout="several-plates"))
    monkeypatch.setattr(ds, "STREAM_BYTES", 1 << 40)
    expected = incarta.plates(several)
    monkeypatch.setattr(ds, "STREAM_BYTES", 0)
    monkeypatch.setattr(incarta, "_read_all", lambda *a: pytest.fail("a large CSV was parsed for discovery"))
    assert incarta.plates(several) == expected and len(expected) == 2

    def edit(frame: pd.DataFrame) -> None:
        frame.loc[len(frame) // 2, "Plate ID"] = "another plate"

    with pytest.raises(InputError, match="rows of 2 plates"):
        incarta.plates(_csv(plate, tmp_path, edit))
