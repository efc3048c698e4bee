"""Clustering accuracies against hand-computed cases."""

import numpy as np
import pytest

from i2ijax.metrics import clustering


def test_hungarian_accuracy_is_invariant_to_relabelling():
  true = np.array([0, 0, 1, 1, 2, 2, 2])
  assert clustering.hungarian_accuracy((true + 1) % 3, true) == 1.0


def test_hungarian_accuracy_counts_the_best_one_to_one_matching():
  true = np.array([0, 0, 0, 1, 1, 1])
  pred = np.array([5, 5, 7, 7, 7, 7])   # best: 5->0 (2 hits), 7->1 (3 hits)
  assert clustering.hungarian_accuracy(pred, true) == pytest.approx(5 / 6)


def test_many_to_one_lets_several_clusters_share_a_class():
  true = np.array([0, 0, 1, 1])
  pred = np.array([0, 1, 2, 3])          # four clusters, two classes
  assert clustering.many_to_one_accuracy(pred, true) == 1.0
  # One-to-one: only two of the four clusters can be matched to a class.
  assert clustering.hungarian_accuracy(pred, true) == 0.5
  assert clustering.num_used_clusters(pred) == 4
  merged = np.zeros(4, int)             # everything in one cluster
  assert clustering.many_to_one_accuracy(merged, true) == 0.5


def test_random_clusters_are_near_chance():
  rng = np.random.default_rng(0)
  true = rng.integers(0, 3, 3000)
  pred = rng.integers(0, 3, 3000)
  assert clustering.hungarian_accuracy(pred, true) < 0.4


def test_mismatched_lengths_are_a_clear_error():
  with pytest.raises(clustering.ClusteringInputError):
    clustering.hungarian_accuracy(np.zeros(3, int), np.zeros(4, int))


def test_hungarian_mapping_names_the_matched_class_of_each_cluster():
  # Clusters 7 and 3 are mostly classes 0 and 1; cluster 5 (a third
  # cluster for two classes) is left out of the one-to-one map.
  pred = np.array([7, 7, 7, 3, 3, 3, 5, 5])
  true = np.array([0, 0, 1, 1, 1, 0, 1, 1])
  assert clustering.hungarian_mapping(pred, true) in (
      {7: 0, 3: 1}, {7: 0, 5: 1})
  assert clustering.hungarian_mapping(pred[:6], true[:6]) == {7: 0, 3: 1}
