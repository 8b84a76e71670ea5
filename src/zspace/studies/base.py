"""The contract between a study and the command line: a :class:`StudyContext` in, a :class:`StudyResult` out.

A study module (``zspace/studies/<name>.py``, registered in :data:`zspace.studies.STUDIES`) defines

- ``TITLE``: the report's title;
- ``DATA``: the shared data it reads when ``--data`` is not given (a key of :data:`SHARED`);
- ``USES_DEVICE = True`` when it trains or encodes models (``--device`` is refused otherwise);
- ``Config``: a dataclass of every option, a comment on each default (``zspace study NAME --help`` lists them);
- ``QUICK``: the overrides of the reduced, minutes-long version (``--quick``), a dict of Config keys;
- optionally ``validate(cfg)`` (raises ConfigError before anything runs);
- ``run(cfg, ctx) -> StudyResult``: trains (into ``ctx.runs``), embeds and analyses what it needs, and writes
  nothing else; :func:`zspace.studies.run_study` writes the report, its figures and ``metrics.json``.

Options are typed: a TOML file and ``--set key=value`` go through the same checked conversion as run configs, and
a study builds run configs with ``dataclasses.replace``, never by formatting strings to be parsed again.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import logging
import textwrap
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zspace.config import check_finite, declared_help, from_mapping, load_toml, packaged_config, parse_override
from zspace.errors import ConfigError, DataError
from zspace.sections.base import Section

log = logging.getLogger(__name__)

# The shared data a study reads by default, relative to ../shared/data.
SHARED: dict[str, Path] = {
    "mnist": Path("mnist"),
    "wifi": Path("wifi") / "wifi_localization.txt",
    "celeba": Path("celeba") / "img_align_celeba_89x109",
}


@dataclass
class StudyResult:
    """What a study hands back: the report's sections in order and its metrics (``metrics.json`` -> ``study``)."""

    sections: list[Section]
    metrics: dict[str, Any]
    title: str = ""  # the module's TITLE when empty


@dataclass
class StudyContext:
    """Where a study reads and writes, how it is seeded, and how it reports its progress."""

    name: str  # the study's registry name, e.g. "mnist-kmeans"
    out: Path  # the report folder; training runs go to out/runs
    data: Path | None = None  # the folder or file given with --data; None: ../shared/data/...
    seed: int = 0  # seeds every random choice of the study (trainings, KMeans starts, t-SNE)
    quick: bool = False  # the reduced version
    device: str = "auto"  # where models train and encode: auto, cpu, cuda:N
    command: str = ""  # the command line that makes this report, shown on the page
    progress: Callable[[int, int], None] | None = None  # called as progress(done, total) after every step
    total: int = 0
    done: int = 0

    @property
    def runs(self) -> Path:
        """The parent folder of the study's training runs."""
        return self.out / "runs"

    def data_path(self, kind: str) -> Path:
        """``--data`` if given, else ../shared/data/<kind> beside the working folder or the repository."""
        if self.data is not None:
            return Path(self.data).expanduser()
        for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
            candidate = base.parent / "shared" / "data" / SHARED[kind]
            if candidate.exists():
                return candidate
        raise DataError(f"no {kind} data given and none found at ../shared/data/{SHARED[kind]}; pass --data")

    def packaged_config(self, name: str) -> Path:
        """A run config shipped with zspace (``configs/NAME.toml``), the base of the study's trainings."""
        return packaged_config(name)

    def torch_device(self) -> str:
        """``device`` resolved ("auto": the first GPU if there is one, else the CPU)."""
        from zspace.train.loop import resolve_device

        return str(resolve_device(self.device, key="--device"))

    def begin(self, total: int) -> None:
        """Declare the number of steps the study will report."""
        self.total, self.done = max(int(total), 1), 0
        if self.progress:
            self.progress(0, self.total)

    def step(self, what: str = "") -> None:
        """One step done (logged with ``what``)."""
        self.done = min(self.done + 1, max(self.total, 1))
        if what:
            log.info("%s (%d/%d)", what, self.done, self.total)
        if self.progress:
            self.progress(self.done, max(self.total, 1))


def study_config(
    module: Any,
    *,
    quick: bool = False,
    config_path: str | Path | None = None,
    sets: Sequence[str] = (),
    values: Mapping[str, Any] | None = None,
) -> Any:
    """The study's typed ``Config``: its defaults, then QUICK (with ``quick``), the TOML file, ``values``, ``sets``.

    A key the study does not have is a one-line :class:`ConfigError` listing the keys it has.
    """
    cls = module.Config
    defaults = cls()
    d: dict[str, Any] = {f.name: getattr(defaults, f.name) for f in dataclasses.fields(cls)}
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if quick:
        layers.append(("QUICK", module.QUICK))
    if config_path:
        layers.append((str(config_path), load_toml(config_path)))
    if values:
        layers.append(("--epochs/--limit/--seeds", values))
    layers.append(("--set", dict(parse_override(s) for s in sets)))
    known = ", ".join(d)
    for origin, layer in layers:
        for key, value in layer.items():
            if key not in d:
                raise ConfigError(f"study {module_name(module)!r} has no key {key!r} ({origin}; known: {known})")
            d[key] = value
    cfg = from_mapping(cls, d)
    check_finite(cfg)
    validate = getattr(module, "validate", None)
    if validate:
        validate(cfg)
    return cfg


def module_name(module: Any) -> str:
    return getattr(module, "NAME", module.__name__.rpartition(".")[2].replace("_", "-"))


@dataclass
class Option:
    """One key of a study's Config, as ``--help`` shows it."""

    name: str
    type: str
    default: Any
    comment: str
    allowed: str = ""  # the declared range or choices (zspace.config.declared_help), e.g. "in [1, 100000]"


def describe(cls: type) -> list[Option]:
    """The keys of dataclass ``cls`` with their types, defaults and the comment written beside (or above) each."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    comments: dict[str, str] = {}
    tree = ast.parse(source).body[0]
    for node in getattr(tree, "body", []):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            text = " ".join(lines[node.lineno - 1 : node.end_lineno])
            comment = text.partition("  #")[2].strip() if "  #" in text else ""
            above = node.lineno - 2
            while not comment and above >= 0 and lines[above].strip().startswith("#"):
                comment = lines[above].strip().lstrip("# ").strip() + (" " + comment if comment else "")
                above -= 1
            comments[node.target.id] = comment
    hints = typing.get_type_hints(cls)
    defaults = cls()
    return [
        Option(
            f.name,
            _type_name(hints[f.name]),
            getattr(defaults, f.name),
            comments.get(f.name, ""),
            declared_help(cls, f.name),
        )
        for f in dataclasses.fields(cls)
    ]


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        return f"list of {_type_name(args[0])}" if len(args) == 2 and args[1] is Ellipsis else "list"
    return getattr(tp, "__name__", str(tp))


def options_help(module: Any) -> str:
    """The text ``zspace study NAME --help`` ends with: every key, its default, its quick value, what it means."""
    quick = getattr(module, "QUICK", {})
    out = [f"{module_name(module)}: {module.TITLE}", "", "study keys (--set KEY=VALUE, or KEY = VALUE in --config):"]
    for o in describe(module.Config):
        default = _toml(o.default)
        line = f"  {o.name} = {default}  ({o.type}" + (f", {o.allowed}" if o.allowed else "")
        line += f"; --quick: {_toml(quick[o.name])}" if o.name in quick else ""
        out.append(line + ")")
        if o.comment:
            out += ["      " + t for t in textwrap.wrap(o.comment, 100)]
    return "\n".join(out)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)
