"""A bundle's plate map on the server: key-value annotations on the Wells, and an omero-metadata config.

Each mapped well gets one MapAnnotation (namespace bulk_annotations, as omero-metadata's `bulkmap`
writes them) holding the map's columns as key-value pairs, so OMERO.web shows them on the Well and its
search finds wells by compound. The bulkmap configuration (YAML) naming those columns is attached to the
Plate (namespace bulk_annotations/config), so omero-metadata tooling can regenerate them. Every
annotation carries the import's markers in its description, like everything else an upload creates.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import NS_BULK

NS_CONFIG = "openmicroscopy.org/omero/bulk_annotations/config"
PREVIOUS_WELL_ANNOTATIONS_QUERY = (
    "select l.child.id from WellAnnotationLink l where l.parent.plate.id = :pid and l.child.description like :tag"
)
BATCH = 500


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def bulkmap_config(columns: list[str]) -> str:
    """omero-metadata's bulkmap configuration for the map's columns (YAML, written by hand: it is small)."""
    lines = ["version: 1", "defaults:", "  include: no", "  type: string", "  includeclient: yes",
             "  visible: yes", "  omitempty: yes", "columns:"]
    for name in columns:
        quoted = name.replace("\\\\", "\\\\\\\\").replace('"', '\\\\"')
        lines += [f'  - name: "{quoted}"', "    include: yes"]
    return "\n".join(lines) + "\n"


def save_well_annotations(update: Any, platemap: pd.DataFrame, well_ids: np.ndarray, description: str,
                          track: Callable[[str, int | list[int]], None]) -> int:
    """One MapAnnotation per mapped well that exists on the Plate; returns how many were saved."""
    from omero.model import MapAnnotationI, NamedValue, WellAnnotationLinkI, WellI
    from omero.rtypes import rstring

    columns = [str(c) for c in platemap.columns[2:]]
    annotations, wells = [], []
    for i, row in enumerate(platemap.itertuples(index=False)):
        if well_ids[i] < 0:
            continue
        ann = MapAnnotationI()
        ann.ns = rstring(NS_BULK)
        ann.description = rstring(description)
        pairs = [(c, _text(v)) for c, v in zip(columns, row[2:], strict=True)]
        ann.setMapValue([NamedValue(c, v) for c, v in pairs if v is not None])
        annotations.append(ann)
        wells.append(int(well_ids[i]))
    for start in range(0, len(annotations), BATCH):
        # annotations first, tracked for rollback, then their links
        ids = [int(i) for i in update.saveAndReturnIds(annotations[start : start + BATCH])]
        track("MapAnnotation", ids)
        links = []
        for ann_id, well_id in zip(ids, wells[start : start + BATCH], strict=True):
            link = WellAnnotationLinkI()
            link.parent = WellI(well_id, False)
            link.child = MapAnnotationI(ann_id, False)
            links.append(link)
        update.saveAndReturnIds(links)
    return len(annotations)


def config_file(columns: list[str], folder: Path) -> Path:
    path = Path(tempfile.mkdtemp(dir=folder)) / "bulkmap-config.yml"
    path.write_text(bulkmap_config(columns), encoding="utf-8")
    return path
