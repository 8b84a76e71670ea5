"""Every declared option fuzzed: a hostile value is a one-line ConfigError naming the key, or satisfies the declaration.

The keys are enumerated from the dataclasses themselves (RunConfig's sections, every registered study's Config,
every analysis section's Config), so a new option is fuzzed without a new test.
"""

from __future__ import annotations

import itertools
import math
import types
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zspace.config import (
    SEED_MAX,
    DataConfig,
    Distinct,
    Len,
    ModelConfig,
    OneOf,
    Ordered,
    Range,
    TrainConfig,
    Without,
    declarations,
    from_mapping,
    load_config,
)
from zspace.errors import ConfigError
from zspace.sections import SECTIONS, section_module
from zspace.studies import STUDIES, study_module

HOSTILE = [
    -1,
    0,
    -(10**30),
    10**30,
    2**32,
    float("nan"),
    float("inf"),
    -float("inf"),
    1e20,
    True,
    "zero",
    "Ωmega²",
    "*?[",
    [],
    [1] * 10_000,
    ["*?["] * 10_000,
    {"a": 1},
]
FUZZ = settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def _keys() -> list[tuple[str, type, str, str]]:
    """(kind, dataclass, prefix, field) for every declared option."""
    sections = (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig))
    out = [("run", c, f"{s}.", n) for s, c in sections for n in declarations(c)]
    for name in STUDIES:
        cls = study_module(name).Config
        out += [(f"study {name}", cls, "", n) for n in declarations(cls)]
    for key in SECTIONS:
        cls = section_module(key).Config
        out += [("analysis", cls, f"{key}.", n) for n in declarations(cls)]
    return out


KEYS = _keys()


def _build(cls: type, prefix: str, name: str, value: object) -> object:
    if prefix.rstrip(".") in ("data", "model", "train") and cls in (DataConfig, ModelConfig, TrainConfig):
        return getattr(load_config(None, [(prefix + name, value)]), prefix.rstrip("."))
    return from_mapping(cls, {name: value}, prefix)


def _satisfies(decl: object, value: object) -> bool:
    """The declaration checked here independently of zspace.config's own checks."""
    if isinstance(decl, Range) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return math.isfinite(value) and (decl.lo is None or decl.lo <= value) and (decl.hi is None or value <= decl.hi)
    if isinstance(decl, OneOf):
        return value in decl.choices
    if isinstance(decl, Len) and isinstance(value, (list, tuple, str)):
        return decl.lo <= len(value) <= decl.hi
    if isinstance(decl, Ordered) and isinstance(value, (list, tuple)):
        steps = [b - a for a, b in itertools.pairwise(value)]
        return all(d > 0 if decl.strict else d >= 0 for d in steps)
    if isinstance(decl, Without) and isinstance(value, str):
        return not set(decl.chars) & set(value)
    if isinstance(decl, Distinct) and isinstance(value, (list, tuple)):
        return all(a != b for i, a in enumerate(value) for b in value[i + 1 :])
    return True


def _check(cls: type, prefix: str, name: str, value: object) -> None:
    try:
        obj = _build(cls, prefix, name, value)
    except ConfigError as e:
        msg = str(e)
        assert "\n" not in msg, msg
        assert len(msg) < 2000, msg
        assert prefix + name in msg or (prefix == "" and repr(name) in msg), msg
        return
    got = getattr(obj, name)
    tp, meta, _items = declarations(cls)[name]
    assert all(_satisfies(d, got) for d in meta), (prefix + name, got)
    for decl, v in _item_declarations(tp, got):  # items of lists, and of lists of pairs, at every depth
        assert _satisfies(decl, v), (prefix + name, got)
    if isinstance(got, float):
        assert math.isfinite(got), (prefix + name, got)


def _item_declarations(tp: object, value: object) -> list[tuple[object, object]]:
    """(declaration, item) for every item of list ``value`` of declared type ``tp``, nested lists included."""
    if not isinstance(value, (list, tuple)):
        return []
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next((a for a in typing.get_args(tp) if typing.get_origin(a) is tuple), None)
    if typing.get_origin(tp) is not tuple:
        return []
    args = typing.get_args(tp)
    item_types = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
    out = []
    for t, v in zip(item_types, value, strict=False):
        decls: tuple[object, ...] = ()
        if typing.get_origin(t) is typing.Annotated:
            t, *rest = typing.get_args(t)
            decls = tuple(rest)
        out += [(d, v) for d in decls] + _item_declarations(t, v)
    return out


def test_every_kind_of_config_is_enumerated():
    kinds = {k.split()[0] for k, *_ in KEYS}
    assert kinds == {"run", "study", "analysis"}
    names = {p + n for _, _, p, n in KEYS}
    assert {"model.z_dim", "train.seed", "data.class_names", "accuracy_ks", "decode.seed"} <= names


def test_every_option_declares_its_range_or_choices():
    """An option without a declaration is checked by its type alone (a NaN ratio, an unknown name in a list, a
    count of 10**30 pass): every number, text and list of every config says what it accepts (bools need nothing)."""
    bare = []
    for _kind, cls, prefix, name in KEYS:
        tp, meta, items = declarations(cls)[name]
        if tp is not bool and not meta and not items:
            bare.append(prefix + name)
    assert bare == []


@pytest.mark.parametrize(("kind", "cls", "prefix", "name"), KEYS, ids=[f"{k}:{p}{n}" for k, _, p, n in KEYS])
def test_hostile_values_are_one_line_or_satisfy_the_declaration(kind, cls, prefix, name):
    for value in HOSTILE:
        _check(cls, prefix, name, value)


@FUZZ
@given(
    key=st.sampled_from(KEYS),
    value=st.one_of(
        st.integers(-(10**30), 10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.lists(st.integers(-5, 10**6), max_size=5),
        st.lists(st.text(max_size=3), max_size=3),
        st.none(),
    ),
)
def test_fuzzed_values(key, value):
    _kind, cls, prefix, name = key
    _check(cls, prefix, name, value)


def test_the_hostile_testers_cases_are_refused():
    cases = [
        (study_module("mnist-kmeans").Config, "accuracy_ks", [0]),
        (study_module("mnist-kmeans").Config, "limit", -1),
        (study_module("mnist-kmeans").Config, "tsne_points", 1),
        (study_module("mnist-latent").Config, "algorithms", ["elkan"]),
        (study_module("wifi").Config, "algorithm", "elkan"),
        (study_module("wifi").Config, "splits", 10**22),
        (study_module("kl-sweep").Config, "epochs", 0),
    ]
    for cls, name, value in cases:
        with pytest.raises(ConfigError, match=name):
            from_mapping(cls, {name: value})
    with pytest.raises(ConfigError, match=r"one of minibatch, lloyd, got 'elkan'"):
        from_mapping(study_module("mnist-latent").Config, {"algorithms": ["elkan"]})
    for key, value in [("model.z_dim", 10**9), ("model.filters", [8] * 17), ("train.seed", SEED_MAX + 1)]:
        with pytest.raises(ConfigError, match=key):
            load_config(None, [(key, value)])
    assert load_config(None, [("train.seed", SEED_MAX)]).train.seed == SEED_MAX


# ---- through the command line ------------------------------------------------------------------------------------


def _out_of_range(decl: Range, step: int) -> int:
    return int(decl.lo) - step if decl.lo is not None else int(decl.hi) + step


def _run_cli(argv: list[str], tmp_path, capsys) -> str:
    from zspace.cli.main import main

    before = sorted(tmp_path.rglob("*"))
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, (argv, err)
    assert len(err.splitlines()) == 1, err
    assert sorted(tmp_path.rglob("*")) == before, argv
    return err


RUN_RANGES = [
    (p + n, d)
    for _, c, p, n in KEYS[: sum(1 for k in KEYS if k[0] == "run")]
    for d in declarations(c)[n][1]
    if isinstance(d, Range) and declarations(c)[n][0] is int
]


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(case=st.sampled_from(RUN_RANGES), step=st.sampled_from([1, 7, 10**12, 10**30]))
def test_cli_train_set_out_of_range(case, step, tmp_path_factory, monkeypatch, capsys):
    work = tmp_path_factory.mktemp("work")
    monkeypatch.chdir(work)
    cfg = tmp_path_factory.mktemp("cfg") / "tiny.toml"
    cfg.write_text('[data]\nname = "digits"\n')
    key, decl = case
    err = _run_cli(["train", str(cfg), "--set", f"{key}={_out_of_range(decl, step)}"], work, capsys)
    assert key in err


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(
    command=st.sampled_from(["sample", "reconstruct", "interpolate", "quality", "analyze", "embed", "train"]),
    seed=st.sampled_from([-1, SEED_MAX + 1, -(10**30), 10**30]) | st.sampled_from(["x", "1.5", "nan", "*?["]),
)
def test_cli_seed_flags(command, seed, tmp_path_factory, monkeypatch, capsys):
    work = tmp_path_factory.mktemp("work")
    monkeypatch.chdir(work)
    target = "tiny.toml" if command == "train" else "somerun"
    err = _run_cli([command, target, "--seed", str(seed)], work, capsys)
    assert "--seed" in err


@pytest.mark.parametrize("study", list(STUDIES))
@pytest.mark.parametrize("seed", ["-1", str(SEED_MAX + 1)])
def test_cli_study_seed(study, seed, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert "--seed" in _run_cli(["study", study, "--seed", seed], tmp_path, capsys)


@pytest.mark.parametrize(
    ("study", "setting"),
    [
        ("mnist-kmeans", "accuracy_ks=[0]"),
        ("mnist-kmeans", "limit=-1"),
        ("wifi", 'algorithm="elkan"'),
        ("mnist-latent", "tsne_points=1"),
        ("kl-sweep", "epochs=0"),
        ("wifi", "splits=1e22"),
    ],
)
def test_cli_study_set(study, setting, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    err = _run_cli(["study", study, "--set", setting], tmp_path, capsys)
    assert setting.split("=")[0] in err
