"""The feature network of zspace's offline sample-quality measures (:mod:`zspace.latents.quality`).

No downloaded weights: zspace trains a small CNN classifier on the dataset itself, on its class labels (digits,
MNIST, an image folder with subfolders: cross-entropy) or, failing those, on its binary attributes (CelebA's 40:
binary cross-entropy per attribute, unknown values masked). Conv 3x3 stride 2 + BatchNorm + ReLU layers (as many
of ``filters`` as the image size allows), global average pooling, one linear head. The features are the pooled
activations of the last convolution (``filters[-1]`` wide), the analogue of Inception's pool3 features.

The trained network is kept in a run-like folder (``config.json``, ``model.safetensors``, ``metrics.json``),
by default ``$ZSPACE_CACHE_DIR/feature-nets/<dataset>-<key>/`` keyed by the data and the network config, so it
trains once per dataset and every later score uses the same features.

A feature net that learnt nothing (too few epochs, data without structure in its labels) gives features that do not
tell real images from generated ones, and an FID of them means nothing. :func:`chance_warning` compares the net's
held-out accuracy with that of the best constant guess on the same images (the share of the commonest class; per
attribute, the commoner sign) and warns when the net removes less than ``NEAR_CHANCE_GAIN`` (a third) of that guess's
errors: for 4 balanced classes that is below 0.5 (2 x chance), for 10 below 0.4, for CelebA's attributes (a constant
guess is right about 80% of the time) below about 0.87, while the nets zspace trains reach 0.95+ on digits and MNIST.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from zspace.data import Dataset
from zspace.data.cache import cache_root
from zspace.errors import CheckpointError, DataError
from zspace.io.atomic import atomic_write_text
from zspace.runs.checkpoint import load_weights, save_weights

log = logging.getLogger(__name__)

#: a net removing less than this share of the errors of the best constant guess is "near chance" (module docstring)
NEAR_CHANCE_GAIN = 1 / 3


@dataclass
class FeatureConfig:
    filters: tuple[int, ...] = (32, 64, 128, 256)  # conv channels per stride-2 layer; features = the last width
    epochs: int = 4  # passes over the training images
    batch_size: int = 128  # images per step
    lr: float = 1e-3  # Adam learning rate
    max_images: int = 20_000  # train on at most this many training images (a random subset); 0 = all
    seed: int = 0  # seeds the weights, the subset and the batch order


class FeatureNet(nn.Module):
    """CNN classifier whose pooled last convolution is the feature space; ``target`` names what it learnt."""

    def __init__(self, image_size: int, channels: int, n_out: int, target: str, cfg: FeatureConfig):
        super().__init__()
        self.cfg = SimpleNamespace(image_size=image_size, channels=channels)  # what models.inputs.as_images reads
        self.target, self.n_out, self.config = target, n_out, cfg
        layers, c, size = [], channels, image_size
        for f in cfg.filters:
            if size < 4 and layers:  # stop before the maps shrink below 2x2
                break
            layers += [nn.Conv2d(c, f, 3, stride=2, padding=1), nn.BatchNorm2d(f), nn.ReLU()]
            c, size = f, math.ceil(size / 2)
        self.body = nn.Sequential(*layers)
        self.width = c
        self.head = nn.Linear(c, n_out)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] -> features (B, width)."""
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, n_out) logits

    def describe(self) -> str:
        n = len(self.body) // 3
        return (
            f"{self.width}-d pooled last convolution of a {n}-layer CNN zspace trained on this dataset's {self.target}"
        )


def _targets(data: Dataset) -> tuple[str, int, np.ndarray]:
    """(what, outputs, targets (N,) int64 or (N, A) float32 in {0, 0.5, 1}) to train the net on."""
    if data.labels is not None and len(values := np.unique(data.labels)) >= 2:  # labels -> ranks: 1e9 is one class
        codes = np.searchsorted(values, data.labels).astype(np.int64)
        return f"{len(values)} class labels", len(values), codes
    if data.attributes is not None and data.attributes.shape[1] >= 1:
        a = data.attributes.shape[1]
        return f"{a} binary attributes", a, (data.attributes.astype(np.float32) + 1) / 2  # -1/0/1 -> 0/0.5/1
    raise DataError(f"dataset {data.name!r} has no labels or attributes to train the quality measure's features on")


def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if y.dtype == torch.int64:
        return F.cross_entropy(logits, y)
    known = (y != 0.5).float()  # attribute value 0 in the file: unknown
    bce = F.binary_cross_entropy_with_logits(logits, y.round(), reduction="none")
    return (bce * known).sum() / known.sum().clamp(min=1)


def _accuracy(net: FeatureNet, data: Dataset, rows: np.ndarray, y: np.ndarray, device) -> float:
    """Share of correct classes, or of correct known attribute signs, on ``rows``."""
    hits = total = 0.0
    for s in range(0, len(rows), 512):
        r = rows[s : s + 512]
        logits = net(_batch(data, r, device)).cpu()
        t = torch.from_numpy(y[r])
        if t.dtype == torch.int64:
            hits, total = hits + float((logits.argmax(1) == t).sum()), total + len(r)
        else:
            known = t != 0.5
            hits, total = hits + float(((logits > 0) == (t > 0.5))[known].sum()), total + float(known.sum())
    return hits / max(total, 1.0)


def _batch(data: Dataset, rows: np.ndarray, device) -> torch.Tensor:
    x = torch.from_numpy(np.array(data.x[np.sort(rows)]))  # (B, H, W, C) uint8, a copy of the memmap rows
    order = np.argsort(np.argsort(rows))  # back to the order of ``rows``
    return x[order].permute(0, 3, 1, 2).float().div_(255.0).to(device)


def _epoch(net, opt, data: Dataset, order: np.ndarray, y: np.ndarray, batch_size: int, device) -> float:
    """One pass over ``order`` (row indices); returns the mean loss."""
    net.train()
    total = 0.0
    for s in range(0, len(order), batch_size):
        r = order[s : s + batch_size]
        loss = _loss(net(_batch(data, r, device)), torch.from_numpy(y[r]).to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item() * len(r)
    return total / len(order)


def train_feature_net(data: Dataset, cfg: FeatureConfig, *, device: str | torch.device = "cpu") -> tuple:
    """Train the feature network on the training split of ``data``; returns (net in eval mode, metrics dict)."""
    target, n_out, y = _targets(data)
    h, _, c = data.image_shape
    torch.manual_seed(cfg.seed)
    net = FeatureNet(h, c, n_out, target, cfg).to(device)
    rng = np.random.default_rng(cfg.seed)
    rows = data.indices("train")
    if cfg.max_images and len(rows) > cfg.max_images:
        rows = np.sort(rng.choice(rows, cfg.max_images, replace=False))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    losses = []
    for epoch in range(cfg.epochs):
        losses.append(_epoch(net, opt, data, rng.permutation(rows), y, cfg.batch_size, device))
        log.info("feature net epoch %d/%d: loss %.4f", epoch + 1, cfg.epochs, losses[-1])
    net.eval()
    test = data.indices("test")
    with torch.no_grad():
        acc = _accuracy(net, data, test, y, device) if len(test) else None
    return net, {"target": target, "train_images": len(rows), "losses": losses, "test_accuracy": acc}


def _identity(data: Dataset, cfg: FeatureConfig) -> dict[str, Any]:
    """What the trained features depend on: the data (source, size, split) and the network config."""
    source = {k: v for k, v in data.source.items() if k != "cache"}  # the cache's location does not matter
    return {
        "format": "zspace-feature-net-1",
        "dataset": data.name,
        "source": source,
        "shape": list(data.x.shape),
        "n_test": len(data.indices("test")),
        "config": dataclasses.asdict(cfg),
    }


def default_folder(data: Dataset, cfg: FeatureConfig) -> Path:
    """``$ZSPACE_CACHE_DIR/feature-nets/<dataset>-<key>``, keyed by :func:`_identity`."""
    key = hashlib.sha256(json.dumps(_identity(data, cfg), sort_keys=True, default=str).encode()).hexdigest()[:16]
    return cache_root() / "feature-nets" / f"{data.name}-{key}"


def feature_network(
    data: Dataset,
    *,
    cfg: FeatureConfig | None = None,
    folder: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> FeatureNet:
    """The feature network of ``data``: loaded from ``folder`` when it was trained there on the same data and
    config, else trained and saved there (default :func:`default_folder`). ``net.info`` holds its metrics."""
    cfg = cfg or FeatureConfig()
    folder = Path(folder) if folder is not None else default_folder(data, cfg)
    identity = json.loads(json.dumps(_identity(data, cfg), default=str))
    config_file, weights = folder / "config.json", folder / "model.safetensors"
    if config_file.is_file() and weights.is_file():
        saved = json.loads(config_file.read_text())
        if saved.get("identity") == identity:
            net = FeatureNet(saved["image_size"], saved["channels"], saved["n_out"], saved["target"], cfg)
            try:
                load_weights(weights, net)
            except CheckpointError as e:
                log.warning("feature net in %s unreadable (%s): training it again", folder, e)
            else:
                net.info = (
                    json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else {}
                )
                log.info("feature net: reusing %s", folder)
                return net.to(device).eval()
    log.info("training the quality measure's feature net on %s (kept in %s)", data.name, folder)
    net, info = train_feature_net(data, cfg, device=device)
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(weights, net)
    h, _, c = data.image_shape
    meta = {"identity": identity, "image_size": h, "channels": c, "n_out": net.n_out, "target": net.target}
    atomic_write_text(folder / "metrics.json", json.dumps(info, indent=2) + "\n")
    atomic_write_text(config_file, json.dumps(meta, indent=2) + "\n")  # last: marks the folder complete
    net.info = info
    return net


def chance_accuracy(data: Dataset) -> float | None:
    """Held-out accuracy of the best constant guess: the commonest test class's share, or for attributes the share
    of known test values that equal their attribute's commoner sign. None without test images."""
    _, _, y = _targets(data)
    t = y[data.indices("test")]
    if len(t) == 0:
        return None
    if t.dtype == np.int64:
        return float(np.unique(t, return_counts=True)[1].max() / len(t))
    pos, neg = (t == 1).sum(0), (t == 0).sum(0)  # 0.5: unknown
    return float(np.maximum(pos, neg).sum() / max(float((pos + neg).sum()), 1.0))


def chance_warning(net: FeatureNet, data: Dataset) -> str | None:
    """A one-line warning when ``net``'s held-out accuracy (``net.info``) is near chance on ``data``, else None."""
    acc, chance = getattr(net, "info", {}).get("test_accuracy"), chance_accuracy(data)
    if acc is None or chance is None:
        return None
    bar = chance + NEAR_CHANCE_GAIN * (1.0 - chance)
    if acc >= bar:
        return None
    return (
        f"the feature net's held-out accuracy {acc:.3f} is near chance ({chance:.3f} for a constant guess; "
        f"below {bar:.3f}): its features barely separate images, so these scores mean little"
    )


@torch.no_grad()
def extract(net: FeatureNet, images: Any, *, batch_size: int = 256) -> np.ndarray:
    """Features of images in any form :func:`zspace.models.inputs.as_images` accepts: ndarray (N, width), float64."""
    from zspace.models.inputs import as_images

    device = next(net.parameters()).device
    out = []
    for s in range(0, len(images), batch_size):
        out.append(net.features(as_images(images[s : s + batch_size], net).to(device)).double().cpu().numpy())
    if not out:
        raise DataError("no images to compute features of")
    return np.concatenate(out)


def data_features(net: FeatureNet, data: Dataset, split: str, n: int, *, seed: int = 0) -> np.ndarray:
    """Features (min(n, split size), width) of a random subset of the images of ``split``."""
    rows = data.indices(split)
    if n < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, n, replace=False))
    return np.concatenate([extract(net, np.asarray(data.x[rows[s : s + 1024]])) for s in range(0, len(rows), 1024)])


@torch.no_grad()
def generated_features(net: FeatureNet, model, sampler, n: int, *, seed: int = 0, batch_size: int = 256) -> np.ndarray:
    """Features (n, width) of ``n`` images that ``model`` decodes from ``sampler`` (see generate.sample)."""
    from zspace.latents.generate import sample

    out = []
    for i, s in enumerate(range(0, n, batch_size)):
        images = sample(model, min(batch_size, n - s), sampler=sampler, seed=seed * 100_003 + i)  # (B, C, H, W)
        out.append(extract(net, images.to(next(net.parameters()).device)))
    return np.concatenate(out)
