"""One self-contained HTML page per plate: what a facility looks at before it trusts a plate.

Plate heatmaps of the object count of every population and of a few measurements (by default the first
two per population of the per-well table, or those named), the wells and fields that have no results,
the import's warnings and provenance, and, when a plate map names positive and negative controls, Z' and
CV per measurement. Figures are drawn with matplotlib (Agg, no display) and embedded as PNG data, so the
page opens anywhere, offline, as one file. Read from a bundle: it knows nothing of vendors.

Z' (Zhang, Chung and Oldenburg 1999) = 1 - 3 (sd_pos + sd_neg) / |mean_pos - mean_neg|, over the per-well
values of the control wells (first timepoint of a time-lapse plate); CV = sd / mean of each group.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .manifest import MANIFEST, read_manifest, write_manifest
from .model import WELL_COLUMN, WELL_ROW, T
from .platemap import control_groups

REPORT_FILE = "report.html"
DEFAULT_PER_POPULATION = 2
COUNT_SUFFIX = " count"
READ_ROWS = 262_144  # rows of an object table read at once when counting per well


def _read_columns(path: Path, names: Sequence[str], start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
    import tables

    with tables.open_file(str(path), mode="r") as h5:
        mea = h5.root.OME.Measurements
        block = mea.read(start, stop) if names else None
        if block is None:
            return {}
        return {n: (np.char.decode(block[n], "utf-8") if block[n].dtype.kind == "S" else block[n]) for n in names}


def _rows(path: Path) -> tuple[int, list[str]]:
    import tables

    with tables.open_file(str(path), mode="r") as h5:
        mea = h5.root.OME.Measurements
        return int(mea.nrows), list(mea.dtype.names or ())


def _well_grid(rows: int, columns: int, well_row: np.ndarray, well_column: np.ndarray,
               values: np.ndarray) -> np.ndarray:
    grid = np.full((rows, columns), np.nan)
    ok = (well_row < rows) & (well_column < columns)
    grid[well_row[ok], well_column[ok]] = values[ok]
    return grid


def _heatmap(grid: np.ndarray, title: str, row_labels: Sequence[str], column_labels: Sequence[str]) -> str:
    """A plate heatmap as a PNG data URL (missing wells grey)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows, columns = grid.shape
    fig, ax = plt.subplots(figsize=(max(4.0, columns * 0.32 + 1.5), max(2.6, rows * 0.32 + 0.9)), dpi=90)
    cmap = plt.get_cmap("viridis").with_extremes(bad="#d9d9d9")
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, aspect="equal")
    ax.set_title(title, fontsize=9)
    step_r = max(1, rows // 16)
    step_c = max(1, columns // 24)
    ax.set_yticks(range(0, rows, step_r), [row_labels[i] for i in range(0, rows, step_r)], fontsize=6)
    ax.set_xticks(range(0, columns, step_c), [column_labels[i] for i in range(0, columns, step_c)], fontsize=6)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _object_counts(bundle: Path, entry: dict[str, Any], rows: int, columns: int) -> np.ndarray:
    """Objects per well of one object table, read two columns and a block at a time."""
    counts = np.zeros(rows * columns, dtype=np.int64)
    n, _ = _rows(bundle / entry["path"])
    for start in range(0, n, READ_ROWS):
        block = _read_columns(bundle / entry["path"], [WELL_ROW, WELL_COLUMN], start, min(n, start + READ_ROWS))
        r, c = block[WELL_ROW].astype(np.int64), block[WELL_COLUMN].astype(np.int64)
        ok = (r < rows) & (c < columns)
        counts += np.bincount(r[ok] * columns + c[ok], minlength=rows * columns)
    return counts.reshape(rows, columns).astype(np.float64)


def _per_well_frame(bundle: Path, manifest: dict[str, Any]) -> pd.DataFrame | None:
    entries = [e for e in manifest["tables"] if e["kind"] == "wells"]
    if not entries:
        return None
    parts = []
    for e in sorted(entries, key=lambda e: e.get("part", 1)):
        _, names = _rows(bundle / e["path"])
        parts.append(pd.DataFrame(_read_columns(bundle / e["path"], names)))
    frame = pd.concat([parts[0], *(p.drop(columns=[c for c in p.columns if c in parts[0]]) for p in parts[1:])], axis=1)
    if T in frame.columns:  # time-lapse: the first timepoint stands for the plate in the figures
        frame = frame[frame[T] == frame[T].min()]
    return frame


def _measures(frame: pd.DataFrame, populations: list[str], chosen: Sequence[str] | None) -> list[str]:
    numeric = [str(c) for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
               and str(c) not in ("Well", WELL_ROW, WELL_COLUMN, T, "z") and not str(c).endswith(COUNT_SUFFIX)]
    if chosen:
        missing = [c for c in chosen if c not in frame.columns]
        if missing:
            from .errors import HcsImportError

            raise HcsImportError(f"--measure {missing[0]!r}: no such per-well column (known: "
                                 f"{', '.join(numeric[:8])}{', ...' if len(numeric) > 8 else ''})")
        return list(chosen)
    out: list[str] = []
    for pop in populations:
        mine = [c for c in numeric if c.startswith(f"{pop} ") and c.endswith(" mean")]
        out += mine[:DEFAULT_PER_POPULATION]
    return out or numeric[: 2 * DEFAULT_PER_POPULATION]


def z_prime(positive: np.ndarray, negative: np.ndarray) -> float:
    """Z' of two control groups (NaN when it is undefined: fewer than two values or equal means)."""
    p, n = positive[np.isfinite(positive)], negative[np.isfinite(negative)]
    if len(p) < 2 or len(n) < 2 or p.mean() == n.mean():
        return float("nan")
    return float(1 - 3 * (p.std(ddof=1) + n.std(ddof=1)) / abs(p.mean() - n.mean()))


def _cv(values: np.ndarray) -> float:
    v = values[np.isfinite(values)]
    return float(v.std(ddof=1) / v.mean()) if len(v) > 1 and v.mean() != 0 else float("nan")


def _missing_fields(bundle: Path, manifest: dict[str, Any]) -> list[str]:
    """(well, field) pairs the layout lists images for but no object or field table has results for."""
    if "layout" not in manifest:
        return []
    layout = pd.read_parquet(bundle / manifest["layout"]["path"], columns=[WELL_ROW, WELL_COLUMN, "field"])
    expected = set(map(tuple, layout.drop_duplicates().to_numpy().tolist()))
    present: set[tuple[int, int, int]] = set()
    for e in manifest["tables"]:
        if e["kind"] in ("objects", "fields") and e.get("part", 1) == 1:
            n, _ = _rows(bundle / e["path"])
            for start in range(0, n, READ_ROWS):
                b = _read_columns(bundle / e["path"], [WELL_ROW, WELL_COLUMN, "field"], start,
                                  min(n, start + READ_ROWS))
                present.update(zip(b[WELL_ROW].tolist(), b[WELL_COLUMN].tolist(), b["field"].tolist(), strict=True))
    labels = manifest["plate"]["row_labels"]
    return [f"{labels[r]}{c + 1:02d} field {f + 1}" for r, c, f in sorted(expected - present)]


def build_report(bundle: Path, measures: Sequence[str] | None = None) -> str:
    """The report page of a bundle, as HTML text."""
    manifest = read_manifest(bundle)
    plate = manifest["plate"]
    rows, columns = int(plate["rows"]), int(plate["columns"])
    row_labels, column_labels = plate["row_labels"], plate["column_labels"]
    objects = [e for e in manifest["tables"] if e["kind"] == "objects" and e.get("part", 1) == 1]
    populations = [e["population"] for e in objects]
    figures: list[tuple[str, str]] = []
    has_results = np.zeros((rows, columns), dtype=bool)
    for e in objects:
        grid = _object_counts(bundle, e, rows, columns)
        has_results |= grid > 0
        figures.append((f"{e['population']}: objects per well", _heatmap(grid, f"{e['population']} count",
                                                                          row_labels, column_labels)))
    frame = _per_well_frame(bundle, manifest)
    chosen: list[str] = []
    if frame is not None:
        r, c = frame[WELL_ROW].to_numpy(np.int64), frame[WELL_COLUMN].to_numpy(np.int64)
        has_results[r[(r < rows) & (c < columns)], c[(r < rows) & (c < columns)]] = True
        chosen = _measures(frame, populations, measures)
        for name in chosen:
            grid = _well_grid(rows, columns, r, c, frame[name].to_numpy(np.float64))
            figures.append((name, _heatmap(grid, name, row_labels, column_labels)))
    missing_wells = [f"{row_labels[i]}{j + 1:02d}" for i, j in zip(*np.nonzero(~has_results), strict=True)]
    controls = _controls(bundle, manifest, frame, chosen)
    return _page(manifest, figures, missing_wells, _missing_fields(bundle, manifest), controls)


def _controls(bundle: Path, manifest: dict[str, Any], frame: pd.DataFrame | None,
              chosen: list[str]) -> tuple[str, list[tuple[str, float, float, float]]] | None:
    if frame is None or "platemap" not in manifest:
        return None
    platemap = pd.read_parquet(bundle / manifest["platemap"]["path"])
    groups = control_groups(platemap)
    if groups is None:
        return None
    column, positive, negative = groups
    keys = list(zip(frame[WELL_ROW].tolist(), frame[WELL_COLUMN].tolist(), strict=True))
    pos = np.array([k in positive for k in keys])
    neg = np.array([k in negative for k in keys])
    numeric = [str(c) for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
               and str(c) not in ("Well", WELL_ROW, WELL_COLUMN, T, "z")]
    rows = []
    for name in sorted(numeric, key=lambda c: (c not in chosen, numeric.index(c))):
        v = frame[name].to_numpy(np.float64)
        rows.append((name, z_prime(v[pos], v[neg]), _cv(v[pos]), _cv(v[neg])))
    return column, rows


def _fmt(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.3f}"


def _page(manifest: dict[str, Any], figures: list[tuple[str, str]], missing_wells: list[str],
          missing_fields: list[str], controls: tuple[str, list[tuple[str, float, float, float]]] | None) -> str:
    e = html.escape
    plate = manifest["plate"]
    prov = manifest["provenance"]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(plate['name'])}: hcs-import report</title>",
        "<style>body{font-family:sans-serif;margin:1.5em;color:#222}h1{font-size:1.4em}h2{font-size:1.1em;"
        "margin-top:1.4em}figure{display:inline-block;margin:.4em;vertical-align:top}figcaption{font-size:.8em}"
        "table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
        ".warn{color:#8a4b00}</style></head><body>",
        f"<h1>Plate {e(plate['name'])}</h1>",
        f"<p>{e(manifest['format'])} results, {plate['rows']} x {plate['columns']} wells"
        f"{', ' + str(plate['fields_per_well']) + ' fields per well' if plate.get('fields_per_well') else ''}; "
        f"{sum(t['rows'] for t in manifest['tables'] if t['kind'] == 'objects' and t.get('part', 1) == 1)} objects, "
        f"{manifest['rois']['count']} ROIs.</p>",
        '<h2>Heatmaps</h2><div id="heatmaps">',
    ]
    for caption, src in figures:
        parts.append(f'<figure><img class="heatmap" alt="{e(caption)}" src="{src}"><figcaption>{e(caption)}'
                     "</figcaption></figure>")
    parts.append("</div>")
    parts.append(f"<h2>Wells without results ({len(missing_wells)})</h2><p>"
                 f"{e(', '.join(missing_wells)) if missing_wells else 'none'}</p>")
    if missing_fields:
        shown = ", ".join(missing_fields[:200]) + (" ..." if len(missing_fields) > 200 else "")
        parts.append(f"<h2>Fields without results ({len(missing_fields)})</h2><p>{e(shown)}</p>")
    if controls is not None:
        column, rows = controls
        parts.append(f"<h2>Controls (plate map column {e(column)})</h2><table id=\"zprime\"><tr><th>measurement</th>"
                     "<th>Z'</th><th>CV positive</th><th>CV negative</th></tr>")
        parts += [f"<tr><td>{e(n)}</td><td>{_fmt(z)}</td><td>{_fmt(cp)}</td><td>{_fmt(cn)}</td></tr>"
                  for n, z, cp, cn in rows]
        parts.append("</table>")
    warnings = manifest.get("warnings", [])
    parts.append(f"<h2>Warnings ({len(warnings)})</h2><ul>"
                 + "".join(f'<li class="warn">{e(w)}</li>' for w in warnings) + "</ul>")
    parts.append("<h2>Provenance</h2><table>")
    rows = [("parser", f"{prov['parser']} {prov['parser_version']}"), ("provenance key", prov["key"]),
            ("created", prov["created"]), *((k, v) for k, v in prov.get("analysis", {}).items())]
    parts += [f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in rows]
    parts += [f"<tr><th>source</th><td>{e(s['path'])} ({s['size']} bytes, sha256 {e(s['sha256'][:16])}...)</td></tr>"
              for s in manifest.get("sources", [])]
    parts.append("</table></body></html>")
    return "\n".join(parts)


def write_report(bundle: Path, measures: Sequence[str] | None = None, out: Path | None = None) -> Path:
    """Write the report (into the bundle unless `out` is given) and name it in the bundle's manifest."""
    target = out or bundle / REPORT_FILE
    target.write_text(build_report(bundle, measures), encoding="utf-8")
    if out is None:
        manifest = read_manifest(bundle)
        manifest["report"] = REPORT_FILE
        write_manifest(bundle / MANIFEST, manifest)
    return target

