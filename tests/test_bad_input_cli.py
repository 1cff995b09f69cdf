"""Bad input at the CLI: one line on stderr naming file and place, exit 2, and no output left behind."""

from __future__ import annotations

from pathlib import Path

import pytest


def _analysis(plate: Path) -> Path:
    return next(plate.glob("*_analysis.xml"))


def _assert_failed_cleanly(result, out: Path, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hcs-import: error: ")
    for needle in needles:
        assert needle in lines[0]
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


def test_truncated_xml(cli, incell_plate: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    xml = _analysis(incell_plate)
    data = xml.read_bytes()
    xml.write_bytes(data[: int(len(data) * 0.6)])
    out = tmp_path / "out"
    result = cli("plate", incell_plate, "--out", out)
    _assert_failed_cleanly(result, out, "plateA_analysis.xml", "line ")
    assert ", column " not in result.stderr  # lxml's fragment-relative position is not shown


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ('<WellData row="1" col="1" field="1" cell="2">', '<WellData field="1" cell="2">', "missing attribute 'row'"),
        ('<WellData row="1" col="1" field="1" cell="2">', '<WellData row="1" field="1" cell="2">',
         "missing attribute 'col'"),
    ],
)
def test_welldata_without_row_or_col(cli, incell_plate: Path, tmp_path: Path, old: str, new: str,  # type: ignore[no-untyped-def]
                                     needle: str) -> None:
    xml = _analysis(incell_plate)
    text = xml.read_text()
    assert old in text
    xml.write_text(text.replace(old, new, 1))
    line = next(i for i, t in enumerate(text.splitlines(), 1) if old in t)
    out = tmp_path / "out"
    _assert_failed_cleanly(cli("plate", incell_plate, "--out", out), out, needle, f"line {line},", "<WellData>")


def test_non_numeric_value(cli, incell_plate: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    xml = _analysis(incell_plate)
    lines = xml.read_text().splitlines(keepends=True)
    i = next(i for i, t in enumerate(lines) if 'key="Cell: Area"' in t)
    before = lines[i]
    lines[i] = before[: before.index('value="')] + 'value="12,5" />\n'
    xml.write_text("".join(lines))
    out = tmp_path / "out"
    _assert_failed_cleanly(cli("plate", incell_plate, "--out", out), out, f"line {i + 1},", "'12,5' is not a number",
                           "Cell: Area")
    ok = cli("plate", incell_plate, "--out", out, "--bad-values", "nan")
    assert ok.exit_code == 0
    assert "non-numeric values stored as NaN: 1 occurrence" in ok.output


def test_empty_folder(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    _assert_failed_cleanly(cli("plate", empty, "--out", out), out, "empty")
    detected = cli("detect", empty)
    assert detected.exit_code == 2 and "empty" in detected.stderr


def test_unrecognised_folder_says_what_was_looked_for(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "misc"
    folder.mkdir()
    (folder / "notes.txt").write_text("nothing to see")
    result = cli("detect", folder)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "no known plate format found" in line and "incell" in line and "detect --all" in line
    every = cli("detect", "--all", folder)
    assert every.exit_code == 2
    assert "-  incell: no InCell results XML" in every.output and "looks for a *.xdce layout" in every.output


def test_failure_while_writing_keeps_the_previous_bundle(cli, incell_plate: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    assert cli("plate", incell_plate, "--out", out).exit_code == 0
    before = sorted(p.name for p in (out / "plateA").iterdir())

    from hcs_import.writers import bundle

    def boom(*_a, **_k):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bundle, "write_rois", boom)
    failed = cli("plate", incell_plate, "--out", out)
    assert failed.exit_code == 2
    assert failed.stderr.strip().splitlines() == [
        f"hcs-import: error: {out}: cannot write the bundle of plate 'plateA': No space left on device "
        "while writing rois.parquet"]
    assert sorted(p.name for p in out.iterdir()) == ["plateA"]
    assert sorted(p.name for p in (out / "plateA").iterdir()) == before


def test_a_huge_value_is_quoted_short_in_the_one_line_error() -> None:
    from hcs_import.errors import InputError

    err = InputError("plate/r.txt", f"line 3, column {'c' * 500!r}", f"value {'9x' * 500_000!r}: expected a number")
    text = str(err)
    assert "\n" not in text and len(text) < 300
    assert text.startswith("plate/r.txt: line 3, column 'ccc") and text.endswith("...': expected a number")
    short = InputError("f", "line 1", "value 'abc': expected a number")
    assert str(short) == "f: line 1: value 'abc': expected a number"
