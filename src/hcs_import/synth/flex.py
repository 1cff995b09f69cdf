"""Synthetic Flex plate: small `.flex` TIFFs with their XML in tag 65200, a `.mea`, an Acapella `.res`.

    DIR/RRRCCCFFF.flex        one per well and field: one 32x32 16-bit plane per channel, XML in tag 65200
    DIR/<plate>.mea           the measurement, listing the .flex files (`<Picture path=...>`)
    DIR/An_02_Me01_12132846(2009-06-17_11-56-17).res   per-well results of every Area

Realistic on purpose: `populations` Areas (default 2) with their own parameters, a unit in brackets on
one parameter, a `NaN` now and then, and on a few .flex files the stray trailing `%` FlexReader
strips. Every well has every Result (a missing one is a test's business, see tests/test_flex.py).
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import tifffile

from ..parsers.base import SynthSpec
from ..parsers.flex_xml import FLEX_TAG
from .common import geometry, rng

PLATE_NAME = "FlexPlate01"
BARCODE = "BC-FLEX-0001"
RES_NAME = "An_02_Me01_12132846(2009-06-17_11-56-17).res"
CHANNELS = ("Exp1Cam1", "Exp2Cam2")
PIXELS = 32
RESOLUTION_M = 6.45e-7  # 0.645 µm per pixel
TRAILING_JUNK_EVERY = 17  # every 17th .flex ends its XML with a stray `%` (a real-file quirk)
AREAS = ("Nuclei", "Cytoplasm", "Spots", "Membrane")
PARAMETERS = ("Number of Objects", "Area [µm²]", "Mean Intensity", "Intensity SD", "Roundness", "Width",
              "Length", "Ratio Width to Length", "Contrast", "Corrected Intensity", "Total Intensity",
              "Border Intensity", "Symmetry 02", "Threshold Compactness", "Axial Small Length")


def parameters_for(n: int) -> list[str]:
    """The same parameter names in every Area (as Acapella scripts do): only the Area tells them apart."""
    out = []
    for i in range(n):
        base = PARAMETERS[i % len(PARAMETERS)]
        out.append(base + (f" {i // len(PARAMETERS) + 1}" if i >= len(PARAMETERS) else ""))
    return out


def flex_xml(row: int, col: int, field: int, rows: int, cols: int) -> str:
    images = []
    for c, name in enumerate(CHANNELS):
        images.append(
            f'<Image BufferNo="{c}"><Sublayout>1</Sublayout><Stack>1</Stack><Field No="{field + 1}"/>'
            f'<Plane No="1"/><ImageResolutionX Unit="m">{RESOLUTION_M}</ImageResolutionX>'
            f'<ImageResolutionY Unit="m">{RESOLUTION_M}</ImageResolutionY>'
            f'<PositionX Unit="m">{field * 4.5e-4:.6g}</PositionX><PositionY Unit="m">0</PositionY>'
            f'<PositionZ Unit="m">1.2e-005</PositionZ><CameraRef>Camera{c + 1}</CameraRef>'
            f'<DateTime>2009-06-17T11:{20 + c:02d}:05</DateTime><ArrayRef>{name}</ArrayRef></Image>')
    arrays = "".join(f'<Array Name="{n}" Factor="1.000000" Width="{PIXELS}" Height="{PIXELS}" '
                     'BitsPerPixel="16"/>' for n in CHANNELS)
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            f'<Root><FLEX version="1.0"><Arrays>{arrays}</Arrays>'
            f'<Plate><PlateName>{PLATE_NAME}</PlateName><Barcode>{BARCODE}</Barcode>'
            f'<XSize>{rows}</XSize><YSize>{cols}</YSize></Plate>'
            f'<Well><WellCoordinate Row="{row + 1}" Col="{col + 1}"/><Images>{"".join(images)}</Images></Well>'
            '</FLEX></Root>')


def write_flex(path: Path, xml: str, r: np.random.Generator) -> None:
    planes = r.integers(90, 4000, size=(len(CHANNELS), PIXELS, PIXELS), dtype=np.uint16)
    tifffile.imwrite(path, planes, photometric="minisblack", metadata=None,
                     extratags=[(FLEX_TAG, 1, 0, xml.encode("utf-8"), True)])


def write_mea(path: Path, names: list[str]) -> None:
    pics = "\n".join(f'    <Picture path={quoteattr(n[:-5])} />' for n in names)
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<Measurement name="Me01" date="2009-06-17">\n'
                    '  <Host name="opera01" />\n  <Pictures>\n' + pics + '\n  </Pictures>\n</Measurement>\n',
                    encoding="utf-8")


def write_res(path: Path, spec: SynthSpec, rows: int, cols: int, r: np.random.Generator) -> None:
    areas = AREAS[: max(1, min(spec.populations, len(AREAS)))]
    params = {a: parameters_for(max(1, spec.measurements)) for a in areas}
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<AnalysisResults date="2009-06-17T11:56:17" creator="Acapella 2.0" script="Cell Count (2 Areas)">',
           '  <Areas>']
    for area in areas:
        out.append(f'    <Area name={quoteattr(area)}>')
        out.append('      <Wells>')
        out.append('        <ResultParameters>')
        out.extend(f'          <Parameter>{escape(p)}</Parameter>' for p in params[area])
        out.append('        </ResultParameters>')
        values = r.normal(100.0, 30.0, size=(rows * cols, len(params[area])))
        for w in range(rows * cols):
            row, col = divmod(w, cols)
            out.append(f'        <Well row="{row + 1}" col="{col + 1}">')
            for j, p in enumerate(params[area]):
                v = values[w, j]
                text = "NaN" if (w * 7 + j) % 97 == 0 else (str(int(abs(v))) if j == 0 else f"{v:.6g}")
                out.append(f'          <Result name={quoteattr(p)}>{text}</Result>')
            out.append('        </Well>')
        out.append('      </Wells>')
        out.append('    </Area>')
    out += ['  </Areas>', '</AnalysisResults>', '']
    path.write_text("\n".join(out), encoding="utf-8")


def write_flex_plate(out: Path, spec: SynthSpec) -> Path:
    rows, cols = geometry(spec.wells)
    r = rng(spec.seed)
    out.mkdir(parents=True, exist_ok=True)
    names = []
    k = 0
    for row in range(rows):
        for col in range(cols):
            for field in range(max(1, spec.fields)):
                name = f"{row + 1:03d}{col + 1:03d}{field + 1:03d}.flex"
                xml = flex_xml(row, col, field, rows, cols)
                k += 1
                if k % TRAILING_JUNK_EVERY == 0:
                    xml += "%"
                write_flex(out / name, xml, r)
                names.append(name)
    write_mea(out / f"{PLATE_NAME}.mea", names)
    write_res(out / RES_NAME, spec, rows, cols, r)
    return out
