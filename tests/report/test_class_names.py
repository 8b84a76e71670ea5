"""Class names (``data.class_names`` or ``zspace analyze --class-names FILE``) reach legends, tables and metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from zspace.analyses.classifier import ClusterClassifier, evaluate
from zspace.cli.main import main
from zspace.config import load_config, packaged_config
from zspace.data import load_dataset
from zspace.data.names import read_names
from zspace.errors import ConfigError
from zspace.report.analyze import analysis_settings, name_classes, open_source, run_sections
from zspace.studies.clustering import detail_items, load_split

NAMES = ("cat", "dog", "eel")


def blobs(folder: Path) -> Path:
    """A latents folder of 3 well separated blobs of 20 points in 4-D, labelled 0, 1, 2."""
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0, 0, 0], [10, 0, 0, 0], [0, 10, 0, 0]], dtype=np.float32)
    labels = np.repeat(np.arange(3), 20)
    z = (centres[labels] + rng.normal(0, 0.3, (60, 4))).astype(np.float32)
    folder.mkdir()
    np.save(folder / "z.npy", z)
    np.save(folder / "labels.npy", labels.astype(np.int64))
    return folder


def names_file(path: Path, names=NAMES) -> Path:
    path.write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    return path


def legend_texts(fig) -> list[str]:
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes)]
    return [t.get_text() for leg in legends if leg is not None for t in leg.get_texts()]


def test_names_file_reaches_the_report_and_metrics(tmp_path):
    lat = blobs(tmp_path / "lat")
    out = tmp_path / "report"
    args = ["-q", "analyze", str(lat), "--only", "pca", "--out", str(out)]
    assert main([*args, "--class-names", str(names_file(tmp_path / "names.txt"))]) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Classes: cat, dog, eel." in html
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["source"]["class_names"] == list(NAMES)
    # without the file the numbers are the names
    assert main([*args[:-1], str(tmp_path / "plain")]) == 0
    assert "cat" not in (tmp_path / "plain" / "report.html").read_text(encoding="utf-8")


def test_names_reach_the_pca_and_tsne_legends(tmp_path):
    source = open_source(blobs(tmp_path / "lat"))
    name_classes(source, NAMES)
    sets = ['tsne.presets=["default"]', "tsne.pca_components=[2]", "tsne.n_iter=250"]
    keys, configs, seed = analysis_settings(sets=sets, only="pca,tsne")
    sections = run_sections(source, keys, configs, seed=seed)
    by_key = {s.key: s for s in sections}
    for key in ("pca", "tsne"):
        texts = {t for item in by_key[key].figures for t in legend_texts(item.figure)}
        assert set(NAMES) <= texts, (key, texts)
        assert not {"0", "1", "2"} & texts


def test_wrong_count_is_exit_2_with_one_line(tmp_path, capsys):
    lat = blobs(tmp_path / "lat")
    out = tmp_path / "report"
    names = names_file(tmp_path / "names.txt", ["cat", "dog"])
    assert main(["-q", "analyze", str(lat), "--only", "pca", "--out", str(out), "--class-names", str(names)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "2 class names" in err
    assert "3 classes" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"cat\n\ndog\neel\n", ":2:"), (b"cat\n\xff\xfe\n", "not UTF-8"), (b"", "empty"), (b"a\tb\n", ":1:")],
)
def test_bad_names_files_are_one_line_errors(tmp_path, content, problem):
    path = tmp_path / "names.txt"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=problem):
        read_names(path)


def test_names_file_allows_crlf_and_a_bom(tmp_path):
    path = tmp_path / "names.txt"
    path.write_bytes("\ufeffcat\r\ndog\r\nélan\r\n".encode())
    assert read_names(path) == ("cat", "dog", "élan")


def test_data_class_names_reach_the_digits_confusion_matrix():
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    cfg = load_config(packaged_config("digits-demo"), [("data.class_names", list(words))])
    split, _ = load_split(cfg.data, scale=16.0)
    assert split.class_names == list(words)
    clf = ClusterClassifier(20, n_init=1, random_state=0)
    e = evaluate(clf, *split.xy(), label="k = 20", class_names=split.class_names)
    figures, tables = detail_items(e, "0", series=False)
    assert tables[0].columns[1:11] == list(words)
    assert [row[0] for row in tables[0].rows] == list(words)
    ticks = {t.get_text() for t in figures[0].figure.axes[0].get_yticklabels()}
    assert set(words) <= ticks


def test_data_class_names_of_the_wrong_count_name_both_counts():
    cfg = load_config(packaged_config("digits-demo"), [("data.class_names", ["a", "b", "c"])])
    with pytest.raises(ConfigError, match=r"data.class_names gives 3 class names but the labels have 10 classes"):
        load_dataset(cfg.data)


def test_python_api_takes_names_and_the_explorer_gets_the_runs_names(tmp_path):
    from types import SimpleNamespace

    import zspace
    from zspace.explore.source import _label_names

    z = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
    labels = np.arange(30) % 3
    report = zspace.analyze(z, labels=labels, only="pca", class_names=list(NAMES))
    assert report.metrics["source"]["class_names"] == list(NAMES)
    with pytest.raises(ConfigError, match="class_names gives 4 class names but the labels have 3 classes"):
        zspace.analyze(z, labels=labels, only="pca", class_names=[*NAMES, "fox"])
    latents = SimpleNamespace(labels=labels, meta={"label_names": ["0", "1", "2"]})
    run = SimpleNamespace(config=SimpleNamespace(data=SimpleNamespace(class_names=NAMES)))
    assert _label_names(run, latents) == list(NAMES)
    run.config.data.class_names = ()
    assert _label_names(run, latents) == ["0", "1", "2"]
    run.config.data.class_names = ("cat",)
    with pytest.raises(ConfigError, match="1 class names"):
        _label_names(run, latents)
