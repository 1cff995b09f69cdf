"""hcs-import: high-content-screening analysis results into OMERO.tables and ROIs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hcs-import")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = ["__version__"]
