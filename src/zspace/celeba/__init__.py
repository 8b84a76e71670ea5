"""The CelebA studies of the series: AE vs tiny-KL VAE vs generative VAE, and the encoder's size."""

from zspace.celeba.ae_vs_vae import run_ae_vs_vae
from zspace.celeba.encoder_size import run_encoder_size

__all__ = ["run_ae_vs_vae", "run_encoder_size"]
