"""Plate -> Well -> WellSample -> Image in one query, and the key -> id lookups the upload needs.

One HQL query with join fetches loads the whole plate (no per-well round trips, unlike populate_metadata).
A field is the position of the WellSample in its Well, as OMERO.web and populate_roi number them.
Results whose well or field has no image are collected, never silently turned into -1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .connect import OmeroError

PLATE_QUERY = (
    "select distinct p from Plate p "
    "left outer join fetch p.wells w "
    "left outer join fetch w.wellSamples ws "
    "left outer join fetch ws.image "
    "where p.id = :pid"
)
PLATE_BY_NAME_QUERY = "select p.id from Plate p where p.name = :name order by p.id"


@dataclass
class PlateIds:
    """The ids of one OMERO plate, keyed by 0-based (row, column) and field."""

    plate_id: int
    name: str
    wells: dict[tuple[int, int], int] = field(default_factory=dict)
    images: dict[tuple[int, int, int], int] = field(default_factory=dict)

    def well_ids(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Well ids for key arrays; second value: mask of keys with no Well (id -1)."""
        return _lookup(self.wells, np.stack([rows, cols], axis=1))

    def image_ids(self, rows: np.ndarray, cols: np.ndarray, fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image ids for key arrays; second value: mask of keys with no Image (id -1)."""
        return _lookup(self.images, np.stack([rows, cols, fields], axis=1))


def _lookup(mapping: dict[tuple[int, ...], int], keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised dict lookup: unique keys once, then broadcast back (plates have few keys, many rows)."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    uniq, inverse = np.unique(keys.astype(np.int64), axis=0, return_inverse=True)
    ids = np.array([mapping.get(tuple(int(v) for v in k), -1) for k in uniq], dtype=np.int64)
    out = ids[inverse.reshape(-1)]
    return out, out < 0


def _val(x: Any) -> Any:
    return None if x is None else x.getValue()


def find_plate_id(query: Any, name: str) -> int:
    """The one Plate with this name; ambiguous or missing names are errors, naming the candidates."""
    from omero.rtypes import rstring
    from omero.sys import ParametersI

    params = ParametersI()
    params.add("name", rstring(name))
    rows = query.projection(PLATE_BY_NAME_QUERY, params)
    ids = [int(r[0].getValue()) for r in rows]
    if not ids:
        raise OmeroError(f"no Plate named {name!r} visible to this user")
    if len(ids) > 1:
        raise OmeroError(f"{len(ids)} Plates are named {name!r} (ids {', '.join(map(str, ids))}): use --plate-id")
    return ids[0]


def load_plate(query: Any, plate_id: int) -> PlateIds:
    """Load the plate's wells, fields and images with one query."""
    from omero.rtypes import rlong
    from omero.sys import ParametersI

    params = ParametersI()
    params.add("pid", rlong(plate_id))
    plates = query.findAllByQuery(PLATE_QUERY, params)
    if not plates:
        raise OmeroError(f"Plate {plate_id} not found (or not visible to this user)")
    plate = plates[0]
    ids = PlateIds(plate_id, _val(plate.getName()) or "")
    for well in plate.copyWells():
        key = (int(_val(well.getRow())), int(_val(well.getColumn())))
        ids.wells[key] = int(_val(well.getId()))
        for index, sample in enumerate(well.copyWellSamples()):
            image = sample.getImage()
            if image is not None and image.getId() is not None:
                ids.images[(*key, index)] = int(_val(image.getId()))
    return ids
