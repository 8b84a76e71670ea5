"""Training: the loop (one epoch at a time, checkpointed), the run driver, batches, DDP, TensorBoard scalars."""
