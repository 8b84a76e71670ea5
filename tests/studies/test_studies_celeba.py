"""The CelebA studies end to end on a few hundred real images for one epoch (quick mode)."""

from __future__ import annotations

import json

import pytest

from conftest import check_page_in_browser
from zspace.cli.main import main
from zspace.studies import run_study
from zspace.studies.celeba_tables import published_table, spread_table


@pytest.mark.slow
def test_ae_vs_vae_quick(tmp_path, celeba_dir, browser):
    metrics = run_study(
        "celeba-ae-vs-vae", data=str(celeba_dir), out=tmp_path / "study", quick=True, sets=["limit=160"]
    )
    assert set(metrics["runs"]) == {"ae", "vae-tiny-kl", "vae-kl5", "vae-tiny-kl-noclip"}
    for name, m in metrics["runs"].items():
        assert {"radius", "axes", "pca", "elbow", "decode", "manifold"} <= set(m), name
        assert ("vae" in m) == name.startswith("vae"), name
    assert metrics["faces"]["vae-kl5"] > 0
    scores = metrics["quality"]["scores"]
    assert {"training images", "AE + N(0, I)", "AE + GMM on z", "VAE kl 5 + N(0, I)"} <= set(scores)
    assert metrics["quality"]["measure"].startswith("zspace-FID (features: ")
    assert all(s["fid"] > 0 and 0 <= s["precision"] <= 1 for s in scores.values())
    page = tmp_path / "study" / "report.html"
    report = json.loads((tmp_path / "study" / "metrics.json").read_text())
    table = report["sections"]  # every section of the comparison is there
    sections = {"published", "axes-elbow", "runs", "radius", "elbow", "pca", "vae", "decode", "tsne", "filaments"}
    sections |= {"eps_factor", "attributes"}
    assert sections | {"quality"} <= set(table)
    html = page.read_text()
    for row in ("total loss per image", "radius of the density peak", "logvar min / max / mean", "max |z - mu|",
                "mean rel. radius difference z vs mu", "elbow (Kneedle, Lloyd)", "Acceptance checks"):  # fmt: skip
        assert row in html, row
    # attributes against 8 clusters, per model: every cluster's purest attribute, the NMI of all 40
    attributes = metrics["attributes"]["ae"]
    assert attributes["n_clusters"] == 8
    assert len(attributes["nmi"]) == 40
    assert all(0 <= v <= 1 for v in attributes["nmi"].values())
    assert "Axes and elbow per model" in html
    assert "The 40 attributes against 8 clusters" in html
    check_page_in_browser(browser, page)


def test_published_table_has_every_row_even_without_numbers():
    table = published_table({}, {})
    assert len(table.rows) == 14
    assert table.rows[-1][0].startswith("zspace-FID of N(0, I) samples")
    assert table.rows[0][1] == "4,515 (4,553)"
    assert all(len(r) == len(table.columns) for r in table.rows)


def test_published_table_of_other_faces_has_ours_only():
    ms = {"ae": {"radius": {"peak": 12.25}}}
    table = published_table(ms, {"ae": 0.9}, series=False)
    assert table.columns == ["quantity", "ours AE", "ours VAE 1e-5", "ours VAE kl 5"]
    assert table.title == "Our figures"
    assert table.rows[1][:2] == ["radius of the density peak", 12.25]
    assert "4,515" not in str(table.rows)
    assert "16.5 - 16.75" not in str(table.rows)
    assert "are left out" in table.caption
    assert "The 'decoded N(0, I)' row" in table.caption


def test_spread_table_per_seed_and_min_max():
    def run(loss, peak, shell, logvar=None):
        m = {"training": {"last": {"total": loss}}, "radius": {"peak": peak, "mean": peak + 1, "shell95": shell}}
        return m | ({"vae": {"logvar_mean": logvar}} if logvar is not None else {})

    ms = {
        "ae-s0": run(4600.0, 16.5, [10.0, 30.0]),
        "ae-s1": run(4500.0, 19.75, [12.0, 26.0]),  # the series' second minimum
        "vae-s0": run(4700.0, 16.0, [14.0, 18.0], -9.0),
        "vae-s1": run(4800.0, 66.0, [60.0, 70.0], -8.5),  # the run that jumped to R ~ 66
    }
    table = spread_table(ms, ["ae", "vae"], [0, 1])
    assert [r[:2] for r in table.rows] == [
        ["ae", "seed 0"], ["ae", "seed 1"], ["ae", "min - max"],
        ["vae", "seed 0"], ["vae", "seed 1"], ["vae", "min - max"],
    ]  # fmt: skip
    assert table.rows[1][2:] == [4500.0, 19.75, 20.75, 14.0, None]  # shell width = 26 - 12; an AE has no logvar
    assert table.rows[2][3] == "16.5 - 19.75"
    assert table.rows[2][6] == "-"
    assert table.rows[5][3:5] == ["16 - 66", "17 - 67"]
    assert table.rows[5][6] == "-9 - -8.5"


@pytest.mark.slow
def test_encoder_size_quick(tmp_path, celeba_dir):
    metrics = run_study("encoder-size", data=str(celeba_dir), out=tmp_path / "es", quick=True, values={"limit": 64})
    assert metrics["parameters"]["z256_dense256"]["encoder_params"] == 2_879_552
    assert metrics["parameters"]["z512_dense0"]["decoder_params"] == 5_115_971
    assert set(metrics["grids"]) == {"vae5-dense0", "vae5-dense256"}
    assert "published (M)" in (tmp_path / "es" / "report.html").read_text()
    # time per epoch with and without the extra Dense layer, at batch 16 and 32 (quick)
    assert set(metrics["speed"]) == {"dense0_batch16", "dense0_batch32", "dense256_batch16", "dense256_batch32"}
    for m in metrics["speed"].values():
        assert m["images_per_s"] > 0
        assert m["epoch_s_170k"] == pytest.approx(170_000 / m["images_per_s"])


def test_study_cli_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["-q", "study", "nope"])
    assert info.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err
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
    assert main(["-q", "study", "celeba-ae-vs-vae", "--seeds", "0,x", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["zspace: error: --seeds must be comma-separated integers, e.g. 0,1,2; got '0,x'"]
    assert not (tmp_path / "s").exists()


def test_axes_elbow_table_from_constructed_metrics():
    from zspace.studies.celeba_ae_vs_vae import axes_elbow_section

    ms = {
        "ae": {
            "axes": {"n_flagged": 3, "flagged": [52, 7, 221], "bulk_width": 1.5},
            "elbow": {
                "lloyd": {"algorithm": "lloyd", "elbow_k": 40, "elbow_pronounced": False, "elbow_slope_ratio": 1.2},
                "minibatch": {"algorithm": "minibatch", "elbow_k": 38, "elbow_pronounced": True,
                              "elbow_slope_ratio": None},
            },
        },
        "vae-kl5": {},  # an analysis that did not run: dashes, no crash
    }  # fmt: skip
    section = axes_elbow_section(ms)
    rows = section.tables[0].rows
    assert rows[0] == [
        "ae", 3, "52, 7, 221", 1.5, "52, 221",  # two of the series' five axes
        "lloyd: k = 40, slope ratio 1.20, not pronounced", "minibatch: k = 38, slope ratio inf, pronounced",
    ]  # fmt: skip
    assert rows[1] == ["vae-kl5", None, "", None, "-", "-", "-"]
    assert section.metrics["ae"] == {"n_flagged": 3, "elbow": [40, 38]}
    assert "38 - 42 clusters plausible" in section.tables[0].caption
    other = axes_elbow_section(ms, series=False)  # other faces: nothing of the series' axes or elbow
    assert "of the series' 5" not in other.tables[0].columns
    assert other.tables[0].rows[0][:5] == [
        "ae",
        3,
        "52, 7, 221",
        1.5,
        "lloyd: k = 40, slope ratio 1.20, not pronounced",
    ]
    assert other.tables[0].rows[1] == ["vae-kl5", None, "", None, "-", "-"]
    assert "series" not in other.tables[0].caption
