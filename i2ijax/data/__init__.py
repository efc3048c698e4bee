"""Input pipelines: the embedded `shapes` benchmark, image folders and TFDS."""
