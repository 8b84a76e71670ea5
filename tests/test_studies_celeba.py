"""The CelebA studies end to end on a few hundred real images for one epoch (quick mode)."""

from __future__ import annotations

import json

import pytest

from conftest import check_page_in_browser
from zspace.celeba import run_ae_vs_vae, run_encoder_size
from zspace.celeba.ae_vs_vae import published_table
from zspace.cli import main


@pytest.mark.slow
def test_ae_vs_vae_quick(tmp_path, celeba_dir, browser):
    metrics = run_ae_vs_vae(data=str(celeba_dir), out=tmp_path / "study", quick=True, limit=160)
    assert set(metrics["runs"]) == {"ae", "vae-tiny-kl", "vae-kl5", "vae-tiny-kl-noclip"}
    for name, m in metrics["runs"].items():
        assert {"radius", "pca", "elbow", "decode", "manifold"} <= set(m), name
        assert ("vae" in m) == name.startswith("vae"), name
    assert metrics["faces"]["vae-kl5"] > 0
    page = tmp_path / "study" / "report.html"
    report = json.loads((tmp_path / "study" / "metrics.json").read_text())
    table = report["sections"]  # every section of the comparison is there
    assert {"published", "runs", "radius", "elbow", "pca", "vae", "decode", "tsne", "filaments", "eps_factor"} <= set(
        table
    )
    html = page.read_text()
    for row in ("total loss per image", "radius of the density peak", "logvar min / max / mean", "max |z - mu|",
                "mean rel. radius difference z vs mu", "elbow (Kneedle, Lloyd)", "Acceptance checks"):  # fmt: skip
        assert row in html, row
    check_page_in_browser(browser, page)


def test_published_table_has_every_row_even_without_numbers():
    table = published_table({}, {})
    assert len(table.rows) == 13
    assert table.rows[0][1] == "4,515 (4,553)"
    assert all(len(r) == len(table.columns) for r in table.rows)


@pytest.mark.slow
def test_encoder_size_quick(tmp_path, celeba_dir):
    metrics = run_encoder_size(data=str(celeba_dir), out=tmp_path / "es", quick=True, limit=64)
    assert metrics["parameters"]["z256_dense256"]["encoder_params"] == 2_879_552
    assert metrics["parameters"]["z512_dense0"]["decoder_params"] == 5_115_971
    assert set(metrics["grids"]) == {"vae5-dense0", "vae5-dense256"}
    assert "published (M)" in (tmp_path / "es" / "report.html").read_text()


def test_study_cli_errors(tmp_path, capsys):
    assert main(["-q", "study", "nope"]) == 2
    assert "unknown study 'nope'" in capsys.readouterr().err
    assert (
        main(
            [
                "-q",
                "study",
                "encoder-size",
                "--data",
                str(tmp_path / "missing"),
                "--quick",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "missing" in err[0]
