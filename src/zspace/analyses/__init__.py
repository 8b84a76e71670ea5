"""Latent-space analyses as plain functions on numpy arrays; no disk, no matplotlib."""
