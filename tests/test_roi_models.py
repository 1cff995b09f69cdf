"""The fast ROI builder (hcs_import.omero.rois.build_rois) makes the objects omero-py's constructors and
setters make, compared field by field (recursively, through every shape and the details)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("omero.clients", reason="needs omero-py: pip install 'hcs-import[omero]' (make setup does)")

import omero.clients  # noqa: F401
from omero.model import EllipseI, ImageI, LineI, MaskI, PointI, PolygonI, RectangleI, RoiI
from omero.rtypes import rdouble, rint, rstring

from hcs_import.model import make_rois
from hcs_import.omero.rois import build_rois, plan_rois


def _frame() -> Any:
    """Every shape kind, with and without text, channel and planes; two shapes in one ROI."""
    kinds = ["point", "ellipse", "rectangle", "polygon", "mask", "line", "point"]
    n = len(kinds)
    return make_rois(
        n, population="Cells", table_row=[0, 1, 2, 3, 4, 5, 5], object=[10, 11, 12, 13, 14, 15, 15],
        well_row=0, well_column=1, field=[0, 0, 1, 1, 0, 0, 0], z=[0, 1, 0, 2, 0, 0, 0], t=[0, 0, 3, 0, 0, 1, 1],
        c=[-1, 0, 1, -1, -1, 2, 2], shape=kinds, x=np.arange(n) + 0.5, y=np.arange(n) * 2.0,
        radius_x=[np.nan, 3.0, np.nan, np.nan, np.nan, np.nan, np.nan],
        radius_y=[np.nan, 4.0, np.nan, np.nan, np.nan, np.nan, np.nan],
        width=[np.nan, np.nan, 5.0, np.nan, 8.0, np.nan, np.nan],
        height=[np.nan, np.nan, 6.0, np.nan, 1.0, np.nan, np.nan],
        x2=[np.nan] * 5 + [9.0, np.nan], y2=[np.nan] * 5 + [7.0, np.nan],
        points=[None, None, None, "1,2 3,4 5,6", None, None, None],
        mask=[None, None, None, None, b"\xff", None, None],
        text=[None, "nucleus 11", None, "", None, None, "spot"],
    )


def _slow(frame: Any, image_ids: np.ndarray, colour: int, tag: str) -> list[Any]:
    """The same ROIs made the plain way: constructors and setters of omero-py's model (the oracle)."""
    out = []
    plan = plan_rois(frame)[0]
    for i in range(plan.count):
        roi = RoiI()
        roi.setImage(ImageI(int(image_ids[i]), False))
        roi.setDescription(rstring(tag))
        recs = plan.frame.iloc[int(plan.starts[i]) : int(plan.starts[i + 1])].to_dict("records")
        for k, rec in enumerate(recs):
            text = rec["text"] if isinstance(rec["text"], str) and rec["text"] else f"Cells {rec['object']}"
            if k == 0:
                roi.setName(rstring(text))
            kind = rec["shape"]
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
                s.points = rstring(rec["points"])
            elif kind == "mask":
                s = MaskI()
                s.x, s.y = rdouble(rec["x"]), rdouble(rec["y"])
                s.width, s.height = rdouble(rec["width"]), rdouble(rec["height"])
                s.bytes = bytes(rec["mask"])
            else:
                s = LineI()
                s.x1, s.y1 = rdouble(rec["x"]), rdouble(rec["y"])
                s.x2, s.y2 = rdouble(rec["x2"]), rdouble(rec["y2"])
            s.setTheZ(rint(int(rec["z"])))
            s.setTheT(rint(int(rec["t"])))
            if rec["c"] >= 0:
                s.setTheC(rint(int(rec["c"])))
            s.setTextValue(rstring(text))
            s.setStrokeColor(rint(colour))
            roi.addShape(s)
        out.append(roi)
    return out


def _state(obj: Any, seen: set[int] | None = None) -> Any:
    """An object's fields, recursively, as plain values (a back-reference to an object being walked: its class)."""
    seen = set() if seen is None else seen
    if isinstance(obj, list):
        return [_state(v, seen) for v in obj]
    if not hasattr(obj, "__dict__"):
        return obj
    if id(obj) in seen:
        return f"<back-reference {type(obj).__name__}>"
    seen = seen | {id(obj)}
    return (type(obj).__name__, {k: _state(v, seen) for k, v in sorted(obj.__dict__.items())})


def test_fast_rois_equal_the_constructed_ones_field_by_field() -> None:
    frame = _frame()
    plan = plan_rois(frame)[0]
    image_ids = np.array([101, 101, 102, 102, 101, 101], dtype=np.int64)
    fast = build_rois(plan, image_ids, -65281, "tag:abc")
    slow = _slow(frame, image_ids, -65281, "tag:abc")
    assert len(fast) == len(slow) == 6
    assert [len(r.copyShapes()) for r in fast] == [1, 1, 1, 1, 1, 2]
    for a, b in zip(fast, slow):
        assert _state(a) == _state(b)
    # the public getters read the copied fields
    assert fast[1].copyShapes()[0].getRadiusX().getValue() == 3.0
    assert fast[5].getName().getValue() == "Cells 15"
    assert fast[5].copyShapes()[1].getTextValue().getValue() == "spot"
    assert fast[3].copyShapes()[0].getPoints().getValue() == "1,2 3,4 5,6"
    assert fast[0].copyShapes()[0].getRoi() is fast[0]
    # each object owns its collections and details (nothing shared between ROIs by the copy)
    assert fast[0].copyShapes() is not fast[1].copyShapes()
    assert fast[0].getDetails() is not fast[1].getDetails()
