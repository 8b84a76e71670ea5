"""The latent space of a run: embedding a dataset (z, mu, logvar), generation, samplers, sample quality."""
