"""The GPU path's mechanisms, tested where they also exist on the CPU: device resolution, the precision choice,
the optimiser's flags and layouts across a checkpoint, fp32 latent heads under bf16, the compile modes."""

from __future__ import annotations

import pytest
import torch
from test_training import make_trainer, tiny_config, tiny_data

from zspace.config import ModelConfig, load_config
from zspace.errors import ConfigError
from zspace.models import build_model
from zspace.runs.checkpoint import load_checkpoint, save_checkpoint
from zspace.train.distributed import World
from zspace.train.loop import check_batch_norm, compile_mode, resolve_device
from zspace.train.precision import cpu_flags, resolve_precision


def test_a_cuda_device_always_carries_its_index():
    """ "cuda" and "auto" mean the current device with its index: resident batches on cuda:0 compare equal to it."""
    gpu = {"cuda_available": True, "cuda_count": 2, "cuda_current": 1}
    assert resolve_device("cuda", **gpu) == torch.device("cuda", 1)
    assert resolve_device("auto", **gpu) == torch.device("cuda", 1)
    assert resolve_device("cuda:0", **gpu) == torch.device("cuda", 0)
    assert resolve_device("auto", cuda_available=False) == torch.device("cpu")
    assert resolve_device("cpu", **gpu) == torch.device("cpu")
    with pytest.raises(ConfigError, match="2 CUDA device"):
        resolve_device("cuda:2", **gpu)
    with pytest.raises(ConfigError, match="not available"):
        resolve_device("cuda", cuda_available=False)
    with pytest.raises(ConfigError, match="not a device name"):
        resolve_device("gpu0", **gpu)


def test_precision_auto_follows_the_hardware():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert resolve_precision("auto", cpu, cpu_bf16=True) == "bf16"
    assert resolve_precision("auto", cpu, cpu_bf16=False) == "fp32"
    assert resolve_precision("auto", cuda, cuda_bf16=True) == "bf16"
    assert resolve_precision("auto", cuda, cuda_bf16=False) == "fp32"
    assert resolve_precision("fp32", cuda, cuda_bf16=True) == "fp32"
    assert resolve_precision("bf16", cpu, cpu_bf16=False) == "bf16"  # asked for explicitly
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("fp16", cpu)


def test_cpu_flags_read_the_flags_line_only():
    info = "processor\t: 0\nmodel name\t: Xeon amx_bf16 in a name\nflags\t\t: fpu avx512_bf16 sse\n"
    assert cpu_flags(info) == {"fpu", "avx512_bf16", "sse"}  # avx512_bf16 alone is not AMX
    assert "amx_bf16" not in cpu_flags(info)
    assert cpu_flags("no flags here") == set()


def test_compile_modes_and_their_config():
    assert [compile_mode(v) for v in (False, True, "default", "reduce-overhead")] == [
        None,
        "default",
        "default",
        "reduce-overhead",
    ]
    assert load_config(None, ['train.compile="reduce-overhead"']).train.compile == "reduce-overhead"
    with pytest.raises(ConfigError, match=r"train.compile.*false, true, default, reduce-overhead"):
        load_config(None, ['train.compile="max-speed"'])


def _step(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    x = torch.rand(4, 1, 8, 8)
    optimizer.zero_grad()
    model(x.contiguous(memory_format=torch.channels_last)).logits.float().square().mean().backward()
    optimizer.step()


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(kind="ae", image_size=8, channels=1, filters=(4, 8), z_dim=3)
    return build_model(cfg).to(memory_format=torch.channels_last)


@pytest.mark.parametrize(("saved_fused", "live_fused"), [(False, True), (True, False)])
def test_resume_keeps_the_live_optimisers_flags_and_the_parameters_layout(tmp_path, saved_fused, live_fused):
    """A checkpoint from a machine with another fused setting: the live flags stay, the moments take the
    parameters' channels_last strides, and the next step equals the uninterrupted one."""
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, fused=saved_fused)
    _step(model, opt)
    save_checkpoint(tmp_path / "c.safetensors", model, opt, {"epoch": 0, "step": 1, "global_step": 1,
                                                             "history": [], "partial": None})  # fmt: skip
    reference = _model()
    ref_opt = torch.optim.Adam(reference.parameters(), lr=1e-2, fused=live_fused)
    load_checkpoint(tmp_path / "c.safetensors", reference, ref_opt)
    again = _model()
    live = torch.optim.Adam(again.parameters(), lr=1e-2, fused=live_fused)
    load_checkpoint(tmp_path / "c.safetensors", again, live)
    assert live.param_groups[0]["fused"] is live_fused
    conv = again.encoder.body.layers[2].weight  # (8, 4, 3, 3): 4 input channels, so NCHW and NHWC differ
    assert not conv.is_contiguous()
    assert conv.is_contiguous(memory_format=torch.channels_last)
    for name in ("exp_avg", "exp_avg_sq"):
        assert live.state[conv][name].stride() == conv.stride(), name
    # one more step from the checkpoint equals one more step of the original model
    torch.manual_seed(1)
    _step(model, opt)
    torch.manual_seed(1)
    _step(again, live)
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6, msg=k)


def test_the_trainer_uses_fused_adam_and_a_resolved_precision(tmp_path):
    trainer = make_trainer(tiny_config(tmp_path, 'train.precision="fp32"'), tiny_data())
    assert trainer.optimizer.param_groups[0]["fused"] is True
    assert trainer.precision == "fp32"
    assert trainer.timings == {"checkpoint_s": 0.0, "checkpoints": 0}
    trainer.cfg.train.epochs = 1
    trainer.fit()
    assert trainer.timings["checkpoints"] == 1
    assert trainer.timings["checkpoint_s"] > 0


def test_latent_heads_and_eps_stay_fp32_under_bf16():
    """A tiny-KL VAE (logvar ~ -16, sigma ~ 3e-4): under bf16 autocast z - mu is still sigma * eps, not rounding."""
    torch.manual_seed(0)
    cfg = ModelConfig(kind="vae", image_size=8, channels=1, filters=(4, 8), z_dim=16, eps_clip=None)
    model = build_model(cfg)
    with torch.no_grad():
        model.encoder.logvar.bias.fill_(-16.0)
        model.encoder.logvar.weight.mul_(0.01)
    x = torch.rand(32, 1, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        enc = model.encode(x, generator=torch.Generator().manual_seed(3))
        logits = model.decoder(enc.z)
    eps = torch.randn(enc.mu.shape, generator=torch.Generator().manual_seed(3))
    assert enc.z.dtype == enc.mu.dtype == enc.logvar.dtype == torch.float32
    sigma = torch.exp(0.5 * enc.logvar)
    torch.testing.assert_close((enc.z - enc.mu) / sigma, eps, rtol=1e-3, atol=1e-3)
    assert logits.dtype == torch.bfloat16  # the convolutions themselves still run in bf16


def test_batch_norm_across_processes_needs_cuda():
    two = World(rank=0, size=2)
    with pytest.raises(ConfigError, match="SyncBatchNorm"):
        check_batch_norm(True, two, torch.device("cpu"))
    check_batch_norm(True, two, torch.device("cuda", 0))  # SyncBatchNorm there
    check_batch_norm(True, World(), torch.device("cpu"))  # one process: plain BatchNorm is exact
    check_batch_norm(False, two, torch.device("cpu"))


@pytest.mark.filterwarnings(
    "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"
)  # torch.compile's import
def test_cuda_graphs_get_one_batch_shape(tmp_path):
    """With "reduce-overhead" the epoch's last partial batch is left out (32 training images, batch 5: 6 full
    steps, not 7), so no second graph is captured; other modes keep every image."""
    data = tiny_data()
    eager = make_trainer(tiny_config(tmp_path / "e", "train.batch_size=5"), data)
    graphs = make_trainer(tiny_config(tmp_path / "g", "train.batch_size=5", 'train.compile="reduce-overhead"'), data)
    assert (eager.steps_per_epoch, eager.drop_last) == (7, False)
    assert (graphs.steps_per_epoch, graphs.drop_last) == (6, True)
    assert graphs.compile_mode == "reduce-overhead"
