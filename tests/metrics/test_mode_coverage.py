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


def test_modes_per_input_counts_distinct_target_modes_per_input():
  # Rows are styles, columns inputs; target domain 1 (labels 3, 4, 5).
  deterministic = [[3, 4, 5, 4]] * 6
  assert shapes_metrics.modes_per_input(deterministic, 1, 3) == 1 / 3
  every_mode = [[3, 4], [4, 5], [5, 3], [3, 3]]
  assert shapes_metrics.modes_per_input(every_mode, 1, 3) == 1.0
  # Input 0 reaches modes 3 and 4 (2/3), input 1 one mode (1/3); input 2
  # never lands in t and is left out of the mean.
  mixed = [[3, 0, 0], [4, 5, 1], [3, 5, 7]]
  assert shapes_metrics.modes_per_input(mixed, 1, 3) == (2 / 3 + 1 / 3) / 2
  assert shapes_metrics.modes_per_input([[0, 1], [2, 6]], 1, 3) == 0.0
  # Two styles can reach at most two of the three modes.
  assert shapes_metrics.modes_per_input([[3], [5]], 1, 3) == 2 / 3
