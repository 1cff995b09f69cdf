"""Uploading bundles to an OMERO server: sessions, plate resolution, ROIs, tables, re-import, hooks.

Every module here imports omero-py lazily (inside functions) or is imported only once omero-py is
needed, so `hcs_import` without the [omero] extra still parses plates and writes local bundles.
"""

from __future__ import annotations

NS_BULK = "openmicroscopy.org/omero/bulk_annotations"
NS_MEASUREMENT = "openmicroscopy.org/omero/measurement"
NS_RAW = "openmicroscopy.org/omero/bulk_annotations/raw"
TABLES_MIMETYPE = "OMERO.tables"
# Description prefix marking what an import created: followed by the source's provenance key.
PROVENANCE_TAG = "hcs-import provenance "


def provenance_tag(key: str) -> str:
    """The marker written on every FileAnnotation and ROI an import creates, to find them on re-import."""
    return f"{PROVENANCE_TAG}{key}"


__all__ = ["NS_BULK", "NS_MEASUREMENT", "NS_RAW", "PROVENANCE_TAG", "TABLES_MIMETYPE", "provenance_tag"]
