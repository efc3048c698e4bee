"""Convolution layers and blocks of MDMM / DRIT++ (spec §1.1), NHWC.

Kernels are HWIO. Padding is explicit (`jnp.pad(mode='reflect')` is PyTorch's
`ReflectionPad2d`: the edge pixel is not repeated); the convolutions
themselves are VALID. Weights are N(0, 0.02²) and biases PyTorch's default
U(±1/√fan_in) (spec §1.4, `i2ijax.layers.init`).

`ConvTranspose2d` reproduces PyTorch's `ConvTranspose2d(k, s, p, op)`
exactly: its `kernel` holds the PyTorch weight (Cin, Cout, k, k) transposed
to (k, k, Cin, Cout), *unflipped*, and the layer runs

  conv_general_dilated(x, flip_hw(kernel), strides 1,
                       padding [(k−1−p, k−1−p+op)]², lhs_dilation (s, s)),

giving H_out = (H − 1)·s − 2p + k + op (2·H for k3 s2 p1 op1). It computes
this by default as s² stride-1 phase convolutions (`subpixel_conv_transpose`):
output pixel o = s·m + r only receives taps k ≡ r + p (mod s), from input
pixel m + (r + p − k)/s, so s² stride-1 convs of x, each with only its
phase's taps, followed by a depth-to-space shuffle give the same sums
without multiplying by the inserted zeros. Same parameters, same outputs
(float rounding aside); its
weight gradient is several times faster on XLA:CPU than that of the
lhs-dilated form (`method='dilated'`, kept for tests and benchmarks).

Spectral norm (`Conv2d(spectral_norm=True)`) follows PyTorch's
`spectral_norm(conv)` hook with one power iteration and eps 1e-12 as MDMM
copies it: in training mode (`update_stats=True`)
  v = normalize(Wᵀu), u = normalize(W v), σ = u·(W v),  W = kernel as (Cout, ·)
with u and v held constant for the gradient; the conv uses W/σ and stores u
and σ in the `batch_stats` collection. Otherwise it uses W/σ_stored (σ = 1
before any training call, i.e. the raw weight, as PyTorch's fresh `weight`
buffer). PyTorch's eval mode uses the *stored* normalised weight; this equals
W/σ_stored whenever the kernel has not changed since the last training call
(as in the parity fixture), and uses the current kernel otherwise.

Every layer and block has a compute `dtype` (float32 by default): params
and the spectral-norm power iteration stay float32, the conv runs in
`dtype` on the cast kernel and input (`layers.compute`).

Every convolution of the models goes through `conv_general_dilated`, which
is `lax.conv_general_dilated` except for one XLA:CPU workaround: a conv with
no padding at all (VALID, as after an explicit reflection pad) runs on a
path 3-30× slower than the same conv with any padding (jax 0.10.2, 2-core
EPYC: a 7×7 64→3 conv at 128² took 107 ms VALID, 2.9 ms with one padded
row; its gradient 117 vs 26 ms). On the CPU it is therefore computed with
`stride` zero rows / columns appended at the bottom / right and the extra
last output row / column cropped: the kept outputs read only the original
pixels, so the sums are the same (float rounding aside).

On the CPU the gradients of the larger convs are rewritten too (a
`custom_vjp`, reverse mode only, its backward pass differentiable again for
R1): XLA:CPU's kernel gradient runs at 40-110 GFLOP/s where the forward conv
runs at 200-390, and is 1.1-2.4× faster as a sum of per-sample (at most 8
slices) kernel gradients once batch × output pixels ≥ 8192; a strided conv's
input gradient (XLA's lhs-dilated conv) is 1.3-4× faster as the sub-pixel
transposed conv above. Same sums in another order; measured per shape in
`_weight_grad_by_slices_pays` / `_input_grad_by_phases_pays`.

The widest convs, 3×3 stride 1 with ≥ 256 input and output channels on
maps of ≥ 24 × 24 (the generators' residual blocks at the papers' sizes,
~80% of CycleGAN's FLOPs), run on the CPU as Winograd F(2×2, 3×3)
(`winograd_conv3x3`): 16 instead of 36 multiplies per 2×2 output tile and
channel pair, as 16 batched matrix products, forward and (by autodiff)
backward; 1.2-1.7× faster for forward + both gradients, same sums up to
rounding (relative error ~1e-6). The backward pass keeps the transformed
tiles (4× the input), so peak memory grows (CycleGAN at 256: 4.2 → 5.9 GB).
float32 only: in bfloat16 the transforms' additions would lose too much.

Convs on small maps (≤ 512 output pixels over the batch, ≥ 64 input and
output channels: the ends of the discriminators and encoders, TUNIT's
generator at batch 8) run on the CPU as one matrix product of their
patches (`patches_matmul_conv`, "im2col"), which XLA:CPU computes 1.1-2.5×
faster than the conv, forward and backward (MDMM's content D at 108:
forward + both gradients of its first 7×7 stride-2 conv 57 → 34 ms).

Nearest upsampling followed by a padded conv (MUNIT / UNIT / TUNIT
decoders) is `upsample_conv`: f² phase convs of the low-resolution map
with the taps that read the same pixel summed, i.e. a 5×5 conv after a ×2
upsample costs four 3×3 convs of the input (2.8× fewer multiply-adds on
every backend).
"""

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from flax import linen as nn
from flax.linen.dtypes import promote_dtype

from i2ijax.layers import init
from i2ijax.layers import norm

_DIMS = ('NHWC', 'HWIO', 'NHWC')
SN_EPS = 1e-12


def _is_unpadded(padding) -> bool:
  if isinstance(padding, str):
    return padding.upper() == 'VALID'
  return all(tuple(p) == (0, 0) for p in padding)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None,
                         **kwargs):
  """`lax.conv_general_dilated` (same arguments and result), with unpadded
  convs computed on XLA:CPU's fast padded path, wide 3×3 convs as Winograd
  F(2×2, 3×3), convs on small maps as a matrix product of their patches
  and, where it pays, the weight gradient summed over batch slices (module
  docstring)."""
  def plain(lhs, rhs):
    return lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
        **kwargs)
  dilated = any(d != 1 for d in (lhs_dilation or ()) + (rhs_dilation or ()))
  if jax.default_backend() != 'cpu' or dilated:
    return plain(lhs, rhs)
  if _winograd_pays(lhs, rhs, window_strides, padding, dimension_numbers,
                    kwargs):
    rewrite = winograd_conv3x3
  elif _patches_matmul_pays(lhs, rhs, window_strides, padding,
                            dimension_numbers, kwargs):
    rewrite = lambda x, k: patches_matmul_conv(x, k, window_strides)
  else:
    rewrite = None
  if rewrite is not None:     # both compute VALID convs: pad explicitly
    pads = _explicit_pads(lhs, rhs, window_strides, padding)
    if any(p != 0 for pair in pads for p in pair):
      lhs = jnp.pad(lhs, [(0, 0), *pads, (0, 0)])
    return rewrite(lhs, rhs)
  numbers = lax.conv_dimension_numbers(lhs.shape, rhs.shape,
                                       dimension_numbers)
  window = [rhs.shape[d] for d in numbers.rhs_spec[2:]]
  if all(k == 1 for k in window):
    return plain(lhs, rhs)   # 1×1 convs are matrix products: fast as they are
  strides = tuple(window_strides)

  def conv(lhs, rhs):
    if not _is_unpadded(padding):
      return plain(lhs, rhs)
    y = lax.conv_general_dilated(
        lhs, rhs, strides, [(0, s) for s in strides],
        dimension_numbers=dimension_numbers, **kwargs)
    limits = list(y.shape)
    for axis, size, k, s in zip(numbers.out_spec[2:],
                                [lhs.shape[d] for d in numbers.lhs_spec[2:]],
                                window, strides):
      limits[axis] = (size - k) // s + 1     # the VALID output size
    return lax.slice(y, (0,) * y.ndim, limits)

  grouped = (kwargs.get('feature_group_count', 1) != 1 or
             kwargs.get('batch_group_count', 1) != 1)
  if grouped or kwargs.get('preferred_element_type') is not None:
    return conv(lhs, rhs)
  out = jax.eval_shape(conv, lhs, rhs).shape
  batch = lhs.shape[numbers.lhs_spec[0]]
  pixels = math.prod(out[d] for d in numbers.out_spec[2:])
  weight_by_slices = _weight_grad_by_slices_pays(
      batch, pixels, out[numbers.out_spec[1]])
  input_by_phases = _input_grad_by_phases_pays(
      lhs, rhs, strides, padding, dimension_numbers)
  if not (weight_by_slices or input_by_phases):
    return conv(lhs, rhs)
  return _custom_gradients(conv, lhs, rhs, numbers, weight_by_slices,
                           input_by_phases, strides, padding)


def _explicit_pads(lhs, rhs, strides, padding):
  """A 2-D NHWC / HWIO conv's padding as [(lo, hi)] * 2."""
  if isinstance(padding, str):
    return lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], strides,
                               padding)
  return [tuple(pair) for pair in padding]


def _winograd_pays(lhs, rhs, strides, padding, dimension_numbers,
                   kwargs) -> bool:
  """Whether a conv runs as `winograd_conv3x3` on the CPU: 3×3, stride 1,
  NHWC / HWIO, float32, ungrouped, ≥ 256 input and output channels and an
  output map of at least 24 × 24 pixels.

  Measured (2026-12-07, 2-core EPYC, forward + both gradients, best of 9):
  256→256 at 64², batch 2: 161 → 122 ms; at 32², batch 1: 20.5 → 12.4 ms;
  512→512 at 16², batch 8: 186 → 111 ms; at 128 channels no gain (128→128
  at 128²: 88 → 85 ms; at 64², batch 2: 43 → 45 ms), so smaller convs keep
  the direct form. Smaller maps gain too (1024→1024 at 8², batch 8: 279 →
  178 ms) but each Winograd conv adds ~0.15 s of XLA compile time (forward
  and backward), which took TUNIT's step (~140 such convs, mostly at 4-16²)
  from 53 to 77 s: maps below 24 × 24 keep the direct conv.
  """
  if not _is_plain_float32(lhs, rhs, kwargs):
    return False
  if tuple(strides) != (1, 1) or not _is_nhwc_hwio(lhs, rhs,
                                                   dimension_numbers):
    return False
  if rhs.shape[:2] != (3, 3) or min(rhs.shape[2:]) < 256:
    return False
  pads = _explicit_pads(lhs, rhs, strides, padding)
  out = [lhs.shape[1 + i] + sum(pads[i]) - 2 for i in range(2)]
  return out[0] * out[1] >= 24 * 24


def _patches_matmul_pays(lhs, rhs, strides, padding, dimension_numbers,
                        kwargs) -> bool:
  """Whether a conv runs as `patches_matmul_conv` on the CPU: NHWC / HWIO,
  float32, ungrouped, a kernel larger than 1×1, ≥ 64 input and output
  channels, non-negative padding and at most 512 output pixels over the
  batch (the small maps at the end of the discriminators, encoders and
  TUNIT's generator).

  Measured (2026-12-07, 2-core EPYC, forward + both gradients, best of 15):
  7×7 s2 256→256 at 12², batch 2 (MDMM's content D at 108): 57 → 34 ms;
  3×3 1024→1024 at 4², batch 8: 121 → 51 ms; 4×4 s2 512→1024 at 8², batch
  8: 233 → 152 ms; 3×3 512→512 at 8², batch 8: 57 → 42 ms; 4×4 s2 128→128
  at 8², batch 2: 3.1 → 2.4 ms; over a grid of 3×3 s1 / s2, 4×4 s1 / s2
  and 7×7 s2 convs with 128-512 channels and 128-512 output pixels
  0.4-0.97× the direct conv's time. At 1024 output pixels and more the
  direct conv is as fast or faster (3×3 256→256 at 32², batch 1: 13 vs
  20 ms), so larger maps keep it.
  """
  if not _is_plain_float32(lhs, rhs, kwargs):
    return False
  if not _is_nhwc_hwio(lhs, rhs, dimension_numbers):
    return False
  if rhs.shape[0] * rhs.shape[1] == 1 or min(rhs.shape[2:]) < 64:
    return False
  pads = _explicit_pads(lhs, rhs, strides, padding)
  if any(p < 0 for pair in pads for p in pair):
    return False
  out = [(lhs.shape[1 + i] + sum(pads[i]) - rhs.shape[i]) // strides[i] + 1
         for i in range(2)]
  return min(out) >= 1 and lhs.shape[0] * out[0] * out[1] <= 512


def _is_plain_float32(lhs, rhs, kwargs) -> bool:
  """Whether a conv is float32 and ungrouped, with lax's output dtype."""
  if kwargs.get('feature_group_count', 1) != 1 or kwargs.get(
      'batch_group_count', 1) != 1 or kwargs.get('preferred_element_type'):
    return False
  return lhs.dtype == jnp.float32 and rhs.dtype == jnp.float32


def _is_nhwc_hwio(lhs, rhs, dimension_numbers) -> bool:
  """Whether a 2-D conv's layout is NHWC / HWIO → NHWC, given as strings
  or as the `lax.ConvDimensionNumbers` that `flax.linen.Conv` passes."""
  if lhs.ndim != 4 or dimension_numbers is None:
    return False
  return (lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
          == lax.conv_dimension_numbers(lhs.shape, rhs.shape, _DIMS))


def _weight_grad_by_slices_pays(batch: int, pixels: int,
                                features: int) -> bool:
  """Whether XLA:CPU's weight gradient is faster as a sum over batch slices.

  Measured (jax 0.10.2, 2-core EPYC, module docstring): 1.1-2.4× faster
  once batch × output pixels ≥ 8192 (5×5 128→64 at 256², batch 3: 928 →
  503 ms; 3×3 64→64 at 128², batch 8: 189 → 97 ms), slower for small maps
  (3×3 512→512 at 8², batch 8: 7.6 → 45 ms) and for convs with a few output
  channels (7×7 64→3 at 256², batch 2: 81 → 119 ms).
  """
  return batch > 1 and features >= 8 and batch * pixels >= 8192


def _input_grad_by_phases_pays(lhs, rhs, strides, padding,
                               dimension_numbers) -> bool:
  """Whether a strided conv's input gradient should be computed as a
  sub-pixel transposed conv (`subpixel_conv_transpose`) rather than XLA's
  lhs-dilated one: NHWC / HWIO, square kernel, equal strides > 1,
  non-negative padding, ≥ 8 input channels and ≥ 64² input pixels or a
  kernel of 5 or more. Measured as above: 4×4 stride 2 64→128 at 256², batch
  3: 142 → 59 ms; 128→256 at 128², batch 1: 29 → 10 ms; 256→512 at 16²: 5.0
  → 5.8 ms. Large kernels pay on small maps too (2026-12-06, batch 2, input
  gradient alone): 7×7 s2 256→256 (MDMM's content D) at 14²: 145 → 10 ms,
  at 29²: 44 → 33 ms; 5×5 s2 at 28²: 27 → 19 ms; while 3×3 / 4×4 s2 below 64²
  stay as fast or faster dilated (4×4 128→256 at 32²: 7.3 vs 8.7 ms).
  """
  if (not isinstance(dimension_numbers, (tuple, list)) or
      tuple(dimension_numbers) != _DIMS):
    return False
  if lhs.ndim != 4 or rhs.shape[0] != rhs.shape[1]:
    return False
  if len(set(strides)) != 1 or strides[0] == 1:
    return False
  if not isinstance(padding, str) and any(p < 0 for pair in padding
                                          for p in pair):
    return False
  if isinstance(padding, str) and padding.upper() != 'VALID':
    return False
  return lhs.shape[3] >= 8 and (lhs.shape[1] * lhs.shape[2] >= 64 * 64 or
                                rhs.shape[0] >= 5)


def _custom_gradients(conv, lhs, rhs, numbers, weight_by_slices,
                      input_by_phases, strides, padding):
  """conv(lhs, rhs) with a `custom_vjp` whose gradients are the same sums
  computed faster on XLA:CPU: the kernel's as a sum over at most 8 batch
  slices (one sample each up to batch 8), the input's of a strided NHWC
  conv as a sub-pixel transposed conv; the others as autodiff gives them.
  Reverse mode only; the backward pass is differentiable again (R1)."""
  batch_axis, out_batch_axis = numbers.lhs_spec[0], numbers.out_spec[0]
  batch = lhs.shape[batch_axis]
  size = -(-batch // 8)

  def input_grad(lhs, rhs, grad):
    if not input_by_phases:
      return jax.vjp(lambda l: conv(l, rhs), lhs)[1](grad)[0]
    pads = [(0, 0)] * 2 if isinstance(padding, str) else padding
    k, s = rhs.shape[0], strides[0]
    full = [lhs.shape[1 + i] + sum(pads[i]) for i in range(2)]
    output_padding = max(full[i] - ((grad.shape[1 + i] - 1) * s + k)
                         for i in range(2))
    # The conv's transpose: kernel (k, k, Cout, Cin), unflipped.
    padded = subpixel_conv_transpose(grad, rhs.transpose(0, 1, 3, 2), s, 0,
                                     output_padding)
    return padded[:, pads[0][0]:pads[0][0] + lhs.shape[1],
                  pads[1][0]:pads[1][0] + lhs.shape[2]].astype(lhs.dtype)

  def kernel_grad(lhs, rhs, grad):
    if not weight_by_slices:
      return jax.vjp(lambda r: conv(lhs, r), rhs)[1](grad)[0]
    total = None
    for start in range(0, batch, size):
      stop = min(start + size, batch)
      part = lax.slice_in_dim(lhs, start, stop, axis=batch_axis)
      part_grad = lax.slice_in_dim(grad, start, stop, axis=out_batch_axis)
      (term,) = jax.vjp(lambda r: conv(part, r), rhs)[1](part_grad)
      total = term if total is None else total + term
    return total

  @jax.custom_vjp
  def custom(lhs, rhs):
    return conv(lhs, rhs)

  def forward(lhs, rhs):
    return conv(lhs, rhs), (lhs, rhs)

  def backward(residuals, grad):
    lhs, rhs = residuals
    return input_grad(lhs, rhs, grad), kernel_grad(lhs, rhs, grad)

  custom.defvjp(forward, backward)
  return custom(lhs, rhs)


def _winograd_input(x, rows, cols):
  """Bᵀ d B of every 4×4 input tile d (stride 2): x (B, 2·rows + 2,
  2·cols + 2, C) → (16, B·rows·cols, C), tile element (i, j) at 4·i + j."""
  def bt(d0, d1, d2, d3):
    return jnp.stack([d0 - d2, d1 + d2, d2 - d1, d1 - d3])
  pairs = x.reshape(x.shape[0], rows + 1, 2, cols + 1, 2, x.shape[3])
  # (4, B, rows, cols + 1, 2, C): the row transform of each tile.
  by_rows = bt(pairs[:, :rows, 0], pairs[:, :rows, 1], pairs[:, 1:, 0],
               pairs[:, 1:, 1])
  # (4 columns, 4 rows, B, rows, cols, C): then the column transform.
  tiles = bt(by_rows[:, :, :, :cols, 0], by_rows[:, :, :, :cols, 1],
             by_rows[:, :, :, 1:, 0], by_rows[:, :, :, 1:, 1])
  return tiles.transpose(1, 0, 2, 3, 4, 5).reshape(16, -1, x.shape[3])


def _winograd_kernel(kernel):
  """G g Gᵀ: (3, 3, Cin, Cout) → (16, Cin, Cout)."""
  def g(k0, k1, k2):
    return [k0, 0.5 * (k0 + k1 + k2), 0.5 * (k0 - k1 + k2), k2]
  return jnp.stack([t for r in g(kernel[0], kernel[1], kernel[2])
                    for t in g(r[0], r[1], r[2])])


def winograd_conv3x3(x, kernel):
  """A VALID 3×3 stride-1 NHWC / HWIO conv as Winograd F(2×2, 3×3).

  x (B, H, W, Cin), kernel (3, 3, Cin, Cout) → (B, H − 2, W − 2, Cout).
  Each 2×2 output tile is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A of its 4×4 input tile d
  (Lavin & Gray 2016): 16 products per tile and channel pair instead of 36,
  computed as 16 (tiles × Cin) @ (Cin × Cout) matrix products. Its autodiff
  gradients are the same construction transposed, so the backward pass
  also costs 16 instead of 36 products per pair. Odd output sizes are
  padded by a zero row / column and cropped. Same sums up to rounding
  (relative error ~1e-6 in float32).
  """
  batch, height, width, cin = x.shape
  rows, cols = -(-(height - 2) // 2), -(-(width - 2) // 2)
  extra_h, extra_w = 2 * rows + 2 - height, 2 * cols + 2 - width
  if extra_h or extra_w:
    x = jnp.pad(x, [(0, 0), (0, extra_h), (0, extra_w), (0, 0)])
  tiles = _winograd_input(x, rows, cols)
  products = lax.dot_general(tiles, _winograd_kernel(kernel).astype(x.dtype),
                             (((2,), (1,)), ((0,), (0,))))
  m = products.reshape(4, 4, batch, rows, cols, kernel.shape[3])

  def at(m0, m1, m2, m3):
    return [m0 + m1 + m2, m1 - m2 - m3]
  by_rows = [at(m[0, j], m[1, j], m[2, j], m[3, j]) for j in range(4)]
  out = [at(*[by_rows[j][p] for j in range(4)]) for p in range(2)]
  y = jnp.stack([jnp.stack(out[p], axis=3) for p in range(2)], axis=2)
  y = y.reshape(batch, 2 * rows, 2 * cols, kernel.shape[3])
  return y[:, :height - 2, :width - 2]


def patches_matmul_conv(x, kernel, strides):
  """A VALID NHWC / HWIO conv as one matrix product of its patches.

  x (B, H, W, Cin), kernel (kh, kw, Cin, Cout), strides (sh, sw) →
  (B, H', W', Cout), H' = (H − kh) // sh + 1: every output pixel's
  kh × kw × Cin window, gathered from x as (B·H'·W', kh·kw·Cin) patches
  ("im2col"), times the kernel as (kh·kw·Cin, Cout). Its autodiff
  gradients are the transposed product and (for x) a scatter-add of the
  patch gradients. Same sums, another order. One gather rather than kh·kw
  strided slices: the same speed, a fraction of the compile time (0.03 vs
  0.15-0.55 s per conv with both gradients).
  """
  kh, kw, cin, cout = kernel.shape
  batch, height, width = x.shape[:3]
  rows = (height - kh) // strides[0] + 1
  cols = (width - kw) // strides[1] + 1
  # Flat pixel index of tap (i, j) of output (r, c), as (rows, cols, kh, kw).
  pixel_rows = (np.arange(rows)[:, None, None, None] * strides[0] +
                np.arange(kh)[None, None, :, None])
  pixel_cols = (np.arange(cols)[None, :, None, None] * strides[1] +
                np.arange(kw)[None, None, None, :])
  index = (pixel_rows * width + pixel_cols).reshape(-1)
  patches = jnp.take(x.reshape(batch, height * width, cin), index, axis=1,
                     mode='clip')   # in bounds: no fill mask
  y = patches.reshape(batch * rows * cols, kh * kw * cin) @ kernel.reshape(
      kh * kw * cin, cout)
  return y.reshape(batch, rows, cols, cout)


def reflect_pad(x: jnp.ndarray, pad: int) -> jnp.ndarray:
  """PyTorch `ReflectionPad2d(pad)` on NHWC; needs H, W > pad."""
  if pad == 0:
    return x
  if min(x.shape[1], x.shape[2]) <= pad:
    raise ValueError(
        f'Reflection padding {pad} needs a feature map larger than {pad} '
        f'pixels, got {x.shape[1]}x{x.shape[2]}: use larger inputs or fewer '
        'downsampling layers.')
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode='reflect')


def _normalize(v):
  return v / jnp.maximum(jnp.linalg.norm(v), SN_EPS)


class Conv2d(nn.Module):
  """Padding (reflect or zero) → k×k conv with stride, optional bias and SN.

  x: (B, H, W, Cin) → (B, H', W', features).
  """
  features: int
  kernel_size: int
  stride: int = 1
  padding: int = 0
  pad_mode: str = 'reflect'   # 'reflect' or 'zero'
  use_bias: bool = True
  spectral_norm: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, update_stats: bool = False):
    k, cin = self.kernel_size, x.shape[-1]
    kernel = self.param('kernel', init.conv_kernel,
                        (k, k, cin, self.features))
    if self.spectral_norm:
      kernel = self._spectral_normalize(kernel, update_stats)
    x, kernel = promote_dtype(x, kernel, dtype=self.dtype)
    if self.pad_mode == 'reflect':
      x = reflect_pad(x, self.padding)
      padding = [(0, 0), (0, 0)]
    elif self.pad_mode == 'zero':
      padding = [(self.padding, self.padding)] * 2
    else:
      raise ValueError(f'Unknown pad_mode {self.pad_mode!r}; use reflect or '
                       'zero.')
    padded = min(x.shape[1:3]) + 2 * padding[0][0]
    if padded < k:
      raise ValueError(
          f'A {k}x{k} conv needs a (padded) input of at least {k} pixels, got '
          f'{padded}: use larger inputs or fewer downsampling layers.')
    y = conv_general_dilated(x, kernel, (self.stride, self.stride), padding,
                             dimension_numbers=_DIMS)
    if self.use_bias:
      bias = self.param('bias', init.torch_bias(cin * k * k),
                        (self.features,))
      y = y + bias.astype(self.dtype)
    return y

  def _spectral_normalize(self, kernel, update_stats):
    w_mat = kernel.reshape(-1, self.features).T     # (Cout, k·k·Cin)
    u_var = self.variable(
        'batch_stats', 'u',
        lambda: _normalize(jax.random.normal(self.make_rng('params'),
                                             (self.features,))))
    sigma_var = self.variable('batch_stats', 'sigma',
                              lambda: jnp.ones((), jnp.float32))
    if update_stats and not self.is_initializing():
      w_const = lax.stop_gradient(w_mat)
      v = _normalize(w_const.T @ u_var.value)
      u = _normalize(w_const @ v)
      sigma = u @ (w_mat @ v)
      u_var.value = u
      sigma_var.value = lax.stop_gradient(sigma)
    else:
      sigma = sigma_var.value
    return kernel / sigma


def dilated_conv_transpose(x, kernel, stride, padding, output_padding):
  """PyTorch ConvTranspose2d as one lhs-dilated conv. kernel (k, k, Cin, Cout)."""
  k = kernel.shape[0]
  lo = k - 1 - padding
  return lax.conv_general_dilated(
      x, jnp.flip(kernel, (0, 1)), (1, 1), [(lo, lo + output_padding)] * 2,
      lhs_dilation=(stride, stride), dimension_numbers=_DIMS)


def _phase_taps(k, stride, padding):
  """The taps of each output phase r of a transposed conv: {r: [(d, t)]},
  input offset d = (r + p − t)/s of kernel tap t where integral, sorted by
  d (consecutive offsets)."""
  taps = {r: [] for r in range(stride)}
  for r in range(stride):
    for t in range(k):
      if (r + padding - t) % stride == 0:
        taps[r].append(((r + padding - t) // stride, t))
  return {r: sorted(v) for r, v in taps.items()}


def subpixel_conv_transpose(x, kernel, stride, padding, output_padding):
  """PyTorch ConvTranspose2d as stride-1 phase convs + depth-to-space.

  x: (B, H, W, Cin), kernel (k, k, Cin, Cout) unflipped PyTorch layout →
  (B, (H−1)s − 2p + k + op, (W−1)s − 2p + k + op, Cout). Output pixel
  (s·m + r_h, s·n + r_w) = Σ x[m + d_h, n + d_w] · kernel[r_h + p − s·d_h,
  r_w + p − s·d_w] over the taps with integral offsets d. Where every phase
  reads the same window of offsets (k4 s2 p0, the input gradient of a k4 s2
  conv), one conv with s²·Cout outputs computes all phases; otherwise (k3 s2
  p1: 1×1, 1×2, 2×1 and 2×2 windows; k4 s2 p1) each phase is its own conv
  with just its taps, not a shared window with zeros (9 instead of 16, or
  16 instead of 36, multiplies per pixel pair).
  """
  k, cin, cout = kernel.shape[0], kernel.shape[2], kernel.shape[3]
  s = stride
  taps = _phase_taps(k, s, padding)
  offsets = {r: [d for d, _ in taps[r]] for r in range(s)}
  kernel_taps = {r: np.array([t for _, t in taps[r]], int) for r in range(s)}
  batch, height, width = x.shape[:3]
  out_h = (height - 1) * s - 2 * padding + k + output_padding
  out_w = (width - 1) * s - 2 * padding + k + output_padding
  rows, cols = -(-out_h // s), -(-out_w // s)      # phase outputs per axis

  def conv_over(offsets_h, offsets_w, phase_kernel):
    # Output m reads x[m + offsets[0] .. m + offsets[-1]]: pad (or crop) x.
    pads = [(-offsets_h[0], rows - 1 + offsets_h[-1] - (height - 1)),
            (-offsets_w[0], cols - 1 + offsets_w[-1] - (width - 1))]
    return conv_general_dilated(x, phase_kernel, (1, 1), pads,
                                dimension_numbers=_DIMS)

  shared = all(offsets[r] == offsets[0] and offsets[r] for r in range(s))
  if shared:
    # One window for every phase: kernel (span, span, Cin, s·s·Cout) whose
    # [i, j, :, (r_h, r_w, :)] is the tap of phase (r_h, r_w) at offset i, j.
    index = np.stack([kernel_taps[r] for r in range(s)], axis=1)  # (span, s)
    phase_kernel = kernel[index[:, None, :, None], index[None, :, None, :]]
    span = len(offsets[0])
    phase_kernel = phase_kernel.transpose(0, 1, 4, 2, 3, 5).reshape(
        span, span, cin, s * s * cout)
    y = conv_over(offsets[0], offsets[0], phase_kernel)
    y = y.reshape(batch, rows, cols, s, s, cout).transpose(0, 1, 3, 2, 4, 5)
  else:
    def phase(r_h, r_w):
      if not offsets[r_h] or not offsets[r_w]:   # k < s: no tap here
        return jnp.zeros((batch, rows, cols, cout),
                         jnp.result_type(x, kernel))
      phase_kernel = kernel[np.ix_(kernel_taps[r_h], kernel_taps[r_w])]
      return conv_over(offsets[r_h], offsets[r_w], phase_kernel)

    y = jnp.stack([jnp.stack([phase(r_h, r_w) for r_w in range(s)], axis=3)
                   for r_h in range(s)], axis=2)
  y = y.reshape(batch, rows * s, cols * s, cout)   # (B, m, r_h, n, r_w, C)
  return y[:, :out_h, :out_w]


_UPSAMPLE_PAD_MODES = ('reflect', 'replicate', 'zero')


def _upsample_phase_kernel(kernel, factor, padding):
  """kernel (k, k, Cin, Cout) → (span, span, Cin, f·f·Cout) and d_min.

  Tap t of output phase r reads low-res offset d = ⌊(r + t − p)/f⌋; the taps
  that share an offset are summed into one.
  """
  k = kernel.shape[0]
  offsets = [[(r + t - padding) // factor for t in range(k)]
             for r in range(factor)]
  d_min = offsets[0][0]
  span = offsets[-1][-1] - d_min + 1
  select = np.zeros((factor, span, k), np.float32)   # (phase, offset, tap)
  for r, row in enumerate(offsets):
    for t, d in enumerate(row):
      select[r, d - d_min, t] = 1.0
  select = jnp.asarray(select, kernel.dtype)
  phase = jnp.einsum('rdh,sew,hwio->deirso', select, select, kernel)
  cin, cout = kernel.shape[2], kernel.shape[3]
  return phase.reshape(span, span, cin, factor * factor * cout), d_min


def upsample_conv(x, kernel, factor, padding, pad_mode='reflect'):
  """VALID conv of pad(nearest_upsample(x, factor), padding) without the
  upsampled map: x (B, H, W, Cin), kernel (k, k, Cin, Cout) HWIO →
  (B, fH + 2p − k + 1, fW + 2p − k + 1, Cout).

  Output pixel o = f·m + r reads upsampled pixels o − p + t = x[m + ⌊(r + t −
  p)/f⌋], so each of the f² output phases is a stride-1 conv of x with the
  taps that read the same pixel summed (a 5×5 kernel after a ×2 upsample
  becomes four 3×3 kernels: 36 instead of 100 multiply-adds per input
  pixel); one conv with f²·Cout outputs and a depth-to-space shuffle give all
  phases. Zero and replicate padding of the upsampled map are zero and edge
  padding of x, so those are exact everywhere. A reflection pad is not a pad
  of x (its outer rows mirror the inner upsampled rows x[1], x[0], …): the
  phase conv uses edge padding and the max(0, p − f + 1) output rows /
  columns on each side whose window reaches such a row are recomputed from
  the real reflect-padded upsampled border strips. Same sums as the direct
  form (float rounding aside).
  """
  if pad_mode not in _UPSAMPLE_PAD_MODES:
    raise ValueError(f'Unknown pad mode {pad_mode!r}; use one of '
                     f'{sorted(_UPSAMPLE_PAD_MODES)}.')
  k, cout = kernel.shape[0], kernel.shape[3]
  f, p = factor, padding
  batch, height, width = x.shape[:3]
  out_h, out_w = f * height + 2 * p - k + 1, f * width + 2 * p - k + 1
  if min(out_h, out_w) < 1:
    raise ValueError(
        f'A {k}x{k} conv needs a (padded) input of at least {k} pixels, got '
        f'{f * height + 2 * p}x{f * width + 2 * p}.')
  if pad_mode == 'reflect' and min(f * height, f * width) <= p:
    raise ValueError(
        f'Reflection padding {p} needs a feature map larger than {p} pixels, '
        f'got {f * height}x{f * width}.')
  phase_kernel, d_min = _upsample_phase_kernel(kernel, f, p)
  span = phase_kernel.shape[0]
  rows, cols = -(-out_h // f), -(-out_w // f)
  pads = [(-d_min, rows + span - 1 + d_min - height),
          (-d_min, cols + span - 1 + d_min - width)]
  if pad_mode == 'zero':
    y = conv_general_dilated(x, phase_kernel, (1, 1), pads,
                             dimension_numbers=_DIMS)
  else:
    # Negative pads (a phase never reads that far) crop.
    crop = [(max(0, -lo), max(0, -hi)) for lo, hi in pads]
    x_cropped = x[:, crop[0][0]:height - crop[0][1],
                  crop[1][0]:width - crop[1][1]]
    x_padded = jnp.pad(x_cropped, [(0, 0)] + [(max(0, lo), max(0, hi))
                                              for lo, hi in pads] + [(0, 0)],
                       mode='edge')
    y = conv_general_dilated(x_padded, phase_kernel, (1, 1), 'VALID',
                             dimension_numbers=_DIMS)
  y = y.reshape(batch, rows, cols, f, f, cout).transpose(0, 1, 3, 2, 4, 5)
  y = y.reshape(batch, rows * f, cols * f, cout)[:, :out_h, :out_w]
  if pad_mode == 'reflect':
    y = _exact_reflect_border(y, x, kernel, f, p)
  return y


def _exact_reflect_border(y, x, kernel, factor, padding):
  """Recomputes the border outputs of `upsample_conv` that read mirrored
  upsampled rows / columns, from the direct form on border strips."""
  k, f, p = kernel.shape[0], factor, padding
  height, width = x.shape[1], x.shape[2]
  out_h, out_w = y.shape[1], y.shape[2]

  def direct(strip):
    up = strip.repeat(f, axis=1).repeat(f, axis=2)
    up = jnp.pad(up, ((0, 0), (p, p), (p, p), (0, 0)), mode='reflect')
    return conv_general_dilated(up, kernel, (1, 1), 'VALID',
                                dimension_numbers=_DIMS)

  def counts(size, out):
    low = max(0, p - f + 1)                    # window reaches row ≤ −f
    high = max(0, out - (f * size + f + p - k))   # … row ≥ f·size + f − 1
    return min(low, out), min(high, out)

  for axis, size, out in ((1, height, out_h), (2, width, out_w)):
    low, high = counts(size, out)
    if low == 0 and high == 0:
      continue
    # Low-res rows of a strip: f·m > max(p, k) upsampled rows hold its
    # reflect pad and the windows of the recomputed outputs.
    m = min(size, max(p, k) // f + 1)
    if low:
      strip = lax.slice_in_dim(x, 0, m, axis=axis)
      top = lax.slice_in_dim(direct(strip), 0, low, axis=axis)
      y = lax.dynamic_update_slice_in_dim(y, top.astype(y.dtype), 0, axis)
    if high:
      strip = lax.slice_in_dim(x, size - m, size, axis=axis)
      bottom = direct(strip)
      n = bottom.shape[axis]
      bottom = lax.slice_in_dim(bottom, n - high, n, axis=axis)
      y = lax.dynamic_update_slice_in_dim(y, bottom.astype(y.dtype),
                                          out - high, axis)
  return y


class ConvTranspose2d(nn.Module):
  """PyTorch-exact `ConvTranspose2d(Cin, features, k, s, p, op)` (NHWC).

  `kernel` (k, k, Cin, Cout) is the PyTorch weight transposed (2, 3, 0, 1),
  not flipped. Bias init uses PyTorch's fan_in = Cout·k².
  """
  features: int
  kernel_size: int
  stride: int = 1
  padding: int = 0
  output_padding: int = 0
  use_bias: bool = True
  method: str = 'subpixel'    # or 'dilated': same result, slower gradient
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    k, cin = self.kernel_size, x.shape[-1]
    kernel = self.param('kernel', init.conv_kernel,
                        (k, k, cin, self.features))
    x, kernel = promote_dtype(x, kernel, dtype=self.dtype)
    if self.method == 'subpixel':
      conv_transpose = subpixel_conv_transpose
    elif self.method == 'dilated':
      conv_transpose = dilated_conv_transpose
    else:
      raise ValueError(f'Unknown ConvTranspose2d method {self.method!r}; use '
                       'subpixel or dilated.')
    y = conv_transpose(x, kernel, self.stride, self.padding,
                       self.output_padding)
    if self.use_bias:
      bias = self.param('bias', init.torch_bias(self.features * k * k),
                        (self.features,))
      y = y + bias.astype(self.dtype)
    return y


class LeakyReLUConv2d(nn.Module):
  """Reflect-pad → conv (bias, optional SN) → LReLU(0.01) (spec §1.1).

  The reference's `norm` argument never takes effect (bug B1), so there is
  none here.
  """
  features: int
  kernel_size: int
  stride: int = 1
  padding: int = 0
  spectral_norm: bool = False
  negative_slope: float = 0.01
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, update_stats: bool = False):
    x = Conv2d(self.features, self.kernel_size, self.stride, self.padding,
               spectral_norm=self.spectral_norm, dtype=self.dtype,
               name='conv')(x, update_stats=update_stats)
    return nn.leaky_relu(x, self.negative_slope)


class ReLUINSConv2d(nn.Module):
  """Reflect-pad → conv (bias) → instance norm → ReLU."""
  features: int
  kernel_size: int
  stride: int = 1
  padding: int = 0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = Conv2d(self.features, self.kernel_size, self.stride, self.padding,
               dtype=self.dtype, name='conv')(x)
    return nn.relu(norm.instance_norm(x))


class INSResBlock(nn.Module):
  """x + IN(conv3(ReLU(IN(conv3(x))))), reflect pad 1; no final activation."""
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    channels = x.shape[-1]
    y = Conv2d(channels, 3, padding=1, dtype=self.dtype, name='conv1')(x)
    y = nn.relu(norm.instance_norm(y))
    y = Conv2d(channels, 3, padding=1, dtype=self.dtype, name='conv2')(y)
    return x + norm.instance_norm(y)


def avg_pool2(x):
  """2×2 average pool, stride 2, rounding down (PyTorch `AvgPool2d(2, 2)`)."""
  return nn.avg_pool(x, (2, 2), strides=(2, 2), padding='VALID')


class BasicBlock(nn.Module):
  """MDMM attribute-encoder residual block without norm (spec §1.1).

  main = avgpool(conv3(LReLU(conv3(LReLU(x))))) with Cin→Cin→features;
  shortcut = conv1×1(avgpool(x)); output main + shortcut, spatial size ⌊H/2⌋.
  """
  features: int
  negative_slope: float = 0.2
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    channels = x.shape[-1]
    y = nn.leaky_relu(x, self.negative_slope)
    y = Conv2d(channels, 3, padding=1, dtype=self.dtype, name='conv1')(y)
    y = nn.leaky_relu(y, self.negative_slope)
    y = Conv2d(self.features, 3, padding=1, dtype=self.dtype,
               name='conv2')(y)
    shortcut = Conv2d(self.features, 1, dtype=self.dtype,
                      name='shortcut')(avg_pool2(x))
    return avg_pool2(y) + shortcut


class ReLUINSConvTranspose2d(nn.Module):
  """ConvTranspose (k3 s2 p1 op1 by default) → MDMM LayerNorm → ReLU.

  Despite the reference name, the norm is the (C,H,W) LayerNorm of §1.3.
  """
  features: int
  kernel_size: int = 3
  stride: int = 2
  padding: int = 1
  output_padding: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = ConvTranspose2d(self.features, self.kernel_size, self.stride,
                        self.padding, self.output_padding, dtype=self.dtype,
                        name='convt')(x)
    return nn.relu(norm.LayerNorm(name='norm')(x))
