"""Config parsing: TOML, overrides, unknown keys and values that cannot work."""

from __future__ import annotations

import pytest

from zspace.config import RunConfig, load_config, packaged_config
from zspace.errors import ConfigError


def test_defaults_are_the_published_settings():
    cfg = RunConfig()
    assert cfg.model.filters == (32, 64, 128, 256)
    assert (cfg.model.kernel, cfg.model.stride, cfg.model.z_dim) == (3, 2, 256)
    assert (cfg.train.lr, cfg.train.batch_size, cfg.train.epochs) == (5e-4, 128, 24)
    assert cfg.model.eps_clip == 5.0


def test_toml_and_overrides(tmp_path):
    f = tmp_path / "x.toml"
    f.write_text('[model]\nkind = "ae"\nz_dim = 16\n[train]\nlr = 1\n')
    cfg = load_config(f, ["model.z_dim=32", "data.path=/some/where", "model.filters=[8, 16]", "train.lr=0.5"])
    assert cfg.name == "x"
    assert cfg.model.kind == "ae"
    assert cfg.model.z_dim == 32
    assert cfg.model.filters == (8, 16)
    assert cfg.data.path == "/some/where"
    assert cfg.train.lr == 0.5  # int in the file, float after the override
    assert load_config(None, ["model.eps_clip=false"]).model.eps_clip is None
    assert load_config(None, ["model.eps_clip=0"]).model.eps_clip is None


def test_round_trip_through_dict():
    cfg = load_config(None, ["model.z_dim=7", "model.extra_dense=3"])
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.zdim=3", "unknown config key 'model.zdim'"),
        ("modle.z_dim=3", "unknown config key 'modle'"),
        ("model.z_dim=0", r"'model.z_dim': must be in \[1, 65536\], got 0"),
        ("model.z_dim=2.5", "'model.z_dim' must be int"),
        ("model.kernel=4", "odd"),
        ("train.batch_size=-1", r"'train.batch_size': must be in \[1, 1048576\], got -1"),
        ("model.reconstruction=l1", "must be one of bce, mse"),
        ("data.test_fraction=1.5", "test_fraction"),
        ("z_dim", "key=value"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


@pytest.mark.parametrize("name", ["digits-demo", "mnist-ae25", "celeba-ae", "celeba-vae-tiny-kl", "celeba-vae"])
def test_shipped_configs_parse(name):
    cfg = load_config(packaged_config(name))
    assert cfg.name == name
    if name.startswith("celeba"):
        assert (cfg.data.image_size, cfg.model.z_dim, cfg.train.epochs) == (96, 256, 24)
    if name == "celeba-vae-tiny-kl":
        assert cfg.model.kl_weight == 1e-5
    if name == "celeba-vae":
        assert cfg.model.kl_weight == 5.0


def test_fixed_length_tuples_are_checked():
    from dataclasses import dataclass

    from zspace.config import from_mapping

    @dataclass
    class Planes:
        planes: tuple[tuple[int, int], ...] = ((1, 2),)
        band: tuple[float, float] = (0.05, 2.0)

    assert from_mapping(Planes, {"planes": [[1, 18], [8, 35]], "band": [0, 1]}) == Planes(
        ((1, 18), (8, 35)), (0.0, 1.0)
    )
    with pytest.raises(ConfigError, match="list of 2 values"):
        from_mapping(Planes, {"planes": [[1, 2, 3]]})
    with pytest.raises(ConfigError, match="list of 2 values"):
        from_mapping(Planes, {"band": [1.0]})
