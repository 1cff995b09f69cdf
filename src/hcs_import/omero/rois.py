"""ROI frame (one row per shape) -> omero.model RoiI objects, one ROI per object, saved in batches.

The frame is columnar; the only per-object work left is constructing the Ice model objects themselves,
done from plain Python lists pulled out of numpy once (no per-row pandas access). Each ROI carries the
provenance tag in its description so a re-import finds it even if an earlier run died before linking it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

ROI_BATCH = 1000  # ROIs per saveAndReturnIds, as populate_roi: well under Ice.MessageSizeMax

# Distinct stroke colours (RGB) for populations, in order of first appearance.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 255, 0), (0, 255, 255), (255, 0, 255), (0, 255, 0),
    (255, 128, 0), (0, 128, 255), (255, 0, 0), (128, 0, 255),
)


def rgba_int(r: int, g: int, b: int, a: int = 255) -> int:
    """OMERO packs colours as RGBA in a signed 32-bit int."""
    value = (r << 24) | (g << 16) | (b << 8) | a
    return value - (1 << 32) if value >= (1 << 31) else value


def population_colours(populations: Sequence[str]) -> dict[str, int]:
    """One stroke colour per population, stable for a given population order."""
    return {p: rgba_int(*PALETTE[i % len(PALETTE)]) for i, p in enumerate(populations)}


@dataclass(frozen=True)
class RoiPlan:
    """ROIs of one population: which table row each ROI belongs to, and its shapes' frame rows."""

    population: str
    table_rows: np.ndarray  # one per ROI, ascending
    starts: np.ndarray  # ROI i's shapes are frame rows starts[i]:starts[i+1] of `frame`
    frame: pd.DataFrame  # this population's shapes, sorted by table_row

    @property
    def count(self) -> int:
        return len(self.table_rows)


def plan_rois(rois: pd.DataFrame) -> list[RoiPlan]:
    """Group shapes into ROIs: one ROI per (population, table_row), populations in first-seen order."""
    plans = []
    for population in pd.unique(rois["population"]):
        frame = rois[rois["population"] == population].sort_values("table_row", kind="stable").reset_index(drop=True)
        rows = frame["table_row"].to_numpy(dtype=np.int64)
        change = np.flatnonzero(np.diff(rows)) + 1
        starts = np.concatenate([[0], change, [len(rows)]]).astype(np.int64)
        plans.append(RoiPlan(str(population), rows[starts[:-1]], starts, frame))
    return plans


def _shape(kind: str, rec: dict[str, Any]) -> Any:
    from omero.model import EllipseI, LineI, MaskI, PointI, PolygonI, RectangleI
    from omero.rtypes import rdouble, rstring

    if kind == "point":
        s = PointI()
        s.x, s.y = rdouble(rec["x"]), rdouble(rec["y"])
    elif kind == "ellipse":
        s = EllipseI()
        s.x, s.y = rdouble(rec["x"]), rdouble(rec["y"])
        s.radiusX, s.radiusY = rdouble(rec["radius_x"]), rdouble(rec["radius_y"])
    elif kind == "rectangle":
        s = RectangleI()
        s.x, s.y = rdouble(rec["x"]), rdouble(rec["y"])
        s.width, s.height = rdouble(rec["width"]), rdouble(rec["height"])
    elif kind == "polygon":
        s = PolygonI()
        s.points = rstring(str(rec["points"]))
    elif kind == "mask":
        s = MaskI()
        s.x, s.y = rdouble(rec["x"]), rdouble(rec["y"])
        s.width, s.height = rdouble(rec["width"]), rdouble(rec["height"])
        s.bytes = bytes(rec["mask"])
    elif kind == "line":
        s = LineI()
        s.x1, s.y1 = rdouble(rec["x"]), rdouble(rec["y"])
        s.x2, s.y2 = rdouble(rec["x2"]), rdouble(rec["y2"])
    else:
        raise ValueError(f"unknown shape kind {kind!r}")
    return s


def build_rois(plan: RoiPlan, image_ids: np.ndarray, colour: int, tag: str,
               start: int = 0, stop: int | None = None) -> list[Any]:
    """RoiI objects for ROIs [start, stop) of the plan; `image_ids` has one id per ROI of the plan.

    Unloaded Image references and the small rtypes (plane indices, colour, tag) are shared within a batch:
    Ice sends a shared object once, and building them is most of the client-side cost of a ROI.
    """
    from omero.model import ImageI, RoiI
    from omero.rtypes import rint, rstring

    stop = plan.count if stop is None else stop
    lo, hi = int(plan.starts[start]), int(plan.starts[stop])
    records = plan.frame.iloc[lo:hi].to_dict("records")  # one conversion for the batch
    images: dict[int, Any] = {}
    ints: dict[int, Any] = {}

    def image(i: int) -> Any:
        if i not in images:
            images[i] = ImageI(i, False)
        return images[i]

    def small(v: int) -> Any:
        if v not in ints:
            ints[v] = rint(v)
        return ints[v]

    rtag, rcolour = rstring(tag), rint(colour)
    out = []
    for i in range(start, stop):
        roi = RoiI()
        roi.setImage(image(int(image_ids[i])))
        roi.setDescription(rtag)
        first = records[int(plan.starts[i]) - lo]
        roi.setName(rstring(str(first["text"]) if first["text"] else f"{plan.population} {first['object']}"))
        for rec in records[int(plan.starts[i]) - lo : int(plan.starts[i + 1]) - lo]:
            shape = _shape(str(rec["shape"]), rec)
            shape.setTheZ(small(int(rec["z"])))
            shape.setTheT(small(int(rec["t"])))
            if int(rec["c"]) >= 0:
                shape.setTheC(small(int(rec["c"])))
            text = rec["text"] if rec["text"] else f"{plan.population} {rec['object']}"
            shape.setTextValue(rstring(str(text)))
            shape.setStrokeColor(rcolour)
            roi.addShape(shape)
        out.append(roi)
    return out


def batches(count: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, count, size):
        yield start, min(count, start + size)


def save_rois(update: Any, plan: RoiPlan, image_ids: np.ndarray, colour: int, tag: str,
              created: Callable[[list[int]], None], batch: int = ROI_BATCH) -> np.ndarray:
    """Save the plan's ROIs in batches; returns their ids in plan order. `created` hears each batch's ids
    as soon as the server assigned them, so a failure later in the run can delete them."""
    ids = np.empty(plan.count, dtype=np.int64)
    for start, stop in batches(plan.count, batch):
        saved = update.saveAndReturnIds(build_rois(plan, image_ids, colour, tag, start, stop))
        if len(saved) != stop - start:
            raise RuntimeError(f"server returned {len(saved)} ROI ids for {stop - start} ROIs")
        batch_ids = [int(x) for x in saved]
        created(batch_ids)
        ids[start:stop] = batch_ids
    return ids
