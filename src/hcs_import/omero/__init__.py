"""Uploading bundles to an OMERO server: sessions, plate resolution, ROIs, tables, re-import, hooks.

Every module here imports omero-py lazily (inside functions) or is imported only once omero-py is
needed, so `hcs_import` without the [omero] extra still parses plates and writes local bundles.
"""

from __future__ import annotations

NS_BULK = "openmicroscopy.org/omero/bulk_annotations"
NS_MEASUREMENT = "openmicroscopy.org/omero/measurement"
NS_RAW = "openmicroscopy.org/omero/bulk_annotations/raw"
NS_REPORT = "hcs-import/report"  # the plate's HTML report (no OMERO namespace exists for one)
TABLES_MIMETYPE = "OMERO.tables"
# Description prefix marking what an import created: followed by the source's provenance key.
PROVENANCE_TAG = "hcs-import provenance "


# Marks what an import of a given vendor format created, whatever the source's checksums: a re-analysis
# of the same plate (new result files, new provenance key) replaces it by default.
FORMAT_TAG = "hcs-import format "


def provenance_tag(key: str) -> str:
    """The marker written on every FileAnnotation and ROI an import creates, to find them on re-import."""
    return f"{PROVENANCE_TAG}{key}"


def format_tag(fmt: str) -> str:
    return f"{FORMAT_TAG}{fmt}"


def markers(key: str, fmt: str) -> str:
    """Both markers, as they end every description an import writes (and as the queries look for them)."""
    return f"[{format_tag(fmt)}; {provenance_tag(key)}]"


def plate_tag(plate_id: int) -> str:
    """Marks a Screen-level table as one plate's (the `;` ends the id: plate 5 never matches plate 51)."""
    return f"hcs-import plate {plate_id};"


def annotation_description(label: str, key: str, fmt: str) -> str:
    """A FileAnnotation description that reads well where OMERO.insight lists tables by description
    ("Cells: objects, 7760 rows x 25 columns") and still carries the markers a re-import looks for."""
    return f"{label} {markers(key, fmt)}"


__all__ = ["FORMAT_TAG", "NS_BULK", "NS_MEASUREMENT", "NS_RAW", "NS_REPORT", "PROVENANCE_TAG", "TABLES_MIMETYPE",
           "annotation_description", "format_tag", "markers", "plate_tag", "provenance_tag"]
