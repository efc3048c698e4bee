"""i2ijax: unsupervised image-to-image translation in JAX/Flax."""
__version__ = "0.1.0"
