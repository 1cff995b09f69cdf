"""Run `omero import` joined to a session without the session key on any command line.

omero-py's import plug-in joins the session itself and then starts the Java importer with `-k KEY` among
its arguments, where any local user can read it in `ps` or /proc. The Java importer has no other way to
take a key (its `ImportConfig` never loads the key from a property or a file), so the key has to reach it
as an argument. Two steps keep it off every command line:

1. hcs-import starts this module (`python -m hcs_import.omero.import_child`) and writes the request,
   key included, to its standard input; the child's own argv holds no secret.
2. The child runs omero-py's CLI in-process and replaces `omero.java.popen` for that call: the Java command
   is written to an argument file (mode 0600, in a private 0700 folder) and Java is started as
   `java @FILE`. The Java launcher reads its options, main class and arguments from the file, so `ps`
   shows `java @/tmp/.../import-0.args`. The folder is removed when the import ends.

Replacing `omero.java.popen` is deliberate rather than copying the import plug-in: the plug-in keeps all
its own logic (jar download, logback, `--output ids`, bulk files); only the last step, the process start,
changes. If omero-py stops calling `omero.java.popen`, the child refuses to run (it checks that its
replacement was used) instead of silently passing the key on the command line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypedDict


class ImportRequest(TypedDict):
    host: str
    port: int
    session_key: str
    args: list[str]
    path: str


def quote_argfile(arg: str) -> str:
    """One argument in the Java launcher's @-file syntax: double-quoted, with `\\` and `"` escaped.

    A newline inside an argument cannot be written in that syntax (the launcher ends an argument at a line
    break even inside quotes), so it is refused rather than silently split into two arguments.
    """
    if "\n" in arg or "\r" in arg or "\0" in arg:
        raise ValueError(f"an argument for the Java importer contains a line break or NUL: {arg[:80]!r}")
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_argfile(folder: Path, args: Sequence[str], number: int = 0) -> Path:
    """Write the Java arguments, one per line, to FOLDER/import-N.args, readable by the owner only.

    N counts the Java starts of one call (a bulk import starts Java once per entry)."""
    path = folder / f"import-{number}.args"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(quote_argfile(a) for a in args) + "\n")
    return path


@contextmanager
def java_through_argfile() -> Iterator[list[Path]]:
    """Within the block, omero-py starts Java as `java @ARGFILE`; yields the argument files made."""
    import omero.java

    made: list[Path] = []
    original: Callable[..., Any] = omero.java.popen
    folder = Path(tempfile.mkdtemp(prefix="hcs-import-java-"))  # mkdtemp makes it 0700

    def popen(args: Sequence[str], java: str | Sequence[str] = "java", xargs: Any = None, chdir: str | None = None,
              debug: bool | None = None, debug_string: str = omero.java.DEFAULT_DEBUG,
              stdout: Any = subprocess.PIPE, stderr: Any = subprocess.PIPE) -> subprocess.Popen[bytes]:
        command = omero.java.cmd(list(args), java, xargs, chdir, debug, debug_string)
        omero.java.check_java(command)
        argfile = write_argfile(folder, command[1:], len(made))
        made.append(argfile)
        return subprocess.Popen([command[0], f"@{argfile}"], stdout=stdout, stderr=stderr,
                                cwd=chdir or os.getcwd(), env=os.environ)

    omero.java.popen = popen
    try:
        yield made
    finally:
        omero.java.popen = original
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()


def omero_import_args(request: ImportRequest) -> list[str]:
    """The `omero` CLI arguments for the request (in-process only: they hold the key)."""
    return ["import", "-s", request["host"], "-p", str(request["port"]), "-k", request["session_key"],
            "--output", "ids", *request["args"], request["path"]]


def run_import(request: ImportRequest) -> int:
    """omero-py's `omero import`, in this process, with Java started through an argument file."""
    from omero.cli import CLI, NonZeroReturnCode

    cli = CLI()
    cli.loadplugins()
    with java_through_argfile() as made:
        try:
            cli.invoke(omero_import_args(request), strict=True)
        except NonZeroReturnCode as exc:
            return int(exc.rv) or 1
    if not made and not any(a in ("-h", "--help", "--javahelp", "--java-help") for a in request["args"]):
        print("hcs-import: omero-py did not start Java through omero.java.popen; refusing to guess",
              file=sys.stderr)
        return 1
    return int(cli.rv or 0)


def read_request(text: str) -> ImportRequest:
    data = json.loads(text)
    keys = set(ImportRequest.__annotations__)
    if not isinstance(data, dict) or set(data) != keys:
        raise ValueError(f"expected a JSON object with keys {sorted(keys)}")
    return ImportRequest(host=str(data["host"]), port=int(data["port"]), session_key=str(data["session_key"]),
                         args=[str(a) for a in data["args"]], path=str(data["path"]))


def main() -> None:
    try:
        request = read_request(sys.stdin.read())
    except (ValueError, KeyError, TypeError) as exc:
        print(f"hcs-import: error: import request on standard input: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(run_import(request))


if __name__ == "__main__":
    main()
