"""The report writer, the analysis settings, and the report in a real (headless) browser."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.figure import Figure

from conftest import check_page_in_browser
from zspace.errors import ConfigError
from zspace.report.analyze import analysis_settings
from zspace.report.page import fmt, to_json, write_report
from zspace.sections.base import FigureItem, Section, Table


def small_figure() -> Figure:
    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1], [1, 0])
    return fig


def sections() -> list[Section]:
    a = Section("radius", "Radius", summary="Most points sit on a shell.", metrics={"peak": np.float32(16.5)})
    a.figures.append(FigureItem("hist", small_figure(), "Points per radius interval (width 0.5)."))
    a.tables.append(Table("Shells", ["shell", "share"], [["12 < R < 24", 0.98765], ["all", 1]]))
    b = Section("vae", "VAE diagnostics", skipped=True, notes=["the latents have no mu/logvar: an AE"])
    return [a, b]


def test_fmt_and_to_json():
    assert fmt(1234567) == "1,234,567"
    assert fmt(0.98765) == "0.9877"
    assert fmt(6.1e-5) == "6.1e-05"
    assert fmt(float("nan")) == "–"
    assert fmt(None) == "–"
    assert (fmt(True), fmt(np.bool_(False))) == ("yes", "no")
    assert to_json({"a": np.arange(3), "b": np.float64("nan"), "c": (np.int64(2), True)}) == {
        "a": [0, 1, 2],
        "b": None,
        "c": [2, True],
    }


def test_write_report_files_and_page(tmp_path):
    page = write_report(sections(), tmp_path / "out", title="T <1>", command="zspace analyze x")
    out = tmp_path / "out"
    assert page == out / "report.html"
    assert (out / "radius-hist.png").read_bytes()[:4] == b"\x89PNG"
    html = page.read_text()
    assert "T &lt;1&gt;" in html
    assert 'src="radius-hist.png"' in html
    assert "Points per radius interval (width 0.5)." in html
    assert "0.9877" in html
    assert "the latents have no mu/logvar: an AE" in html
    assert "zspace analyze x" in html
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sections"]["radius"]["peak"] == pytest.approx(16.5)
    assert metrics["sections"]["vae"]["skipped"] is True
    assert not [p for p in out.iterdir() if p.name.startswith(".zspace-tmp-")]  # no staging folder left
    manifest = json.loads((out / ".zspace-manifest.json").read_text())
    assert list(manifest["files"]) == ["radius-hist.png", "metrics.json", "report.html"]
    assert manifest["kind"] == "zspace analyze"


def test_rewriting_a_report_keeps_foreign_files_and_drops_stale_figures(tmp_path):
    out = tmp_path / "study"
    (out / "runs" / "ae").mkdir(parents=True)
    (out / "runs" / "ae" / "model.safetensors").write_bytes(b"weights")  # a study's training run beside its report
    (out / "notes.txt").write_text("mine")
    write_report(sections(), out, title="first", command="c")
    write_report(sections()[1:], out, title="again", command="c")
    assert not (out / "radius-hist.png").exists()  # the first report's figure, gone with it
    assert (out / "runs" / "ae" / "model.safetensors").read_bytes() == b"weights"
    assert (out / "notes.txt").read_text() == "mine"
    assert "again" in (out / "report.html").read_text()


def test_a_failure_while_plotting_leaves_the_previous_report(tmp_path):
    out = tmp_path / "out"
    write_report(sections(), out, title="good", command="c")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    class Broken(Figure):
        def savefig(self, *args, **kwargs):
            raise RuntimeError("disk full")

    bad = sections()
    bad[0].figures.append(FigureItem("broken", Broken(), "never written"))
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(bad, out, title="bad", command="c")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert not [p for p in out.iterdir() if p.name.startswith(".zspace-tmp-")]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"only": "radius,nope"}, "unknown analysis 'nope'"),
        ({"sets": ["radiuss.width=1"]}, "unknown analysis config"),
        ({"sets": ["training.x=1"]}, "unknown config key 'training.x'"),
        ({"sets": ["seed=1.5"]}, "'seed' must be int"),
    ],
)
def test_analysis_settings_errors(kw, message):
    with pytest.raises(ConfigError, match=message):
        analysis_settings(**kw)


def test_analysis_settings_only_and_seed():
    keys, configs, seed = analysis_settings(sets=["seed=3"], only="training")
    assert keys == ["training"]
    assert list(configs) == ["training"]
    assert seed == 3


def test_report_opens_in_a_browser(tmp_path, browser):
    page = write_report(sections(), tmp_path / "out", title="browser check", command="c")
    facts = check_page_in_browser(browser, page)
    assert facts["n"] == 1
    assert facts["sections"] == 2
    assert facts["title"] == "browser check"
    (tmp_path / "out" / "radius-hist.png").unlink()
    with pytest.raises(AssertionError, match="did not load"):
        check_page_in_browser(browser, page)


def test_importing_the_report_loads_no_torch():
    import subprocess
    import sys

    code = "import sys, zspace.report.page; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
