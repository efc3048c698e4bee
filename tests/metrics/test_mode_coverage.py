"""The mode-coverage rule on hand-made oracle labels."""

from i2ijax.metrics import shapes_metrics


def test_counts_modes_with_a_fair_share():
  # Target domain 1 with 3 modes has labels 3, 4, 5. A mode needs at least
  # max(1, n / 12) of the n translations put in the domain: 13 / 12 > 1, so
  # mode 5 seen once is not covered.
  labels = [3] * 6 + [4] * 6 + [5]
  assert shapes_metrics.mode_coverage(labels, 1, 3) == 2 / 3
  assert shapes_metrics.mode_coverage([3, 4, 5] * 4, 1, 3) == 1.0


def test_translations_outside_the_target_do_not_count():
  assert shapes_metrics.mode_coverage([0, 1, 2, 6, 7, 8], 1, 3) == 0.0
  assert shapes_metrics.mode_coverage([0, 1, 2, 3], 1, 3) == 1 / 3
