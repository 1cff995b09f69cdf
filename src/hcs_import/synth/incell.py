"""Synthetic InCell plate: an `.xdce` layout and an Investigator-style analysis XML (no pixel data).

Realistic on purpose: two or more populations per object (`Cells`, `Nuclei`, `Organelles`), centroid
keys, a few keys missing on some objects (sparse), a few `NaN` values, per-well `cell="Summary"` rows,
and a parameter header before the first WellData, as Investigator writes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import HcsImportError
from ..parsers.base import SynthSpec
from ..wells import row_letters
from .common import geometry, objects_per_field, rng

POPULATIONS = (("Cells", "Cell"), ("Nuclei", "Nucleus"), ("Organelles", "Organelle"))
MEASURE_NAMES = ("Area", "Intensity", "Form Factor", "Perimeter", "Gyration", "Elongation", "Diameter",
                 "Intensity CV", "Intensity SD", "Density", "Major Axis", "Minor Axis", "Texture",
                 "Light Flux", "Chord Ratio", "Displacement", "Compactness", "Roundness")
WELLS_SUMMARY_LAYOUT = "wells-summary"  # `--layout wells-summary`: the per-well <Data> XML
SPARSE_KEY_INDEX = 2  # the third measure is missing on ~2% of objects (as real sparse exports are)


def keys_for(prefix: str, n: int) -> list[str]:
    keys = [f"{prefix}: cgX", f"{prefix}: cgY"]
    i = 0
    while len(keys) < n:
        base = MEASURE_NAMES[i % len(MEASURE_NAMES)]
        keys.append(f"{prefix}: {base}" + (f" {i // len(MEASURE_NAMES) + 1}" if i >= len(MEASURE_NAMES) else ""))
        i += 1
    return keys[:n]


def write_xdce(path: Path, rows: int, cols: int, fields: int, name: str) -> None:
    path.write_text("\n".join(xdce_lines(rows, cols, fields, name)), encoding="iso-8859-1")


def xdce_lines(rows: int, cols: int, fields: int, name: str) -> list[str]:
    """The lines of an `.xdce` document (its XML declaration first): also embedded in per-well results."""
    letters = row_letters(rows)
    waves = (("DAPI", 350, 455), ("FITC", 490, 525))
    lines = [
        '<?xml version="1.0" encoding="ISO-8859-1"?>',
        '<ImageStack version="2.0">',
        '  <Creator version="3.7">IN Cell Analyzer 2000</Creator>',
        '  <AutoLeadAcquisitionProtocol>',
        f'    <Plate rows="{rows}" columns="{cols}" name="{name}" />',
        '    <NamingRows begin="A" /><NamingColumns begin="1" />',
        '    <Wavelengths number="2">',
    ]
    for label, ex, em in waves:
        lines.append(f'      <Wavelength fusion_wave="false" imaging_mode="2-D"><ExcitationFilter name="{label}" '
                     f'wavelength="{ex}" /><EmissionFilter name="{label}" wavelength="{em}" /></Wavelength>')
    lines.append('    </Wavelengths>')
    lines.append('    <ObjectiveCalibration magnification="20" numerical_aperture="0.45" '
                 'objective_name="Nikon_20X_PlanFluor" pixel_width="0.325" pixel_height="0.325"'
                 ' refractive_index="1" />')
    lines.append(f'    <Fields number="{fields}">')
    for f in range(fields):
        lines.append(f'      <offset_point x="{f * 650.0}" y="0" index="{f}" />')
    lines.append('    </Fields>')
    lines.append('  </AutoLeadAcquisitionProtocol>')
    lines.append(f'  <Images number="{rows * cols * fields * len(waves)}">')
    t = 0
    for r in range(rows):
        for c in range(cols):
            for f in range(fields):
                for w, (label, ex, _em) in enumerate(waves):
                    t += 1500
                    lines.append(
                        f'    <Image filename="{letters[r]} - {c + 1}(fld {f + 1} wv {ex} - {label}).tif" '
                        f'acquisition_time_ms="{t}"><Well><Row number="{r + 1}" /><Column number="{c + 1}" /></Well>'
                        f'<Identifier field_index="{f}" z_index="0" wave_index="{w}" time_index="0" /></Image>'
                    )
    lines += ['  </Images>', '</ImageStack>', '']
    return lines


def _block_template(row: int, col: int, fld: int, pops: tuple[tuple[str, str], ...], keys: dict[str, list[str]],
                    missing: bool, nan_cell: bool) -> str:
    """%-template of one object's WellData block; its arguments are `_block_args` columns, in order."""
    parts = [f'    <WellData row="{row + 1}" col="{col + 1}" field="{fld + 1}" cell="%d">\n']
    for pop, _ in pops:
        src = pop.replace("%", "%%")
        for j, key in enumerate(keys[pop]):
            if j == SPARSE_KEY_INDEX and missing:
                continue
            if j < 2:
                v = "%.3f"
            elif j == 3 and nan_cell:
                v = "NaN"
            else:
                v = "%.5g"
            parts.append(f'      <Measure source="{src}" key="{key.replace("%", "%%")}" value="{v}" />\n')
    parts.append("    </WellData>\n")
    return "".join(parts)


def _block_columns(pops: tuple[tuple[str, str], ...], keys: dict[str, list[str]], missing: bool,
                   nan_cell: bool) -> list[int]:
    """Which `_block_args` columns a template with these flags consumes."""
    out, pos = [0], 1
    for pop, _ in pops:
        for j in range(len(keys[pop])):
            if not ((j == SPARSE_KEY_INDEX and missing) or (j == 3 and nan_cell)):
                out.append(pos)
            pos += 1
    return out


def _field_blocks(row: int, col: int, fld: int, n: int, pops: tuple[tuple[str, str], ...],
                  keys: dict[str, list[str]], values: dict[str, np.ndarray], xy: np.ndarray,
                  missing: np.ndarray, nan_cell: np.ndarray) -> str:
    """The WellData blocks of one field's n objects, formatted a whole template at a time.

    Every object's text is one `template % values`: one template per combination of the sparse-key and
    NaN flags, the numbers formatted exactly as `f"{v:.3f}"` / `f"{v:.5g}"` would.
    """
    if n == 0:
        return ""
    args = [np.arange(1, n + 1, dtype=np.float64)[:, None]]
    for p, (pop, _) in enumerate(pops):
        vals = values[pop].copy()
        vals[:, :2] = xy + p * 0.5
        args.append(vals)
    table = np.hstack(args)
    combo = missing.astype(np.int64) * 2 + nan_cell.astype(np.int64)
    blocks: list[str] = [""] * n
    for code in np.unique(combo):
        m, nc = bool(code & 2), bool(code & 1)
        template = _block_template(row, col, fld, pops, keys, m, nc)
        rows = np.flatnonzero(combo == code)
        sub = table[np.ix_(rows, _block_columns(pops, keys, m, nc))].tolist()
        for i, a in zip(rows.tolist(), sub):
            blocks[i] = template % tuple(a)
    return "".join(blocks)


def write_results(path: Path, spec: SynthSpec, rows: int, cols: int) -> int:
    """Write the analysis XML; returns the number of objects written."""
    r = rng(spec.seed)
    pops = POPULATIONS[: max(1, min(spec.populations, len(POPULATIONS)))]
    keys = {pop: keys_for(prefix, max(2, spec.measurements)) for pop, prefix in pops}
    n_wells = rows * cols
    counts = objects_per_field(r, spec.objects, n_wells * spec.fields)
    total = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write('<?xml version="1.0" encoding="utf-8"?>\n')
        out.write('<InCellAnalysisResults application="IN Cell Investigator" version="3.7">\n')
        out.write('  <AnalysisParameters protocol="Multi Target Analysis">\n')
        out.write('    <Parameter name="Nuclei segmentation" value="top-hat, min area 50 &#181;m&#178;" />\n')
        out.write('    <Parameter name="Cells segmentation" value="collar 5 &#181;m" />\n')
        out.write('  </AnalysisParameters>\n  <Results>\n')
        k = 0
        for w in range(n_wells):
            row, col = divmod(w, cols)
            well_total = 0
            for f in range(spec.fields):
                n = int(counts[k])
                k += 1
                well_total += n
                total += n
                values = {pop: r.normal(100.0, 25.0, size=(n, len(keys[pop]))) for pop, _ in pops}
                xy = r.uniform(0, 2048, size=(n, 2))
                missing = r.random(n) < 0.02
                nan_cell = r.random(n) < 0.005
                out.write(_field_blocks(row, col, f, n, pops, keys, values, xy, missing, nan_cell))
            out.write(f'    <WellData row="{row + 1}" col="{col + 1}" field="1" cell="Summary">\n')
            out.write(f'      <Measure source="Cells" key="Cell Count" value="{well_total}" />\n')
            out.write(f'      <Measure source="Nuclei" key="Mean Nuc Area" value="{r.normal(80, 5):.4g}" />\n')
            out.write("    </WellData>\n")
        out.write("  </Results>\n</InCellAnalysisResults>\n")
    return total


def write_incell_plate(out: Path, spec: SynthSpec) -> Path:
    if spec.layout == WELLS_SUMMARY_LAYOUT:
        from .incell_wells_summary import write_wells_summary_plate

        return write_wells_summary_plate(out, spec)
    if spec.layout:
        raise HcsImportError(f"synth incell: unknown --layout {spec.layout!r} (known: {WELLS_SUMMARY_LAYOUT})")
    rows, cols = geometry(spec.wells)
    out.mkdir(parents=True, exist_ok=True)
    name = out.name or "plate"
    write_xdce(out / f"{name}.xdce", rows, cols, spec.fields, name)
    write_results(out / f"{name}_analysis.xml", spec, rows, cols)
    return out
