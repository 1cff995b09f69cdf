"""No secret on a command line: the session key never reaches argv, ours, omero-py's or Java's."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hcs_import.cli import main
from hcs_import.omero.import_child import quote_argfile, read_request, write_argfile

KEY = "3f9c2a-session-KEY-7d1e"

FAKE_JAVA = """#!{python}
import json, os, sys
if sys.argv[1:] == ["-version"]:
    sys.exit(0)
args = []
for a in sys.argv[1:]:
    if a.startswith("@"):
        path = a[1:]
        mode = oct(os.stat(path).st_mode & 0o777)
        folder_mode = oct(os.stat(os.path.dirname(path)).st_mode & 0o777)
        args += [json.loads(line) for line in open(path, encoding="utf-8").read().splitlines()]
    else:
        args.append(a)
cmdline = open("/proc/self/cmdline", "rb").read().decode().split("\\0")
with open({record!r}, "w") as fh:
    json.dump({{"cmdline": cmdline, "args": args, "mode": mode, "folder_mode": folder_mode}}, fh)
print("Plate:51")
"""


def fake_java(tmp_path: Path) -> tuple[Path, Path]:
    """A `java` that records its /proc cmdline and the arguments of its @-file (quoted like JSON strings)."""
    bin_dir, record = tmp_path / "bin", tmp_path / "java-record.json"
    bin_dir.mkdir()
    java = bin_dir / "java"
    java.write_text(FAKE_JAVA.format(python=sys.executable, record=str(record)))
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return bin_dir, record


def test_session_key_on_the_command_line_is_refused_without_echoing_it() -> None:
    res = CliRunner().invoke(main, ["status", "Plate:1", "--server", "h", "--session-key", KEY])
    assert res.exit_code == 2
    assert "visible to every local user" in res.output and "OMERO_SESSION_KEY" in res.output
    assert KEY not in res.output


def test_session_key_file_and_standard_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hcs_import.cli.options import _read_session_key

    key_file = tmp_path / "key"
    key_file.write_text(f"{KEY}\n")
    assert _read_session_key(None, None, key_file) == KEY  # type: ignore[arg-type]
    monkeypatch.setenv("OMERO_SESSION_KEY", "from-env")
    assert _read_session_key(None, None, None) == "from-env"  # type: ignore[arg-type]
    empty = tmp_path / "empty"
    empty.write_text("\n")
    res = CliRunner().invoke(main, ["status", "Plate:1", "--server", "h", "--session-key-file", str(empty)])
    assert res.exit_code == 2 and "expected one line holding the session key" in res.output


def test_argfile_quoting_round_trips_through_the_java_launcher_rules() -> None:
    assert quote_argfile('a "b" \\c') == '"a \\"b\\" \\\\c"'
    with pytest.raises(ValueError, match="line break"):
        quote_argfile("two\nlines")


def test_omero_import_child_gets_the_key_on_stdin_only(tmp_path: Path) -> None:
    from hcs_import.omero.hook import run_omero_import

    record = tmp_path / "child.json"
    child = tmp_path / "child.py"
    child.write_text(
        "import json, sys\n"
        "cmdline = open('/proc/self/cmdline', 'rb').read().decode()\n"
        f"json.dump({{'cmdline': cmdline, 'stdin': sys.stdin.read()}}, open({str(record)!r}, 'w'))\n"
        "print('Plate:51')\n")
    out = run_omero_import("omero.example", 4064, KEY, ["-T", "Screen:name:S"], tmp_path / "plate",
                           child=[sys.executable, str(child)])
    assert out.strip() == "Plate:51"
    seen = json.loads(record.read_text())
    assert KEY not in seen["cmdline"]
    request = read_request(seen["stdin"])
    assert request["session_key"] == KEY and request["args"] == ["-T", "Screen:name:S"]


def test_a_failing_import_child_does_not_echo_the_key(tmp_path: Path) -> None:
    from hcs_import.errors import HcsImportError
    from hcs_import.omero.hook import run_omero_import

    child = tmp_path / "child.py"
    child.write_text(f"import sys\nsys.stdin.read()\nprint('bad session {KEY}', file=sys.stderr)\nsys.exit(3)\n")
    with pytest.raises(HcsImportError) as err:
        run_omero_import("h", 4064, KEY, [], tmp_path, child=[sys.executable, str(child)])
    assert "exit code 3" in str(err.value) and KEY not in str(err.value)


def test_java_is_started_with_an_argfile_not_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("omero.java", reason="needs omero-py: pip install 'hcs-import[omero]' (make setup does)")
    import omero.java

    from hcs_import.omero.import_child import java_through_argfile

    bin_dir, record = fake_java(tmp_path)
    with java_through_argfile() as made:
        proc = omero.java.popen(["ome.formats.importer.cli.CommandLineImporter", "-k", KEY, "a b\"c"],
                                java=str(bin_dir / "java"))
        proc.wait()
        folder = made[0].parent
    seen = json.loads(record.read_text())
    assert not any(KEY in part for part in seen["cmdline"])
    assert [part for part in seen["cmdline"] if part][-1].startswith("@")  # python, the script, @FILE
    assert seen["args"][-3:] == ["-k", KEY, 'a b"c']
    assert (seen["mode"], seen["folder_mode"]) == ("0o600", "0o700")
    assert not folder.exists()  # the key's file is gone once the import ended


@pytest.mark.skipif(shutil.which("java") is None, reason="no java on PATH to check the real launcher's @-files")
def test_the_real_java_launcher_reads_main_class_and_arguments_from_the_argfile(tmp_path: Path) -> None:
    source = tmp_path / "Echo.java"
    source.write_text(
        "public class Echo { public static void main(String[] a) throws Exception {"
        " System.out.println(String.join(\"\\u0001\", a));"
        " System.out.println(new String(java.nio.file.Files.readAllBytes("
        "java.nio.file.Paths.get(\"/proc/self/cmdline\")))); } }")
    args = ["-k", KEY, 'with "quotes" and \\back\\slashes', "sp ace"]
    argfile = write_argfile(tmp_path, [str(source), *args])
    proc = subprocess.run(["java", f"@{argfile}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    echoed, cmdline = proc.stdout.split("\n", 1)
    assert echoed.split("\x01") == args
    assert KEY not in cmdline and f"@{argfile}" in cmdline


def test_omero_py_import_runs_java_through_the_argfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """omero-py's own import plug-in, in process, joined by -k: Java's argv has no key, its @-file has."""
    pytest.importorskip("omero.cli", reason="needs omero-py: pip install 'hcs-import[omero]' (make setup does)")
    import omero.cli

    from hcs_import.omero.import_child import ImportRequest, run_import

    class Client:
        def getProperty(self, name: str) -> str:
            return {"omero.host": "omero.example", "omero.port": "4064"}[name]

        def getSessionId(self) -> str:
            return KEY

    def conn(self: Any, args: Any = None) -> Client:
        return Client()

    bin_dir, record = fake_java(tmp_path)
    jars = tmp_path / "jars"
    jars.mkdir()
    (jars / "omero-blitz.jar").write_bytes(b"")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(omero.cli.CLI, "conn", conn)
    request = ImportRequest(host="omero.example", port=4064, session_key=KEY,
                            args=["--clientdir", str(jars), "-T", "Screen:name:S"], path=str(tmp_path / "plate"))
    assert run_import(request) == 0
    seen = json.loads(record.read_text())
    assert not any(KEY in part for part in seen["cmdline"])
    args = seen["args"]
    assert args[args.index("-k") + 1] == KEY and "ome.formats.importer.cli.CommandLineImporter" in args
    assert args[-1] == str(tmp_path / "plate") and "--target=Screen:name:S" in args


def test_a_server_that_cannot_be_reached_is_one_line() -> None:
    pytest.importorskip("omero.clients", reason="needs omero-py: pip install 'hcs-import[omero]' (make setup does)")
    res = subprocess.run([sys.executable, "-m", "hcs_import.cli", "status", "Plate:1", "--server", "127.0.0.1",
                          "--port", "9"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OMERO_SESSION_KEY": KEY})
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == ["hcs-import: error: 127.0.0.1:9: cannot connect: "
                                               "ConnectionRefusedException"]
