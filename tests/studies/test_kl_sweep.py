"""``zspace study kl-sweep --quick`` end to end (fewer weights and epochs than its quick default), and its runs as
ordinary run folders."""

from __future__ import annotations

import json

import pytest

from zspace.cli.main import main


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("kl-sweep")
    args = ["-q", "study", "kl-sweep", "--quick", "--out", str(out), "--set", "weights=[0, 0.5, 5]",
            "--set", "epochs=3", "--set", "samples=60", "--set", "mi_batch=64"]  # fmt: skip
    assert main(args) == 0
    return out


def test_every_section_and_metric_is_there(sweep):
    m = json.loads((sweep / "metrics.json").read_text())
    assert m["weights"] == [0.0, 0.5, 5.0]
    assert m["epochs"] == 3
    assert m["dataset"] == "digits"
    assert set(m["runs"]) == {"ae", "kl-0.5", "kl-5"}
    assert set(m["summary"]) == {"prior_usable_from", "collapse_from"}
    for name, run in m["runs"].items():
        assert set(run["quality"]) == {"normal", "gmm", "reconstruction"}, name
        assert run["loss"]["total"] > 0
        assert 0 <= run["active_units"] <= 10  # the digits model's z_dim
    assert m["runs"]["ae"]["rate"] is None
    assert m["runs"]["kl-5"]["rate"] < m["runs"]["kl-0.5"]["rate"]  # a larger weight, a smaller rate
    assert m["runs"]["kl-5"]["loss"]["reconstruction"] > m["runs"]["kl-0.5"]["loss"]["reconstruction"]
    page = (sweep / "report.html").read_text()
    for title in ("The KL ladder", "Rate against distortion", "Radius shells per weight", "Active units",
                  "Sample quality", "Decoded prior samples"):  # fmt: skip
        assert title in page, title
    assert "3 epochs each" in page
    for png in ("rate-rd.png", "radius-overlay.png", "units-active.png", "quality-fid.png", "images-prior.png"):
        assert (sweep / png).is_file(), png


def test_each_weight_is_an_ordinary_run_folder(sweep, tmp_path):
    runs = sweep / "runs"
    assert sorted(p.name for p in runs.iterdir() if not p.name.startswith(".")) == ["ae", "kl-0.5", "kl-5"]
    config = json.loads((runs / "kl-5" / "config.json").read_text())
    assert config["model"]["kl_weight"] == 5.0
    assert config["model"]["kind"] == "vae"
    assert json.loads((runs / "ae" / "config.json").read_text())["model"]["kind"] == "ae"
    assert main(["-q", "analyze", str(runs / "kl-5"), "--only", "radius", "--out", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "report.html").is_file()


def test_compare_lays_out_the_runs_as_a_sweep(sweep, tmp_path):
    """Two VAEs of the sweep differ in one config key, model.kl_weight: compare adds metrics against it."""
    runs = sweep / "runs"
    out = tmp_path / "cmp"
    assert (
        main(["-q", "compare", str(runs / "kl-5"), str(runs / "kl-0.5"), "--out", str(out), "--only", "radius,vae"])
        == 0
    )
    m = json.loads((out / "metrics.json").read_text())
    assert m["sections"]["sweep"]["key"] == "model.kl_weight"
    assert m["sections"]["sweep"]["values"] == [0.5, 5.0]  # ordered by the value, whatever the order given
    assert m["sections"]["sweep"]["runs"] == ["kl-0.5", "kl-5"]
    assert m["sections"]["sweep"]["KL / image"][0] > m["sections"]["sweep"]["KL / image"][1]
    assert "The runs as a sweep over model.kl_weight" in (out / "report.html").read_text()


def test_the_swept_key_is_the_one_numeric_key_that_differs():
    from zspace.report.compare import swept_key

    base = {"name": "a", "model.kl_weight": 1.0, "model.kind": "vae", "train.device": "cpu"}
    assert swept_key({"a": base, "b": {**base, "name": "b", "model.kl_weight": 5.0, "train.device": "cuda"}}) == (
        "model.kl_weight"
    )  # the name and the device are not settings of the model
    assert swept_key({"a": base, "b": {**base, "model.kl_weight": 5.0, "model.kind": "ae"}}) is None  # two keys
    assert swept_key({"a": base, "b": {**base, "model.kind": "ae"}}) is None  # not a number
    assert swept_key({"a": base, "b": None}) is None  # bare latents have no config
    assert swept_key({"a": base}) is None
    seeds = {"a": {**base, "train.seed": 0}, "b": {**base, "train.seed": 7}}
    assert swept_key(seeds) is None  # runs that differ by their seed are a spread, not a sweep


def test_many_runs_get_one_row_each():
    from zspace.report.compare import vae_section
    from zspace.sections.base import Section

    runs = {
        f"kl-{w}": {"vae": Section("vae", "", metrics={"logvar_mean": -w, "kl_total": 10.0 * w, "active_units": w})}
        for w in range(1, 7)
    }
    section = vae_section(runs)
    table = section.tables[0]
    assert table.columns[0] == "run"
    assert [r[0] for r in table.rows] == [*runs]  # not the series' CelebA: no published row
    assert "published tiny-KL figures are left out" in section.notes[0]
    kl = table.columns.index("KL per image")
    assert [r[kl] for r in table.rows[:6]] == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    few = vae_section(dict(list(runs.items())[:2])).tables[0]
    assert few.columns == ["quantity", "kl-1", "kl-2"]  # up to 4 runs: one column per run, as before
    runs["kl-1"]["vae"].metrics["series_celeba"] = True  # one run on the series' CelebA at z_dim 256
    table = vae_section(runs).tables[0]
    assert [r[0] for r in table.rows] == [*runs, "published (CelebA, fact 1e-5)"]
    assert table.rows[-1][kl] is None
    assert table.rows[-1][table.columns.index("logvar min")] == -24.66
    few = vae_section(dict(list(runs.items())[:2]))
    assert few.tables[0].columns == ["quantity", "kl-1", "kl-2", "published (CelebA, fact 1e-5)"]
    assert not few.notes
