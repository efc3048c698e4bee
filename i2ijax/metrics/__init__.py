"""Evaluation metrics: shapes oracle networks, clustering accuracies and the
translation metrics of the `shapes` benchmark."""
