"""Declarations of text, path and list-of-pairs options, checked at every depth, and colourings checked against the
data before any analysis runs (issue 16, part 2). test_declared.py fuzzes every key; these are the hand-computed
cases."""

from __future__ import annotations

import numpy as np
import pytest

from zspace.config import Distinct, Len, OneOf, Ordered, Range, Without, declarations, from_mapping, load_config
from zspace.errors import ConfigError
from zspace.sections import section_module


def analysis(key: str, name: str, value: object) -> object:
    return getattr(from_mapping(section_module(key).Config, {name: value}, f"{key}."), name)


@pytest.mark.parametrize(
    ("key", "name", "value", "match"),
    [
        ("decode", "ranges", [[2, -2]], r"'decode.ranges': each value must be increasing, got \(2.0, -2.0\)"),
        ("decode", "ranges", [[-1e30, 0]], r"'decode.ranges': each value must be in \[-1000000, 1000000\]"),
        ("decode", "ranges", [], r"'decode.ranges': must be of length 1 to 16"),
        ("decode", "ranges", [[1, 2, 3]], r"'decode.ranges' must be a list of 2 values"),
        ("radius", "shells", [[-1, 2]], r"'radius.shells': each value must be in \[0, 1000000\], got -1.0"),
        ("radius", "shells", [[3, 2]], r"'radius.shells': each value must be non-decreasing"),
        ("radius", "fine_width", -0.05, r"'radius.fine_width': must be in"),
        ("pca", "planes", [[0, 2]], r"'pca.planes': each value must be in \[1, 65536\], got 0"),
        ("pca", "planes", [[1, 2, 3]], r"'pca.planes' must be a list of 2 values"),
        ("pca", "axis_planes", [[-1, 2]], r"'pca.axis_planes': each value must be in \[0, 65535\], got -1"),
        ("pca", "zooms", [-1], r"'pca.zooms': each value must be in \[0, 1000000\]"),
        ("pca", "zooms", [], r"'pca.zooms': must be of length 1 to 16"),
        ("pca", "color_by", "", r"'pca.color_by': must be of length 1 to 200"),
        ("tsne", "sizes", [3], r"'tsne.sizes': each value must be in \[4, 2147483647\], got 3"),
        ("tsne", "sizes", [10**12], r"'tsne.sizes': each value must be in"),
        ("tsne", "presets", ["bogus"], r"'tsne.presets': each value must be one of default, series, got 'bogus'"),
        ("tsne", "pca_components", [0], r"'tsne.pca_components': each value must be in \[1, 65536\]"),
        ("tsne", "color_by", "x" * 300, r"'tsne.color_by': must be of length 1 to 200"),
        ("axes", "chosen", [-1], r"'axes.chosen': each value must be in \[0, 65535\], got -1"),
        ("axes", "centre_threshold", -1, r"'axes.centre_threshold': must be in \[0, 1000000\]"),
    ],
)
def test_nested_and_list_declarations_are_one_line(key, name, value, match):
    with pytest.raises(ConfigError, match=match) as e:
        analysis(key, name, value)
    assert "\n" not in str(e.value)


def test_good_nested_values_pass_unchanged():
    assert analysis("decode", "ranges", [[-3, 3]]) == ((-3.0, 3.0),)
    assert analysis("radius", "shells", [[2, 2], [0, 5.5]]) == ((2.0, 2.0), (0.0, 5.5))
    assert analysis("pca", "planes", [[1, 2], [52, 221]]) == ((1, 2), (52, 221))
    assert analysis("tsne", "presets", ["series"]) == ("series",)
    assert analysis("axes", "chosen", [0, 52]) == (0, 52)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("model.kl_weight", 1e12, r"'model.kl_weight': must be in \[0, 10000\], got 1000000000000.0"),
        ("data.path", "a\0b", r"'data.path': must be without NUL"),
        ("data.path", "", r"'data.path': must be of length 1 to 4096"),
        ("data.cache_dir", "x" * 5000, r"'data.cache_dir': must be of length 1 to 4096"),
        ("data.name", "", r"'data.name': must be of length 1 to 200"),
        ("model.kind", "v\0ae", r"'model.kind': must be without NUL"),
        ("train.device", "cuda" * 100, r"'train.device': must be of length 1 to 64"),
        ("train.init_from", "ck\0pt", r"'train.init_from': must be without NUL"),
        ("name", "a/b", r"name must be a folder name"),
        ("name", "", r"'name': must be of length 1 to 4096"),
        ("out_dir", "runs\0", r"'out_dir': must be without NUL"),
    ],
)
def test_run_text_and_path_keys_are_declared(key, value, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, [(key, value)])
    assert load_config(None, [("model.kl_weight", 1e4)]).model.kl_weight == 1e4  # the bound itself is allowed


def test_the_listed_keys_carry_declarations():
    """Each key issue 16 named as undeclared now declares its range (and its items' ranges)."""

    def kinds(cls: type, name: str) -> set[type]:
        _tp, meta, items = declarations(cls)[name]
        return {type(d) for d in (*meta, *items)}

    from zspace.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    assert Range in kinds(ModelConfig, "kl_weight")
    for cls, name in [(DataConfig, "name"), (DataConfig, "path"), (DataConfig, "cache_dir"), (DataConfig, "attributes"),
                      (ModelConfig, "kind"), (TrainConfig, "device"), (TrainConfig, "init_from"),
                      (RunConfig, "out_dir")]:  # fmt: skip
        assert {Len, Without} <= kinds(cls, name), name
    assert Len in kinds(RunConfig, "name")  # validate() says what a folder name is
    expect = {
        ("decode", "ranges"): {Len, Ordered},
        ("radius", "shells"): {Len, Ordered},
        ("pca", "planes"): {Len, Distinct},
        ("pca", "axis_planes"): {Len, Distinct},
        ("pca", "zooms"): {Len, Range},
        ("tsne", "sizes"): {Len, Range},
        ("tsne", "presets"): {Len, OneOf},
        ("axes", "chosen"): {Len, Range},
        ("pca", "color_by"): {Len},
        ("tsne", "color_by"): {Len},
    }
    for (key, name), want in expect.items():
        assert want <= kinds(section_module(key).Config, name), (key, name)


def test_an_unknown_color_by_is_one_line_naming_the_known_colourings_before_any_work(tmp_path, capsys):
    from zspace.cli.main import main

    z = np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32)
    path = tmp_path / "emb.npz"
    np.savez(path, z=z, labels=np.arange(60) % 3)
    before = sorted(tmp_path.rglob("*"))
    rc = main(["analyze", str(path), "--only", "radius,pca", "--set", 'pca.color_by="Smiling"'])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.splitlines() == ["zspace: error: pca.color_by: 'Smiling' is no colouring of emb (known: label)"]
    assert sorted(tmp_path.rglob("*")) == before  # no report, nothing half-written
    rc = main(["analyze", str(path), "--only", "radius,pca", "--set", 'pca.color_by="label"'])
    assert rc == 0, capsys.readouterr().err


def test_a_plane_of_one_component_against_itself_is_refused():
    cfg = section_module("pca").Config
    with pytest.raises(ConfigError, match=r"'pca\.planes': each value must be made of distinct values, got \(1, 1\)"):
        from_mapping(cfg, {"planes": [[1, 2], [1, 1]]}, "pca.")
    with pytest.raises(ConfigError, match=r"'pca\.axis_planes': each value must be made of distinct values"):
        from_mapping(cfg, {"axis_planes": [[3, 3]]}, "pca.")
    assert from_mapping(cfg, {"planes": [[2, 1]]}, "pca.").planes == ((2, 1),)
