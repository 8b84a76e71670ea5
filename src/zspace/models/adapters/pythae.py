"""pythae models (``pip install zspace[pythae]``) as zspace models.

A pythae model (``pythae.models.BaseAE``: AE, VAE, beta-VAE, ...) encodes with ``model.encoder(x)``, a
``ModelOutput`` holding ``embedding`` (B, latent_dim) and, for the VAEs, ``log_covariance`` (B, latent_dim: the
log of the diagonal variance); it decodes with ``model.decoder(z)["reconstruction"]``, images in [0, 1] for
pythae's own architectures (they end in a sigmoid). :class:`PythaeAdapter` wraps one passed in memory.

Loading a pythae folder unpickles code: ``model.pt`` is a pickle and a custom encoder/decoder is stored as
cloudpickled code (``encoder.pkl``, ``decoder.pkl``) that runs when loaded. :func:`load_pythae` therefore
refuses unless told ``run_code_from_folder=True``; zspace never loads such a folder on its own.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from zspace.errors import ConfigError, DataError
from zspace.models.protocol import ModelAdapter

log = logging.getLogger(__name__)

INSTALL = "pythae is not installed: pip install zspace[pythae]"


def _pythae() -> Any:
    """The pythae package, imported now (it is an optional extra), or a one-line ConfigError."""
    try:
        import pythae
        import pythae.models
    except ImportError:
        raise ConfigError(INSTALL) from None
    return pythae


def _image_shape(input_dim: Any, image_size: int | None, channels: int | None) -> tuple[int, int]:
    """(image_size, channels) of square images from pythae's ``input_dim`` (C, H, W), or for flat data (D,) from
    the ``image_size`` and ``channels`` given (C * S * S must be D)."""
    dims = tuple(int(d) for d in input_dim) if input_dim is not None else ()
    if len(dims) == 3:
        c, h, w = dims
        if h != w:
            raise ConfigError(f"pythae model: zspace works on square images, this model's input_dim is {list(dims)}")
        if (image_size not in (None, h)) or (channels not in (None, c)):
            raise ConfigError(
                f"pythae model: its input_dim is {list(dims)} (C, H, W), but image_size={image_size}, "
                f"channels={channels} were given"
            )
        return h, c
    if len(dims) == 1 and image_size is not None and channels is not None:
        if channels * image_size * image_size != dims[0]:
            raise ConfigError(
                f"pythae model: its input_dim is {dims[0]}, not channels x image_size^2 = {channels * image_size**2}"
            )
        return int(image_size), int(channels)
    if len(dims) == 1:
        raise ConfigError(
            f"pythae model with flat input_dim {list(dims)}: pass image_size= and channels= (C * S * S = {dims[0]})"
        )
    raise ConfigError(f"pythae model: input_dim must be (C, H, W) images, got {input_dim!r}")


class PythaeAdapter(ModelAdapter):
    """A pythae model (``pythae.models.BaseAE``) seen through zspace's model protocol.

    Parameters
    ----------
    model : pythae.models.BaseAE
        In memory (built from its config, trained, or loaded by the caller). It becomes a submodule:
        ``.to()`` and ``.eval()`` move and switch it.
    image_size, channels : int, optional
        Only for models on flat data (``input_dim`` (D,)); else read from ``input_dim`` (C, H, W).
    kind : ``"ae"`` or ``"vae"``, optional
        ``"vae"`` when the encoder gives ``log_covariance`` (found by encoding one grey image), else ``"ae"``;
        ``"ae"`` on a VAE uses its mean.
    output : ``"probs"`` (pythae's architectures), ``"logits"`` or ``"tanh"``: what the decoder returns.
    """

    def __init__(
        self,
        model: Any,
        *,
        image_size: int | None = None,
        channels: int | None = None,
        kind: str | None = None,
        output: str = "probs",
    ) -> None:
        pythae = _pythae()
        if not isinstance(model, pythae.models.BaseAE):
            raise ConfigError(f"expected a pythae model (pythae.models.BaseAE), got {type(model).__name__}")
        input_dim = getattr(model, "input_dim", None) or getattr(model.model_config, "input_dim", None)
        size, c = _image_shape(input_dim, image_size, channels)
        z_dim = getattr(model, "latent_dim", None) or getattr(model.model_config, "latent_dim", None)
        name = f"pythae {type(model).__name__}"
        super().__init__(z_dim=int(z_dim), image_size=size, channels=c, kind=kind or "ae", output=output, name=name)
        self.model = model
        self.input_dim = tuple(int(d) for d in input_dim)
        if kind is None:
            self._kind = "vae" if self._has_log_covariance() else "ae"
        log.info("%s: z_dim %d, %s, images %dx%d x %d", name, self.cfg.z_dim, self._kind, size, size, c)

    def _has_log_covariance(self) -> bool:
        x = torch.full((1, self.cfg.channels, self.cfg.image_size, self.cfg.image_size), 0.5, device=self.device)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self._call("encoder", self._encoder_output, x)
        finally:
            self.model.train(was_training)
        return out.get("log_covariance") is not None

    def _encoder_output(self, x: torch.Tensor) -> Any:
        out = self.model.encoder(x.reshape(len(x), *self.input_dim))
        if not hasattr(out, "get") or out.get("embedding") is None:
            raise DataError(f"{self.name}: the encoder's output has no 'embedding' (got {type(out).__name__})")
        return out

    def _encode(self, x: torch.Tensor) -> Any:
        out = self._encoder_output(x)
        if self._kind == "vae":
            logvar = out.get("log_covariance")
            if logvar is None:
                raise DataError(f"{self.name}: kind 'vae' needs the encoder's log_covariance; it gave none")
            return out["embedding"], logvar
        return out["embedding"]

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.model.decoder(z)
        rec = out.get("reconstruction") if hasattr(out, "get") else None
        if not isinstance(rec, torch.Tensor):
            raise DataError(f"{self.name}: the decoder's output has no 'reconstruction' tensor")
        c, s = self.cfg.channels, self.cfg.image_size
        return rec.reshape(len(z), c, s, s) if rec.numel() == len(z) * c * s * s else rec

    @property
    def info(self) -> dict[str, Any]:
        return {**super().info, "library": "pythae", "class": type(self.model).__name__}


def adapt(obj: Any, **options: Any) -> PythaeAdapter:
    """A pythae model passed in memory, wrapped (``options`` go to :class:`PythaeAdapter`)."""
    return PythaeAdapter(obj, **options)


def load_pythae(folder: str | Path, *, run_code_from_folder: bool = False, **options: Any) -> PythaeAdapter:
    """Load a pythae model folder (``model_config.json``, ``model.pt``, maybe ``encoder.pkl``/``decoder.pkl``).

    Parameters
    ----------
    folder : str or Path
        A folder written by pythae's ``model.save`` or its trainer.
    run_code_from_folder : bool
        Must be True: pythae unpickles the folder's files, which runs any code they hold. Only for folders
        you trust; without it the call is refused in one line and nothing is read.
    **options
        ``image_size``, ``channels``, ``kind``, ``output``: as for :class:`PythaeAdapter`.

    Returns
    -------
    PythaeAdapter
    """
    folder = Path(folder)
    if run_code_from_folder is not True:
        raise ConfigError(
            f"loading the pythae folder {folder} unpickles code from it (model.pt, encoder.pkl, decoder.pkl); "
            "zspace does not do that unless you pass run_code_from_folder=True for a folder you trust"
        )
    if not (folder / "model_config.json").is_file():
        raise DataError(f"{folder} is not a pythae model folder (no model_config.json)")
    AutoModel = _pythae().models.AutoModel

    log.warning("loading pythae folder %s: running the code its pickles hold (run_code_from_folder=True)", folder)
    try:
        model = AutoModel.load_from_folder(str(folder))
    except (OSError, KeyError, ValueError, RuntimeError, AttributeError, NameError) as e:
        text = str(e).strip().splitlines()
        raise DataError(f"pythae could not load {folder}: {text[0] if text else type(e).__name__}") from None
    return PythaeAdapter(model, **options)


__all__ = ["INSTALL", "PythaeAdapter", "adapt", "load_pythae"]
