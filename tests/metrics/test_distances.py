"""FID / KID / IS / NDB / JSD / LPIPS-diversity maths (metrics/distances.py)
against closed forms and independent numpy / scipy computations."""

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance
import scipy.stats

from i2ijax.metrics import distances


def _spd(rng, d):
  a = rng.normal(size=(d, d))
  return a @ a.T / d + 0.1 * np.eye(d)


def _closed_form_fid(mu1, s1, mu2, s2):
  """The textbook formula, Tr (Σ₁Σ₂)^½ by scipy's general matrix root."""
  cross = np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
  return np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2) - 2 * cross


def test_frechet_distance_equals_the_gaussian_closed_form():
  rng = np.random.default_rng(0)
  mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
  s1, s2 = _spd(rng, 6), _spd(rng, 6)
  assert distances.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(
      _closed_form_fid(mu1, s1, mu2, s2), rel=1e-9)
  # Diagonal covariances: ‖μ₁ − μ₂‖² + Σ (√a − √b)².
  a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
  assert distances.frechet_distance(np.zeros(3), np.diag(a), np.ones(3),
                                    np.diag(b)) == pytest.approx(
                                        3 + np.sum((np.sqrt(a) - np.sqrt(b))
                                                   ** 2))
  assert distances.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(
      0, abs=1e-9)


def test_fid_of_samples_approaches_the_closed_form():
  rng = np.random.default_rng(1)
  d = 4
  mu1, mu2 = np.zeros(d), np.full(d, 0.5)
  s1, s2 = _spd(rng, d), _spd(rng, d)
  x = rng.multivariate_normal(mu1, s1, 20000)
  y = rng.multivariate_normal(mu2, s2, 20000)
  expected = _closed_form_fid(mu1, s1, mu2, s2)
  assert distances.fid(x, y) == pytest.approx(expected, rel=0.05)
  same = distances.fid(x, rng.multivariate_normal(mu1, s1, 20000))
  assert 0 <= same < 0.05 * expected


def test_fid_with_singular_covariances_is_finite():
  """N < D makes Σ₁Σ₂ singular; FID stays finite, real and >= 0, and equal
  to the formula with a tiny ridge added (ε·I, the usual workaround)."""
  rng = np.random.default_rng(2)
  x, y = rng.normal(size=(5, 16)), rng.normal(size=(5, 16)) + 1
  value = distances.fid(x, y)
  assert np.isfinite(value) and value > 10
  (mu1, s1), (mu2, s2) = distances.gaussian_stats(x), distances.gaussian_stats(y)
  ridge = 1e-9 * np.eye(16)
  assert value == pytest.approx(
      _closed_form_fid(mu1, s1 + ridge, mu2, s2 + ridge), rel=1e-5)


def _mmd2_loops(x, y):
  """Unbiased MMD², cubic kernel (xᵀy/d + 1)³, written out with loops."""
  d = x.shape[1]
  k = lambda a, b: (np.dot(a, b) / d + 1) ** 3
  m, n = len(x), len(y)
  kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
  kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j)
  kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n))
  return kxx / (m * (m - 1)) + kyy / (n * (n - 1)) - 2 * kxy / (m * n)


def test_polynomial_mmd2_equals_the_explicit_sum():
  rng = np.random.default_rng(3)
  x, y = rng.normal(size=(7, 3)), rng.normal(size=(9, 3)) + 0.3
  assert distances.polynomial_mmd2(x, y) == pytest.approx(_mmd2_loops(x, y),
                                                          rel=1e-10)


def test_mmd2_estimator_is_unbiased():
  """Same distribution: the average over many small draws is ≈ 0, while
  the biased (V-statistic) version is clearly positive."""
  rng = np.random.default_rng(4)
  draws = [(rng.normal(size=(8, 3)), rng.normal(size=(8, 3)))
           for _ in range(400)]
  unbiased = np.array([distances.polynomial_mmd2(x, y) for x, y in draws])
  k = lambda a, b: (a @ b.T / 3 + 1) ** 3
  biased = np.array([k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()
                     for x, y in draws])
  stderr = unbiased.std() / np.sqrt(len(unbiased))
  assert abs(unbiased.mean()) < 3 * stderr
  assert biased.mean() > 10 * stderr


def test_kid_is_zero_for_same_and_positive_for_shifted_distributions():
  rng = np.random.default_rng(5)
  x, y = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
  mean, std = distances.kid(x, y, num_subsets=20, subset_size=100)
  assert abs(mean) < 3 * std / np.sqrt(20) + 1e-3
  shifted, shifted_std = distances.kid(x, y + 1, num_subsets=20,
                                       subset_size=100)
  assert shifted > 0.1 and shifted > 5 * shifted_std
  # Same seed, same subsets.
  assert distances.kid(x, y + 1, num_subsets=20, subset_size=100) == (
      shifted, shifted_std)


def test_kid_of_small_sets_draws_half_subsets():
  """Sets smaller than the subset size: subsets of half the smaller set, so
  the std is not 0, and their mean is the whole-set MMD² up to its Monte
  Carlo error (every subset is an unbiased estimate of it)."""
  assert distances.kid_subset_size(40, 300, 1000) == 20
  assert distances.kid_subset_size(3, 10, 1000) == 2
  assert distances.kid_subset_size(2500, 2000, 1000) == 1000
  assert distances.kid_subset_size(1500, 2000, 1000) == 750
  rng = np.random.default_rng(6)
  x, y = rng.normal(size=(40, 8)), rng.normal(size=(300, 8)) + 0.5
  mean, std = distances.kid(x, y, num_subsets=100)
  whole = distances.polynomial_mmd2(x, y)
  assert std > 0.05 * whole
  assert abs(mean - whole) < 4 * std / np.sqrt(100)
  with pytest.raises(ValueError, match='at least 2 samples'):
    distances.kid(x[:1], y)


def test_kid_of_large_sets_keeps_the_full_subset_size():
  """At least twice `subset_size` in both sets: the subsets are those of
  the plain rule, min(subset_size, N₁, N₂) draws of the seeded Generator."""
  rng = np.random.default_rng(7)
  x, y = rng.normal(size=(250, 4)), rng.normal(size=(220, 4)) + 0.2
  draws = np.random.default_rng(3)
  expected = [distances.polynomial_mmd2(
      x[draws.choice(250, 100, replace=False)],
      y[draws.choice(220, 100, replace=False)]) for _ in range(10)]
  assert distances.kid(x, y, num_subsets=10, subset_size=100, seed=3) == (
      float(np.mean(expected)), float(np.std(expected)))


def test_inception_score_extremes():
  eye = np.eye(10)
  confident_uniform = np.repeat(eye, 5, axis=0)   # each class equally often
  assert distances.inception_score(confident_uniform, 1)[0] == pytest.approx(
      10)
  constant = np.tile(np.full(10, 0.1), (50, 1))
  assert distances.inception_score(constant, 5) == pytest.approx((1, 0))
  with pytest.raises(ValueError, match='summing to 1'):
    distances.inception_score(np.ones((4, 3)))


def test_conditional_inception_score():
  # 4 inputs × 3 samples × 4 classes. A deterministic model (every sample
  # of an input identical) has CIS 0; here each input always hits its
  # own class, so IS = ln 4 (mean KL) and exp(IS) = 4.
  probs = np.repeat(np.eye(4)[:, None], 3, axis=1)
  out = distances.conditional_inception_score(probs)
  assert out['cis'] == pytest.approx(0) and out['cis_exp'] == pytest.approx(1)
  assert out['is'] == pytest.approx(np.log(4))
  assert out['is_exp'] == pytest.approx(4)
  # Every input reaches 2 classes evenly: CIS = ln 2.
  probs = np.zeros((2, 2, 4))
  probs[0, 0, 0] = probs[0, 1, 1] = probs[1, 0, 2] = probs[1, 1, 3] = 1
  assert distances.conditional_inception_score(probs)['cis'] == pytest.approx(
      np.log(2))


def test_jsd_known_values():
  p, q = np.array([0.5, 0.5]), np.array([1.0, 0.0])
  m = (p + q) / 2
  by_hand = 0.5 * (0.5 * np.log(0.5 / m[0]) + 0.5 * np.log(0.5 / m[1])
                   + np.log(1 / m[0]))
  assert distances.jsd(p, q) == pytest.approx(by_hand)
  assert distances.jsd([1, 0, 0], [0, 0.5, 0.5]) == pytest.approx(np.log(2))
  assert distances.jsd(p, p) == 0
  r = np.random.default_rng(6).dirichlet(np.ones(7), size=2)
  assert distances.jsd(r[0], r[1]) == pytest.approx(
      scipy.spatial.distance.jensenshannon(r[0], r[1]) ** 2)


def test_two_proportion_test_equals_chi2_without_correction():
  p1, p2, n1, n2 = np.array([0.5, 0.2]), np.array([0.3, 0.2]), 100, 80
  pvalues = distances.two_proportion_pvalues(p1, n1, p2, n2)
  for a, b, pv in zip(p1, p2, pvalues):
    table = [[a * n1, (1 - a) * n1], [b * n2, (1 - b) * n2]]
    expected = scipy.stats.chi2_contingency(table, correction=False)[1]
    assert pv == pytest.approx(expected, rel=1e-9)
  # Empty in both sets: not a different bin.
  assert distances.two_proportion_pvalues([0.0], 10, [0.0], 20)[0] == 1


def _clusters(rng, counts, centers=((0, 0), (10, 0), (0, 10))):
  return np.concatenate([rng.normal(c, 0.5, (n, 2))
                         for c, n in zip(centers, counts)])


def test_ndb_on_constructed_bins():
  rng = np.random.default_rng(7)
  bins = distances.fit_bins(_clusters(rng, (200, 200, 200)), num_bins=3)
  np.testing.assert_allclose(np.sort(bins.proportions), [1 / 3] * 3)
  same = distances.ndb_jsd(bins, _clusters(rng, (100, 100, 100)))
  assert same['ndb'] == 0 and same['jsd'] < 1e-3
  # Mode collapse onto the first cluster: all three bins differ, and JSD is
  # that of (1/3, 1/3, 1/3) vs (1, 0, 0).
  collapsed = distances.ndb_jsd(bins, _clusters(rng, (300, 0, 0)))
  assert collapsed['ndb'] == 3 and collapsed['ndb_ratio'] == 1
  assert collapsed['jsd'] == pytest.approx(
      distances.jsd([1 / 3] * 3, [1, 0, 0]))
  # A mild imbalance (40/30/30 %) with 300 samples is significant for the
  # over-represented bin only at α = 0.05 (z ≈ 2.1 vs 1.2).
  mild = distances.ndb_jsd(bins, _clusters(rng, (120, 90, 90)))
  assert mild['ndb'] in (1, 2)


def test_fit_bins_is_seeded():
  x = np.random.default_rng(8).normal(size=(200, 4))
  a, b = distances.fit_bins(x, 5, seed=3), distances.fit_bins(x, 5, seed=3)
  np.testing.assert_array_equal(a.centers, b.centers)


def test_lpips_diversity_averages_consecutive_pairs():
  # samples[i, s] is the constant image s·(i + 1): with a mean-|a − b|
  # distance, consecutive pairs of input i are (i + 1) apart.
  scale = np.arange(1, 4)[:, None, None, None, None]
  samples = scale * np.arange(20)[None, :, None, None, None] * np.ones(
      (1, 1, 4, 4, 3))
  dist = lambda a, b: np.abs(a - b).mean(axis=(1, 2, 3))
  assert distances.consecutive_pairs(20)[-1] == (18, 19)
  assert len(distances.consecutive_pairs(20)) == 19
  assert distances.lpips_diversity(dist, samples) == pytest.approx(2)
  assert distances.lpips_diversity(dist, samples, pairs=[(0, 2)]) == (
      pytest.approx(4))
  assert distances.lpips_diversity(dist, np.ones((2, 5, 4, 4, 3))) == 0
