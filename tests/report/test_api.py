"""The notebook face: zspace.analyze / compare / explore on arrays in memory, Report.save, _repr_html_, and the
metrics.json layout (zspace.metrics/1) checked against the shipped schema."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

import zspace
from zspace.cli.main import main
from zspace.errors import ConfigError, DataError
from zspace.report.page import SCHEMA
from zspace.report.resolve import resolve
from zspace.report.schema import load_schema, problems

ONLY = "radius,pca"


def sphere(n: int, d: int, radius: float, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed).normal(size=(n, d))
    return (radius * g / np.linalg.norm(g, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def z() -> np.ndarray:
    return sphere(240, 3, 2.0)


@pytest.fixture(scope="module")
def report(z):
    return zspace.analyze(z, labels=np.arange(len(z)) % 3, only=ONLY)


def test_analyze_arrays_measures_the_sphere(report, z):
    m = report.metrics
    assert m["schema"] == SCHEMA == "zspace.metrics/1"
    assert [s.key for s in report.sections] == ["radius", "pca"]
    assert m["sections"]["radius"]["mean"] == pytest.approx(2.0, abs=1e-5)  # every point has norm 2
    assert m["sections"]["radius"]["std"] == pytest.approx(0.0, abs=1e-5)
    assert m["sections"]["pca"]["n_components"] == 3
    assert sum(m["sections"]["pca"]["ratios"]) == pytest.approx(1.0, abs=1e-6)
    assert m["source"] == {**m["source"], "n": 240, "z_dim": 3, "kind": "ae", "latents": None}
    assert json.loads(json.dumps(m)) == m  # JSON-able as it stands


def test_labels_are_carried_through(report, z):
    assert np.array_equal(resolve(z, labels=np.arange(240) % 3).latents.labels, np.arange(240) % 3)
    unlabelled = zspace.analyze(z, only="pca", pca={"color_by": "label"})
    labelled = zspace.analyze(z, labels=np.arange(240) % 3, only="pca", pca={"color_by": "label"})
    assert any("no labels" in n for n in unlabelled.section("pca").notes)  # one colour: nothing to colour by
    assert not any("no labels" in n for n in labelled.section("pca").notes)


def test_torch_tensors_mu_logvar_and_options(z):
    t = torch.from_numpy(z)
    r = zspace.analyze(t, mu=t, logvar=torch.full_like(t, -4.0), only=["radius"], radius={"width": 0.5}, seed=3)
    assert r.metrics["source"]["kind"] == "vae"
    assert r.metrics["seed"] == 3
    assert r.metrics["sections"]["radius"]["width"] == 0.5
    assert r.metrics["sections"]["radius"]["mean"] == pytest.approx(2.0, abs=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"only": "radius,nope"}, ConfigError, "unknown analysis 'nope'"),
        ({"radius": {"no_such": 1}}, ConfigError, "no_such"),
        ({"radius": 0.5}, ConfigError, "must be a mapping"),
        ({"mu": np.zeros((5, 3))}, DataError, "mu has shape"),
        ({"labels": np.zeros(240), "only": "radius"}, DataError, "labels must be integers"),
        ({"model": object()}, ConfigError, "encode and decode"),
        ({"mu": np.ones((240, 3)) * 1j, "logvar": np.zeros((240, 3))}, DataError, "mu must be a real-valued"),
    ],
)
def test_bad_api_input_is_one_line(z, kwargs, error, needle):
    with pytest.raises(error, match=needle):
        zspace.analyze(z, **kwargs)


def test_paths_do_not_take_arrays(tmp_path, z):
    np.save(tmp_path / "emb.npy", z)
    with pytest.raises(ConfigError, match="labels= goes with arrays"):
        zspace.analyze(tmp_path / "emb.npy", labels=np.zeros(240, int))


def test_repr_html_holds_figures_and_tables(report):
    html = report._repr_html_()
    n_figures = sum(len(s.figures) for s in report.sections)
    assert n_figures >= 2
    assert html.count('<img src="data:image/png;base64,') == n_figures
    first = html.split("data:image/png;base64,", 1)[1].split('"', 1)[0]
    assert base64.b64decode(first)[:8] == b"\x89PNG\r\n\x1a\n"
    for s in report.sections:
        assert s.title in html
        for t in s.tables:
            assert f"<h3>{t.title}</h3><table>" in html
    assert html.startswith('<div class="zspace-report"><style>')
    assert "<html" not in html
    assert "<body" not in html
    assert "\nbody{" not in html
    assert ".zspace-report table" in html
    assert 'href="metrics.json"' not in html  # no link to a file that is not there


def test_save_writes_what_the_cli_writes(tmp_path, z, report):
    np.save(tmp_path / "emb.npy", z)
    np.save(tmp_path / "labels.npy", np.arange(240) % 3)
    cli_out, api_out = tmp_path / "cli", tmp_path / "api"
    assert main(["-q", "analyze", str(tmp_path / "emb.npy"), "--only", ONLY, "--out", str(cli_out)]) == 0
    page = zspace.analyze(z, only=ONLY).save(api_out)
    assert page == api_out / "report.html"
    assert page.read_text().count("<img") == len(list(api_out.glob("*.png")))
    assert sorted(p.name for p in cli_out.iterdir()) == sorted(p.name for p in api_out.iterdir())
    cli, api = (json.loads((d / "metrics.json").read_text()) for d in (cli_out, api_out))
    assert cli["schema"] == api["schema"] == SCHEMA
    assert problems(cli) == []  # the file the command line writes follows the schema too
    assert cli["seed"] == api["seed"] == 0

    def numbers(m):
        return {k: {n: v for n, v in s.items() if n != "seconds"} for k, s in m["sections"].items()}

    assert numbers(cli) == numbers(api)
    keep = ("n", "z_dim", "kind", "split", "dataset", "run")
    assert {k: cli["source"][k] for k in keep} == {k: api["source"][k] for k in keep}
    zspace.analyze(z, only=ONLY).save(api_out)  # its own earlier report is replaced (same kind)


def test_compare_two_arrays(z):
    big = sphere(200, 5, 3.0, seed=1)
    first = zspace.analyze(z, only="radius")
    r = zspace.compare({"small": z, "big": big, "again": first}, only="radius")
    m = r.metrics
    assert set(m["runs"]) == {"small", "big", "again"}
    assert (m["runs"]["small"]["z_dim"], m["runs"]["big"]["z_dim"], m["runs"]["big"]["n"]) == (3, 5, 200)
    assert list(m["sections"]) == ["runs", "radius"]
    rows = {row[0]: row for row in r.section("radius").tables[0].rows}
    assert rows["small"][2] == pytest.approx(2.0, abs=1e-5)
    assert rows["big"][2] == pytest.approx(3.0, abs=1e-5)
    assert rows["again"][2] == pytest.approx(2.0, abs=1e-5)  # a Report's sections are reused
    assert r._repr_html_().count("data:image/png;base64,") == sum(len(s.figures) for s in r.sections)
    with pytest.raises(ConfigError, match="not compared"):
        zspace.compare({"a": z}, only="tsne")


def test_metrics_follow_the_schema(report, z):
    schema = load_schema()
    assert schema["properties"]["schema"]["const"] == SCHEMA
    compared = zspace.compare({"a": z, "b": sphere(50, 3, 1.0)}, only="radius,pca")
    for m in (report.metrics, compared.metrics):
        assert problems(m, schema) == []
    broken = json.loads(json.dumps(report.metrics))
    broken["schema"], broken["sections"]["radius"]["mean"] = "zspace.metrics/0", "2"
    del broken["sections"]["pca"]["skipped"]
    assert problems(broken, schema) == [
        "$.schema: expected 'zspace.metrics/1', got 'zspace.metrics/0'",
        "$.sections.radius.mean: expected number, got str",
        "$.sections.pca: missing 'skipped'",
    ]


def test_explore_serves_in_the_background_and_stops(z):
    handle = zspace.explore(z, labels=np.arange(len(z)) % 3)
    try:
        assert str(handle) == handle.url
        assert handle.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(handle.url, timeout=10) as page:
            assert page.status == 200
            assert b"<html" in page.read().lower()
        with urllib.request.urlopen(handle.url + "api/info", timeout=10) as info:
            assert json.loads(info.read())["n"] == 240
    finally:
        handle.stop()
    assert not handle.running
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(handle.url, timeout=2)


def test_stopping_the_handle_ends_a_map_under_way():
    import time
    from pathlib import Path

    points = np.random.default_rng(1).normal(size=(3000, 8)).astype(np.float32)
    handle = zspace.explore(points)
    job = handle._explorer.maps["tsne"]
    try:
        assert job.start() == "computing"
        deadline = time.monotonic() + 30
        while job._proc is None and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = job._proc.pid
    finally:
        handle.stop()
    assert job.wait(10) == "absent"  # stopped, not finished: nothing cached
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().split()[2] == "Z"


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    from zspace.config import packaged_config

    out = tmp_path_factory.mktemp("runs")
    args = ["-q", "train", str(packaged_config("digits-demo")), "--out-dir", str(out), "--name", "r", "--epochs", "1"]
    assert main(args) == 0
    return out / "r"


def test_a_run_and_its_dataset_are_loaded_once(digits_run, monkeypatch):
    import zspace.data
    import zspace.report.analyze as analyze_mod

    calls = {"run": 0, "data": 0}

    def counted(fn, key):
        def wrapper(*args, **kwargs):
            calls[key] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(analyze_mod, "load_run", counted(analyze_mod.load_run, "run"))
    monkeypatch.setattr(analyze_mod, "load_dataset", counted(analyze_mod.load_dataset, "data"))
    monkeypatch.setattr(zspace.data, "load_dataset", counted(zspace.data.load_dataset, "data"))
    r = zspace.analyze(digits_run, only="radius,decode", decode={"n_probes": 10})  # no latents yet: encoded here
    assert calls == {"run": 1, "data": 1}  # the dataset loaded to encode is the one the decode section reuses
    assert not r.section("decode").skipped
    assert r.metrics["source"]["run"] == str(digits_run)


def test_a_model_goes_with_arrays(digits_run):
    from zspace.runs.folder import load_run

    run = load_run(digits_run)
    z = np.load(digits_run / "latents" / "all" / "z.npy")
    assert zspace.analyze(z, only="decode").section("decode").skipped  # no model: nothing to decode with
    with_model = zspace.analyze(z, model=run.model, only="decode")
    assert not with_model.section("decode").skipped
    assert with_model.metrics["sections"]["decode"]["probes"]


def test_an_unknown_colouring_is_one_line_before_any_analysis(z):
    with pytest.raises(ConfigError, match=r"pca.color_by: 'Smiling' is no colouring of latents \(known: label\)"):
        zspace.analyze(z, only="pca", pca={"color_by": "Smiling"})
