"""Run folders: the config, weights, history and checkpoints of one training run, and loading them back."""
