"""diffusers' ``AutoencoderKL`` (the VAE behind Stable Diffusion) as a zspace model.

Loading reads a LOCAL folder only (``from_pretrained(path, local_files_only=True, use_safetensors=True)``): a
folder with ``config.json`` and ``*.safetensors`` weights, or a pipeline folder whose ``vae/`` subfolder is one.
Pickled weights (``.bin``) are refused, and nothing is ever downloaded. diffusers is imported only here, lazily.

Encoding takes images (B, C, H, W) in [0, 1] at the adapter's ``image_size`` (the size of the user's data: the
model is fully convolutional; the size must be a multiple of its downsampling factor), maps them to [-1, 1] as
diffusers' pipelines do and returns the posterior ``latent_dist``: ``mu`` = its mean, ``logvar`` = its logvar
(diffusers clamps it to [-30, 20]) and ``z`` = a sample ``mu + exp(logvar / 2) * eps`` drawn with the given
generator (the global torch RNG without one). The spatial latents (B, C_lat, h, w) are flattened row-major to
(B, C_lat * h * w) for the analyses, and reshaped back for decoding; decoding maps the decoder's [-1, 1] output to
[0, 1], clamped.

``scaled=True`` applies the model's ``scaling_factor`` s (and ``shift_factor`` t, 0 when unset) as Stable
Diffusion's pipelines do: ``z' = (z - t) * s``, ``mu' = (mu - t) * s``, ``logvar' = logvar + 2 log s``, and decoding
divides by s and adds t first; the diffusion model's latent space is then the one analysed. The default,
``scaled=False``, analyses the raw posterior.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import torch

from zspace.errors import ConfigError, DataError
from zspace.io.ownership import sha256_file
from zspace.models.protocol import ModelAdapter

log = logging.getLogger(__name__)

KIND = "diffusers"
CONFIG_FILE = "config.json"
INSTALL = "pip install zspace[diffusers]"


def _diffusers() -> Any:
    """The diffusers package, imported on first use; one line saying how to install it otherwise."""
    try:
        import diffusers
    except ImportError:
        raise ConfigError(f"the diffusers adapter needs the diffusers package: {INSTALL}") from None
    return diffusers


class DiffusersAutoencoder(ModelAdapter):
    """A diffusers ``AutoencoderKL`` with zspace's encode/decode (see the module's docstring).

    Parameters
    ----------
    vae : diffusers.AutoencoderKL
    image_size : int, the side of the square images encoded (a multiple of ``factor``, the downsampling factor
        2 ** (len(block_out_channels) - 1)).
    scaled : bool, apply ``scaling_factor``/``shift_factor`` (Stable Diffusion's latent space).
    source : dict, optional; where the weights came from (``path``, ``weights_sha256``), for the latents' meta.
    """

    def __init__(self, vae: Any, *, image_size: int, scaled: bool = False, source: dict | None = None):
        config = vae.config
        factor = 2 ** (len(config.block_out_channels) - 1)
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ConfigError(f"image_size must be an integer >= 1, got {image_size!r}")
        if image_size % factor:
            low = max(factor, image_size // factor * factor)
            raise ConfigError(
                f"image size {image_size} is not a multiple of this AutoencoderKL's downsampling factor "
                f"{factor}: use {low} or {low + factor}"
            )
        side = image_size // factor
        latent_shape = (int(config.latent_channels), side, side)
        super().__init__(z_dim=math.prod(latent_shape), image_size=image_size, channels=int(config.in_channels),
                         kind="vae", output="tanh", name="diffusers AutoencoderKL")  # fmt: skip
        self.vae = vae
        self.factor = factor
        self.latent_shape = latent_shape  # (C_lat, h, w)
        self.scaled = bool(scaled)
        self.scale = float(config.scaling_factor) if self.scaled else 1.0
        self.shift = float(config.shift_factor or 0.0) if self.scaled else 0.0
        self.source = dict(source or {})
        self.eval()

    @property
    def info(self) -> dict[str, Any]:
        """The latents' ``meta["model"]``: how to reload this model (folder, weights' sha256, size, scaling)."""
        spec = {"kind": KIND, **self.source, "image_size": self.cfg.image_size, "scaled": self.scaled}
        return {**spec, "latent_shape": list(self.latent_shape), "z_dim": self.cfg.z_dim}

    def describe(self) -> str:
        """One line: where the weights are, the image size, the latent shape and z_dim."""
        c, h, w = self.latent_shape
        where = self.source.get("path", "memory")
        return (f"diffusers AutoencoderKL ({where}): {self.cfg.image_size}x{self.cfg.image_size} images -> "
                f"latents {c}x{h}x{w} = {self.cfg.z_dim} dims{', scaled' if self.scaled else ''}")  # fmt: skip

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, C, H, W) in [0, 1] -> the posterior's (mu, logvar), each (B, C_lat * h * w); the base class
        draws z = mu + exp(logvar / 2) * eps with the caller's generator."""
        s, c = self.cfg.image_size, self.cfg.channels
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (c, s, s):
            shape = list(x.shape) if hasattr(x, "shape") else type(x).__name__
            raise DataError(f"images must have shape (B, {c}, {s}, {s}) in [0, 1] for this AutoencoderKL, got {shape}")
        param = next(self.vae.parameters())
        with torch.no_grad():
            dist = self.vae.encode((2.0 * x - 1.0).to(param.device, param.dtype)).latent_dist
        mu, logvar = dist.mean.float(), dist.logvar.float()
        if tuple(mu.shape[1:]) != self.latent_shape:
            raise DataError(f"the AutoencoderKL made latents {list(mu.shape[1:])}, expected {list(self.latent_shape)}")
        if self.scaled:
            mu, logvar = (mu - self.shift) * self.scale, logvar + 2.0 * math.log(self.scale)
        return mu.reshape(len(x), -1), logvar.reshape(len(x), -1)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, C_lat * h * w) -> the decoder's images (B, C, H, W) in [-1, 1] (the base class maps them to [0, 1])."""
        lat = z.reshape(len(z), *self.latent_shape)
        if self.scaled:
            lat = lat / self.scale + self.shift
        param = next(self.vae.parameters())
        with torch.no_grad():
            return self.vae.decode(lat.to(param.device, param.dtype)).sample.float()


# --- loading ------------------------------------------------------------------------------------------------------


def model_folder(path: str | Path) -> Path:
    """The folder holding the AutoencoderKL's ``config.json`` and safetensors weights: ``path`` itself, or
    ``path/vae`` for a pipeline folder; a one-line DataError for anything else (pickled ``.bin`` weights included)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"diffusers model folder not found: {path}")
    if not path.is_dir():
        raise DataError(f"{path} is not a folder: diffusers:PATH takes the folder of a saved AutoencoderKL")
    if not (path / CONFIG_FILE).is_file() and (path / "vae" / CONFIG_FILE).is_file():
        path = path / "vae"  # a pipeline folder (model_index.json, vae/, unet/, ...)
    if not (path / CONFIG_FILE).is_file():
        raise DataError(f"{path} has no {CONFIG_FILE}: not a saved diffusers AutoencoderKL (save_pretrained)")
    if not _weights(path):
        pickled = sorted(p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
        if pickled:
            raise DataError(
                f"{path} holds only pickled weights ({pickled[0]}); zspace loads safetensors only: convert them "
                f"where you trust the file (AutoencoderKL.from_pretrained(...).save_pretrained(OUT, "
                f"safe_serialization=True))"
            )
        raise DataError(f"{path} holds no .safetensors weights")
    try:
        config = json.loads((path / CONFIG_FILE).read_text())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{path / CONFIG_FILE} is not valid JSON ({str(e).splitlines()[0]})") from None
    name = config.get("_class_name") if isinstance(config, dict) else None
    if name != "AutoencoderKL":
        raise DataError(f"{path} holds a {name or 'model of unknown class'}, not an AutoencoderKL")
    return path


def _weights(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".safetensors" and p.is_file())


def weights_digest(folder: str | Path) -> str:
    """sha256 over the names and sha256s of ``config.json`` and every ``*.safetensors`` file of ``folder``."""
    import hashlib

    folder = Path(folder)
    h = hashlib.sha256()
    for f in [folder / CONFIG_FILE, *_weights(folder)]:
        h.update(f"{f.name}\0{sha256_file(f)}\n".encode())
    return h.hexdigest()


def load_autoencoder_kl(
    path: str | Path, *, image_size: int | None = None, scaled: bool = False, device: Any = "cpu"
) -> DiffusersAutoencoder:
    """Load a saved ``AutoencoderKL`` from a local folder (never a download, safetensors only).

    Parameters
    ----------
    path : folder written by ``save_pretrained`` (``config.json`` + ``*.safetensors``), or a pipeline folder with
        a ``vae/`` subfolder.
    image_size : side of the square images to encode; None = the model's ``sample_size``.
    scaled : apply the model's ``scaling_factor`` (see the module's docstring).
    device : where the model is put.

    Returns
    -------
    DiffusersAutoencoder
    """
    folder = model_folder(path)
    return _load(folder, weights_digest(folder), image_size, scaled, device)


def _load(folder: Path, digest: str, image_size: int | None, scaled: bool, device: Any) -> DiffusersAutoencoder:
    diffusers = _diffusers()
    try:
        vae = diffusers.AutoencoderKL.from_pretrained(
            str(folder), local_files_only=True, use_safetensors=True, low_cpu_mem_usage=False
        )
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"the AutoencoderKL in {folder} cannot be loaded ({first})") from None
    size = int(vae.config.sample_size) if image_size is None else image_size
    source = {"path": str(folder.resolve()), "weights_sha256": digest}
    model = DiffusersAutoencoder(vae.float(), image_size=size, scaled=scaled, source=source).to(device)
    log.info("%s", model.describe())
    return model


def from_diffusers(vae: Any, *, image_size: int, scaled: bool = False) -> DiffusersAutoencoder:
    """An ``AutoencoderKL`` in memory as a zspace model (its latents record no folder to reload it from).

    Parameters
    ----------
    vae : diffusers.AutoencoderKL
    image_size : side of the square images (B, C, image_size, image_size) to encode.
    scaled : apply the model's ``scaling_factor`` (see the module's docstring).
    """
    diffusers = _diffusers()
    if not isinstance(vae, diffusers.AutoencoderKL):
        raise ConfigError(f"from_diffusers takes a diffusers.AutoencoderKL, got {type(vae).__name__}")
    return DiffusersAutoencoder(vae, image_size=image_size, scaled=scaled)


def adapt(vae: Any) -> DiffusersAutoencoder:
    """An in-memory diffusers model as a zspace model (``zspace.models.adapters.adapt``): an ``AutoencoderKL`` at
    its ``sample_size``; any other diffusers model is refused in one line."""
    diffusers = _diffusers()
    if not isinstance(vae, diffusers.AutoencoderKL):
        raise ConfigError(f"zspace adapts diffusers' AutoencoderKL only, got {type(vae).__name__}")
    return DiffusersAutoencoder(vae, image_size=int(vae.config.sample_size))


# --- latents' meta: what to reload ----------------------------------------------------------------------------------


def model_spec(model: DiffusersAutoencoder, out: str | Path) -> dict[str, Any] | None:
    """The ``meta.json`` entry ``model`` of latents written into ``out``: the folder (absolute and relative to
    ``out``), the weights' sha256, the image size and scaling; None for a model given in memory."""
    path = model.source.get("path")
    if not path:
        return None
    return {**model.info, "path_relative": os.path.relpath(path, Path(out).resolve())}


def from_spec(spec: dict[str, Any], latents_dir: str | Path | None, *, device: Any = "cpu") -> DiffusersAutoencoder:
    """Reload the model a latents folder's ``model`` entry names (relative path first, then absolute).

    Raises DataError when the folder is gone or its weights changed since the latents were encoded.
    """
    where = []
    rel, absolute = spec.get("path_relative"), spec.get("path")
    if isinstance(rel, str) and rel and latents_dir is not None:
        where.append((Path(latents_dir).resolve() / rel).resolve())
    if isinstance(absolute, str) and absolute:
        where.append(Path(absolute))
    found = next((p for p in where if (p / CONFIG_FILE).is_file()), None)
    if found is None:
        raise DataError(
            f"latents {latents_dir} were encoded by the AutoencoderKL in {absolute}, which is not there any more"
        )
    digest = weights_digest(found)
    if digest != spec.get("weights_sha256"):
        raise DataError(
            f"latents {latents_dir} were encoded by other weights than those now in {found}; run "
            f"`zspace embed --model diffusers:{found} --data DATA --out {latents_dir}` again"
        )
    size = spec.get("image_size")
    return _load(model_folder(found), digest, size if isinstance(size, int) else None, bool(spec.get("scaled")), device)
