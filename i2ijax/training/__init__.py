"""The training engine shared by every model: state, optimizers, checkpoints."""
