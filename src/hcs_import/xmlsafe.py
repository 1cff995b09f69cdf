"""Hardened lxml: no entity expansion, no DTD loading, no network, and errors that name file and line.

Every XML a parser reads comes through here, so a hostile or broken file (billion laughs, external
entities, truncation) fails the same clear way everywhere.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import IO, Any

from lxml import etree

from .errors import InputError

_SAFE = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": True,
}


def parser(**extra: Any) -> etree.XMLParser:
    return etree.XMLParser(**_SAFE, **extra)


def iterparse(source: str | Path | IO[bytes], **kwargs: Any) -> etree.iterparse:
    return etree.iterparse(source, **_SAFE, **kwargs)


ENTITY_DECLARATION = b"<!ENTITY"


def reject_entities(head: bytes, path: Path | str) -> None:
    """Refuse documents that declare entities: no vendor format needs them, and expanding them is how
    billion-laughs and external-entity attacks work. Refusing is clearer than silently leaving
    unexpanded references in values."""
    pos = head.find(ENTITY_DECLARATION)
    if pos >= 0:
        line = head[:pos].count(b"\n") + 1
        raise InputError(path, f"line {line}", "the document declares XML entities (<!ENTITY>); "
                         "refused for safety: entities are never expanded")


def parse_file(path: Path, encoding: str | None = None) -> etree._Element:
    """Parse a whole (small) XML file; errors become InputError naming the file and line."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        return parse_bytes(data, path, encoding=encoding)
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror}") from exc


def parse_bytes(data: bytes, path: Path | str, encoding: str | None = None) -> etree._Element:
    reject_entities(data, path)
    try:
        root = etree.fromstring(data, parser(encoding=encoding) if encoding else parser())
    except etree.XMLSyntaxError as exc:
        raise syntax_error(path, exc) from exc
    if root is None:
        raise InputError(path, "line 1", "empty XML document")
    return root


_LXML_POSITION = re.compile(r",? line \d+(, column \d+)?\)?$")


def lxml_message(exc: etree.XMLSyntaxError) -> str:
    """lxml's message without its own "line N, column M": positions relative to a fragment mislead, and
    the caller reports the line in file terms."""
    msg = str(exc.msg if getattr(exc, "msg", None) else exc)
    return _LXML_POSITION.sub("", msg.split(" (<string>")[0]).rstrip()


def syntax_error(path: Path | str, exc: etree.XMLSyntaxError, line_offset: int = 0) -> InputError:
    line = (exc.lineno or 1) + line_offset
    msg = lxml_message(exc)
    return InputError(path, f"line {line}", f"malformed XML ({msg}); the file may be truncated or not XML")


def declared_encoding(head: bytes) -> str | None:
    """Encoding named in an XML declaration at the start of `head`, if any."""
    if not head.startswith(b"<?xml"):
        return None
    end = head.find(b"?>")
    decl = head[: end if end > 0 else 200].decode("ascii", "replace")
    for quote in ('"', "'"):
        marker = f"encoding={quote}"
        i = decl.find(marker)
        if i >= 0:
            j = decl.find(quote, i + len(marker))
            return decl[i + len(marker) : j] if j > 0 else None
    return None


# Declared encodings that are single-byte Latin: any byte sequence decodes, so a file written as UTF-8
# but declared ISO-8859-1 would be read as mojibake (`Âµm`) without any error. Seen in a real IN Cell
# Analyzer 2000 `.xdce` (declares ISO-8859-1, writes `µm` as UTF-8).
LATIN_ENCODINGS = frozenset({"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "windows-1252", "cp1252"})


def encoding_override(path: Path, block: int = 1 << 20) -> tuple[str | None, str | None]:
    """(encoding to parse with, warning) for a file whose declared Latin encoding its bytes contradict.

    A file declared Latin whose non-ASCII bytes all form valid UTF-8 is UTF-8 in fact: the chance that
    real Latin-1 text (`µ` alone is 0xB5, an invalid UTF-8 start) decodes as UTF-8 is negligible. Such a
    file is read as UTF-8 and the returned warning says so; otherwise (None, None): the declaration holds.
    Read in blocks, so a large file costs no memory.
    """
    with open(path, "rb") as fh:
        head = fh.read(block)
        declared = declared_encoding(head)
        if declared is None or declared.strip().lower() not in LATIN_ENCODINGS:
            return None, None
        decoder = codecs.getincrementaldecoder("utf-8")()
        non_ascii = False
        data = head
        try:
            while data:
                non_ascii = non_ascii or not data.isascii()
                decoder.decode(data)
                data = fh.read(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return None, None
    if not non_ascii:
        return None, None
    return "utf-8", (f"{Path(path).name}: declares encoding {declared} but its bytes are UTF-8; "
                     "read as UTF-8")
