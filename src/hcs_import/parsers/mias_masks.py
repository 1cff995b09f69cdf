"""MIAS overlay TIFFs (`results/Well<nnnn>_mode<n>_z<zzz>_t<ttt>_*overlay.tif`) as Mask ROIs.

Two kinds of overlay are handled, both read with tifffile:
- label images (one integer plane, 0 = background, n = object n): one mask per label, cropped to the
  label's bounding box;
- colour overlays (RGB, or a palette image expanded to RGB), as MIASReader reads them: per colour
  channel, the pixels where that channel differs from the others form one mask (grey pixels, equal in
  every channel, are background).
Bounding boxes come from one sort of the labelled pixels (numpy reduceat), not a loop over pixels.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError


@dataclass(frozen=True)
class Masks:
    """Masks of one overlay file: label (object number), top-left, size, bit-packed bytes, pixel count."""

    label: np.ndarray
    x: np.ndarray
    y: np.ndarray
    width: np.ndarray
    height: np.ndarray
    pixels: np.ndarray
    bits: list[bytes]
    kind: str  # "labels" or "colour"


def _read(path: Path) -> np.ndarray:
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            image = page.asarray()
            if page.photometric == tifffile.PHOTOMETRIC.PALETTE and page.colormap is not None:
                cmap = np.asarray(page.colormap)  # (3, 2**bits), 16-bit entries
                image = np.moveaxis(cmap[:, image] >> 8, 0, -1).astype(np.uint8)
    except (tifffile.TiffFileError, OSError, ValueError, IndexError, zlib.error) as exc:
        # zlib.error: a damaged deflate strip (seen in fuzzing: a flipped byte in the data fails the check)
        raise InputError(path, None, f"cannot read overlay TIFF: {exc}") from None
    return image


def masks_from_labels(labels: np.ndarray) -> Masks:
    """One mask per non-zero label of a 2-D integer image."""
    width = labels.shape[1]
    flat = labels.ravel()
    idx = np.flatnonzero(flat)
    if not len(idx):
        empty = np.zeros(0, dtype=np.int64)
        return Masks(empty, empty, empty, empty, empty, empty, [], "labels")
    values = flat[idx]
    order = np.argsort(values, kind="stable")
    values, idx = values[order], idx[order]
    uniq, starts = np.unique(values, return_index=True)
    rows, cols = idx // width, idx % width
    r0, r1 = np.minimum.reduceat(rows, starts), np.maximum.reduceat(rows, starts)
    c0, c1 = np.minimum.reduceat(cols, starts), np.maximum.reduceat(cols, starts)
    counts = np.diff(np.append(starts, len(idx)))
    bits = [
        np.packbits(labels[a : b + 1, c : d + 1] == v).tobytes()
        for v, a, b, c, d in zip(uniq.tolist(), r0.tolist(), r1.tolist(), c0.tolist(), c1.tolist())
    ]
    return Masks(uniq.astype(np.int64), c0.astype(np.int64), r0.astype(np.int64), (c1 - c0 + 1).astype(np.int64),
                 (r1 - r0 + 1).astype(np.int64), counts.astype(np.int64), bits, "labels")


def masks_from_colour(rgb: np.ndarray) -> Masks:
    """One mask per colour channel: pixels where that channel differs from the others."""
    grey = np.all(rgb == rgb[..., :1], axis=-1)
    labels = np.zeros(rgb.shape[:2], dtype=np.int64)
    parts = []
    for ch in range(rgb.shape[-1]):
        on = (rgb[..., ch] != 0) & ~grey
        layer = np.where(on, ch + 1, 0)
        parts.append(masks_from_labels(layer))
    if not parts:
        return masks_from_labels(labels)
    cat = [np.concatenate([getattr(p, f) for p in parts]) for f in ("label", "x", "y", "width", "height", "pixels")]
    return Masks(*cat, [b for p in parts for b in p.bits], "colour")


def read_overlay(path: Path) -> Masks:
    image = _read(path)
    image = np.squeeze(image)
    if image.ndim == 2 and np.issubdtype(image.dtype, np.integer):
        return masks_from_labels(image)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        return masks_from_colour(image[..., :3])
    raise InputError(path, None, f"overlay image of shape {image.shape} and type {image.dtype}: expected a "
                                 "2-D integer label image or an RGB overlay")
