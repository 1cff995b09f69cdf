"""ROI frame (one row per shape) -> omero.model RoiI objects, one ROI per object, saved in batches.

The frame is columnar; the only per-object work left is constructing the Ice model objects themselves,
done from plain Python lists pulled out of numpy once (no per-row pandas access). Each ROI carries the
provenance tag in its description so a re-import finds it even if an earlier run died before linking it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
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
    return [_plan(str(population), rois[rois["population"] == population]
                  .sort_values("table_row", kind="stable").reset_index(drop=True))
            for population in pd.unique(rois["population"])]


def _plan(population: str, frame: pd.DataFrame) -> RoiPlan:
    """The plan of one population's shapes, already in table-row order: a ROI per run of one table row."""
    rows = frame["table_row"].to_numpy(dtype=np.int64)
    starts = _run_starts(rows)
    return RoiPlan(population, rows[starts[:-1]], starts, frame)


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Where each run of equal values begins, and the length at the end: [0, ..., len(values)]."""
    return np.concatenate([[0], np.flatnonzero(values[1:] != values[:-1]) + 1, [len(values)]]).astype(np.int64)


class _Models:
    """omero.model objects made by copying a fresh object's field values, not by running its constructor.

    Why: building a RoiI/PointI through its constructor and setters runs omero-py's generated
    `__setattr__` (a string check and a `hasattr` per field) about 40 times per shape; that was two thirds
    of the client-side cost of a ROI (profiled on 100,000 points). The copy gives each object the same
    fields, with a fresh DetailsI and fresh lists (its collections), exactly what the constructor leaves;
    tests/test_roi_models.py checks field by field, recursively, that the objects equal those the
    constructor and setters make.
    """

    def __init__(self) -> None:
        from omero.model import DetailsI, EllipseI, ImageI, LineI, MaskI, PointI, PolygonI, RectangleI, RoiI
        from omero.rtypes import RDoubleI, RIntI, RStringI

        self.image_class = ImageI
        self.details_class = DetailsI
        self.details_state = dict(DetailsI().__dict__)
        self.templates: dict[type, tuple[dict[str, Any], tuple[str, ...]]] = {}
        for cls in (RoiI, PointI, EllipseI, RectangleI, PolygonI, MaskI, LineI):
            state = dict(cls().__dict__)
            state.pop("_details", None)
            lists = tuple(k for k, v in state.items() if isinstance(v, list))
            self.templates[cls] = (state, lists)
        self.roi = RoiI
        self.shapes = {"point": PointI, "ellipse": EllipseI, "rectangle": RectangleI, "polygon": PolygonI,
                       "mask": MaskI, "line": LineI}
        self.rdouble_class, self.rint_class, self.rstring_class = RDoubleI, RIntI, RStringI

    def new(self, cls: Any) -> Any:
        state, lists = self.templates[cls]
        obj = cls.__new__(cls)
        fields = obj.__dict__
        fields.update(state)
        for name in lists:
            fields[name] = []
        details = self.details_class.__new__(self.details_class)
        details.__dict__.update(self.details_state)
        fields["_details"] = details
        return obj

    def wrap(self, cls: Any, value: Any) -> Any:
        """An rtype (RDoubleI, RStringI, ...) holding `value`, as omero.rtypes' constructors leave it."""
        obj = cls.__new__(cls)
        obj.__dict__["_val"] = value
        return obj


_MODELS: _Models | None = None


def _models() -> _Models:
    global _MODELS
    if _MODELS is None:
        _MODELS = _Models()
    return _MODELS


# Which ROI frame columns fill which field of each shape kind (all doubles, except a polygon's points
# string and a mask's bytes).
_GEOMETRY: dict[str, tuple[tuple[str, str], ...]] = {
    "point": (("x", "_x"), ("y", "_y")),
    "ellipse": (("x", "_x"), ("y", "_y"), ("radius_x", "_radiusX"), ("radius_y", "_radiusY")),
    "rectangle": (("x", "_x"), ("y", "_y"), ("width", "_width"), ("height", "_height")),
    "polygon": (),
    "mask": (("x", "_x"), ("y", "_y"), ("width", "_width"), ("height", "_height")),
    "line": (("x", "_x1"), ("y", "_y1"), ("x2", "_x2"), ("y2", "_y2")),
}


def build_rois(plan: RoiPlan, image_ids: np.ndarray, colour: int, tag: str,
               start: int = 0, stop: int | None = None) -> list[Any]:
    """RoiI objects for ROIs [start, stop) of the plan; `image_ids` has one id per ROI of the plan.

    Unloaded Image references and the small rtypes (plane indices, colour, tag) are shared within a batch:
    Ice sends a shared object once. Columns are pulled out of the frame once per batch as plain lists.
    """
    m = _models()
    stop = plan.count if stop is None else stop
    lo, hi = int(plan.starts[start]), int(plan.starts[stop])
    part = plan.frame.iloc[lo:hi]
    kinds = part["shape"].tolist()
    for kind in set(kinds):
        if kind not in _GEOMETRY:
            raise ValueError(f"unknown shape kind {kind!r}")
    used = {col for kind in set(kinds) for col, _ in _GEOMETRY[kind]}
    values = {col: part[col].tolist() for col in used}
    points = part["points"].tolist() if "polygon" in kinds else None
    masks = part["mask"].tolist() if "mask" in kinds else None
    z, t, c = part["z"].tolist(), part["t"].tolist(), part["c"].tolist()
    texts, objects = part["text"].tolist(), part["object"].tolist()
    images: dict[int, Any] = {}
    ints: dict[int, Any] = {}

    def small(v: int) -> Any:
        if v not in ints:
            ints[v] = m.wrap(m.rint_class, int(v))
        return ints[v]

    rdouble, rstring = m.rdouble_class, m.rstring_class
    rtag, rcolour = m.wrap(rstring, tag), m.wrap(m.rint_class, int(colour))
    prefix = f"{plan.population} "
    starts = plan.starts
    out = []
    for i in range(start, stop):
        roi = m.new(m.roi)
        fields = roi.__dict__
        image_id = int(image_ids[i])
        image = images.get(image_id)
        if image is None:
            image = images[image_id] = m.image_class(image_id, False)
        fields["_image"] = image
        fields["_description"] = rtag
        shapes = fields["_shapesSeq"]
        first = int(starts[i]) - lo
        for j in range(first, int(starts[i + 1]) - lo):
            kind = kinds[j]
            shape = m.new(m.shapes[kind])
            sf = shape.__dict__
            for col, name in _GEOMETRY[kind]:
                sf[name] = m.wrap(rdouble, float(values[col][j]))
            if points is not None and kind == "polygon":
                sf["_points"] = m.wrap(rstring, str(points[j]))
            if masks is not None and kind == "mask":
                sf["_bytes"] = bytes(masks[j])
            sf["_theZ"] = small(z[j])
            sf["_theT"] = small(t[j])
            if c[j] >= 0:
                sf["_theC"] = small(c[j])
            label = texts[j]
            text = m.wrap(rstring, label if isinstance(label, str) and label else f"{prefix}{objects[j]}")
            sf["_textValue"] = text
            sf["_strokeColor"] = rcolour
            sf["_roi"] = roi
            shapes.append(shape)
            if j == first:
                fields["_name"] = text  # the ROI is named like its first shape (one shared RString)
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


ImageLookup = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
_SCAN_COLUMNS = ["population", "table_row", "well_row", "well_column", "field"]


def _images(lookup: ImageLookup, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(image id, no Image) of every shape of the frame, from its well and field."""
    return lookup(frame["well_row"].to_numpy(np.int64), frame["well_column"].to_numpy(np.int64),
                  frame["field"].to_numpy(np.int64))


def _first_images(plan: RoiPlan) -> np.ndarray:
    """The image id of each ROI of a plan whose frame carries `_image`: its first shape's."""
    ids: np.ndarray = plan.frame["_image"].to_numpy(np.int64)[plan.starts[:-1]]
    return ids


@dataclass(frozen=True)
class PopulationRois:
    population: str
    rois: int
    shapes: int


@dataclass(frozen=True)
class RoiSource:
    """The ROIs of a bundle's rois.parquet, read for upload a row group at a time.

    `scan_rois` reads only the key columns first, so the counts (and the shapes with no Image) are
    known before anything is created on the server. hcs-import writes each population's shapes together
    and in table-row order (`grouped`); then `plans` streams: memory is bounded by one row group, not by
    the number of ROIs. A file in any other order (not one hcs-import writes) is planned in memory.
    """

    path: Path
    lookup: ImageLookup
    populations: tuple[PopulationRois, ...]
    lost_shapes: int
    grouped: bool
    rows: int

    @property
    def count(self) -> int:
        return sum(p.rois for p in self.populations)

    @property
    def shapes(self) -> int:
        return sum(p.shapes for p in self.populations)

    def _kept(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        ids, lost = _images(self.lookup, frame)
        if lost.any():
            return frame[~lost].reset_index(drop=True), ids[~lost]
        return frame, ids

    def plans(self) -> Iterator[tuple[RoiPlan, np.ndarray]]:
        """(plan, image id of each of its ROIs) in file order; one population's ROIs may span several plans."""
        from ..writers.rois_file import iter_rois

        if not self.grouped:
            frame, ids = self._kept(pd.concat(list(iter_rois(self.path)), ignore_index=True))
            for plan in plan_rois(frame.assign(_image=ids)):
                yield plan, _first_images(plan)
            return
        carry: pd.DataFrame | None = None
        for batch in iter_rois(self.path, rows=self.rows):
            frame, ids = self._kept(batch)
            frame = frame.assign(_image=ids)
            if carry is not None:
                frame = pd.concat([carry, frame], ignore_index=True)
            if not len(frame):
                continue
            # The last ROI may go on in the next row group: hold its shapes back.
            pops, rows = frame["population"].to_numpy(), frame["table_row"].to_numpy(np.int64)
            tail = len(frame) - 1
            while tail > 0 and rows[tail - 1] == rows[-1] and pops[tail - 1] == pops[-1]:
                tail -= 1
            carry = frame.iloc[tail:].reset_index(drop=True)
            if tail:
                yield from _run_plans(frame.iloc[:tail])
        if carry is not None and len(carry):
            yield from _run_plans(carry)


def _run_plans(frame: pd.DataFrame) -> Iterator[tuple[RoiPlan, np.ndarray]]:
    """Plans of a grouped frame: each population's run of shapes, already in table-row order."""
    pops = frame["population"].to_numpy()
    for a, b in itertools.pairwise(_run_starts(pops)):
        plan = _plan(str(pops[a]), frame.iloc[int(a) : int(b)].reset_index(drop=True))
        yield plan, _first_images(plan)


def scan_rois(path: Path, lookup: ImageLookup, rows: int = 65_536) -> RoiSource:
    """Count ROIs and shapes per population (shapes on fields with no Image left out), and check the order."""
    from ..writers.rois_file import iter_rois

    shapes: dict[str, int] = {}
    rois: dict[str, int] = {}
    lost = 0
    grouped = True
    last: tuple[str, int] | None = None
    runs: list[str] = []
    for batch in iter_rois(path, _SCAN_COLUMNS, rows):
        _, gone = _images(lookup, batch)
        lost += int(gone.sum())
        batch = batch[~gone]
        if not len(batch):
            continue
        pops = batch["population"].astype(str).to_numpy()
        table_rows = batch["table_row"].to_numpy(np.int64)
        new = np.ones(len(batch), dtype=bool)
        new[1:] = (pops[1:] != pops[:-1]) | (table_rows[1:] != table_rows[:-1])
        if last is not None and (pops[0], int(table_rows[0])) == last:
            new[0] = False
        backwards = (pops[1:] == pops[:-1]) & (table_rows[1:] < table_rows[:-1])
        if backwards.any() or (last is not None and pops[0] == last[0] and table_rows[0] < last[1]):
            grouped = False
        for a, b in itertools.pairwise(_run_starts(pops)):
            pop = str(pops[a])
            if not runs or runs[-1] != pop:
                runs.append(pop)
            shapes[pop] = shapes.get(pop, 0) + int(b - a)
            rois[pop] = rois.get(pop, 0) + int(new[a:b].sum())
        last = (str(pops[-1]), int(table_rows[-1]))
    grouped = grouped and len(runs) == len(set(runs))  # no population comes back after another one
    if not grouped:  # count ROIs as plan_rois will group them (in memory, as `plans` then reads it)
        frame = pd.concat(list(iter_rois(path, _SCAN_COLUMNS, rows)), ignore_index=True)
        _, gone = _images(lookup, frame)
        counts = frame[~gone].groupby("population", sort=False)["table_row"].nunique()
        rois = {str(k): int(v) for k, v in counts.items()}
    populations = tuple(PopulationRois(p, rois[p], shapes[p]) for p in shapes)
    return RoiSource(path, lookup, populations, lost, grouped, rows)
