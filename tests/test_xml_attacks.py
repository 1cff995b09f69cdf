"""Hostile XML in every XML file of every format: no file opened, no connection made, nothing expanded.

Each attack is written into a pristine synthetic plate's XML file, in UTF-8 and in UTF-16, and imported in
a fresh process under the fuzz harness's limits (30 s, 1 GiB). The import must end as the harness allows
(one clear line, or a bundle that reads back) and, besides: the local listener the attacks point at is
never contacted, and neither the canary file's secret nor the internal entity's text appears in the
bundle or on stderr.
"""

from __future__ import annotations

import http.server
import re
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import pytest

import fuzz

SECRET = "CANARY-7f3a91-secret"
INTERNAL = "INTERNAL-ENTITY-5c2e"
XML_FILES = {  # format -> the XML files of its synthetic plate (found by content in the test below)
    "flex": (".res", ".mea"),
    "incell": (".xdce", ".xml"),
    "scanr": (".xml",),
}


def attacks(canary: Path, port: int) -> dict[str, tuple[str, str]]:
    """name -> (DOCTYPE to insert, text to insert inside the root element)."""
    url = f"http://127.0.0.1:{port}"
    laughs = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    return {
        "file-entity": (f'<!DOCTYPE {{root}} [<!ENTITY e SYSTEM "file://{canary}">]>', "&e;"),
        "network-entity": (f'<!DOCTYPE {{root}} [<!ENTITY e SYSTEM "{url}/entity">]>', "&e;"),
        "parameter-entity": (f'<!DOCTYPE {{root}} [<!ENTITY % p SYSTEM "{url}/param"> %p;]>', ""),
        "external-dtd": (f'<!DOCTYPE {{root}} SYSTEM "{url}/dtd">', ""),
        "xinclude": ("", f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file://{canary}" '
                         'parse="text"/>'),
        "billion-laughs": (f"<!DOCTYPE {{root}} [{laughs}]>", "&l9;"),
        "internal-entity": (f'<!DOCTYPE {{root}} [<!ENTITY e "{INTERNAL}">]>', "&e;"),
    }


_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.S)
_ROOT = re.compile(r"<([A-Za-z_][\w.:-]*)[^>]*?(/?)>")


def inject(text: str, doctype: str, inside: str, encoding: str) -> bytes:
    decl = _DECL.match(text)
    head, body = (text[: decl.end()], text[decl.end():]) if decl else ("", text)
    head = f'<?xml version="1.0" encoding="{encoding}"?>'
    skip = 0
    while True:  # the root element: the first start tag that is not a comment or a processing instruction
        m = _ROOT.search(body, skip)
        assert m is not None, "no root element"
        if not body[m.start() + 1 :].startswith(("!", "?")):
            break
        skip = m.end()
    root, empty = m.group(1), m.group(2)
    if empty:  # <root/>: give it content
        body = body[: m.start()] + body[m.start() : m.end() - 2] + f">{inside}</{root}>" + body[m.end():]
    else:
        body = body[: m.end()] + inside + body[m.end():]
    return (head + "\n" + doctype.replace("{root}", root) + "\n" + body).encode(encoding)


class _Listener(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Listener.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(f'<!ENTITY e "{SECRET}">'.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def listener() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/self-check", timeout=10) as answer:
        assert SECRET in answer.read().decode()  # the listener works, so no hit means no connection
    _Listener.hits.clear()
    yield port
    server.shutdown()


def decoded(data: bytes) -> str:
    """The XML file's text in the encoding its declaration names (UTF-8, else Latin-1, without one)."""
    m = re.match(rb'^\s*<\?xml[^>]*encoding=["\']([\w.-]+)', data)
    if m:
        return data.decode(m.group(1).decode())
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # ScanR's LabVIEW XML: Latin-1 (µm) with no encoding declared
        return data.decode("latin-1")


def _xml_files(plate: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return [p for p in sorted(plate.rglob("*")) if p.is_file() and p.suffix.lower() in suffixes
            and p.read_bytes().lstrip()[:1] == b"<"]


def _leaks(out: Path, stderr: str) -> list[str]:
    found = []
    needles = [s.encode(enc) for s in (SECRET, INTERNAL) for enc in ("utf-8", "utf-16-le")]
    for p in out.rglob("*") if out.exists() else []:
        if p.is_file() and any(n in p.read_bytes() for n in needles):
            found.append(str(p.relative_to(out)))
    if SECRET in stderr or INTERNAL in stderr:
        found.append("stderr")
    return found


@pytest.mark.parametrize("fmt", sorted(XML_FILES))
def test_xml_attacks_open_nothing_reach_nothing_expand_nothing(fmt: str, tmp_path: Path, listener: int) -> None:
    canary = tmp_path / "canary.txt"
    canary.write_text(SECRET)
    pristine = fuzz.generate(fmt, tmp_path / "pristine")
    files = _xml_files(pristine, XML_FILES[fmt])
    assert files, f"the synthetic {fmt} plate has no XML file"
    table = attacks(canary, listener)
    cases = [(f, name, enc) for f in files for name in table for enc in ("UTF-8", "UTF-16")]

    def one(numbered: tuple[int, tuple[Path, str, str]]) -> str | None:
        i, (file, name, enc) = numbered
        rel = file.relative_to(pristine)
        work = tmp_path / str(i)  # short: the one-line error quotes the path
        plate = Path(shutil.copytree(pristine, work / pristine.name))
        doctype, inside = table[name]
        (plate / rel).write_bytes(inject(decoded(file.read_bytes()), doctype, inside, enc))
        mutant = fuzz.Mutant(fmt, f"xml-{name}", str(rel), 0)
        verdict = fuzz.run(mutant, plate, work / "out")
        stderr = (work / "stderr.txt").read_text()
        leaks = _leaks(work / "out", stderr)
        shutil.rmtree(work, ignore_errors=True)
        if not verdict.ok:
            return f"{rel} {name} {enc}: {verdict.how}: {verdict.detail[:300]}"
        if leaks:
            return f"{rel} {name} {enc}: expanded into {leaks}"
        return None

    with ThreadPoolExecutor(2) as pool:
        problems = [p for p in pool.map(one, enumerate(cases)) if p]
    assert problems == [], "\n".join(problems)
    assert _Listener.hits == [], f"the import connected to the listener: {_Listener.hits}"
