"""The HTML report: heatmaps, missing wells and fields, Z', in a real headless browser too."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hcs_import.model import (
    MeasurementTable,
    Plate,
    PlateAnalysis,
    Provenance,
    SourceFile,
    empty_rois,
    object_keys_frame,
    well_keys_frame,
)
from hcs_import.parsers.base import ParseOptions, SynthSpec
from hcs_import.pipeline import import_plate
from hcs_import.platemap import apply_platemap, read_platemap
from hcs_import.report import build_report, write_report, z_prime
from hcs_import.synth.incell import write_incell_plate
from hcs_import.writers.bundle import write_bundle

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def plate_with_controls(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """A 96-well plate: objects in every well but B05; column 1 positive controls, column 12 negative."""
    rng = np.random.default_rng(4)
    wells = [(r, c) for r in range(8) for c in range(12) if (r, c) != (1, 4)]
    rows = np.repeat([w[0] for w in wells], 3)
    cols = np.repeat([w[1] for w in wells], 3)
    keys = object_keys_frame(rows, cols, np.zeros(len(rows), int), np.tile([1, 2, 3], len(wells)), 12)
    keys["Area"] = rng.normal(50, 5, len(rows))
    summary_keys = well_keys_frame(np.array([w[0] for w in wells]), np.array([w[1] for w in wells]), 12)
    signal = np.where(summary_keys["well_column"] == 0, rng.normal(100, 4, len(wells)),
                      np.where(summary_keys["well_column"] == 11, rng.normal(10, 3, len(wells)),
                               rng.normal(55, 20, len(wells))))
    summary_keys["Signal"] = signal
    analysis = PlateAnalysis("test", Plate("Ctl", 8, 12), (MeasurementTable("Cells", "objects", keys),
                                                        MeasurementTable("Wells", "wells", summary_keys)),
                             empty_rois(), Provenance("test", "1", (SourceFile("r.txt", "0" * 64, 1),)),
                             ("a warning to show",))
    mapfile = tmp_path / "map.csv"
    mapfile.write_text("Well,Control\n" + "".join(
        f"{'ABCDEFGH'[r]}{c + 1:02d},{'positive' if c == 0 else 'negative' if c == 11 else ''}\n"
        for r in range(8) for c in range(12)))
    analysis = apply_platemap(analysis, read_platemap(mapfile), mapfile)
    bundle = write_bundle(analysis, tmp_path / "out")
    pos = signal[(summary_keys["well_column"] == 0).to_numpy()]
    neg = signal[(summary_keys["well_column"] == 11).to_numpy()]
    return bundle, pos, neg


def test_report_heatmaps_missing_wells_and_z_prime(tmp_path: Path) -> None:
    bundle, pos, neg = plate_with_controls(tmp_path)
    page = build_report(bundle)
    assert page.count('<img class="heatmap"') == 2  # Cells count, Signal
    assert "Wells without results (1)</h2><p>B05</p>" in page
    expected = 1 - 3 * (pos.std(ddof=1) + neg.std(ddof=1)) / abs(pos.mean() - neg.mean())
    assert np.isclose(z_prime(pos, neg), expected) and 0.5 < expected < 1
    assert f"<tr><td>Signal</td><td>{expected:.3f}</td>" in page
    assert "a warning to show" in page and "provenance key" in page
    chosen = build_report(bundle, ["Signal"])
    assert chosen.count('<img class="heatmap"') == 2
    assert np.isnan(z_prime(np.array([1.0]), np.array([2.0, 3.0])))  # one positive well: undefined


def test_missing_fields_from_the_layout(tmp_path: Path) -> None:
    src = write_incell_plate(tmp_path / "P", SynthSpec(wells=96, fields=2, objects=3))
    result = import_plate(src, tmp_path / "out", ParseOptions())
    assert result.manifest["report"] == "report.html" and (result.bundle / "report.html").is_file()
    page = (result.bundle / "report.html").read_text()
    assert "Fields without results" not in page and "Wells without results (0)" in page
    layout = result.bundle / "layout.parquet"
    import pandas as pd

    frame = pd.read_parquet(layout)
    extra = frame.iloc[:1].assign(field=5)
    pd.concat([frame, extra]).to_parquet(layout, index=False)
    assert "Fields without results (1)</h2><p>A01 field 6</p>" in build_report(result.bundle)


def test_no_report_option_and_cli(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    src = write_incell_plate(tmp_path / "P", SynthSpec(wells=96, fields=1, objects=2))
    result = cli("plate", src, "--out", tmp_path / "out", "--no-report")
    assert result.exit_code == 0 and not (tmp_path / "out" / "P" / "report.html").exists()
    made = cli("report", tmp_path / "out" / "P", "--out", tmp_path / "r.html", "--measure", "Cell Count")
    assert made.exit_code == 0 and (tmp_path / "r.html").read_text().count('<img class="heatmap"') == 3
    bad = cli("report", tmp_path / "out" / "P", "--measure", "nope")
    assert bad.exit_code == 2 and "--measure 'nope': no such per-well column" in bad.output


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="no chromium here (scripts/setup.sh installs Debian's chromium where it may)")
def test_report_in_a_real_headless_browser(tmp_path: Path) -> None:
    """Debian's chromium loads the page without a console error, and its screenshot shows coloured heatmaps."""
    assert CHROMIUM is not None, "chromium is missing: scripts/setup.sh installs it"
    bundle, _, _ = plate_with_controls(tmp_path)
    page = write_report(bundle)
    url = page.resolve().as_uri()
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([CHROMIUM, *FLAGS, *profile, "--enable-logging=stderr", "--v=0", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert len(re.findall(r'<img class="heatmap"[^>]*src="data:image/png;base64,', dom.stdout)) == 2
    assert not [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    shot = tmp_path / "shot.png"
    out = subprocess.run([CHROMIUM, *FLAGS, *profile, "--window-size=1200,900", f"--screenshot={shot}", url],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and shot.is_file(), out.stderr[-2000:]
    from matplotlib import pyplot as plt

    pixels = plt.imread(shot)[..., :3]
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200  # viridis heatmaps, not a blank or error page
    saturated = np.abs(pixels.max(axis=2) - pixels.min(axis=2)) > 0.3
    assert saturated.mean() > 0.02
