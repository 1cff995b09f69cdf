"""The bundle's manifest.json: one typed definition for the writer and every reader.

A bundle outlives the program that wrote it (it is uploaded later, by another version, on another
machine), so the manifest carries `schema_version`. Readers go through `read_manifest`, which accepts
what this version knows how to read and refuses, in one line, a manifest from a newer schema rather than
misreading it. Version 1 is the manifest before it had a version (the same keys, no `located`); it is
read as is.

TypedDicts rather than dataclasses on purpose: the manifest is JSON on disk and a dict in memory, and a
TypedDict lets the type checker hold the writer and the readers to the same keys at no cost at run time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypedDict

from .errors import OutputError

SCHEMA_VERSION = 2
MANIFEST = "manifest.json"


class PlateEntry(TypedDict):
    name: str
    rows: int
    columns: int
    row_labels: list[str]
    column_labels: list[str]
    barcode: str | None
    channels: list[str]
    pixel_size_um: list[float] | None
    fields_per_well: int | None


class TableEntry(TypedDict):
    path: str  # relative to the bundle
    population: str
    kind: str  # "objects", "fields", "wells" (model.TableKind)
    rows: int
    columns: int
    part: int  # 1-based; a wide table is split into parts (OMERO.tables' column limit)
    parts: int
    column_names: list[str]


class RoisEntry(TypedDict):
    path: str
    count: int
    by_shape: dict[str, int]
    by_population: dict[str, int]


class SourceEntry(TypedDict):
    path: str  # relative to the plate folder
    sha256: str
    size: int


class ProvenanceEntry(TypedDict, total=False):
    parser: str
    parser_version: str
    key: str
    created: str
    analysis: dict[str, str]
    located: dict[str, Any] | None  # parsers.base.PlateSource.describe(); schema 2 on


class LayoutEntry(TypedDict):
    path: str
    images: int


class PlatemapEntry(TypedDict):
    path: str
    wells: int
    columns: list[str]


class _Required(TypedDict):
    schema_version: int
    hcs_import_version: str
    format: str
    plate: PlateEntry
    tables: list[TableEntry]
    rois: RoisEntry
    sources: list[SourceEntry]
    provenance: ProvenanceEntry
    warnings: list[str]


class Manifest(_Required, total=False):
    layout: LayoutEntry
    platemap: PlatemapEntry
    report: str  # the HTML report's file name, when one was written


REQUIRED_KEYS = tuple(_Required.__annotations__)


def write_manifest(path: Path, manifest: Manifest) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2)
        fh.write("\n")


def check_manifest(data: object, where: str) -> Manifest:
    """`data` as a Manifest, or OutputError naming `where` and what is wrong with it."""
    if not isinstance(data, dict):
        raise OutputError(f"{where}: not a manifest (a JSON object expected)")
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or version < 1:
        raise OutputError(f"{where}: schema_version {version!r} is not a version number")
    if version > SCHEMA_VERSION:
        raise OutputError(f"{where}: written with manifest schema {version}; this hcs-import reads up to "
                          f"{SCHEMA_VERSION} (upgrade hcs-import)")
    missing = [k for k in REQUIRED_KEYS if k != "schema_version" and k not in data]
    if missing:
        raise OutputError(f"{where}: manifest lacks {', '.join(missing)}")
    data.setdefault("schema_version", version)
    return data  # type: ignore[return-value]  # checked above, key by key


def read_manifest(bundle: Path) -> Manifest:
    path = bundle / MANIFEST
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise OutputError(f"{bundle}: not a bundle (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise OutputError(f"{path}: cannot read the manifest: {exc}") from None
    return check_manifest(data, str(path))
