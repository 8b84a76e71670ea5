"""What zspace needs of a model, and the base class that wraps a model trained elsewhere.

Every analysis, sampler and the explorer talk to a model through four things (:class:`Model`):

- ``encode(x, generator=None) -> Encoding``: images ``x`` (B, C, H, W) float32 in [0, 1] to ``z`` (B, z_dim),
  with ``mu`` and ``logvar`` (B, z_dim) for a VAE;
- ``decode(z) -> images``: ``z`` (B, z_dim) to images (B, C, H, W) float32 in [0, 1];
- ``cfg``: a shape record with ``z_dim``, ``image_size`` and ``channels`` (square images);
- ``kind``: ``"ae"`` (the encoder gives z) or ``"vae"`` (it gives mu and logvar; z is drawn from them).

zspace's own :class:`~zspace.models.base.LatentModel` has them. A model from another library is wrapped in a
:class:`ModelAdapter`, which implements ``_encode`` and ``_decode`` and gets the rest (input coercion, output
checks, the batched decoding loop, a device) from here; :func:`wrap` builds one from plain torch modules or
callables, and :func:`as_model` turns whatever a user passes as ``model=`` into one, or refuses it in one line.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from zspace.errors import ConfigError, DataError
from zspace.models.inputs import as_latents, model_device

log = logging.getLogger(__name__)

KINDS = ("ae", "vae")
OUTPUTS = ("probs", "logits", "tanh")
RANGE_TOLERANCE = 1e-3  # decoded "probs" this far outside [0, 1] are clamped (float rounding), further out refused


@dataclass
class Encoding:
    """Encoder outputs for a batch: ``z`` (B, z_dim); ``mu`` and ``logvar`` (B, z_dim) for a VAE, else None."""

    z: torch.Tensor
    mu: torch.Tensor | None = None
    logvar: torch.Tensor | None = None


@dataclass(frozen=True)
class ModelShape:
    """The shapes a model works with: latent points (z_dim,), images (channels, image_size, image_size).

    Named as :class:`~zspace.config.ModelConfig`'s fields, so code reading ``model.cfg.z_dim`` works for both.
    """

    z_dim: int
    image_size: int
    channels: int

    def __post_init__(self) -> None:
        for key in ("z_dim", "image_size", "channels"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ConfigError(f"{key} must be an integer >= 1, got {v!r}")
            object.__setattr__(self, key, int(v))


@runtime_checkable
class Model(Protocol):
    """The protocol zspace needs of a model (see the module docstring).

    Attributes
    ----------
    cfg : object with ``z_dim``, ``image_size`` and ``channels`` (ints), e.g. :class:`ModelShape`.
    kind : ``"ae"`` or ``"vae"``.
    """

    cfg: Any
    kind: str

    def encode(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> Encoding:
        """Images (B, C, H, W) float32 in [0, 1] -> :class:`Encoding` with z (B, z_dim) [, mu, logvar]."""
        ...

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent points (B, z_dim) -> images (B, C, H, W) float32 in [0, 1]."""
        ...


class DecodeLoop:
    """The one batched decoding loop, shared by :class:`~zspace.models.base.LatentModel` and :class:`ModelAdapter`
    (it needs ``decode`` and ``cfg``)."""

    def decode_batches(self, z: Any, *, batch_size: int = 256) -> Iterator[torch.Tensor]:
        """Decode z (N, z_dim) or (z_dim,), numpy or torch, as batches (B, C, H, W) in [0, 1] on the model's
        device, no gradients, ``batch_size`` points at a time."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        device = model_device(self)
        zs = z if isinstance(z, torch.Tensor) else np.asarray(z)  # a memory map stays one: batches are copied
        zs = zs[None] if zs.ndim == 1 else zs
        with torch.no_grad():
            for s in range(0, len(zs), batch_size):
                part = zs[s : s + batch_size]
                part = part if isinstance(part, torch.Tensor) else torch.from_numpy(np.array(part, dtype=np.float32))
                yield self.decode(part.float().to(device))

    def decode_images(self, z: Any, *, batch_size: int = 256) -> np.ndarray:
        """Decode many points for figures and metrics: a numpy array (N, H, W, C) float32 in [0, 1] on the CPU
        (one batch on the device at a time)."""
        out = [x.permute(0, 2, 3, 1).float().cpu().numpy() for x in self.decode_batches(z, batch_size=batch_size)]
        if not out:
            return np.zeros((0, self.cfg.image_size, self.cfg.image_size, self.cfg.channels), np.float32)
        return np.concatenate(out)


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class ModelAdapter(DecodeLoop, nn.Module):
    """A model from elsewhere, seen through zspace's :class:`Model` protocol.

    A subclass implements ``_encode(x)`` and ``_decode(z)``; this class checks what goes in and comes out.

    Parameters
    ----------
    z_dim, image_size, channels : int
        The shapes (``self.cfg``, a :class:`ModelShape`): z (N, z_dim), images (N, channels, image_size,
        image_size).
    kind : ``"ae"`` or ``"vae"``.
    output : ``"probs"`` (``_decode`` gives [0, 1]), ``"logits"`` (sigmoid applied) or ``"tanh"`` ([-1, 1],
        mapped to (x + 1) / 2 and clamped to [0, 1]).
    name : a short description for logs and the latents' meta.json (``meta["model"]``).
    """

    def __init__(
        self, *, z_dim: int, image_size: int, channels: int, kind: str, output: str = "probs", name: str = ""
    ) -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ConfigError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        if kind not in KINDS:
            raise ConfigError(f"kind must be 'ae' or 'vae', got {kind!r}")
        self._shape = ModelShape(z_dim=z_dim, image_size=image_size, channels=channels)
        self._kind = kind
        self.output = output
        self.name = name or type(self).__name__

    # -- what a subclass implements ------------------------------------------------------------------------------
    def _encode(self, x: torch.Tensor) -> Any:
        """Images (B, C, H, W) float32 in [0, 1] -> z (B, z_dim), a tuple (mu, logvar) of (B, z_dim), or an
        :class:`Encoding`."""
        raise NotImplementedError(f"{type(self).__name__} cannot encode (no encoder)")

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, z_dim) float32 on the model's device -> images (B, C, H, W), as ``output`` says."""
        raise NotImplementedError(f"{type(self).__name__} cannot decode (no decoder)")

    # -- the protocol --------------------------------------------------------------------------------------------
    @property
    def cfg(self) -> ModelShape:
        """The shape record (``z_dim``, ``image_size``, ``channels``)."""
        return self._shape

    @property
    def kind(self) -> str:
        """``"ae"`` or ``"vae"``."""
        return self._kind

    @property
    def device(self) -> torch.device:
        """Where the wrapped model's parameters live (the CPU for a model without any)."""
        return model_device(self)

    @property
    def info(self) -> dict[str, Any]:
        """What the latents' meta.json records about this model."""
        return {"adapter": self.name, "z_dim": self.cfg.z_dim, "image_size": self.cfg.image_size,
                "channels": self.cfg.channels, "kind": self.kind, "output": self.output}  # fmt: skip

    def encode(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> Encoding:
        """Encode images (B, C, H, W) float32 in [0, 1].

        A VAE's z is ``mu + exp(logvar / 2) * eps`` with eps ~ N(0, I) drawn from ``generator``.

        Returns
        -------
        Encoding
            ``z`` (B, z_dim) float32; ``mu`` and ``logvar`` (B, z_dim) for a VAE.
        """
        return self._encoding(self._call("encoder", self._encode, x), len(x), generator)

    def decode(self, z: Any) -> torch.Tensor:
        """Decode z (B, z_dim) to images (B, C, H, W) float32 in [0, 1].

        ``z`` may also be a numpy array or a single point (z_dim,); a wrong shape is a one-line DataError.
        """
        z_dim = self.cfg.z_dim
        if not (isinstance(z, torch.Tensor) and z.ndim == 2 and z.shape[1] == z_dim and z.is_floating_point()):
            z = as_latents(z, z_dim, device=self.device)
        out = self._call("decoder", self._decode, z.float())
        return self._images(out, len(z))

    def forward(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reconstruct images (B, C, H, W) in [0, 1]: decode their z."""
        return self.decode(self.encode(x, generator=generator).z)

    # -- checks ---------------------------------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[torch.Tensor], Any], arg: torch.Tensor) -> Any:
        """``fn(arg)``, with a shape or dtype error of the wrapped code turned into one line naming the part."""
        try:
            return fn(arg)
        except NotImplementedError as e:  # an adapter without that half
            raise ConfigError(f"{self.name}: {_one_line(e)}") from None
        except (RuntimeError, ValueError, TypeError, IndexError) as e:
            raise DataError(
                f"{self.name}: the {what} failed on input of shape {list(arg.shape)}: {_one_line(e)}"
            ) from None

    def _latent(self, t: Any, what: str, batch: int) -> torch.Tensor:
        if not isinstance(t, torch.Tensor):
            raise DataError(f"{self.name}: the encoder's {what} must be a torch tensor, got {type(t).__name__}")
        if t.ndim != 2:
            t = t.reshape(t.shape[0], -1) if t.ndim > 2 and len(t) == batch else t
        if t.ndim != 2 or tuple(t.shape) != (batch, self.cfg.z_dim):
            raise DataError(
                f"{self.name}: the encoder's {what} has shape {list(t.shape)}, expected [{batch}, {self.cfg.z_dim}] "
                f"(batch, z_dim)"
            )
        if not t.is_floating_point():
            raise DataError(f"{self.name}: the encoder's {what} must be floating point, got {t.dtype}")
        return t.float()

    def _encoding(self, out: Any, batch: int, generator: torch.Generator | None) -> Encoding:
        """Whatever ``_encode`` returned as a checked :class:`Encoding` of this model's kind."""
        if isinstance(out, Encoding):
            z = self._latent(out.z, "z", batch)
            if out.mu is None or out.logvar is None:
                return self._as_kind(z, None, None, generator)
            mu, logvar = self._latent(out.mu, "mu", batch), self._latent(out.logvar, "logvar", batch)
            return self._as_kind(z, mu, logvar, generator) if self.kind == "vae" else Encoding(z=z)
        if isinstance(out, torch.Tensor):
            return self._as_kind(self._latent(out, "z", batch), None, None, generator)
        if isinstance(out, tuple | list) and len(out) == 2:
            mu, logvar = self._latent(out[0], "mu", batch), self._latent(out[1], "logvar", batch)
            return self._as_kind(None, mu, logvar, generator)
        raise DataError(
            f"{self.name}: the encoder must return z (a tensor), a tuple (mu, logvar) or an Encoding, got "
            f"{type(out).__name__}" + (f" of length {len(out)}" if isinstance(out, tuple | list) else "")
        )

    def _as_kind(self, z, mu, logvar, generator) -> Encoding:
        if mu is None:
            if self.kind == "vae":
                raise ConfigError(f"{self.name}: kind 'vae' needs an encoder that returns (mu, logvar); it gave z")
            return Encoding(z=z)
        if self.kind == "ae":  # an AE view of a VAE: its mean
            return Encoding(z=mu)
        if z is None:  # rows with NaN or infinity stay so: embed's readers count and drop them, as for any latents
            kwargs = {"generator": generator} if generator is not None else {}
            eps = torch.randn(mu.shape, device=mu.device, dtype=torch.float32, **kwargs)
            z = mu + torch.exp(0.5 * logvar) * eps
        return Encoding(z=z, mu=mu, logvar=logvar)

    def _images(self, out: Any, batch: int) -> torch.Tensor:
        """The decoder's output as checked images (B, C, H, W) float32 in [0, 1]."""
        c, s = self.cfg.channels, self.cfg.image_size
        if not isinstance(out, torch.Tensor):
            raise DataError(f"{self.name}: the decoder must return a torch tensor of images, got {type(out).__name__}")
        if tuple(out.shape) != (batch, c, s, s):
            raise DataError(
                f"{self.name}: the decoder returned shape {list(out.shape)}, expected [{batch}, {c}, {s}, {s}] "
                f"(batch, channels, image_size, image_size)"
            )
        if not out.is_floating_point():
            raise DataError(f"{self.name}: the decoder must return floating-point images, got {out.dtype}")
        out = out.float()
        if self.output == "logits":
            out = torch.sigmoid(out)
        elif self.output == "tanh":
            out = (out + 1.0) / 2.0
        if out.numel():
            low, high = (float(v) for v in torch.aminmax(out.detach()))
            if not (math.isfinite(low) and math.isfinite(high)):
                raise DataError(f"{self.name}: the decoder returned NaN or infinite values")
            if self.output == "probs" and (low < -RANGE_TOLERANCE or high > 1.0 + RANGE_TOLERANCE):
                raise DataError(
                    f"{self.name}: the decoder returned values in [{low:.4g}, {high:.4g}], not in [0, 1]: pass "
                    f"output='logits' (sigmoid) or output='tanh' ([-1, 1])"
                )
        return out.clamp(0.0, 1.0)


class _Callable(nn.Module):
    """A plain callable held by a module (so that a bound method's module moves with ``.to()``)."""

    def __init__(self, fn: Callable) -> None:
        super().__init__()
        self.fn = fn
        owner = getattr(fn, "__self__", None)
        if isinstance(owner, nn.Module):
            self.owner = owner  # registered: its parameters count for the device and move with .to()

    def forward(self, x: torch.Tensor) -> Any:
        return self.fn(x)


def _as_module(fn: Any, what: str) -> nn.Module | None:
    if fn is None:
        return None
    if isinstance(fn, nn.Module):
        return fn
    if callable(fn):
        return _Callable(fn)
    raise ConfigError(f"{what} must be a torch module or a callable, got {type(fn).__name__}")


class Wrapped(ModelAdapter):
    """Plain torch modules or callables as a zspace model (see :func:`wrap`)."""

    def __init__(
        self,
        encoder: Any,
        decoder: Any,
        *,
        image_size: int,
        channels: int,
        z_dim: int | None,
        kind: str | None,
        output: str,
    ) -> None:
        if encoder is None and decoder is None:
            raise ConfigError("wrap needs an encoder, a decoder or both")
        if encoder is None and z_dim is None:
            raise ConfigError("wrap without an encoder needs z_dim (the decoder's input width)")
        super().__init__(z_dim=z_dim or 1, image_size=image_size, channels=channels, kind=kind or "ae",
                         output=output, name="wrapped model")  # fmt: skip
        self.encoder = _as_module(encoder, "encoder")
        self.decoder = _as_module(decoder, "decoder")
        self._known = z_dim is not None and (kind is not None or encoder is None)
        self._z_dim_given = z_dim is not None
        self._kind_given = kind

    def _probe(self) -> None:
        """z_dim and kind from what the encoder returns for one grey image (once, on first need)."""
        self._known = True
        c, s = self._shape.channels, self._shape.image_size
        x = torch.full((1, c, s, s), 0.5, device=self.device)
        was_training = self.training
        self.eval()  # one image: a BatchNorm in training mode could not take it
        try:
            with torch.no_grad():
                out = self._call("encoder", self._encode, x)
        finally:
            self.train(was_training)
        first = out.z if isinstance(out, Encoding) else out[0] if isinstance(out, tuple | list) and out else out
        if not isinstance(first, torch.Tensor) or first.ndim < 1 or len(first) != 1:
            self._known = False
            self._encoding(out, 1, None)  # raises the one-line error naming what came back
        width = int(first[0].numel())
        if self._z_dim_given and width != self._shape.z_dim:
            self._known = False
            raise DataError(
                f"{self.name}: the encoder gives z of width {width}, but z_dim={self._shape.z_dim} was given"
            )
        self._shape = ModelShape(z_dim=width, image_size=s, channels=c)
        if self._kind_given is None:
            vae = (isinstance(out, Encoding) and out.mu is not None) or isinstance(out, tuple | list)
            self._kind = "vae" if vae else "ae"
        log.info("%s: z_dim %d, kind %s (from the encoder's output)", self.name, width, self._kind)

    @property
    def cfg(self) -> ModelShape:
        if not self._known:
            self._probe()
        return self._shape

    @property
    def kind(self) -> str:
        if not self._known:
            self._probe()
        return self._kind

    def _encode(self, x: torch.Tensor) -> Any:
        if self.encoder is None:
            raise ConfigError("this wrapped model has no encoder: pass encoder= to zspace.wrap")
        return self.encoder(x.to(_float_dtype(self.encoder)))

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        if self.decoder is None:
            raise ConfigError("this wrapped model has no decoder: pass decoder= to zspace.wrap")
        return self.decoder(z.to(_float_dtype(self.decoder)))


def _float_dtype(module: nn.Module) -> torch.dtype:
    """The dtype of a module's first floating-point parameter (a half-precision model gets half inputs), else
    float32."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def wrap(
    encoder: Any = None,
    decoder: Any = None,
    *,
    image_size: int,
    channels: int,
    z_dim: int | None = None,
    kind: str | None = None,
    output: str = "probs",
) -> ModelAdapter:
    """A model from plain torch modules or callables, for every zspace analysis, sampler and the explorer.

    Parameters
    ----------
    encoder : torch module or callable, optional
        Images (B, channels, image_size, image_size) in [0, 1] -> z (B, z_dim), a tuple (mu, logvar) of
        (B, z_dim) each (a VAE), or a :class:`Encoding`. Outputs of more dimensions (B, ...) are flattened to
        (B, z_dim) (spatial latents); inputs take the dtype of the module's parameters (float32 without any).
    decoder : torch module or callable, optional
        z (B, z_dim) -> images (B, channels, image_size, image_size) as ``output`` says; the results are float32.
    image_size, channels : int
        The (square) images the model works on.
    z_dim : int, optional
        The latent width; found from the encoder's output when not given (needed without an encoder).
    kind : ``"ae"`` or ``"vae"``, optional
        Found from the encoder's output when not given: ``"vae"`` when it returns (mu, logvar).
    output : ``"probs"`` (default), ``"logits"`` or ``"tanh"``
        What the decoder returns: images in [0, 1], logits (a sigmoid is applied), or [-1, 1] ((x + 1) / 2).

    Returns
    -------
    ModelAdapter
        A torch module with ``encode``, ``decode``, ``decode_images``, ``cfg`` and ``kind``. Shapes are checked
        on every call: a decoder output of the wrong shape or outside [0, 1], a z of the wrong width, or an
        encoder returning something else is a one-line DataError.

    Examples
    --------
    >>> model = zspace.wrap(encoder=enc, decoder=dec, image_size=28, channels=1)   # doctest: +SKIP
    >>> report = zspace.analyze(z, model=model)                                      # doctest: +SKIP
    """
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"kind must be 'ae' or 'vae', got {kind!r}")
    if z_dim is not None and (isinstance(z_dim, bool) or not isinstance(z_dim, int | np.integer) or z_dim < 1):
        raise ConfigError(f"z_dim must be an integer >= 1, got {z_dim!r}")
    return Wrapped(encoder, decoder, image_size=image_size, channels=channels, z_dim=z_dim, kind=kind, output=output)


class Conforming(ModelAdapter):
    """An object of the user's own class that follows the :class:`Model` protocol (``cfg``, ``kind``, ``encode``,
    ``decode``), given the checks, the shared decoding loop and a device of every adapter."""

    def __init__(self, obj: Any) -> None:
        cfg = obj.cfg
        super().__init__(z_dim=cfg.z_dim, image_size=cfg.image_size, channels=cfg.channels, kind=obj.kind,
                         name=type(obj).__name__)  # fmt: skip
        if isinstance(obj, nn.Module):
            self.inner = obj  # registered: its parameters give the device and move with .to()
        else:
            self._obj = obj
        self._generator: torch.Generator | None = None

    @property
    def wrapped(self) -> Any:
        return self.inner if "inner" in self._modules else self._obj

    def encode(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> Encoding:
        self._generator = generator  # the object's encode draws its own z with it
        try:
            return super().encode(x, generator=generator)
        finally:
            self._generator = None

    def _encode(self, x: torch.Tensor) -> Any:
        return self.wrapped.encode(x, generator=self._generator)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.wrapped.decode(z)


def _conforms(obj: Any) -> str | None:
    """None when ``obj`` follows the :class:`Model` protocol, else what it lacks (for the error)."""
    lacks = [m for m in ("encode", "decode") if not callable(getattr(obj, m, None))]
    if lacks:
        return " and ".join(lacks)
    cfg = getattr(obj, "cfg", None)
    if cfg is None or not all(isinstance(getattr(cfg, k, None), int | np.integer) for k in ModelShape.__annotations__):
        return "cfg.z_dim, cfg.image_size and cfg.channels"
    if getattr(obj, "kind", None) not in KINDS:
        return "kind ('ae' or 'vae')"
    return None


def as_model(obj: Any, *, what: str = "model") -> Any:
    """``obj`` as a model every zspace consumer can use, or a one-line ConfigError.

    A zspace :class:`~zspace.models.base.LatentModel` or a :class:`ModelAdapter` is returned as is; a model of a
    library zspace has an adapter for (pythae, diffusers' AutoencoderKL) is wrapped, and so is an object of your
    own class that follows the :class:`Model` protocol; anything else is refused.
    """
    from zspace.models.adapters import adapt

    if isinstance(obj, DecodeLoop) and _conforms(obj) is None:  # zspace's LatentModel, any ModelAdapter
        return obj
    adapted = adapt(obj)
    if adapted is not None:
        return adapted
    lacks = _conforms(obj)
    if lacks is None:
        return Conforming(obj)
    if lacks.startswith("cfg") or lacks.startswith("kind"):
        raise ConfigError(
            f"{what} {type(obj).__name__} has encode and decode but no {lacks} (zspace.models.protocol.Model): "
            "add them, or use zspace.wrap(encoder=m.encode, decoder=m.decode, image_size=..., channels=...)"
        )
    raise ConfigError(
        f"{what} must have encode and decode: a zspace model, a pythae or diffusers model, or "
        f"zspace.wrap(encoder=..., decoder=..., image_size=..., channels=...); got {type(obj).__name__}"
    )
