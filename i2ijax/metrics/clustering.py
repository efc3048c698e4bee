"""Clustering accuracies of predicted component ids against true classes.

`pred` holds arbitrary cluster ids and `true` arbitrary class ids; neither
needs to be contiguous, and the numbers of clusters and classes may differ.
Both accuracies use the contingency table C[k, c] = #{i : pred_i = k,
true_i = c}:

  hungarian:    max over one-to-one maps σ (cluster → class) of
                Σ_k C[k, σ(k)] / n; clusters left unmatched (more clusters
                than classes) count as wrong.
  many-to-one:  Σ_k max_c C[k, c] / n (each cluster → its majority class).
"""

import numpy as np
from scipy import optimize


class ClusteringInputError(ValueError):
  """Raised for malformed `pred` / `true` label arrays."""


def _check(pred, true) -> tuple[np.ndarray, np.ndarray]:
  pred, true = np.asarray(pred).reshape(-1), np.asarray(true).reshape(-1)
  if pred.shape != true.shape:
    raise ClusteringInputError(
        f'pred and true must have the same number of labels, got '
        f'{pred.size} and {true.size}.')
  if pred.size == 0:
    raise ClusteringInputError('pred and true are empty: pass at least one '
                               'label.')
  for name, labels in (('pred', pred), ('true', true)):
    if not np.issubdtype(labels.dtype, np.integer):
      raise ClusteringInputError(
          f'{name} must hold integer labels, got dtype {labels.dtype}; cast '
          f'with .astype(int) or take an argmax first.')
  return pred, true


def contingency_table(pred, true) -> np.ndarray:
  """Counts C[k, c] of (cluster k, class c) pairs, (num_clusters, num_classes).

  Rows follow np.unique(pred), columns np.unique(true).
  """
  pred, true = _check(pred, true)
  _, pred_idx = np.unique(pred, return_inverse=True)
  _, true_idx = np.unique(true, return_inverse=True)
  table = np.zeros((pred_idx.max() + 1, true_idx.max() + 1), np.int64)
  np.add.at(table, (pred_idx, true_idx), 1)
  return table


def hungarian_mapping(pred, true) -> dict:
  """The best one-to-one map {cluster id: class id} (Hungarian).

  Clusters left unmatched (more clusters than classes) are not in the map.
  """
  pred, true = _check(pred, true)
  table = contingency_table(pred, true)
  rows, cols = optimize.linear_sum_assignment(table, maximize=True)
  clusters, classes = np.unique(pred), np.unique(true)
  return {clusters[r].item(): classes[c].item() for r, c in zip(rows, cols)}


def hungarian_accuracy(pred, true) -> float:
  """Accuracy under the best one-to-one cluster → class map (Hungarian)."""
  pred, true = _check(pred, true)
  mapping = hungarian_mapping(pred, true)
  hits = sum(int(np.sum((pred == k) & (true == c)))
             for k, c in mapping.items())
  return float(hits / pred.size)


def many_to_one_accuracy(pred, true) -> float:
  """Accuracy when every cluster predicts its majority class."""
  table = contingency_table(pred, true)
  return float(table.max(axis=1).sum() / table.sum())


def num_used_clusters(pred) -> int:
  """Number of distinct cluster ids that occur in `pred`."""
  pred = np.asarray(pred).reshape(-1)
  return int(np.unique(pred).size)
