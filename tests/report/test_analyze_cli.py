"""``zspace analyze`` and ``zspace compare`` end to end on real (digits) runs, checked in a real browser."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import check_page_in_browser
from zspace.cli.demo import run_demo
from zspace.cli.main import main
from zspace.config import packaged_config
from zspace.sections import default_sections

FAST = [
    "--set",
    'tsne.presets=["default"]',
    "--set",
    "tsne.pca_components=[2]",
    "--set",
    "tsne.n_iter=250",
    "--set",
    "elbow.k_max=16",
]


def train_digits(out: Path, name: str, *sets: str) -> Path:
    args = ["-q", "train", str(packaged_config("digits-demo")), "--out-dir", str(out), "--name", name, "--epochs", "4"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    return out / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("runs")
    return {"vae": train_digits(out, "vae"), "ae": train_digits(out, "ae", "model.kind=ae")}


def test_demo_report_opens_in_a_browser(tmp_path, browser):
    page = run_demo(out_dir=str(tmp_path), epochs=3)
    assert page == tmp_path / "digits-demo" / "analysis" / "report.html"
    metrics = json.loads((page.parent / "metrics.json").read_text())
    assert set(metrics["sections"]) == set(default_sections())  # every analysis but the opt-in ones (umap)
    assert not any(m["skipped"] for m in metrics["sections"].values())
    facts = check_page_in_browser(browser, page)
    assert facts["sections"] == len(default_sections())
    assert facts["n"] >= 15  # every analysis contributes figures


def test_analyze_only_and_settings(runs, tmp_path):
    out = tmp_path / "a"
    assert (
        main(
            ["-q", "analyze", str(runs["vae"]), "--only", "radius,vae", "--set", "radius.width=0.25", "--out", str(out)]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["sections"]) == {"radius", "vae"}
    assert metrics["sections"]["radius"]["width"] == 0.25
    assert metrics["source"]["z_dim"] == 10
    assert metrics["source"]["n"] == 1797
    assert "zspace -q analyze" in (out / "report.html").read_text()


def test_analyze_an_ae_and_bare_latents(runs, tmp_path):
    out = tmp_path / "ae"
    assert main(["-q", "analyze", str(runs["ae"]), "--out", str(out), *FAST]) == 0
    vae = json.loads((out / "metrics.json").read_text())["sections"]["vae"]
    assert vae["skipped"]
    assert any("AE" in n or "mu" in n for n in vae["notes"])
    bare = tmp_path / "bare"
    shutil.copytree(runs["ae"] / "latents" / "all", bare)
    meta = json.loads((bare / "meta.json").read_text())
    meta.pop("run")
    (bare / "meta.json").write_text(json.dumps(meta))
    assert main(["-q", "analyze", str(bare), "--only", "radius,decode,training", "--out", str(tmp_path / "b")]) == 0
    sections = json.loads((tmp_path / "b" / "metrics.json").read_text())["sections"]
    assert sections["decode"]["skipped"]
    assert sections["training"]["skipped"]
    assert not sections["radius"]["skipped"]


def test_compare_two_runs(runs, tmp_path, browser):
    out = tmp_path / "cmp"
    assert main(["-q", "compare", str(runs["ae"]), str(runs["vae"]), "--out", str(out), *FAST]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["runs"]) == {"ae", "vae"}
    assert set(metrics["sections"]["radius"]) >= {"ae", "vae"}
    vae_table = metrics["sections"]["vae"]
    assert set(vae_table["logvar mean"]) == {"vae"}  # the AE has no logvar
    html = (out / "report.html").read_text()
    for name in ("radius-overlay.png", "elbow-overlay.png", "pca-overlay.png", "decode-gaussian-ae.png"):
        assert name in html
    check_page_in_browser(browser, out / "report.html")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["analyze", "NOPE"], "not found"),
        (["analyze", "RUN", "--only", "radius,nope"], "unknown analysis 'nope'"),
        (["analyze", "RUN", "--set", "radius.width=-1"], "width"),
        (["compare", "RUN", "NOPE", "--out", "X"], "not found"),
    ],
)
def test_bad_analysis_input(runs, tmp_path, capsys, args, needle):
    args = [a.replace("RUN", str(runs["vae"])).replace("NOPE", str(tmp_path / "nope")) for a in args]
    args = [a.replace("X", str(tmp_path / "x")) if a == "X" else a for a in args]
    assert main(["-q", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert needle in err[0]
    assert not (tmp_path / "x").exists()
