"""Samplers of the latent space: the prior N(0, I), and densities fitted on the encoded data ("ex-post").

An AE's latent points sit on filaments around voids, so z ~ N(0, I) decodes to no faces; fitting a density on
the points themselves and sampling from it does (Ghosh et al. 2020, "From Variational to Deterministic
Autoencoders", ICLR: a Gaussian mixture fitted on the AE's z). Three samplers, scikit-learn style (``fit``
returns self, learned state ends in ``_``):

- :class:`NormalSampler`: the prior N(0, I);
- :class:`GaussianSampler`: one Gaussian with the mean and full covariance of z;
- :class:`GMMSampler`: a Gaussian mixture (scikit-learn's EM), ``n_components`` given or chosen by BIC.

A fitted sampler is saved as safetensors (its arrays) with its settings as JSON in the file's metadata, never as
a pickle, and reloads without scikit-learn: :func:`save_sampler`, :func:`load_sampler`. :func:`fit_sampler`
fits one on a run's training latents and keeps it beside the run, in ``RUN/samplers/``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as st_save

from zspace.errors import CheckpointError, ConfigError, DataError
from zspace.io.atomic import atomic_write_bytes, check_owned_file, write_owned_file

log = logging.getLogger(__name__)

FORMAT = "zspace-sampler-1"
BIC_CANDIDATES = (1, 2, 3, 4, 6, 8, 12, 16)  # mixture sizes BIC chooses from by default
BIC_PATIENCE = 2  # stop trying larger mixtures once BIC has risen this many sizes in a row
JITTER = 1e-6  # added to a covariance's diagonal when its Cholesky factor fails


def _check_points(Z: Any) -> np.ndarray:
    """Latent points as float64 (n_samples, z_dim); DataError for a wrong shape or non-finite values."""
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or len(Z) < 2 or Z.shape[1] < 1:
        raise DataError(f"a sampler is fitted on latent points of shape (n_samples >= 2, z_dim), got {list(Z.shape)}")
    if not np.isfinite(Z).all():
        raise DataError("the latent points contain NaN or infinite values")
    return Z


def _cholesky(cov: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a covariance (d, d), with growing jitter for a nearly singular one."""
    scale = max(float(np.trace(cov)) / len(cov), 1e-12)
    for k in range(8):
        try:
            return np.linalg.cholesky(cov + (JITTER * scale * 10**k if k else 0.0) * np.eye(len(cov)))
        except np.linalg.LinAlgError:
            continue
    raise DataError("the fitted covariance is not positive definite, even with jitter")


class NormalSampler:
    """The prior z ~ N(0, I) of dimension ``z_dim`` (``fit`` only reads the dimension off the points)."""

    kind = "normal"

    def __init__(self, z_dim: int | None = None):
        self.z_dim = z_dim

    def fit(self, Z: np.ndarray) -> NormalSampler:
        """Z : ndarray of shape (n_samples, z_dim)."""
        self.z_dim = _check_points(Z).shape[1]
        return self

    def sample(self, n: int, *, random_state: int | None = 0) -> np.ndarray:
        """``n`` points: ndarray of shape (n, z_dim), float32."""
        if not self.z_dim:
            raise ConfigError("NormalSampler needs z_dim (pass it or fit on latent points)")
        return np.random.default_rng(random_state).standard_normal((n, self.z_dim)).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    def settings(self) -> dict[str, Any]:
        return {"z_dim": self.z_dim}

    @classmethod
    def from_saved(cls, settings: dict, arrays: dict[str, np.ndarray]) -> NormalSampler:
        return cls(z_dim=int(settings["z_dim"]))


class GaussianSampler:
    """One Gaussian N(mean, covariance) fitted on the latent points (full covariance)."""

    kind = "gaussian"

    def fit(self, Z: np.ndarray) -> GaussianSampler:
        """Z : ndarray of shape (n_samples, z_dim); sets ``mean_`` (z_dim,) and ``covariance_`` (z_dim, z_dim)."""
        Z = _check_points(Z)
        self.mean_ = Z.mean(axis=0)
        self.covariance_ = np.atleast_2d(np.cov(Z, rowvar=False))
        self._chol = _cholesky(self.covariance_)
        return self

    def sample(self, n: int, *, random_state: int | None = 0) -> np.ndarray:
        """``n`` points: ndarray of shape (n, z_dim), float32."""
        eps = np.random.default_rng(random_state).standard_normal((n, len(self.mean_)))
        return (self.mean_ + eps @ self._chol.T).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "covariance": self.covariance_}

    def settings(self) -> dict[str, Any]:
        return {"z_dim": len(self.mean_)}

    @classmethod
    def from_saved(cls, settings: dict, arrays: dict[str, np.ndarray]) -> GaussianSampler:
        self = cls()
        self.mean_, self.covariance_ = arrays["mean"], arrays["covariance"]
        self._chol = _cholesky(self.covariance_)
        return self


class GMMSampler:
    """A Gaussian mixture fitted on the latent points by EM (``sklearn.mixture.GaussianMixture``).

    Parameters
    ----------
    n_components : int, or ``"bic"`` to choose among ``candidates`` the size of lowest BIC.
    candidates : mixture sizes tried with ``"bic"`` (sizes above n_samples / 2 are dropped).
    covariance_type : ``"full"`` or ``"diag"``.
    max_iter, reg_covar, random_state : passed to scikit-learn.
    max_points : fit on at most this many points (a random subset); 0 = all.

    Attributes
    ----------
    weights_ : ndarray of shape (K,); means_ : (K, z_dim); covariances_ : (K, z_dim, z_dim) or (K, z_dim) for diag;
    n_components_ : K; bic_ : {K: BIC} of every size tried.
    """

    kind = "gmm"

    def __init__(
        self,
        n_components: int | str = "bic",
        *,
        candidates: tuple[int, ...] = BIC_CANDIDATES,
        covariance_type: str = "full",
        max_iter: int = 100,
        reg_covar: float = 1e-6,
        random_state: int = 0,
        max_points: int = 20_000,
    ):
        self.n_components = n_components
        self.candidates = tuple(candidates)
        self.covariance_type = covariance_type
        self.max_iter = max_iter
        self.reg_covar = reg_covar
        self.random_state = random_state
        self.max_points = max_points

    def _sizes(self, n: int) -> list[int]:
        if self.covariance_type not in ("full", "diag"):
            raise ConfigError(f"GMM covariance_type must be 'full' or 'diag', got {self.covariance_type!r}")
        if self.n_components == "bic":
            sizes = [k for k in self.candidates if isinstance(k, int) and 1 <= k <= max(1, n // 2)]
            return sizes or [1]
        k = self.n_components
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= n:
            raise ConfigError(f"GMM n_components must be 'bic' or an integer in 1..{n} (the points), got {k!r}")
        return [int(k)]

    def fit(self, Z: np.ndarray) -> GMMSampler:
        """Z : ndarray of shape (n_samples, z_dim)."""
        from sklearn.mixture import GaussianMixture

        Z = _check_points(Z)
        if self.max_points and len(Z) > self.max_points:
            rows = np.random.default_rng(self.random_state).choice(len(Z), self.max_points, replace=False)
            Z = Z[np.sort(rows)]
        best, self.bic_, worse = None, {}, 0
        for k in sorted(self._sizes(len(Z))):
            gm = GaussianMixture(k, covariance_type=self.covariance_type, max_iter=self.max_iter,
                                 reg_covar=self.reg_covar, random_state=self.random_state).fit(Z)  # fmt: skip
            self.bic_[k] = float(gm.bic(Z))
            log.debug("GMM with %d components: BIC %.6g", k, self.bic_[k])
            if best is None or self.bic_[k] < self.bic_[best.n_components]:
                best, worse = gm, 0
            else:
                worse += 1
            if worse >= BIC_PATIENCE:  # larger mixtures only fit the noise: spare their (costly) fits
                break
        self.weights_, self.means_, self.covariances_ = best.weights_, best.means_, best.covariances_
        self.n_components_ = int(best.n_components)
        self._prepare()
        return self

    def _prepare(self) -> None:
        if self.covariances_.ndim == 3:
            self._chol = np.stack([_cholesky(c) for c in self.covariances_])  # (K, d, d)
        else:
            self._chol = np.sqrt(self.covariances_)  # (K, d)

    def sample(self, n: int, *, random_state: int | None = 0) -> np.ndarray:
        """``n`` points: ndarray of shape (n, z_dim), float32; the component of each drawn by its weight."""
        rng = np.random.default_rng(random_state)
        comp = rng.choice(len(self.weights_), size=n, p=self.weights_ / self.weights_.sum())
        eps = rng.standard_normal((n, self.means_.shape[1]))
        z = self.means_[comp] + (self._chol[comp] * eps if self._chol.ndim == 2 else 0.0)
        if self._chol.ndim == 3:  # per component: gathering (n, d, d) factors would need n * d^2 floats
            for k in np.unique(comp):
                rows = comp == k
                z[rows] += eps[rows] @ self._chol[k].T
        return z.astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_, "means": self.means_, "covariances": self.covariances_}

    def settings(self) -> dict[str, Any]:
        return {
            "z_dim": int(self.means_.shape[1]),
            "n_components": self.n_components,
            "n_components_": self.n_components_,
            "covariance_type": self.covariance_type,
            "bic": {str(k): v for k, v in self.bic_.items()},
        }

    @classmethod
    def from_saved(cls, settings: dict, arrays: dict[str, np.ndarray]) -> GMMSampler:
        self = cls(settings.get("n_components", "bic"), covariance_type=settings.get("covariance_type", "full"))
        self.weights_, self.means_, self.covariances_ = arrays["weights"], arrays["means"], arrays["covariances"]
        self.n_components_ = len(self.weights_)
        self.bic_ = {int(k): float(v) for k, v in settings.get("bic", {}).items()}
        self._prepare()
        return self


SAMPLERS: dict[str, type] = {"normal": NormalSampler, "gaussian": GaussianSampler, "gmm": GMMSampler}


def make_sampler(kind: str, **options: Any):
    """An unfitted sampler by name (``normal``, ``gaussian``, ``gmm``); ``options`` go to a GMM."""
    if kind not in SAMPLERS:
        raise ConfigError(f"unknown sampler {kind!r} (known: {', '.join(SAMPLERS)})")
    if options and kind != "gmm":
        raise ConfigError(f"sampler {kind!r} takes no options, got {', '.join(options)}")
    return SAMPLERS[kind](**options)


def save_sampler(sampler, path: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
    """Write a fitted sampler to ``path`` (safetensors; settings and ``extra`` as JSON metadata), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, sampler_bytes(sampler, extra))
    return path


def sampler_bytes(sampler, extra: dict[str, Any] | None = None) -> bytes:
    """The safetensors bytes :func:`save_sampler` writes: the sampler's arrays, its settings and ``extra`` as JSON."""
    arrays = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in sampler.arrays().items()}
    meta = {"format": FORMAT, "kind": sampler.kind, "settings": sampler.settings(), **(extra or {})}
    return st_save(arrays, metadata={"zspace": json.dumps(meta)})


def load_sampler(path: str | Path):
    """Rebuild a sampler written by :func:`save_sampler` (nothing in the file is executed); ``.meta`` is its JSON."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"sampler file not found: {path}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = json.loads((f.metadata() or {}).get("zspace", "{}"))
            arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"sampler file {path} is truncated or corrupt ({str(e).splitlines()[0]})") from None
    if meta.get("format") != FORMAT or meta.get("kind") not in SAMPLERS:
        raise CheckpointError(f"{path} is not a zspace sampler file (format {meta.get('format')!r})")
    try:
        sampler = SAMPLERS[meta["kind"]].from_saved(meta["settings"], arrays)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"sampler file {path} lacks {e} or holds arrays of the wrong shape") from None
    sampler.meta = meta
    return sampler


def sampler_file(run_dir: str | Path, kind: str, n_components: int | str = "bic") -> Path:
    """Where :func:`fit_sampler` keeps a sampler: ``RUN/samplers/gmm.safetensors`` (BIC), ``gmm-k10...``."""
    suffix = "" if kind != "gmm" or n_components == "bic" else f"-k{n_components}"
    return Path(run_dir) / "samplers" / f"{kind}{suffix}.safetensors"


def weights_digest(run_dir: str | Path) -> str:
    """sha256 of the run's weights: a sampler fitted before the run was retrained is stale."""
    from zspace.runs.folder import WEIGHTS

    h = hashlib.sha256()
    with (Path(run_dir) / WEIGHTS).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fit_sampler(run, kind: str, *, refit: bool = False, progress=None, **options: Any):
    """The sampler ``kind`` fitted on the z of ``run``'s training split, kept in ``RUN/samplers/``.

    A sampler saved there before is reused when it was fitted with the same options on the same weights
    (``refit`` fits anew). The training latents come from ``RUN/latents/train`` (written by ``zspace embed``),
    or are encoded there first.

    Parameters
    ----------
    run : :class:`zspace.runs.folder.Run`.
    kind : ``normal``, ``gaussian`` or ``gmm``; ``options`` (``n_components``, ...) go to :class:`GMMSampler`.
    """
    if kind == "normal":
        return NormalSampler(z_dim=run.config.model.z_dim)
    return kept_sampler(
        kind, run.path, {"weights_sha256": weights_digest(run.path)}, lambda: train_latents(run, progress=progress),
        refit=refit, **options,
    )  # fmt: skip


def fit_latents_sampler(folder: str | Path, z: np.ndarray, kind: str, *, refit: bool = False, **options: Any):
    """The sampler ``kind`` fitted on all of a latents folder's ``z``, kept in ``folder/samplers/`` and reused while
    the folder's ``z.npy`` is the same file (its sha256) and the options match (``refit`` fits anew)."""
    from zspace.io.ownership import sha256_file

    if kind == "normal":
        return NormalSampler(z_dim=int(np.shape(z)[1]))
    key = {"z_sha256": sha256_file(Path(folder) / "z.npy")}
    return kept_sampler(kind, folder, key, lambda: np.asarray(z), refit=refit, **options)


def kept_sampler(kind: str, folder: str | Path, key: dict[str, str], points, *, refit: bool = False, **options: Any):
    """A ``kind`` sampler kept in ``folder/samplers/``: the saved one when its ``key`` (what it was fitted on) and
    options are the ones asked for and ``refit`` is False, else fitted on ``points()`` and saved there."""
    sampler = make_sampler(kind, **options)
    if kind == "gmm":
        options = {"n_components": "bic", **options}  # the same fit, however it was asked for
    path = sampler_file(folder, kind, options.get("n_components", "bic"))
    wanted = {**key, "options": {k: _jsonable(v) for k, v in sorted(options.items())}}
    if path.is_file() and not refit:
        saved = load_sampler(path)
        if all(saved.meta.get(k) == v for k, v in wanted.items()):
            log.info("sampler %s: reusing %s", kind, path)
            return saved
        log.info("sampler %s in %s was fitted on other points or options: fitting again", kind, path)
    # replaces only a sampler file a zspace manifest records (a user's file of that name stays; one line, before
    # the fit rather than after it)
    remedy = f"move it out of {path.parent} (zspace keeps its samplers there)"
    check_owned_file(path, remedy)
    z = points()
    sampler.fit(z)
    write_owned_file(path, sampler_bytes(sampler, {**wanted, "n_points": len(z)}), "samplers", remedy=remedy)
    log.info("sampler %s fitted on %d latent points, saved to %s", kind, len(z), path)
    sampler.meta = wanted
    return sampler


def _jsonable(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def train_latents(run, *, progress=None) -> np.ndarray:
    """z (n_train, z_dim) of the run's training split, from ``RUN/latents/train`` (encoded there if missing, or
    again if the run's weights changed since: :func:`zspace.latents.freshness.run_latents`)."""
    from zspace.data import load_dataset
    from zspace.latents.freshness import run_latents
    from zspace.models.inputs import model_device

    device = model_device(run.model)
    lat, note = run_latents(run, "train", lambda: load_dataset(run.config.data, progress=progress), device=device)
    log.info("sampler: %s", note)
    return np.asarray(lat.z)
