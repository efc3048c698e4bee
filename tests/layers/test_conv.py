"""Conv layers: PyTorch-exact transposed conv, padding, init and spectral norm."""

import itertools

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from i2ijax import layers
from i2ijax.layers import init


def _torch_conv_transpose(x, w, b, stride, padding, output_padding):
  """PyTorch ConvTranspose2d by definition (scatter-add), NCHW / IOHW."""
  n, cin, h, wd = x.shape
  _, cout, k, _ = w.shape
  full_h, full_w = (h - 1) * stride + k, (wd - 1) * stride + k
  out = np.zeros((n, cout, full_h + output_padding, full_w + output_padding))
  for i, j in itertools.product(range(h), range(wd)):
    out[:, :, i * stride:i * stride + k, j * stride:j * stride + k] += (
        np.einsum('nc,cokl->nokl', x[:, :, i, j], w))
  out = out[:, :, padding:, padding:]
  out_h = (h - 1) * stride - 2 * padding + k + output_padding
  out_w = (wd - 1) * stride - 2 * padding + k + output_padding
  return out[:, :, :out_h, :out_w] + b[None, :, None, None]


def _readme_formula(x_nhwc, w_iohw, b, k, s, p, op):
  """The parity README's lax formulation of PyTorch's ConvTranspose2d."""
  w_hwio = jnp.flip(w_iohw, axis=(2, 3)).transpose(2, 3, 0, 1)
  y = lax.conv_general_dilated(
      x_nhwc, w_hwio, window_strides=(1, 1),
      padding=[(k - 1 - p, k - 1 - p + op)] * 2, lhs_dilation=(s, s),
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return y + b


@pytest.mark.parametrize('k,s,p,op', [(3, 2, 1, 1), (3, 1, 1, 0), (1, 1, 0, 0),
                                      (4, 2, 1, 0), (3, 2, 0, 1), (4, 2, 0, 0),
                                      (1, 2, 0, 1)])
def test_conv_transpose_matches_pytorch_definition(k, s, p, op):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 3, 5, 4)).astype(np.float32)
  w = rng.normal(size=(3, 4, k, k)).astype(np.float32)   # PyTorch IOHW
  b = rng.normal(size=(4,)).astype(np.float32)
  layer = layers.ConvTranspose2d(4, k, s, p, op)
  variables = {'params': {'kernel': w.transpose(2, 3, 0, 1), 'bias': b}}
  x_nhwc = jnp.asarray(x.transpose(0, 2, 3, 1))
  ours = np.asarray(jax.jit(layer.apply)(variables, x_nhwc))
  ref = _torch_conv_transpose(x, w, b, s, p, op).transpose(0, 2, 3, 1)
  assert ours.shape == ref.shape
  assert ours.shape[1] == (5 - 1) * s - 2 * p + k + op
  np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(
      ours, _readme_formula(x_nhwc, w, b, k, s, p, op), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('k,s,p,op', [(3, 2, 1, 1), (4, 2, 1, 0), (3, 2, 0, 1),
                                      (5, 3, 2, 2), (3, 1, 1, 0)])
def test_subpixel_and_dilated_forms_agree_with_gradients(k, s, p, op):
  """The default phase decomposition equals the lhs-dilated conv: outputs
  and both gradients (float rounding aside)."""
  x = jax.random.normal(jax.random.key(0), (2, 6, 5, 3))
  variables = layers.ConvTranspose2d(4, k, s, p, op).init(jax.random.key(1), x)

  def loss(variables, x, method):
    y = layers.ConvTranspose2d(4, k, s, p, op, method=method).apply(
        variables, x)
    return jnp.sum(y * jnp.cos(y)), y

  grad = jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True),
                 static_argnums=2)
  (g_vars, g_x), y = grad(variables, x, 'subpixel')
  (d_vars, d_x), y_dilated = grad(variables, x, 'dilated')
  assert y.shape == y_dilated.shape == (
      2, (6 - 1) * s - 2 * p + k + op, (5 - 1) * s - 2 * p + k + op, 4)
  np.testing.assert_allclose(y, y_dilated, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(g_x, d_x, rtol=1e-4, atol=1e-4)
  for a, b in zip(jax.tree.leaves(g_vars), jax.tree.leaves(d_vars)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_conv_transpose_rejects_an_unknown_method():
  with pytest.raises(ValueError, match='method'):
    _run(layers.ConvTranspose2d(4, 3, 2, 1, 1, method='fft'),
         jnp.ones((1, 4, 4, 2)))


def test_conv_transpose_k3s2_doubles():
  x = jnp.ones((1, 7, 9, 2))
  y = jax.eval_shape(
      lambda x: _run(layers.ConvTranspose2d(5, 3, 2, 1, 1), x), x)
  assert y.shape == (1, 14, 18, 5)


def test_reflect_pad_matches_pytorch_reflection():
  x = jnp.arange(2 * 4 * 3 * 1, dtype=jnp.float32).reshape(2, 4, 3, 1)
  y = layers.reflect_pad(x, 2)
  assert y.shape == (2, 8, 7, 1)
  # ReflectionPad2d does not repeat the edge: row -1 is row 1.
  np.testing.assert_array_equal(y[:, 1, 2:5], x[:, 1])
  np.testing.assert_array_equal(y[:, 0, 2:5], x[:, 2])
  with pytest.raises(ValueError, match='larger than 2'):
    layers.reflect_pad(jnp.ones((1, 2, 2, 1)), 2)


def test_conv2d_padding_modes_and_stride():
  x = jax.random.normal(jax.random.key(0), (1, 6, 6, 2))
  for mode in ('reflect', 'zero'):
    conv = layers.Conv2d(3, 3, stride=2, padding=1, pad_mode=mode)
    assert jax.eval_shape(lambda x: _run(conv, x), x).shape == (1, 3, 3, 3)
  reflect = layers.Conv2d(3, 3, padding=1)
  zero = layers.Conv2d(3, 3, padding=1, pad_mode='zero')
  variables = numpy_variables(reflect, x)
  a, b = reflect.apply(variables, x), zero.apply(variables, x)
  np.testing.assert_allclose(a[:, 1:-1, 1:-1], b[:, 1:-1, 1:-1], rtol=1e-5)
  assert not np.allclose(a[:, 0], b[:, 0])


def numpy_variables(module, *args, seed=0, **kwargs):
  """Random variables of the module's shapes, drawn with numpy.

  Avoids compiling the module's (threefry) initialisers, which dominates the
  cost of these tiny tests on CPU.
  """
  shapes = jax.eval_shape(
      lambda: module.init(jax.random.key(0), *args, **kwargs))
  rng = np.random.default_rng(seed)
  return jax.tree.map(
      lambda s: rng.normal(0, 0.3, s.shape).astype(np.float32), shapes)


def _run(module, x):
  return jax.jit(module.apply)(numpy_variables(module, x), x)


def test_blocks_follow_reference_definitions():
  x = jax.random.normal(jax.random.key(0), (2, 7, 7, 4))
  # LeakyReLUConv2d uses PyTorch's default slope 0.01.
  block = layers.LeakyReLUConv2d(3, 3, 1, 1)
  variables = numpy_variables(block, x)
  pre = layers.Conv2d(3, 3, padding=1).apply(
      {'params': variables['params']['conv']}, x)
  out = block.apply(variables, x)
  assert float(pre.min()) < 0
  np.testing.assert_allclose(out, jnp.where(pre > 0, pre, 0.01 * pre),
                             rtol=1e-6)
  # INSResBlock has no activation after the sum: it can be negative.
  y = _run(layers.INSResBlock(), x)
  assert y.shape == x.shape and float(y.min()) < 0
  # BasicBlock halves with floor rounding (7 -> 3).
  assert _run(layers.BasicBlock(6), x).shape == (2, 3, 3, 6)
  assert _run(layers.ReLUINSConvTranspose2d(5), x).shape == (2, 14, 14, 5)


def _param_stats(module, x):
  return module.init(jax.random.key(0), x)['params']


def test_initialisation_matches_pytorch_reference():
  x = jnp.zeros((1, 8, 8, 64))
  p = _param_stats(layers.Conv2d(128, 3), x)
  assert abs(float(p['kernel'].std()) - 0.02) < 0.001
  bound = 1 / np.sqrt(64 * 9)
  assert float(jnp.abs(p['bias']).max()) <= bound
  assert float(jnp.abs(p['bias']).max()) > 0.8 * bound
  # ConvTranspose2d: PyTorch's bias fan_in is Cout·k².
  p = _param_stats(layers.ConvTranspose2d(16, 3, 2, 1, 1), x)
  assert abs(float(p['kernel'].std()) - 0.02) < 0.002
  bound = 1 / np.sqrt(16 * 9)
  assert float(jnp.abs(p['bias']).max()) <= bound
  assert float(jnp.abs(p['bias']).max()) > 0.8 * bound
  # Linear: U(±1/√in) for weight and bias.
  p = init.dense(256, 64).init(jax.random.key(0), jnp.zeros((1, 64)))['params']
  bound = 1 / 8
  for leaf in (p['kernel'], p['bias']):
    assert float(jnp.abs(leaf).max()) <= bound
    assert float(jnp.abs(leaf).max()) > 0.9 * bound


def test_spectral_norm_power_iteration():
  x = jax.random.normal(jax.random.key(0), (1, 6, 6, 4))
  conv = layers.Conv2d(5, 3, padding=1, spectral_norm=True)
  variables = conv.init(jax.random.key(1), x)
  stats = variables['batch_stats']
  np.testing.assert_allclose(jnp.linalg.norm(stats['u']), 1.0, rtol=1e-6)
  assert float(stats['sigma']) == 1.0   # eval before training: raw weight
  w = np.asarray(variables['params']['kernel']).reshape(-1, 5).T
  top = np.linalg.svd(w, compute_uv=False)[0]

  @jax.jit
  def train_call(params, stats):
    y, new = conv.apply({'params': params, 'batch_stats': stats}, x,
                        update_stats=True, mutable=['batch_stats'])
    return y, new['batch_stats']

  for _ in range(30):
    y_train, stats = train_call(variables['params'], stats)
  np.testing.assert_allclose(stats['sigma'], top, rtol=1e-4)
  # Eval reuses the last σ and gives the training output.
  y_eval = conv.apply({'params': variables['params'], 'batch_stats': stats}, x)
  np.testing.assert_allclose(y_eval, y_train, rtol=1e-5, atol=1e-6)
  # Without mutable batch_stats a training call is an error, not a no-op.
  with pytest.raises(Exception):
    conv.apply({'params': variables['params'], 'batch_stats': stats}, x,
               update_stats=True)


@pytest.mark.parametrize('k,s,size', [(3, 1, 9), (7, 1, 12), (4, 2, 10),
                                      (4, 2, 9), (5, 1, 6), (1, 1, 5)])
def test_unpadded_conv_equals_lax_and_runs_padded_on_cpu(k, s, size):
  """`conv.conv_general_dilated` of a VALID conv: the values and gradients
  of lax's, computed on XLA:CPU as a conv with `s` appended zero rows and
  columns (the fast path) whose extra last output row / column is cropped;
  1×1 convs (matrix products) stay as they are."""
  conv_fn = layers.conv.conv_general_dilated
  dims = ('NHWC', 'HWIO', 'NHWC')
  x = jax.random.normal(jax.random.key(0), (2, size, size + 1, 3))
  w = jax.random.normal(jax.random.key(1), (k, k, 3, 5))

  def loss(fn, x, w):
    y = fn(x, w, (s, s), 'VALID', dimension_numbers=dims)
    return jnp.sum(jnp.sin(y)), y

  (_, y), grads = jax.value_and_grad(
      lambda x, w: loss(conv_fn, x, w), (0, 1), has_aux=True)(x, w)
  (_, y_ref), grads_ref = jax.value_and_grad(
      lambda x, w: loss(lax.conv_general_dilated, x, w), (0, 1),
      has_aux=True)(x, w)
  assert y.shape == y_ref.shape
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  for g, g_ref in zip(grads, grads_ref):
    np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-4)
  hlo = jax.jit(lambda x, w: conv_fn(
      x, w, (s, s), [(0, 0), (0, 0)], dimension_numbers=dims)).lower(
          x, w).as_text()
  padded = f'pad = [[0, {s}], [0, {s}]]' in hlo
  assert padded == (k > 1), hlo


def _conv_eqns(jaxpr):
  """The conv_general_dilated equations of a jaxpr, nested ones included."""
  found = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == 'conv_general_dilated':
      found.append(eqn)
    for sub in jax.extend.core.jaxprs_in_params(eqn.params):
      found.extend(_conv_eqns(sub))
  return found


def _sin_loss_and_penalty_grads(conv, x, w):
  """∂/∂(x, w) of Σ sin(conv(x, w)) and of the R1-style penalty
  ‖∂/∂x Σ sin(conv(x, w))‖² (a second-order gradient)."""
  def loss(x, w):
    return jnp.sum(jnp.sin(conv(x, w)))

  def penalty(x, w):
    return jnp.sum(jax.grad(loss)(x, w) ** 2)

  return [jax.grad(objective, (0, 1))(x, w) for objective in (loss, penalty)]


def _assert_gradients_close(got, want):
  """Each gradient within 1e-4 relative and 1e-5 of its largest entry."""
  for g, g_ref in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    scale = float(jnp.abs(g_ref).max())
    np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize('batch,size,k,s,padding', [
    (3, 66, 3, 1, 'VALID'), (9, 40, 3, 1, [(1, 1), (1, 1)]),
    (3, 67, 4, 2, 'VALID'), (2, 66, 4, 2, [(1, 2), (0, 1)]),
    (1, 130, 4, 2, 'VALID'), (2, 9, 3, 2, 'VALID'), (2, 14, 7, 2, 'VALID'),
    (2, 16, 5, 2, [(2, 2), (2, 2)])])
def test_custom_conv_gradients_equal_autodiff(batch, size, k, s, padding):
  """On XLA:CPU the kernel gradient of a large-batch × pixels conv is a sum
  over batch slices and a strided conv's input gradient a sub-pixel
  transposed conv: the same values as lax's autodiff, first and second
  order (an R1-style penalty), and the rewritten forms are what is traced."""
  conv_fn = layers.conv.conv_general_dilated
  dims = ('NHWC', 'HWIO', 'NHWC')
  x = jax.random.normal(jax.random.key(0), (batch, size, size + 3, 8))
  w = jax.random.normal(jax.random.key(1), (k, k, 8, 16)) * 0.1

  def with_args(fn):
    return lambda x, w: fn(x, w, (s, s), padding, dimension_numbers=dims)

  _assert_gradients_close(
      _sin_loss_and_penalty_grads(with_args(conv_fn), x, w),
      _sin_loss_and_penalty_grads(with_args(lax.conv_general_dilated), x, w))

  eqns = _conv_eqns(jax.make_jaxpr(jax.grad(
      lambda x, w: jnp.sum(jnp.sin(with_args(conv_fn)(x, w))), (0, 1)))(
          x, w).jaxpr)
  out_pixels = ((size + sum(padding[0]) - k) // s + 1 if padding != 'VALID'
                else (size - k) // s + 1) ** 2
  sliced = batch > 1 and batch * out_pixels >= 8192
  phases = s > 1 and (size * (size + 3) >= 64 * 64 or k >= 5)
  kernel_grads = [e for e in eqns if e.outvars[0].aval.shape == w.shape]
  slice_size = -(-batch // 8) if sliced else batch
  assert len(kernel_grads) == len(range(0, batch, slice_size))
  assert {e.invars[0].aval.shape[0] for e in kernel_grads} <= {
      slice_size, batch % slice_size}
  dilated = [e for e in eqns
             if any(d != 1 for d in e.params['lhs_dilation'])]
  assert bool(dilated) == (s > 1 and not phases), dilated


@pytest.mark.parametrize('height,width', [(6, 6), (7, 10), (3, 4), (9, 3)])
def test_winograd_conv3x3_equals_direct_conv_with_gradients(height, width):
  """F(2×2, 3×3) Winograd: the VALID conv's values, both gradients and the
  second-order (R1-style) gradient, even and odd output sizes."""
  x = jax.random.normal(jax.random.key(0), (2, height, width, 8))
  w = jax.random.normal(jax.random.key(1), (3, 3, 8, 5)) * 0.3
  direct = lambda x, w: lax.conv_general_dilated(
      x, w, (1, 1), 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  winograd = layers.conv.winograd_conv3x3
  np.testing.assert_allclose(winograd(x, w), direct(x, w), rtol=1e-5,
                             atol=1e-5)

  _assert_gradients_close(_sin_loss_and_penalty_grads(winograd, x, w),
                          _sin_loss_and_penalty_grads(direct, x, w))


def _assert_rewritten_without_conv(x, w, stride, padding, rewritten):
  """`conv.conv_general_dilated` given flax's `ConvDimensionNumbers`: its
  traced gradient program has no conv iff `rewritten`, and (float32) its
  gradients are lax's."""
  conv_fn = layers.conv.conv_general_dilated
  numbers = lax.conv_dimension_numbers(x.shape, w.shape,
                                       ('NHWC', 'HWIO', 'NHWC'))

  def loss(fn, x, w):
    y = fn(x, w, (stride, stride), padding, dimension_numbers=numbers)
    return jnp.sum(jnp.sin(y.astype(jnp.float32)))

  eqns = _conv_eqns(jax.make_jaxpr(
      jax.grad(lambda x, w: loss(conv_fn, x, w), (0, 1)))(x, w).jaxpr)
  assert (not eqns) == rewritten, eqns
  if x.dtype != jnp.float32:
    return
  _assert_gradients_close(
      jax.grad(lambda x, w: loss(conv_fn, x, w), (0, 1))(x, w),
      jax.grad(lambda x, w: loss(lax.conv_general_dilated, x, w),
               (0, 1))(x, w))


@pytest.mark.parametrize('channels,size,stride,dtype,padding,winograd', [
    (256, 26, 1, jnp.float32, 'VALID', True),
    (256, 24, 1, jnp.float32, 'SAME', True),
    (256, 25, 1, jnp.float32, [(0, 2), (1, 1)], True),
    (256, 25, 1, jnp.float32, 'VALID', False),
    (128, 26, 1, jnp.float32, 'VALID', False),
    (256, 50, 2, jnp.float32, [(1, 1), (1, 1)], False),
    (256, 26, 1, jnp.bfloat16, 'VALID', False)])
def test_wide_3x3_convs_run_as_winograd_on_cpu(channels, size, stride, dtype,
                                               padding, winograd):
  """`conv.conv_general_dilated` computes float32 3×3 stride-1 convs with
  ≥ 256 input and output channels and an output map of ≥ 24 × 24 pixels as
  `winograd_conv3x3` on the CPU (the traced program has no conv then),
  with lax's values and gradients, also given flax's
  `ConvDimensionNumbers`; the others stay direct convs."""
  x = jax.random.normal(jax.random.key(0), (1, size, size, channels), dtype)
  w = (jax.random.normal(jax.random.key(1), (3, 3, channels, channels)) /
       channels).astype(dtype)
  _assert_rewritten_without_conv(x, w, stride, padding, winograd)


@pytest.mark.parametrize('shape,kernel,strides', [
    ((2, 13, 13, 6), (7, 7), (2, 2)), ((1, 9, 11, 4), (3, 3), (1, 1)),
    ((3, 10, 7, 5), (4, 2), (2, 1)), ((2, 4, 4, 3), (4, 4), (1, 1))])
def test_patches_matmul_conv_equals_direct_conv_with_gradients(shape, kernel,
                                                              strides):
  """im2col: a VALID conv's values, both gradients and the second-order
  (R1-style) gradient, for square and non-square kernels and strides."""
  x = jax.random.normal(jax.random.key(0), shape)
  w = jax.random.normal(jax.random.key(1), (*kernel, shape[3], 5)) * 0.3
  direct = lambda x, w: lax.conv_general_dilated(
      x, w, strides, 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  patches = lambda x, w: layers.conv.patches_matmul_conv(x, w, strides)
  np.testing.assert_allclose(patches(x, w), direct(x, w), rtol=1e-5,
                             atol=1e-5)
  _assert_gradients_close(_sin_loss_and_penalty_grads(patches, x, w),
                          _sin_loss_and_penalty_grads(direct, x, w))


@pytest.mark.parametrize('batch,size,channels,k,stride,dtype,padding,as_dot', [
    (2, 29, 64, 7, 2, jnp.float32, 'VALID', True),       # 2 × 12² outputs
    (2, 16, 64, 3, 1, jnp.float32, 'SAME', True),        # 512 outputs
    (1, 8, 96, 4, 2, jnp.float32, [(1, 2), (0, 1)], True),
    (1, 23, 64, 3, 1, jnp.float32, 'SAME', False),       # 529 outputs
    (2, 16, 32, 3, 1, jnp.float32, 'SAME', False),       # < 64 channels
    (2, 16, 64, 1, 1, jnp.float32, 'VALID', False),      # 1×1: a product
    (2, 16, 64, 3, 1, jnp.bfloat16, 'SAME', False)])
def test_small_map_convs_run_as_patch_products_on_cpu(
    batch, size, channels, k, stride, dtype, padding, as_dot):
  """`conv.conv_general_dilated` computes float32 convs with ≥ 64 input and
  output channels and ≤ 512 output pixels over the batch as
  `patches_matmul_conv` on the CPU (no conv left in the traced program),
  with lax's values and gradients, also given flax's
  `ConvDimensionNumbers`; the others stay convs."""
  x = jax.random.normal(jax.random.key(0), (batch, size, size, channels),
                        dtype)
  w = (jax.random.normal(jax.random.key(1), (k, k, channels, channels)) /
       channels).astype(dtype)
  _assert_rewritten_without_conv(x, w, stride, padding, as_dot)


@pytest.mark.parametrize('batch,size,channels,k,stride,padding', [
    (1, 26, 256, 3, 1, 'VALID'),              # Winograd on the CPU
    (2, 29, 64, 7, 2, 'VALID'),               # patch product on the CPU
    (2, 66, 8, 4, 2, 'VALID'),                # phase input gradient
    (3, 67, 8, 4, 2, [(1, 1), (1, 1)]),       # phase input gradient
    (2, 130, 8, 3, 1, [(1, 1), (1, 1)])])     # weight gradient by slices
def test_accelerators_run_lax_conv_unchanged(monkeypatch, batch, size,
                                             channels, k, stride, padding):
  """Off the CPU, `conv.conv_general_dilated` is `lax.conv_general_dilated`
  itself: the gradient program of a conv that the CPU rewrites traces to
  the same jaxpr as lax's (so a GPU runs cuDNN's convs and the benchmark's
  FLOP count is the direct convs')."""
  monkeypatch.setattr(jax, 'default_backend', lambda: 'gpu')
  x = jnp.zeros((batch, size, size, channels))
  w = jnp.zeros((k, k, channels, channels))

  def grad_jaxpr(fn):
    loss = lambda x, w: jnp.sum(jnp.sin(fn(
        x, w, (stride, stride), padding,
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))))
    return str(jax.make_jaxpr(jax.grad(loss, (0, 1)))(x, w))

  assert (grad_jaxpr(layers.conv.conv_general_dilated) ==
          grad_jaxpr(lax.conv_general_dilated))


def _upsample_then_conv(x, w, factor, padding, pad_mode):
  """The direct form: nearest ×factor, pad, VALID conv (lax)."""
  up = x.repeat(factor, axis=1).repeat(factor, axis=2)
  mode = {'reflect': 'reflect', 'zero': 'constant', 'replicate': 'edge'}
  up = jnp.pad(up, ((0, 0), (padding, padding), (padding, padding), (0, 0)),
               mode=mode[pad_mode])
  return lax.conv_general_dilated(up, w, (1, 1), 'VALID',
                                  dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


@pytest.mark.parametrize('height,width,k,padding,factor,pad_mode', [
    (5, 7, 5, 2, 2, 'reflect'), (2, 3, 5, 2, 2, 'reflect'),
    (8, 8, 7, 3, 2, 'reflect'), (6, 5, 3, 1, 2, 'reflect'),
    (4, 6, 4, 1, 2, 'reflect'), (5, 4, 5, 2, 3, 'reflect'),
    (4, 4, 5, 2, 2, 'zero'), (5, 3, 3, 0, 2, 'zero'),
    (6, 5, 5, 2, 2, 'replicate')])
def test_upsample_conv_equals_upsample_then_conv(height, width, k, padding,
                                                 factor, pad_mode):
  """`upsample_conv` (phase convs of x, reflect borders recomputed) gives
  the values and both gradients of nearest upsampling → pad → conv, also
  for non-square maps, even kernels, ×3 and maps as small as 2 pixels."""
  x = jax.random.normal(jax.random.key(0), (2, height, width, 3))
  w = jax.random.normal(jax.random.key(1), (k, k, 3, 4))

  def loss(fn, x, w):
    y = fn(x, w, factor, padding, pad_mode)
    return jnp.sum(jnp.sin(y)), y

  (_, y), grads = jax.value_and_grad(
      lambda x, w: loss(layers.conv.upsample_conv, x, w), (0, 1),
      has_aux=True)(x, w)
  (_, y_ref), grads_ref = jax.value_and_grad(
      lambda x, w: loss(_upsample_then_conv, x, w), (0, 1),
      has_aux=True)(x, w)
  assert y.shape == y_ref.shape
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-4)
  for g, g_ref in zip(grads, grads_ref):
    np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=5e-4)


def test_upsample_conv_computes_no_upsampled_map():
  """The phase form convolves x itself: every conv of a 5×5 conv after a ×2
  upsample of a 16×16 map, bar the border strips, reads a 16-pixel-high
  input with a 3×3 kernel (four phases of Cout outputs each)."""
  x = jnp.ones((1, 16, 16, 4))
  w = jnp.ones((5, 5, 4, 6))
  eqns = _conv_eqns(jax.make_jaxpr(
      lambda x, w: layers.conv.upsample_conv(x, w, 2, 2, 'reflect'))(
          x, w).jaxpr)
  main = [e for e in eqns if e.invars[1].aval.shape[:2] == (3, 3)]
  assert len(main) == 1 and main[0].invars[1].aval.shape == (3, 3, 4, 24)
  strips = [e for e in eqns if e not in main]
  assert all(e.invars[0].aval.shape[1] < 16 or e.invars[0].aval.shape[2] < 16
             for e in strips), [e.invars[0].aval.shape for e in strips]


@pytest.mark.parametrize('kwargs,message', [
    (dict(factor=2, padding=2, pad_mode='mirror'), 'Unknown pad mode'),
    (dict(factor=2, padding=2, pad_mode='reflect', size=1),
     'Reflection padding 2'),
    (dict(factor=2, padding=0, pad_mode='zero', size=2), 'needs a'),
])
def test_upsample_conv_rejects_bad_arguments(kwargs, message):
  size = kwargs.pop('size', 4)
  x = jnp.ones((1, size, size, 2))
  with pytest.raises(ValueError, match=message):
    layers.conv.upsample_conv(x, jnp.ones((5, 5, 2, 3)), **kwargs)
