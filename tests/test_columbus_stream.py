"""Columbus / Harmony object exports above the streaming threshold are read a block of lines at a time
(parsers/columbus_stream.py) and give the same plate as a whole read: tables, dtypes, column notes, metadata,
ROIs and warnings, on the project's synthetic plates and on the real Harmony exports; errors name the same
line; what a whole read decides from every row (t / z ranks, the nameless column, the encoding) comes out
the same when only a late block decides it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hcs_import.errors import InputError
from hcs_import.parsers.base import SynthSpec
from hcs_import.parsers.columbus_stream import line_blocks
from hcs_import.synth.columbus import write_columbus_export
from stream_check import assert_same_plate, parse_in_blocks

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "harmony-batli"
REAL_OBJECTS = sorted(p.name for p in REAL.glob("Objects_Population - *.txt")) if REAL.is_dir() else []


def _parse(plate: Path, streamed: bool, monkeypatch: pytest.MonkeyPatch, block: int = 4096,
           **options: object) -> object:
    return parse_in_blocks(plate, "columbus", streamed, monkeypatch, block, **options)


_same = assert_same_plate


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_columbus_export(tmp_path_factory.mktemp("columbus") / "plate", SynthSpec(wells=24, objects=30))


def _objects(plate: Path) -> Path:
    return next(plate.rglob("Objects_Population - *.txt"))


def _edit(plate: Path, tmp_path: Path, edit) -> Path:
    """A copy of the plate with the lines of its first object export edited."""
    copy = Path(shutil.copytree(plate, tmp_path / "p"))
    target = _objects(copy)
    lines = target.read_bytes().split(b"\n")
    edit(lines)
    target.write_bytes(b"\n".join(lines))
    return copy


def _data_start(lines: list[bytes]) -> int:
    """Index of the first data line (after [Data] and the header)."""
    return next(i for i, line in enumerate(lines) if line.strip() == b"[Data]") + 2


@pytest.mark.parametrize("block", [1024, 1 << 20])
def test_blocks_give_the_same_plate_as_one_read(plate: Path, block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _parse(plate, False, monkeypatch)
    streamed = _parse(plate, True, monkeypatch, block)
    assert [t.streamed for t in streamed.tables if t.kind == "objects"] and \
        all(t.streamed for t in streamed.tables if t.kind == "objects")
    assert not any(t.streamed for t in whole.tables)
    assert len(streamed.roi_frame()) > 0
    _same(whole, streamed)


@pytest.mark.skipif(not REAL.is_dir(), reason=f"real Harmony exports not present at {REAL}")
@pytest.mark.parametrize("name", REAL_OBJECTS)
def test_real_exports_read_in_blocks_give_the_same_plate(name: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(REAL / name, one / name)
    whole = _parse(one, False, monkeypatch)
    streamed = _parse(one, True, monkeypatch, 65536)
    [table] = [t for t in streamed.tables if t.kind == "objects"]
    assert table.streamed and table.rows == whole.tables[0].rows > 100
    _same(whole, streamed)


def test_a_bad_value_late_in_the_file_names_the_same_line(plate: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def edit(lines: list[bytes]) -> None:
        at = len(lines) - 3
        cells = lines[at].split(b"\t")
        cells[cells.index(next(c for c in cells[6:] if c.strip()))] = b"oops"
        lines[at] = b"\t".join(cells)

    broken = _edit(plate, tmp_path, edit)
    lines = _objects(broken).read_bytes().split(b"\n")
    messages = []
    for streamed in (False, True):
        with pytest.raises(InputError) as err:
            _parse(broken, streamed, monkeypatch, 1024)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and f"line {len(lines) - 2}" in messages[0], messages
    # with bad_values="nan": NaN and one counted warning, the same either way
    _same(_parse(broken, False, monkeypatch, bad_values="nan"), _parse(broken, True, monkeypatch, 1024,
                                                                        bad_values="nan"))


def test_a_late_timepoint_changes_every_t_the_same_way(plate: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the last row has another Timepoint: t is a rank among the plate's values, known at the end."""
    def edit(lines: list[bytes]) -> None:
        header = lines[_data_start(lines) - 1].split(b"\t")
        col = [c.strip() for c in header].index(b"Timepoint") if b"Timepoint" in [c.strip() for c in header] \
            else None
        at = len(lines) - 2
        if col is None:  # add the column: every row 0, the last -3
            for i in range(_data_start(lines) - 1, len(lines)):
                if lines[i].strip():
                    value = b"Timepoint" if i == _data_start(lines) - 1 else (b"-3" if i == at else b"0")
                    lines[i] = lines[i].rstrip(b"\r") + b"\t" + value + b"\r"
        else:
            cells = lines[at].split(b"\t")
            cells[col] = b"-3"
            lines[at] = b"\t".join(cells)

    copy = _edit(plate, tmp_path, edit)
    whole = _parse(copy, False, monkeypatch)
    streamed = _parse(copy, True, monkeypatch, 1024)
    table = next(t for t in streamed.tables if t.kind == "objects" and t.streamed)
    t = table.frame()["t"]
    assert t.iloc[-1] == 0 and (t.iloc[:-1] >= 1).all()  # -3 ranks first: every other row moves up
    _same(whole, streamed)


def test_a_nameless_column_with_a_late_value_is_kept(plate: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def edit(lines: list[bytes]) -> None:
        start = _data_start(lines)
        header = lines[start - 1].rstrip(b"\r")
        if not header.endswith(b"\t"):  # give the file Harmony's trailing tab first
            for i in range(start - 1, len(lines)):
                if lines[i].strip():
                    lines[i] = lines[i].rstrip(b"\r") + b"\t\r"
        at = len(lines) - 2
        lines[at] = lines[at].rstrip(b"\r") + b"7\r"

    copy = _edit(plate, tmp_path, edit)
    whole = _parse(copy, False, monkeypatch)
    streamed = _parse(copy, True, monkeypatch, 1024)
    assert any("without a name" in w for w in streamed.warnings)
    _same(whole, streamed)


def test_a_latin_1_file_is_read_as_windows_1252_in_blocks_too(plate: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the last line is not UTF-8: the encoding is the whole file's, not the first block's."""
    def edit(lines: list[bytes]) -> None:
        start = _data_start(lines)
        header = lines[start - 1].split(b"\t")
        header[-1 if header[-1].strip() else -2] += " [\u00b5m]".encode("cp1252")
        lines[start - 1] = b"\t".join(header)

    copy = _edit(plate, tmp_path, edit)
    whole = _parse(copy, False, monkeypatch)
    streamed = _parse(copy, True, monkeypatch, 1024)
    assert any(i.unit == "\u00b5m" for t in streamed.tables for i in t.columns.values())
    _same(whole, streamed)


def test_line_blocks_cut_at_line_ends_and_count_lines(tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    lines = [f"line {i}".encode() * (i % 7 + 1) for i in range(500)]
    f.write_bytes(b"\n".join(lines))  # no final newline
    for start in (0, 3, 499):
        got = []
        for part, first in line_blocks(f, start, 37):
            got.extend((first + k, line) for k, line in enumerate(part.split(b"\n")[: part.count(b"\n") or 1]))
            assert part.endswith(b"\n") or first + part.count(b"\n") == len(lines) - 1
        assert [i for i, _ in got] == list(range(start, len(lines)))
        assert [line for _, line in got] == lines[start:]
