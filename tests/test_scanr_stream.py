"""ScanR exports above the streaming threshold are read in blocks (parsers/delimited_stream.py) and give the
same plate as a whole read: tables, dtypes, column notes, metadata, ROIs and warnings; errors name the same
file line; nothing is left in the spill folder after a refusal."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

import hcs_import.parsers.delimited_stream as ds
from hcs_import.errors import InputError
from hcs_import.spill import PREFIX
from hcs_import.synth.scanr import write_scanr_plate
from stream_check import assert_same_plate, parse_in_blocks


def _parse(plate: Path, streamed: bool, monkeypatch: pytest.MonkeyPatch, block: int = 4096,
           bad_values: str = "error") -> object:
    return parse_in_blocks(plate, "scanr", streamed, monkeypatch, block, bad_values=bad_values)


_same = assert_same_plate


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hcs_import.parsers.base import SynthSpec

    return write_scanr_plate(tmp_path_factory.mktemp("scanr") / "plate", SynthSpec())


@pytest.mark.parametrize("block", [2048, 1 << 20])
def test_blocks_give_the_same_plate_as_one_read(plate: Path, block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _parse(plate, False, monkeypatch)
    streamed = _parse(plate, True, monkeypatch, block)
    assert all(t.streamed for t in streamed.tables if t.kind == "objects")
    assert not any(t.streamed for t in whole.tables)
    _same(whole, streamed)


def _edit(plate: Path, tmp_path: Path, edit) -> Path:
    import shutil

    copy = Path(shutil.copytree(plate, tmp_path / "p"))
    main = copy / "ParameterData_Main.txt"
    lines = main.read_bytes().split(b"\r\n")
    edit(lines)
    main.write_bytes(b"\r\n".join(lines))
    return copy


def test_a_bad_value_late_in_the_file_names_the_same_line(plate: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def edit(lines: list[bytes]) -> None:
        cells = lines[900].split(b"\t")
        cells[-3] = b"oops"
        lines[900] = b"\t".join(cells)

    broken = _edit(plate, tmp_path, edit)
    messages = []
    for streamed in (False, True):
        with pytest.raises(InputError) as err:
            _parse(broken, streamed, monkeypatch)
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert "line 901" in messages[0] and "oops" in messages[0]
    # with --bad-values nan: the column is read again as text (the block reader's restart), same result
    _same(_parse(broken, False, monkeypatch, bad_values="nan"), _parse(broken, True, monkeypatch, bad_values="nan"))


def test_a_truncated_file_and_latin1_text_across_blocks(plate: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def edit(lines: list[bytes]) -> None:
        header = lines[0].split(b"\t")
        lines[0] = b"\t".join([*header, b"Note \xb5"])
        for i in range(1, len(lines) - 1):
            lines[i] += b"\t" + (b"caf\xe9 \xb5m" if i % 3 else b"plain")

    texted = _edit(plate, tmp_path, edit)
    whole, streamed = _parse(texted, False, monkeypatch), _parse(texted, True, monkeypatch, 1000)
    _same(whole, streamed)
    assert "café µm" in set(streamed.table("Main").frame()["Note µ"])

    def cut(lines: list[bytes]) -> None:
        del lines[-1]
        lines[-1] = lines[-1][: len(lines[-1]) // 2]

    truncated = _edit(plate, tmp_path / "t", cut)
    messages = []
    for streamed_ in (False, True):
        with pytest.raises(InputError) as err:
            _parse(truncated, streamed_, monkeypatch)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and "truncated" in messages[0]


def test_a_refused_streamed_export_leaves_no_spill(plate: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def edit(lines: list[bytes]) -> None:
        cells = lines[700].split(b"\t")
        cells[0] = b"-5"  # Object ID below 0: a key error, raised from a late block
        lines[700] = b"\t".join(cells)

    broken = _edit(plate, tmp_path, edit)
    spill_root = tmp_path / "tmp"
    spill_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill_root))
    with pytest.raises(InputError, match="line 701"):
        _parse(broken, True, monkeypatch)
    assert not list(spill_root.glob(PREFIX + "*"))
    # a good streamed plate keeps its spill while its tables live, and removes it with them
    analysis = _parse(plate, True, monkeypatch)
    assert len(list(spill_root.glob(PREFIX + "*"))) == 1
    rows = sum(t.rows for t in analysis.tables)
    del analysis
    import gc

    gc.collect()
    assert rows > 0 and not list(spill_root.glob(PREFIX + "*"))


def test_the_file_is_read_at_most_a_few_blocks_ahead(plate: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow reads ahead on its own threads; the reader holds it to AHEAD_BLOCKS blocks past the consumer
    (without the bound it ran 36 blocks ahead, the whole of a 300 MB file), so memory stays flat."""
    import time

    from hcs_import.issues_log import WarningLog

    block = 16 * 1024
    made: list = []
    original = ds._Transcoded

    class Watched(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(ds, "_Transcoded", Watched)
    ahead: list[int] = []

    def consume(table: object) -> None:
        time.sleep(0.01)  # a consumer slower than the reader
        source = made[-1]
        ahead.append(source._read - source._taken)

    main = plate / "ParameterData_Main.txt"
    _, _, rows = ds.stream_delimited(main, consume, lambda: None, what="ScanR", bad_values="error",
                                     warnings=WarningLog(), block_bytes=block)
    assert rows > 0 and len(ahead) > 20
    assert max(ahead) <= (ds.AHEAD_BLOCKS + 3) * block, max(ahead)


def test_a_nameless_column_with_values_late_is_kept_as_a_whole_read_keeps_it(
        plate: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trailing separator's nameless column, empty for many blocks, then holding a value: kept, not lost."""
    def edit(lines: list[bytes]) -> None:
        for i in range(len(lines) - 1):
            lines[i] += b"\t"
        lines[len(lines) // 2] += b"42"

    late = _edit(plate, tmp_path, edit)
    whole, streamed = _parse(late, False, monkeypatch), _parse(late, True, monkeypatch, 16384)
    _same(whole, streamed)
    kept = [c for c in streamed.table("Main").frame().columns if str(c).startswith("column ")]
    assert kept and streamed.table("Main").frame()[kept[0]].max() == 42

    def trailing(lines: list[bytes]) -> None:
        for i in range(len(lines) - 1):
            lines[i] += b"\t"

    empty = _edit(plate, tmp_path / "e", trailing)
    _same(_parse(empty, False, monkeypatch), _parse(empty, True, monkeypatch, 16384))
    assert not [c for c in _parse(empty, True, monkeypatch, 16384).table("Main").frame().columns
                if str(c).startswith("column ")]
