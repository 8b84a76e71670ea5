"""The notebook face of the reports: ``zspace.analyze`` and ``zspace.compare`` on arrays, runs or folders.

Both return a :class:`Report`: its ``metrics`` are the dict of ``metrics.json``, ``save(folder)`` writes the same
report.html + metrics.json + figures as ``zspace analyze`` / ``zspace compare`` (through the same writer), and a
Jupyter cell shows it inline (``_repr_html_``: figures as base64 PNG, tables as HTML, styles scoped to the report).
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zspace.data.names import read_names
from zspace.errors import ConfigError
from zspace.report.analyze import (
    analysis_settings,
    check_colorings,
    name_classes,
    run_sections,
    source_intro,
    source_summary,
)
from zspace.report.compare import compare_sections, flat_config
from zspace.report.page import CSS, page, report_metrics, slug, write_report
from zspace.report.resolve import resolve
from zspace.sections import COMPARED
from zspace.sections.base import Section

API_ANALYZE, API_COMPARE = "zspace.analyze (Python API)", "zspace.compare (Python API)"


@dataclass
class Report:
    """Sections of a report, with what the page and ``metrics.json`` say around them.

    ``sections``: list of :class:`~zspace.sections.base.Section` in report order; ``info``: what was analysed
    (``metrics.json``'s ``source``, or ``runs`` for a comparison); ``kind``: the command whose report folder
    :meth:`save` writes (``zspace analyze`` or ``zspace compare``).
    """

    sections: list[Section]
    title: str
    command: str
    kind: str
    intro: str = ""
    extra_metrics: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    _images: dict[str, str] | None = field(default=None, repr=False)

    @property
    def metrics(self) -> dict[str, Any]:
        """The dict written to ``metrics.json`` (JSON-able; layout ``zspace.metrics/1``, docs/metrics.md)."""
        return report_metrics(self.sections, command=self.command, extra_metrics=self.extra_metrics)

    def section(self, key: str) -> Section:
        """The section named ``key`` (``"radius"``, ``"pca"``, ...); KeyError names the ones there are."""
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(f"no section {key!r} in this report (it has: {', '.join(s.key for s in self.sections)})")

    def save(self, folder: str | Path) -> Path:
        """Write report.html, the figures (PNG) and metrics.json into ``folder``, as the command line does
        (same writer, same ownership rules: only files an earlier report of the same kind wrote are replaced).

        Parameters
        ----------
        folder : str or Path, the report folder (created when missing).

        Returns
        -------
        Path
            The path of report.html.
        """
        if not isinstance(folder, (str, Path)) or not str(folder):
            raise ConfigError(f"Report.save needs a folder path, got {folder!r}")
        return write_report(self.sections, folder, title=self.title, command=self.command, intro=self.intro,
                            extra_metrics=self.extra_metrics, kind=self.kind)  # fmt: skip

    def to_html(self) -> str:
        """The report as one self-contained HTML fragment (figures inlined as base64 PNG, styles scoped)."""
        if self._images is None:
            self._images = {f"{s.key}/{f.name}": _data_uri(f.figure) for s in self.sections for f in s.figures}
        full = page(self.sections, self._images, title=self.title, command=self.command, intro=self.intro)
        body = full.split("<body>", 1)[1].rsplit("</body>", 1)[0]
        body = body.replace('<p>Numbers: <a href="metrics.json">metrics.json</a>.</p>', "")
        return f'<div class="zspace-report"><style>{_scoped(CSS)}</style>{body}</div>'

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return f"<zspace Report {self.title!r}: {', '.join(s.key for s in self.sections)}>"


def _data_uri(figure: Any, dpi: int = 90) -> str:
    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _scoped(css: str) -> str:
    """``css`` with every selector under ``.zspace-report`` (``body`` becomes the report's own box)."""

    def scope(sel: str) -> str:
        sel = sel.strip()
        return ".zspace-report" if sel == "body" else f".zspace-report {sel}"

    return re.sub(r"([^{}]+)\{", lambda m: ",".join(scope(x) for x in m.group(1).split(",")) + "{", css)


def _settings(only: str | Iterable[str] | None, seed: int, options: dict[str, Any]) -> tuple[list, dict, int]:
    """Sections, their configs and the seed; ``options`` are per-section settings: ``radius={"width": 0.05}``."""
    if only is not None and not isinstance(only, str):
        items = list(only) if isinstance(only, Iterable) else None
        if items is None or not all(isinstance(x, str) for x in items):
            raise ConfigError(f"only= must be analysis names (a string or a list of strings), got {only!r}")
        only = ",".join(items)
    for key, value in options.items():
        if not isinstance(value, Mapping):
            raise ConfigError(f"option {key}= must be a mapping of that analysis' settings, got {value!r}")
    return analysis_settings(only=only or None, base={**options, "seed": seed})


def analyze(
    z: Any,
    *,
    labels: Any = None,
    mu: Any = None,
    logvar: Any = None,
    model: Any = None,
    only: str | Iterable[str] | None = None,
    seed: int = 0,
    name: str | None = None,
    split: str = "all",
    device: str = "cpu",
    class_names: str | Path | Iterable[str] | None = None,
    **options: Any,
) -> Report:
    """Run the report's analyses on a latent space, as ``zspace analyze`` does, and return the report.

    Parameters
    ----------
    z : ndarray or tensor of shape (n_samples, z_dim), or a path (run folder, latents folder, ``.npy``/``.npz``/
        ``.safetensors`` file), a loaded ``Run`` or ``Latents``.
    labels : array of shape (n_samples,) int, optional (arrays only): colours and the cluster classifier.
    mu, logvar : arrays of shape (n_samples, z_dim), optional, both or neither (arrays only): a VAE's encoder.
    model : a zspace model, ``zspace.wrap(...)``, a pythae or diffusers model, optional: enables the decode probes
        (replaces a run's model); anything else is a one-line ConfigError.
    only : section names (``"radius,pca"`` or a list), as ``zspace analyze --only``; default every section but
        the ones on request (``umap``).
    seed : int, seeds every random choice of the analyses.
    name : display name of the latent space.
    split, device : for a run: the split analysed, and where its missing latents are encoded.
    class_names : names of classes 0..K-1 (K = largest label + 1), or a names file (one per line, UTF-8), as
        ``zspace analyze --class-names``; default the run's ``data.class_names``, else the numbers.
    **options : per-section settings, e.g. ``radius={"width": 0.05}`` (the TOML tables of ``--config``).

    Returns
    -------
    Report
        ``metrics`` (dict of metrics.json), ``sections``, ``save(folder)``; shown inline in Jupyter.
    """
    keys, configs, seed = _settings(only, seed, options)
    names = read_names(class_names) if isinstance(class_names, (str, Path)) else tuple(class_names or ())
    source = resolve(z, labels=labels, mu=mu, logvar=logvar, model=model, name=name, split=split, device=device)
    name_classes(source, names, what="class_names")
    check_colorings(source, configs)  # before any analysis runs, as the command line does
    sections = run_sections(source, keys, configs, seed=seed)
    info = source_summary(source)
    return Report(sections, title=f"zspace: the latent space of {source.name}", command=API_ANALYZE,
                  kind="zspace analyze", intro=source_intro(source, info),
                  extra_metrics={"source": info, "seed": seed}, info=info)  # fmt: skip


def compare(
    items: Mapping[str, Any],
    *,
    only: str | Iterable[str] | None = None,
    seed: int = 0,
    **options: Any,
) -> Report:
    """Several latent spaces side by side, as ``zspace compare`` does (radius, elbow, PCA, VAE, decode grids).

    Parameters
    ----------
    items : mapping name -> latents: an array or tensor of shape (n_samples, z_dim) (each its own z_dim), a
        path or run (as :func:`analyze` takes), or a :class:`Report` from :func:`analyze` (its sections reused).
    only : the compared sections to run (a subset of ``training, radius, pca, elbow, vae, decode``).
    seed : int, seeds the analyses.
    **options : per-section settings, as for :func:`analyze`.

    Returns
    -------
    Report
    """
    if not isinstance(items, Mapping) or not items:
        raise ConfigError("compare takes a non-empty mapping {name: latents or report}")
    wanted = list(COMPARED) if only is None else [k.strip() for k in (only.split(",") if isinstance(only, str)
                                                                      else only)]  # fmt: skip
    unknown = [k for k in wanted if k not in COMPARED]
    if unknown or not wanted:
        raise ConfigError(f"compare only: {unknown[0] if unknown else 'nothing'!r} is not compared "
                          f"(known: {', '.join(COMPARED)})")  # fmt: skip
    keys, configs, seed = _settings(wanted, seed, options)
    taken = {slug(str(n)) for n in items}
    if len(taken) != len(items):
        raise ConfigError("compare: two names differ only in characters a file name cannot hold; rename one")
    runs, infos = {}, {}
    for name, item in items.items():
        runs[str(name)], infos[str(name)] = _compared(item, str(name), keys, configs, seed)
    sections = compare_sections(runs, infos)
    return Report(sections, title="zspace: " + " vs ".join(runs), command=API_COMPARE, kind="zspace compare",
                  extra_metrics={"runs": infos}, info=infos)  # fmt: skip


def _compared(item: Any, name: str, keys: list, configs: dict, seed: int) -> tuple[dict[str, Section], dict]:
    """One compared entry: its sections by key and its summary (with the run's flat config, or None)."""
    if isinstance(item, Report):
        if item.kind != "zspace analyze":
            raise ConfigError(f"compare: {name!r} is a {item.kind} report; give the report of zspace.analyze")
        return {s.key: s for s in item.sections if s.key in keys}, {"config": None, **item.info, "name": name}
    source = resolve(item, name=name)
    info = source_summary(source)
    info["config"] = flat_config(source.run.config.to_dict()) if source.run else None
    return {s.key: s for s in run_sections(source, keys, configs, seed=seed)}, info
