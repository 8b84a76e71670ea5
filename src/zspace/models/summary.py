"""A per-layer table of a model: output shape and parameters of every layer, as Keras' ``summary()``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from zspace.models import LatentModel


@dataclass
class LayerRow:
    name: str  # dotted module path, e.g. "encoder.body.layers.0"
    kind: str  # module class, e.g. "Conv2d"
    output_shape: tuple[int, ...]  # without the batch dimension
    params: int


@torch.no_grad()
def layer_table(model: LatentModel) -> list[LayerRow]:
    """Run one dummy image through ``model`` and record every leaf layer in call order."""
    rows: list[LayerRow] = []
    hooks = []
    for name, module in model.named_modules():
        if name and not list(module.children()):

            def hook(mod: nn.Module, _inp: object, out: torch.Tensor, name: str = name) -> None:
                params = sum(p.numel() for p in mod.parameters())
                rows.append(LayerRow(name, type(mod).__name__, tuple(out.shape[1:]), params))

            hooks.append(module.register_forward_hook(hook))
    cfg = model.cfg
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, cfg.channels, cfg.image_size, cfg.image_size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows


def format_table(rows: list[LayerRow], counts: dict[str, int]) -> str:
    """Plain-text table plus the encoder/decoder parameter counts."""
    lines = [f"{'layer':<32} {'type':<16} {'output shape':<18} {'params':>12}", "-" * 81]
    lines += [f"{r.name:<32} {r.kind:<16} {r.output_shape!s:<18} {r.params:>12,}" for r in rows]
    lines += ["-" * 81]
    lines += [f"{k.replace('_', ' '):<68} {v:>12,}" for k, v in counts.items()]
    return "\n".join(lines)
