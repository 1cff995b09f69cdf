"""omero-py's own importer (`omero.util.populate_roi`) run without a server, for benchmarks.

The reference is the module exactly as omero-py ships it; only its surroundings are replaced:
- the plate is built from real, loaded omero.model objects (Plate -> Well -> WellSample -> Image);
- result files are `OriginalFileI` objects whose data a local-file provider opens from disk (text mode,
  as omero-py's downloading provider hands over a decoded text file);
- the service factory is a stand-in whose update service only hands out ids, so ROI building runs in
  full (model objects, batches of 1,000, the thread pool) and no server call is made or timed.

Timed: the context's `parse()` and, for every set of columns it returns, `parse_and_populate_roi()`
(its ROI building). Not timed, because they talk to the server only: `populate()` (the table upload).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import omero.clients  # noqa: F401  (populate_roi's imports need the Ice model registered first)
from omero.model import ImageI, OriginalFileI, PlateI, WellI, WellSampleI
from omero.rtypes import rint, rlong, rstring
from omero.util import populate_roi


class StandInUpdateService:
    """Hands out ids, as the server's update service would, and keeps nothing."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.saved = 0

    def saveAndReturnObject(self, obj: Any) -> Any:
        obj.id = rlong(next(self._ids))
        return obj

    def saveAndReturnIds(self, objs: list[Any]) -> list[int]:
        self.saved += len(objs)
        return [next(self._ids) for _ in objs]


class StandInQueryService:
    """The measurement contexts ask for it in their constructor; parsing never queries."""


class StandInServiceFactory:
    """Just the two services populate_roi's measurement contexts ask for."""

    def __init__(self) -> None:
        self.update = StandInUpdateService()
        self.query = StandInQueryService()

    def getUpdateService(self) -> StandInUpdateService:
        return self.update

    def getQueryService(self) -> StandInQueryService:
        return self.query


class LocalFileProvider:
    """populate_roi's original-file provider, reading the file from disk instead of the server."""

    def __init__(self, service_factory: Any) -> None:
        self.service_factory = service_factory

    def get_original_file_data(self, original_file: OriginalFileI) -> IO[str]:
        path = Path(original_file.path.val) / original_file.name.val
        return open(path, encoding="utf-8", newline="")


class LocalInCellCtx(populate_roi.InCellPlateAnalysisCtx):
    """InCellPlateAnalysisCtx reading local files."""

    DEFAULT_ORIGINAL_FILE_PROVIDER = LocalFileProvider


class LocalMIASCtx(populate_roi.MIASPlateAnalysisCtx):
    """MIASPlateAnalysisCtx reading local files."""

    DEFAULT_ORIGINAL_FILE_PROVIDER = LocalFileProvider


def build_plate(rows: int, columns: int, fields: int) -> list[ImageI]:
    """Loaded Plate/Well/WellSample/Image objects, one image per field, rows and columns 0-based."""
    plate = PlateI(1, True)
    ids = itertools.count(1)
    images = []
    for r in range(rows):
        for c in range(columns):
            well = WellI(next(ids), True)
            well.row, well.column = rint(r), rint(c)
            well.plate = plate
            for _f in range(fields):
                image = ImageI(next(ids), True)
                sample = WellSampleI(next(ids), True)
                sample.well, sample.image = well, image
                well.addWellSample(sample)
                image.addWellSample(sample)
                images.append(image)
    return images


def original_file(path: Path, file_id: int, mimetype: str | None) -> OriginalFileI:
    f = OriginalFileI(file_id, True)
    f.name = rstring(path.name)
    f.path = rstring(str(path.parent) + "/")
    f.size = rlong(path.stat().st_size)
    if mimetype is not None:
        f.mimetype = rstring(mimetype)
    return f


@dataclass
class ReferenceRun:
    parse_s: float
    rois_s: float
    rows: int
    rois: int

    @property
    def total_s(self) -> float:
        return self.parse_s + self.rois_s


def _run(measurement: Any, factory: StandInServiceFactory) -> ReferenceRun:
    t0 = time.perf_counter()
    result = measurement.parse()
    t1 = time.perf_counter()
    rows = 0
    for i, columns in enumerate(result.sets_of_columns):
        rows += max((len(c.values) for c in columns), default=0)
        measurement.create_file_annotation(i)
        measurement.parse_and_populate_roi(columns)
    t2 = time.perf_counter()
    return ReferenceRun(t1 - t0, t2 - t1, rows, factory.update.saved)


def run_incell(xml: Path, rows: int, columns: int, fields: int) -> ReferenceRun:
    """populate_roi's InCell parse and ROI building on one Investigator XML file."""
    factory = StandInServiceFactory()
    images = build_plate(rows, columns, fields)
    files = [original_file(xml, 1, populate_roi.InCellPlateAnalysisCtx.companion_format)]
    ctx = LocalInCellCtx(images, files, {}, 1, factory)
    return _run(ctx.get_measurement_ctx(0), factory)


def run_mias(results: Path, rows: int, columns: int) -> ReferenceRun:
    """populate_roi's MIAS parse and ROI building on the detail files of the first analysis run (log)."""
    factory = StandInServiceFactory()
    images = build_plate(rows, columns, 1)
    names = sorted(p for p in results.iterdir() if p.is_file())
    files = [original_file(p, i, None) for i, p in enumerate(names, start=1)]
    ctx = LocalMIASCtx(images, files, {}, 1, factory)
    if ctx.get_measurement_count() < 1:
        raise RuntimeError(f"{results}: populate_roi found no MIAS log file")
    return _run(ctx.get_measurement_ctx(0), factory)
