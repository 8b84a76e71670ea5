"""Typed run configuration: stdlib dataclasses read from TOML, overridable with ``key=value`` strings.

A run is described by one :class:`RunConfig` with three sections, ``data``, ``model`` and ``train``. The
resolved config is written next to every artifact (``config.json`` in the run folder), so a run can be
rebuilt from its folder alone.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import sys
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from zspace.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Range:
    """Declared bounds of a number (``Annotated[int, Range(1, 4096)]``); None = unbounded on that side."""

    lo: float | None = None
    hi: float | None = None

    def check(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return True  # the type check names wrong types
        return (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)

    def __str__(self) -> str:
        lo = "-inf" if self.lo is None else _num(self.lo)
        hi = "inf" if self.hi is None else _num(self.hi)
        return f"in [{lo}, {hi}]"


@dataclass(frozen=True)
class OneOf:
    """Declared choices of an option (``Annotated[str, OneOf("center", "none")]``)."""

    choices: tuple[Any, ...]

    def __init__(self, *choices: Any) -> None:
        object.__setattr__(self, "choices", choices)

    def check(self, value: Any) -> bool:
        return any(value == c and type(value) is type(c) for c in self.choices)

    def __str__(self) -> str:
        return "one of " + ", ".join(json.dumps(c) if isinstance(c, bool) else str(c) for c in self.choices)


@dataclass(frozen=True)
class Len:
    """Declared length bounds of a list option; its items carry their own declarations."""

    lo: int = 0
    hi: int = 1024

    def check(self, value: Any) -> bool:
        return not isinstance(value, (list, tuple, str)) or self.lo <= len(value) <= self.hi

    def __str__(self) -> str:
        return f"of length {self.lo} to {self.hi}"


@dataclass(frozen=True)
class Ordered:
    """Declared order of a pair or list of numbers (``Annotated[tuple[float, float], Ordered()]``: low < high);
    ``strict=False`` allows equal neighbours."""

    strict: bool = True

    def check(self, value: Any) -> bool:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, (int, float)) for v in value):
            return True  # the type check names wrong types
        pairs = itertools.pairwise(value)
        return all(a < b if self.strict else a <= b for a, b in pairs)

    def __str__(self) -> str:
        return "increasing" if self.strict else "non-decreasing"


@dataclass(frozen=True)
class Distinct:
    """Declared distinct items of a list (``Annotated[tuple[PC, PC], Distinct()]``: a plane of two different
    components, not one component against itself)."""

    def check(self, value: Any) -> bool:
        if not isinstance(value, (list, tuple)):
            return True  # the type check names wrong types
        try:
            return len(set(value)) == len(value)
        except TypeError:  # unhashable items: the type check names them
            return True

    def __str__(self) -> str:
        return "made of distinct values"


@dataclass(frozen=True)
class Without:
    """Declared characters a text option must not hold (``Annotated[str, Without("\\0")]``: no NUL byte)."""

    chars: str = "\0"

    def check(self, value: Any) -> bool:
        return not isinstance(value, str) or not any(c in value for c in self.chars)

    def __str__(self) -> str:
        return "without " + ", ".join("NUL" if c == "\0" else repr(c) for c in self.chars)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e18 else repr(x)


SEED_MAX = 2**32 - 1
Seed = typing.Annotated[int, Range(0, SEED_MAX)]
Count = typing.Annotated[int, Range(0, 2**31 - 1)]  # a size or count; 0 usually means "all" or "none"
Name = typing.Annotated[str, Len(0, 4096)]
Key = typing.Annotated[str, Len(1, 200), Without("\0")]  # a registry key, device or column name: short, no NUL
PathText = typing.Annotated[str, Len(1, 4096), Without("\0")]  # a file or folder path as given
Interval = typing.Annotated[  # (low, high), low < high, e.g. a range of latent values
    tuple[typing.Annotated[float, Range(-1e6, 1e6)], typing.Annotated[float, Range(-1e6, 1e6)]], Ordered()
]
ClusterKs = typing.Annotated[tuple[typing.Annotated[int, Range(1, 100000)], ...], Len(1, 64)]  # cluster numbers k
Scalers = typing.Annotated[tuple[typing.Annotated[str, OneOf("none", "normalizer", "standard")], ...], Len(1, 3)]


def declarations(cls: type) -> dict[str, tuple[Any, tuple[Any, ...], tuple[Any, ...]]]:
    """Each field of dataclass ``cls``: (bare type, its declarations, its items' declarations for a tuple)."""
    out = {}
    for name, tp in typing.get_type_hints(cls, include_extras=True).items():
        if name not in {f.name for f in dataclasses.fields(cls)}:
            continue
        meta: tuple[Any, ...] = ()
        if typing.get_origin(tp) is typing.Annotated:
            tp, *rest = typing.get_args(tp)
            meta = tuple(rest)
        items: tuple[Any, ...] = ()
        for arg in typing.get_args(tp) if typing.get_origin(tp) in (tuple, typing.Union, types.UnionType) else ():
            if typing.get_origin(arg) is typing.Annotated:
                items += tuple(typing.get_args(arg)[1:])
        out[name] = (tp, meta, items)
    return out


def check_declared(obj: Any, prefix: str = "") -> None:
    """Enforce every declared type bound of dataclass ``obj`` (nested ones too); the first violation is a ConfigError.

    The message is one line naming the key, what is allowed and the value (cut short).
    """
    for name, (tp, meta, _items) in declarations(type(obj)).items():
        value = getattr(obj, name)
        key = prefix + name
        if dataclasses.is_dataclass(value):
            check_declared(value, key + ".")
            continue
        _check_value(key, value, meta)
        _check_items(key, value, tp)


def _check_items(key: str, value: Any, tp: Any) -> None:
    """The declarations of the items of list ``value`` (of declared type ``tp``), at every depth."""
    if not isinstance(value, (list, tuple)):
        return
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tuples = [a for a in typing.get_args(tp) if typing.get_origin(a) is tuple]
        if not tuples:
            return
        tp = tuples[0]
    if typing.get_origin(tp) is not tuple:
        return
    args = typing.get_args(tp)
    types_ = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
    for v, t in zip(value, types_, strict=False):
        meta: tuple[Any, ...] = ()
        if typing.get_origin(t) is typing.Annotated:
            t, *rest = typing.get_args(t)
            meta = tuple(rest)
        _check_value(key, v, meta, item=True)
        _check_items(key, v, t)


def _check_value(key: str, value: Any, meta: tuple[Any, ...], item: bool = False) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key {key!r} must be finite, got {short_repr(value)}")
    for d in meta:
        if hasattr(d, "check") and not d.check(value):
            what = "each value " if item else ""
            raise ConfigError(f"config key {key!r}: {what}must be {d}, got {short_repr(value)}")


def check_declared_value(key: str, value: Any, tp: Any) -> None:
    """Check one ``value`` against a declared type such as :data:`Seed` (an int of its range): a key that lives
    outside a dataclass (the analysis config's top-level ``seed``) obeys the same declaration."""
    base, *meta = typing.get_args(tp) if typing.get_origin(tp) is typing.Annotated else (tp,)
    if base is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise ConfigError(f"config key {key!r} must be int, got {short_repr(value)}")
    _check_value(key, value, tuple(meta))


def declared_arg(tp: Any, flag: str) -> Any:
    """An argparse ``type=`` that parses a flag as the declared ``tp`` (e.g. :data:`Seed`) and enforces it.

    A bad value raises :class:`ConfigError` (argparse lets it through), which ``zspace.cli.main`` prints as one line.
    """
    base, *meta = typing.get_args(tp) if typing.get_origin(tp) is typing.Annotated else (tp,)

    def parse(text: str) -> Any:
        try:
            value = base(text)
        except ValueError:
            raise ConfigError(f"{flag} must be {base.__name__}, got {short_repr(text)}") from None
        for d in meta:
            if (isinstance(value, float) and not math.isfinite(value)) or not d.check(value):
                raise ConfigError(f"{flag} must be {d}, got {short_repr(text)}")
        return value

    parse.__name__ = base.__name__
    return parse


SEED_ARG = declared_arg(Seed, "--seed")  # the ``type=`` of every command's --seed flag


def declared_help(cls: type, name: str) -> str:
    """The declarations of field ``name`` of ``cls`` in words (``in [1, 4096]``), or ``""``."""
    _tp, meta, items = declarations(cls).get(name, (None, (), ()))
    parts = [str(d) for d in meta if hasattr(d, "check")] + [f"each {d}" for d in items if hasattr(d, "check")]
    return "; ".join(parts)


@dataclass
class DataConfig:
    name: Key = "digits"  # dataset registry key: digits, mnist, celeba, images, wifi
    path: Annotated[str | None, Len(1, 4096), Without("\0")] = None  # folder or file of the data; None: digits
    # square side the images are resized to; 0 = the dataset's own default
    image_size: Annotated[int, Range(0, 4096)] = 0
    # "center": crop the largest centred square first; "none": resize the whole image
    crop: Annotated[str, OneOf("center", "none")] = "center"
    # use at most this many images (per split where the source has splits); 0 = all
    limit: Annotated[int, Range(0, 2**31 - 1)] = 0
    # held-out share for sources without an official train/test split
    test_fraction: Annotated[float, Range(0, 0.99)] = 0.1
    split_seed: Seed = 0  # the train/test split is a pure function of this seed
    # CelebA attribute file; None = look for list_attr_celeba*.txt nearby
    attributes: Annotated[str | None, Len(1, 4096), Without("\0")] = None
    strict: bool = False  # a corrupt image is an error instead of a skipped, reported file
    # decoded-image cache; None = $ZSPACE_CACHE_DIR or ~/.cache/zspace
    cache_dir: Annotated[str | None, Len(1, 4096), Without("\0")] = None
    workers: Annotated[int, Range(0, 4096)] = 0  # processes decoding images into the cache; 0 = one per CPU core
    # names of classes 0..K-1 for legends and confusion matrices; () = the numbers
    class_names: Annotated[tuple[Annotated[str, Len(1, 200)], ...], Len(0, 65536)] = ()


@dataclass
class ModelConfig:
    kind: Key = "vae"  # model registry key: "ae" or "vae"
    z_dim: Annotated[int, Range(1, 65536)] = 256  # size of the latent space
    filters: Annotated[tuple[Annotated[int, Range(1, 65536)], ...], Len(1, 16)] = (
        32,
        64,
        128,
        256,
    )  # Conv2D filters per encoder layer (mirrored in the decoder)
    kernel: Annotated[int, Range(1, 63)] = 3  # convolution kernel size (odd, "same" padding)
    stride: Annotated[int, Range(1, 64)] = 2  # stride of every convolution
    leaky_slope: Annotated[float, Range(0, 1e6)] = 0.3  # negative slope of the leaky ReLU (Keras' LeakyReLU default)
    batch_norm: bool = False  # BatchNorm after each hidden convolution (the AE of post XIII had none)
    # width of an extra Dense layer between Flatten and the heads; 0 = none (post XII)
    extra_dense: Annotated[int, Range(0, 2**20)] = 0
    # |eps| >= eps_clip is scaled back to eps_clip; None/0/false = no clipping
    eps_clip: Annotated[float | None, Range(0, 1e6)] = 5.0
    # z = mu + exp(logvar / 2) * eps * eps_factor; changeable at inference
    eps_factor: Annotated[float, Range(0, 1e6)] = 1.0
    # the series' "fact": total = reco + kl_weight * KL (1e-5 tiny KL, 5 generative)
    # (beta-VAEs use up to a few hundred; beyond 1e4 every unit is collapsed to the prior long before)
    kl_weight: Annotated[float, Range(0, 1e4)] = 1.0
    # "bce" (Keras convention: channel mean, pixel sum) or "mse" (same reduction)
    reconstruction: Annotated[str, OneOf("bce", "mse")] = "bce"
    image_size: Annotated[int, Range(0, 4096)] = 0  # input side; 0 = taken from the data section
    channels: Annotated[int, Range(0, 4096)] = 0  # input channels; 0 = taken from the dataset
    # weight initialisation: "torch" (PyTorch's default) or "glorot" (Keras': uniform, zero bias)
    init: Annotated[str, OneOf("torch", "glorot")] = "torch"


@dataclass
class TrainConfig:
    epochs: Annotated[int, Range(1, 100000)] = 24  # passes over the training split
    batch_size: Annotated[int, Range(1, 2**20)] = 128  # images per optimiser step
    lr: Annotated[float, Range(1e-30, 1e6)] = 5e-4  # Adam learning rate
    seed: Seed = 0  # seeds weights, batch order and the VAE's eps; same seed, same run
    device: Annotated[str, Len(1, 64), Without("\0")] = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:N"
    # "auto" (bf16 autocast on CUDA and AMX CPUs, else fp32), "fp32" or "bf16"
    precision: Annotated[str, OneOf("auto", "fp32", "bf16")] = "auto"
    # also checkpoint every N optimiser steps inside an epoch; 0 = epoch ends only
    checkpoint_every: Annotated[int, Range(0, 2**31 - 1)] = 0
    threads: Annotated[int, Range(0, 2**31 - 1)] = 0  # torch CPU threads; 0 = torch's default
    # "auto": the uint8 cache on the device when it fits; "on"; "off" (memory map)
    data_on_device: Annotated[str, OneOf("auto", "on", "off")] = "auto"
    # read the loss back from the device every N steps (a non-finite loss is still named exactly)
    log_every: Annotated[int, Range(1, 2**31 - 1)] = 50
    channels_last: bool = True  # NHWC memory format for the convolutions (1.19x on a 2-core CPU for the 96x96 VAE)
    # torch.compile the step: true/"default", or "reduce-overhead" (CUDA graphs)
    compile: Annotated[bool | str, OneOf(False, True, "default", "reduce-overhead")] = False
    # seconds a process waits for the others (torchrun/DDP) before giving up
    dist_timeout: Annotated[float, Range(1e-3, 1e7)] = 300.0
    # training images encoded after every epoch: latent radius in history.csv; 0 = none
    radius_probe: Annotated[int, Range(0, 2**20)] = 512
    keep_checkpoints: bool = False  # also keep every epoch's checkpoint as checkpoints/epoch-NNN.safetensors
    # start a new run from this checkpoint (its weights, Adam, RNG and epoch)
    init_from: Annotated[str | None, Len(1, 4096), Without("\0")] = None
    tensorboard: bool = False  # also write each epoch's numbers to RUN/tensorboard (needs the tensorboard package)
    # the KL weight rises linearly from 0 to model.kl_weight over these epochs
    kl_warmup_epochs: Annotated[float, Range(0, 100000)] = 0.0
    # "constant", or "cyclical" (Fu et al. 2019: kl_cycles ramps of kl_cycle_ratio)
    kl_schedule: Annotated[str, OneOf("constant", "cyclical")] = "constant"
    kl_cycles: Annotated[int, Range(1, 100000)] = 4  # cyclical: cycles over the whole training (the paper's M)
    # cyclical: share of each cycle over which the weight rises from 0 (the paper's R)
    kl_cycle_ratio: Annotated[float, Range(1e-9, 1)] = 0.5


@dataclass
class RunConfig:
    name: Annotated[str, Len(1, 4096)] = "run"  # run folder name under out_dir (validate: a folder name)
    out_dir: PathText = "runs"  # parent folder of run folders
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON-able values."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Build and validate a config from nested dicts; unknown keys are a :class:`ConfigError`."""
        cfg = from_mapping(cls, d)
        validate(cfg)
        return cfg


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def packaged_config(name: str) -> Path:
    """Path of a config shipped in ``zspace/configs`` (``name`` without ``.toml``); an unknown name is a ConfigError."""
    from importlib import resources

    path = Path(str(resources.files("zspace") / "configs" / f"{name}.toml"))
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.toml"))
        raise ConfigError(f"no shipped config {name!r} (shipped: {', '.join(known)})")
    return path


def load_config(path: str | Path | None = None, overrides: Iterable[str | tuple[str, Any]] = ()) -> RunConfig:
    """Read a TOML config (or start from the defaults) and apply ``key=value`` overrides.

    Parameters
    ----------
    path : path of a TOML file, or None for the defaults. The run name defaults to the file's stem.
    overrides : strings like ``"model.z_dim=32"`` (the value is parsed as TOML, else taken as a string), or
        ``(key, value)`` pairs taken as they are.
    """
    d: dict[str, Any] = {}
    if path is not None:
        d = load_toml(path)
        d.setdefault("name", Path(path).stem)
    for item in overrides:
        key, value = item if isinstance(item, tuple) else parse_override(item)
        set_key(d, key, value)
    return RunConfig.from_dict(d)


def parse_override(item: str) -> tuple[str, Any]:
    """Split ``"a.b=value"`` into the key and a TOML-parsed value (a bare string when it is not TOML)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} is not of the form key=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


def set_key(d: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key in nested dicts, creating sections on the way."""
    *parents, last = key.split(".")
    for p in parents:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ConfigError(f"config key {key!r}: {p!r} is not a section")
    d[last] = value


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; a missing or invalid file is a :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None


def from_mapping(cls: type, d: Any, prefix: str = "") -> Any:
    """Build dataclass ``cls`` (nested dataclasses too) from dicts, checking keys and value types."""
    if not isinstance(d, dict):
        raise ConfigError(f"config section {prefix.rstrip('.') or 'top'} must be a table, got {short_repr(d)}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix + unknown[0]!r} (known in this section: {', '.join(sorted(names))})"
        )
    kwargs = {}
    for name, value in d.items():
        key = prefix + name
        if dataclasses.is_dataclass(hints[name]):
            kwargs[name] = from_mapping(hints[name], value, key + ".")
        else:
            kwargs[name] = _coerce(hints[name], value, key)
    obj = cls(**kwargs)
    check_declared(obj, prefix)
    return obj


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Check ``value`` against the annotated type; ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and (value is None or value in (False, "none", "off")):
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key)
            except ConfigError:
                pass
        raise ConfigError(f"config key {key!r} cannot be {short_repr(value)}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r} must be a list, got {short_repr(value)}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, key) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"config key {key!r} must be a list of {len(args)} values, got {short_repr(value)}")
        return tuple(_coerce(t, v, key) for t, v in zip(args, value, strict=True))
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is bool and isinstance(value, bool):
        return value
    if tp is str and isinstance(value, str):
        return value
    raise ConfigError(f"config key {key!r} must be {getattr(tp, '__name__', tp)}, got {short_repr(value)}")


def validate(cfg: RunConfig) -> None:
    """Reject values that cannot work, naming the key. Shape checks needing the data happen at model build."""
    m = cfg.model
    _check_finite(cfg)
    check_declared(cfg)  # types and ranges, declared beside each default
    checks = [
        (m.kernel % 2 == 1, "model.kernel must be a positive odd number", m.kernel),
        (
            _is_folder_name(cfg.name),
            "name must be a folder name (no '/', NUL, '.', '..'; <= 200 bytes)",
            cfg.name,
        ),
        ("\0" not in cfg.out_dir and bool(cfg.out_dir), "out_dir must be a path without NUL bytes", cfg.out_dir),
    ]
    for ok, msg, value in checks:
        if not ok:
            raise ConfigError(f"{msg}, got {short_repr(value)}")
    if m.eps_clip == 0:
        m.eps_clip = None


def _is_folder_name(name: str) -> bool:
    return (
        bool(name)
        and "/" not in name
        and "\0" not in name
        and name not in (".", "..")
        and len(name.encode("utf-8", "surrogatepass")) <= 200
    )


def _check_finite(cfg: RunConfig) -> None:
    for section in ("data", "model", "train"):
        check_finite(getattr(cfg, section), f"{section}.")


def check_finite(obj: Any, prefix: str = "") -> None:
    """NaN or infinity in any float field of dataclass ``obj`` (lists too) is a :class:`ConfigError` naming it."""

    def bad(value: Any) -> bool:
        if isinstance(value, float):
            return not math.isfinite(value)
        return isinstance(value, (list, tuple)) and any(bad(v) for v in value)

    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            check_finite(value, f"{prefix}{f.name}.")
        elif bad(value):
            raise ConfigError(f"config key '{prefix}{f.name}' must be finite, got {short_repr(value)}")


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters so an error stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
