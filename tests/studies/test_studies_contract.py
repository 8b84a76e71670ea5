"""The study contract: typed options from defaults, QUICK, a TOML file and --set; --help; the registry."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest

from zspace.cli.main import main
from zspace.errors import ConfigError
from zspace.studies import STUDIES, study_module
from zspace.studies.base import StudyContext, describe, options_help, study_config
from zspace.studies.mnist_kmeans import shape_difference


@pytest.mark.parametrize("name", list(STUDIES))
def test_every_study_follows_the_contract(name):
    module = study_module(name)
    assert module.TITLE
    assert module.DATA in ("mnist", "wifi", "celeba")
    assert callable(module.run)
    fields = {f.name for f in dataclasses.fields(module.Config)}
    assert set(module.QUICK) <= fields, set(module.QUICK) - fields
    options = describe(module.Config)
    assert [o.name for o in options] == [f.name for f in dataclasses.fields(module.Config)]
    missing = [o.name for o in options if not o.comment]
    assert not missing, f"{name}: keys without a comment: {missing}"
    quick = study_config(module, quick=True)  # the quick version passes its own validation
    assert all(getattr(quick, k) == (tuple(v) if isinstance(v, list) else v) for k, v in module.QUICK.items())


def test_options_are_layered_and_typed(tmp_path):
    module = study_module("wifi")
    assert study_config(module).splits == 10
    assert study_config(module, quick=True).splits == 3
    toml = tmp_path / "study.toml"
    toml.write_text('splits = 4\nspaces = [0, 3]\nalgorithm = "minibatch"\n')
    cfg = study_config(module, quick=True, config_path=toml, sets=["n_init=2", "test_fraction=0.5"])
    assert (cfg.splits, cfg.spaces, cfg.algorithm, cfg.n_init, cfg.test_fraction) == (4, (0, 3), "minibatch", 2, 0.5)
    assert study_config(module, config_path=toml, sets=["splits=6"]).splits == 6  # --set wins over the file
    cfg = study_config(study_module("celeba-ae-vs-vae"), values={"attribute": "Smiling", "seeds": (3, 4)})
    assert (cfg.attribute, cfg.seeds) == ("Smiling", (3, 4))
    # a value with a character JSON would escape goes through untouched (typed, never formatted and parsed back):
    # the refusal of an unknown attribute quotes it as given
    with pytest.raises(ConfigError, match="unknown CelebA attribute 'Smiling 😀'"):
        study_config(study_module("celeba-ae-vs-vae"), values={"attribute": "Smiling 😀"})


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["bogus=1"], "study 'wifi' has no key 'bogus' (--set; known: n_clusters, spaces, splits,"),
        (["splits=many"], "config key 'splits' must be int, got 'many'"),
        (["test_fraction=nan"], "config key 'test_fraction' must be finite, got nan"),
        (["spaces=[9]"], "config key 'spaces': each value must be in [0, 7], got 9"),
        (["splits"], "override 'splits' is not of the form key=value"),
    ],
)
def test_bad_options_are_one_line(sets, message):
    with pytest.raises(ConfigError) as info:
        study_config(study_module("wifi"), sets=sets)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_cli_unknown_key_writes_nothing(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["-q", "study", "mnist-kmeans", "--set", "n_cluster=9", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("zspace: error: study 'mnist-kmeans' has no key 'n_cluster' (--set; known: n_clusters,")
    assert main(["-q", "study", "wifi", "--epochs", "3", "--out", str(out)]) == 2  # wifi trains nothing
    assert "has no key 'epochs'" in capsys.readouterr().err
    assert not out.exists()


def test_cli_help_lists_the_study_keys(capsys):
    with pytest.raises(SystemExit) as info:
        main(["study", "mnist-kmeans", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "--set KEY=VALUE" in text
    assert "n_clusters = 225  (int, in [1, 100000]; --quick: 50)" in text
    assert "the series' k" in text
    assert 'scalers = ["none", "normalizer", "standard"]  (list of str, of length 1 to 3; each one of none,' in text
    assert text.count("\n  features_clusters = ") == 1


def test_describe_reads_comments_beside_and_above():
    @dataclass
    class C:
        a: int = 1  # beside
        # above, on its own line
        b: tuple[str, ...] = ("x",)
        c: float = 0.5

    options = describe(C)
    assert [(o.name, o.type, o.default, o.comment) for o in options] == [
        ("a", "int", 1, "beside"),
        ("b", "list of str", ("x",), "above, on its own line"),
        ("c", "float", 0.5, ""),
    ]


def test_help_text_shows_quick_values():
    text = options_help(study_module("encoder-size"))
    line = "speed_batches = [128, 256]  (list of int, of length 1 to 64; each in [1, 1048576]; --quick: [16, 32])"
    assert line in text
    assert "memory = true  (bool; --quick: false)" in text


def test_context_steps_and_data(tmp_path):
    calls = []
    ctx = StudyContext("wifi", tmp_path / "o", data=tmp_path / "w.txt", progress=lambda d, t: calls.append((d, t)))
    ctx.begin(2)
    ctx.step("one")
    ctx.step("two")
    ctx.step("beyond")  # never past the total
    assert calls == [(0, 2), (1, 2), (2, 2), (2, 2)]
    assert ctx.data_path("wifi") == tmp_path / "w.txt"
    assert ctx.runs == tmp_path / "o" / "runs"


def test_shape_difference_by_hand():
    assert shape_difference(np.array([4.0, 2.0, 1.0]), np.array([8.0, 4.0, 2.0])) == 0.0  # same shape, other scale
    assert shape_difference(np.array([4.0, 2.0, 1.0]), np.array([2.0, 2.0, 1.0])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one length"):
        shape_difference(np.array([1.0, 2.0]), np.array([1.0]))
