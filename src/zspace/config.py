"""Typed run configuration: stdlib dataclasses read from TOML, overridable with ``key=value`` strings.

A run is described by one :class:`RunConfig` with three sections, ``data``, ``model`` and ``train``. The
resolved config is written next to every artifact (``config.json`` in the run folder), so a run can be
rebuilt from its folder alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zspace.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass
class DataConfig:
    name: str = "digits"  # dataset registry key: digits, mnist, celeba, images, wifi
    path: str | None = None  # folder or file of the source data; None only for the bundled digits
    image_size: int = 0  # square side the images are resized to; 0 = the dataset's own default
    crop: str = "center"  # "center": crop the largest centred square first; "none": resize the whole image
    limit: int = 0  # use at most this many images (per split where the source has splits); 0 = all
    test_fraction: float = 0.1  # held-out share for sources without an official train/test split
    split_seed: int = 0  # the train/test split is a pure function of this seed
    attributes: str | None = None  # CelebA attribute file; None = look for list_attr_celeba*.txt nearby
    strict: bool = False  # a corrupt image is an error instead of a skipped, reported file
    cache_dir: str | None = None  # decoded-image cache; None = $ZSPACE_CACHE_DIR or ~/.cache/zspace
    workers: int = 0  # processes decoding images into the cache; 0 = one per CPU core
    class_names: tuple[str, ...] = ()  # names of classes 0..K-1 for legends and confusion matrices; () = the numbers


@dataclass
class ModelConfig:
    kind: str = "vae"  # model registry key: "ae" or "vae"
    z_dim: int = 256  # size of the latent space
    filters: tuple[int, ...] = (
        32,
        64,
        128,
        256,
    )  # Conv2D filters per encoder layer (mirrored in the decoder)
    kernel: int = 3  # convolution kernel size (odd, "same" padding)
    stride: int = 2  # stride of every convolution
    leaky_slope: float = 0.3  # negative slope of the leaky ReLU (Keras' LeakyReLU default)
    batch_norm: bool = False  # BatchNorm after each hidden convolution (the AE of post XIII had none)
    extra_dense: int = 0  # width of an extra Dense layer between Flatten and the heads; 0 = none (post XII)
    eps_clip: float | None = 5.0  # |eps| >= eps_clip is scaled back to eps_clip; None/0/false = no clipping
    eps_factor: float = 1.0  # z = mu + exp(logvar / 2) * eps * eps_factor; changeable at inference
    kl_weight: float = 1.0  # the series' "fact": total = reco + kl_weight * KL (1e-5 tiny KL, 5 generative)
    reconstruction: str = "bce"  # "bce" (Keras convention: channel mean, pixel sum) or "mse" (same reduction)
    image_size: int = 0  # input side; 0 = taken from the data section
    channels: int = 0  # input channels; 0 = taken from the dataset
    init: str = "torch"  # weight initialisation: "torch" (PyTorch's default) or "glorot" (Keras': uniform, zero bias)


@dataclass
class TrainConfig:
    epochs: int = 24  # passes over the training split
    batch_size: int = 128  # images per optimiser step
    lr: float = 5e-4  # Adam learning rate
    seed: int = 0  # seeds weights, batch order and the VAE's eps; same seed, same run
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda" or "cuda:N"
    precision: str = "auto"  # "auto" (bf16 autocast on CUDA and AMX CPUs, else fp32), "fp32" or "bf16"
    checkpoint_every: int = 0  # also checkpoint every N optimiser steps inside an epoch; 0 = epoch ends only
    threads: int = 0  # torch CPU threads; 0 = torch's default
    data_on_device: str = "auto"  # "auto": the uint8 cache on the device when it fits; "on"; "off" (memory map)
    log_every: int = 50  # read the loss back from the device every N steps (a non-finite loss is still named exactly)
    channels_last: bool = True  # NHWC memory format for the convolutions (1.19x on a 2-core CPU for the 96x96 VAE)
    compile: bool | str = False  # torch.compile the step: true/"default", or "reduce-overhead" (CUDA graphs)
    dist_timeout: float = 300.0  # seconds a process waits for the others (torchrun/DDP) before giving up
    radius_probe: int = 512  # training images encoded after every epoch: latent radius in history.csv; 0 = none
    keep_checkpoints: bool = False  # also keep every epoch's checkpoint as checkpoints/epoch-NNN.safetensors
    init_from: str | None = None  # start a new run from this checkpoint (its weights, Adam, RNG and epoch)
    tensorboard: bool = False  # also write each epoch's numbers to RUN/tensorboard (needs the tensorboard package)
    kl_warmup_epochs: float = 0.0  # the KL weight rises linearly from 0 to model.kl_weight over these epochs
    kl_schedule: str = "constant"  # "constant", or "cyclical" (Fu et al. 2019: kl_cycles ramps of kl_cycle_ratio)
    kl_cycles: int = 4  # cyclical: cycles over the whole training (the paper's M)
    kl_cycle_ratio: float = 0.5  # cyclical: share of each cycle over which the weight rises from 0 (the paper's R)


@dataclass
class RunConfig:
    name: str = "run"  # run folder name under out_dir
    out_dir: str = "runs"  # parent folder of run folders
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
_CHOICES = {
    "data.crop": ("center", "none"),
    "model.reconstruction": ("bce", "mse"),
    "train.precision": ("auto", "fp32", "bf16"),
    "train.compile": (False, True, "default", "reduce-overhead"),
    "train.kl_schedule": ("constant", "cyclical"),
    "train.data_on_device": ("auto", "on", "off"),
    "model.init": ("torch", "glorot"),
}


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
        raise ConfigError(f"config section {prefix.rstrip('.') or 'top'} must be a table, got {d!r}")
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
    return cls(**kwargs)


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
        raise ConfigError(f"config key {key!r} cannot be {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r} must be a list, got {value!r}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, key) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"config key {key!r} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(t, v, key) for t, v in zip(args, value, strict=True))
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is bool and isinstance(value, bool):
        return value
    if tp is str and isinstance(value, str):
        return value
    raise ConfigError(f"config key {key!r} must be {getattr(tp, '__name__', tp)}, got {value!r}")


def validate(cfg: RunConfig) -> None:
    """Reject values that cannot work, naming the key. Shape checks needing the data happen at model build."""
    m, t, dc = cfg.model, cfg.train, cfg.data
    _check_finite(cfg)
    checks = [
        (m.z_dim > 0, "model.z_dim must be > 0", m.z_dim),
        (len(m.filters) > 0 and all(f > 0 for f in m.filters), "model.filters must be positive", m.filters),
        (m.kernel > 0 and m.kernel % 2 == 1, "model.kernel must be a positive odd number", m.kernel),
        (m.stride >= 1, "model.stride must be >= 1", m.stride),
        (m.extra_dense >= 0, "model.extra_dense must be >= 0", m.extra_dense),
        (m.eps_clip is None or m.eps_clip >= 0, "model.eps_clip must be >= 0", m.eps_clip),
        (m.kl_weight >= 0, "model.kl_weight must be >= 0", m.kl_weight),
        (m.image_size >= 0 and m.channels >= 0, "model.image_size/channels must be >= 0", m.image_size),
        (t.epochs >= 1, "train.epochs must be >= 1", t.epochs),
        (t.threads >= 0, "train.threads must be >= 0 (0 = torch's default)", t.threads),
        (m.eps_factor >= 0, "model.eps_factor must be >= 0", m.eps_factor),
        (t.batch_size > 0, "train.batch_size must be > 0", t.batch_size),
        (t.lr > 0, "train.lr must be > 0", t.lr),
        (t.checkpoint_every >= 0, "train.checkpoint_every must be >= 0", t.checkpoint_every),
        (t.log_every >= 1, "train.log_every must be >= 1", t.log_every),
        (t.radius_probe >= 0, "train.radius_probe must be >= 0", t.radius_probe),
        (t.dist_timeout > 0, "train.dist_timeout must be > 0 seconds", t.dist_timeout),
        (t.kl_warmup_epochs >= 0, "train.kl_warmup_epochs must be >= 0", t.kl_warmup_epochs),
        (t.kl_cycles >= 1, "train.kl_cycles must be >= 1", t.kl_cycles),
        (0 < t.kl_cycle_ratio <= 1, "train.kl_cycle_ratio must be in (0, 1]", t.kl_cycle_ratio),
        (dc.image_size >= 0, "data.image_size must be >= 0", dc.image_size),
        (dc.limit >= 0, "data.limit must be >= 0", dc.limit),
        (0 <= dc.test_fraction < 1, "data.test_fraction must be in [0, 1)", dc.test_fraction),
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
    for key, choices in _CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value not in choices:
            shown = ", ".join(json.dumps(c) if isinstance(c, bool) else str(c) for c in choices)
            raise ConfigError(f"config key {key!r} must be one of {shown}, got {value!r}")
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
