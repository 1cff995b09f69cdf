"""The BD Attovision column map: which files are measurement tables and which columns are keys / shapes.

The defaults live in `bdpathway_columns.toml` beside this module (documented there, line by line); a user
map (--column-map FILE) replaces the keys it sets and keeps the others. A map with an unknown section or
key, or a value of the wrong type, is an error naming the file and key: a typo must not silently fall
back to a default.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_MAP = "bdpathway_columns.toml"
DELIMITERS = {"auto": None, "tab": "\t", "comma": ",", "semicolon": ";"}

# section -> key -> expected type ("names": list of strings, "patterns": list of strings, "int", "str")
SCHEMA: dict[str, dict[str, str]] = {
    "files": {"include": "patterns", "exclude": "patterns", "delimiter": "str", "skip_lines": "int"},
    "keys": {"well": "names", "field": "names", "field_base": "int", "object": "names", "t": "names",
             "t_base": "int", "z": "names", "z_base": "int"},
    "shapes": {"x": "names", "y": "names", "left": "names", "top": "names", "width": "names", "height": "names"},
    "units": {},  # free: column name -> unit
}


@dataclass(frozen=True)
class ColumnMap:
    """A validated column map. Name lists are matched case-insensitively, first match wins."""

    source: str  # where it came from, for messages and table metadata
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    delimiter: str | None  # None: sniffed from the header line
    skip_lines: int
    well: tuple[str, ...]
    field: tuple[str, ...]
    field_base: int
    object: tuple[str, ...]
    t: tuple[str, ...]
    t_base: int
    z: tuple[str, ...]
    z_base: int
    x: tuple[str, ...]
    y: tuple[str, ...]
    left: tuple[str, ...]
    top: tuple[str, ...]
    width: tuple[str, ...]
    height: tuple[str, ...]
    units: dict[str, str]

    def find(self, names: list[str], candidates: tuple[str, ...]) -> str | None:
        """The first candidate present among `names` (case and surrounding spaces ignored)."""
        lowered: dict[str, str] = {}
        for n in names:
            lowered.setdefault(n.strip().lower(), n)
        for c in candidates:
            hit = lowered.get(c.strip().lower())
            if hit is not None:
                return hit
        return None

    def unit(self, name: str) -> str | None:
        for k, v in self.units.items():
            if k.strip().lower() == name.strip().lower():
                return v
        return None


def _load(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        line = getattr(exc, "lineno", None) or (int(found.group(1)) if found else None)
        message = re.sub(r"\s*\(at [^)]*\)", "", str(exc))
        raise InputError(where, f"line {line}" if line else None, f"not a valid TOML column map ({message})") from None


def _check(data: dict[str, Any], where: str) -> None:
    for section, values in data.items():
        if section not in SCHEMA:
            raise InputError(where, f"[{section}]", f"unknown section; known sections: {', '.join(SCHEMA)}")
        if not isinstance(values, dict):
            raise InputError(where, section, "expected a [section] table")
        for key, value in values.items():
            if section == "units":
                if not isinstance(value, str):
                    raise InputError(where, f"[units] {key}", "expected a unit string, e.g. \"um^2\"")
                continue
            kind = SCHEMA[section].get(key)
            if kind is None:
                raise InputError(where, f"[{section}] {key}",
                                 f"unknown key; known keys: {', '.join(SCHEMA[section])}")
            if kind in ("names", "patterns"):
                ok = isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
                if not ok:
                    raise InputError(where, f"[{section}] {key}", "expected a list of non-empty strings")
            elif kind == "int" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise InputError(where, f"[{section}] {key}", "expected a whole number >= 0")
            elif kind == "str" and not isinstance(value, str):
                raise InputError(where, f"[{section}] {key}", "expected a string")
    delimiter = data.get("files", {}).get("delimiter")
    if delimiter is not None and delimiter not in DELIMITERS:
        raise InputError(where, "[files] delimiter", f"{delimiter!r}: expected one of {', '.join(DELIMITERS)}")


def load_column_map(user: Path | None = None) -> ColumnMap:
    """The default map, with the keys of `user` (a TOML file) replacing the defaults they name."""
    default_text = resources.files(__package__).joinpath(DEFAULT_MAP).read_text(encoding="utf-8")
    merged = _load(default_text, DEFAULT_MAP)
    _check(merged, DEFAULT_MAP)
    source = "default"
    if user is not None:
        try:
            text = Path(user).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(user, None, f"cannot read the column map: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise InputError(user, None, "the column map is not UTF-8 text (expected a TOML file)") from None
        data = _load(text, str(user))
        _check(data, str(user))
        for section, values in data.items():
            merged.setdefault(section, {}).update(values)
        source = str(user)
    files, keys, shapes = merged.get("files", {}), merged.get("keys", {}), merged.get("shapes", {})
    return ColumnMap(
        source=source,
        include=tuple(files.get("include", ())),
        exclude=tuple(files.get("exclude", ())),
        delimiter=DELIMITERS[files.get("delimiter", "auto")],
        skip_lines=int(files.get("skip_lines", 0)),
        well=tuple(keys.get("well", ())),
        field=tuple(keys.get("field", ())),
        field_base=int(keys.get("field_base", 1)),
        object=tuple(keys.get("object", ())),
        t=tuple(keys.get("t", ())),
        t_base=int(keys.get("t_base", 1)),
        z=tuple(keys.get("z", ())),
        z_base=int(keys.get("z_base", 1)),
        x=tuple(shapes.get("x", ())),
        y=tuple(shapes.get("y", ())),
        left=tuple(shapes.get("left", ())),
        top=tuple(shapes.get("top", ())),
        width=tuple(shapes.get("width", ())),
        height=tuple(shapes.get("height", ())),
        units=dict(merged.get("units", {})),
    )
