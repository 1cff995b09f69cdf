"""Synthetic IN Cell per-well analysis XML (`--layout wells-summary`), with the quirks of the real one.

Written as the real IN Cell Analyzer 2000 file is: root `<Data version = "1.1">`, a copy of the plate's
`<ImageStack>`, `<AutoLeadAnalysisProtocol>` / `<AutoLeadAssay>`, then `<Table title="Wells Summary">`
of `<Well name="P - 1" row col time z>` in column-major order, `<Measure name = ... value = ...>` with
spaces around `=`; ISO-8859-1 with a `µ` in a unit and mixed CRLF/LF line ends. Beside it an `.xdce`
that declares ISO-8859-1 but is written in UTF-8, as the real one is. Timepoints (`--timepoints`) give
one Well element per (well, time).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..parsers.base import SynthSpec
from ..wells import row_letters
from .common import geometry, rng
from .incell import xdce_lines

MEASURES = ("Responding", "Percent Activity", "Raw Count", "Cells Used", "Translocation Ratio", "SD Activity",
            "Hit", "Phenotype", "Phenotype_Distance", "CytArea", "CytEccentricity", "NucEccentricity", "NucArea",
            "Nuc Intensity", "Cyt Intensity", "Texture", "Granularity")
COUNT_MEASURES = ("Raw Count", "Cells Used")
FLAG_MEASURES = ("Hit", "Phenotype")
PROTOCOL, ASSAY = "SynthProdAnalysis", "MatlabGeneral"


def well_values(r: np.random.Generator, names: list[str]) -> list[str]:
    out = []
    for name in names:
        if name in COUNT_MEASURES:
            out.append(str(int(r.integers(800, 2500))))
        elif name in FLAG_MEASURES:
            out.append(str(int(r.integers(0, 2))))
        else:
            out.append(repr(float(r.normal(100.0, 30.0))))
    return out


def write_wells_summary(path: Path, spec: SynthSpec, rows: int, cols: int, name: str) -> None:
    r = rng(spec.seed)
    names = list(MEASURES[: max(1, min(spec.measurements, len(MEASURES)))])
    stack = [line for line in xdce_lines(rows, cols, spec.fields, name)[1:] if line]
    lines = ['<?xml version="1.0" encoding="ISO-8859-1" standalone="no"?>',
             "<!-- per-well results: all indexes are 1 based -->",
             '<Data version = "1.1">',
             '    <Application name="IN Cell Analyzer 2000" software_version="1.0.0.160"/>',
             '    <Creation date="2010-11-17" time="20:23:53"/>',
             *stack,
             f'    <AutoLeadAnalysisProtocol version = "1.1" name = "{PROTOCOL}">',
             "        <UserComment></UserComment>",
             '        <Microscopy type = "Fluorescence"/>',
             f'        <AutoLeadAssay version = "1.1" name = "{ASSAY}">',
             '            <AlgorithmVersion major = "0" minor = "1"/>',
             "        </AutoLeadAssay>",
             "        <!--MeasureList/-->",
             "    </AutoLeadAnalysisProtocol>",
             '    <Table title="Wells Summary">']
    letters = row_letters(rows)
    for col in range(cols):  # column-major, bottom row first, as the real file lists them
        for row in reversed(range(rows)):
            for t in range(max(1, spec.timepoints)):
                lines.append(f'  <Well name="{letters[row]} - {col + 1}" row="{row + 1}" col="{col + 1}" '
                             f'time="{t + 1}" z="1">')
                for measure, value in zip(names, well_values(r, names), strict=True):
                    lines.append(f'    <Measure name = "{measure}" source = "" value = "{value}"/>')
                lines.append("  </Well>")
    lines += ["</Table>", "</Data>", ""]
    # Mixed line ends: the header and image stack with CRLF, the table with LF (as seen in the real file).
    table_at = lines.index('    <Table title="Wells Summary">')
    text = "\r\n".join(lines[:table_at]) + "\r\n" + "\n".join(lines[table_at:])
    text = text.replace("<ImageStack", "<!-- copy of the imagestack (unit \u00b5m) -->\r\n<ImageStack", 1)
    path.write_bytes(text.encode("iso-8859-1"))


def write_wells_summary_plate(out: Path, spec: SynthSpec) -> Path:
    rows, cols = geometry(spec.wells)
    out.mkdir(parents=True, exist_ok=True)
    name = out.name or "plate"
    xdce = "\n".join(xdce_lines(rows, cols, spec.fields, name)).replace(
        "<ImageStack", '<!-- pixel size in \u00b5m -->\n<ImageStack', 1)
    (out / f"{name}.xdce").write_bytes(xdce.encode("utf-8"))  # declares ISO-8859-1: the real quirk
    write_wells_summary(out / f"{name}-analysis.xml", spec, rows, cols, name)
    return out
