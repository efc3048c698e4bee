"""CycleGAN networks (spec §2.2–§2.3), NHWC linen modules.

* `ResnetGenerator`: c7s1-ngf → 2 × [conv3 s2 (zero pad 1), IN, ReLU] →
  `num_blocks` residual blocks at 4·ngf → 2 × [transposed conv3 s2 p1 op1,
  IN, ReLU] → c7s1-3 → tanh. The 7×7 convs and the residual-block convs use
  reflection padding. 9 blocks at 256 px, 6 at 128 px (spec B1).
* `PatchDiscriminator`: the 70×70 PatchGAN (`n_layers=3`): conv4 s2 →
  LReLU(0.2) (no norm), then `n_layers − 1` × [conv4 s2, IN, LReLU],
  [conv4 s1, IN, LReLU] and a conv4 s1 to one logit per patch; all zero
  padding 1, widths ndf·min(2^n, 8). 256 px → (30, 30, 1), 32 px → (2, 2, 1).

IN is `InstanceNorm2d(affine=False)` (no running statistics), so train and
test behave the same and every conv has a bias. Initialisation (spec §2.5):
weights N(0, 0.02²) and biases 0. `init_params` draws exactly that, for
every kernel from one flat normal vector: XLA:CPU compiles every
`jax.random.normal` call of a Flax `init` on its own (~0.7 s each), so one
draw cuts the objective's init compile from about a minute to seconds. A
module's own `init` differs only in the two transposed convs (the shared,
PyTorch-exact `layers.ConvTranspose2d`), whose biases get PyTorch's default
init; the instance norm right after them cancels those biases and their
gradients, so both inits give the same function.

Parameters (ngf = ndf = 64): 9 blocks 11,378,179; 6 blocks 7,837,699;
PatchGAN (n_layers 3) 2,764,737 (spec §2.2–§2.3).

`dtype` / `remat` (`layers.compute`): both networks compute in `dtype` with
float32 params and return float32; `remat` rematerialises the generator's
residual blocks.
"""

import math
from typing import Any

from flax import linen as nn
import jax
import jax.numpy as jnp

from i2ijax.layers import compute
from i2ijax.layers import conv
from i2ijax.layers import init
from i2ijax.layers import norm


def _conv(features: int, kernel_size: int, stride: int = 1,
          padding: int = 0, name: str | None = None,
          dtype=jnp.float32) -> nn.Conv:
  """k×k conv with zero padding, N(0, 0.02²) kernel and zero bias."""
  return nn.Conv(features, (kernel_size, kernel_size), (stride, stride),
                 padding=[(padding, padding)] * 2,
                 kernel_init=init.conv_kernel,
                 bias_init=nn.initializers.zeros, name=name, dtype=dtype,
                 conv_general_dilated=conv.conv_general_dilated)


class ResnetBlock(nn.Module):
  """x + IN(conv3(ReLU(IN(conv3(x))))), reflect pad 1; no final activation."""
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    channels = x.shape[-1]
    y = _conv(channels, 3, name='conv1', dtype=self.dtype)(
        conv.reflect_pad(x, 1))
    y = nn.relu(norm.instance_norm(y))
    y = _conv(channels, 3, name='conv2', dtype=self.dtype)(
        conv.reflect_pad(y, 1))
    return x + norm.instance_norm(y)


class ResnetGenerator(nn.Module):
  """The CycleGAN ResNet generator: (B, S, S, 3) → (B, S, S, 3) in (−1, 1).

  S must be a multiple of 4 (two stride-2 stages, exactly undone by the
  transposed convs).
  """
  ngf: int = 64
  num_blocks: int = 9
  dtype: Any = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, x):
    if x.shape[1] % 4 or x.shape[2] % 4:
      raise ValueError(f'ResnetGenerator needs a size divisible by 4, got '
                       f'{x.shape[1]}x{x.shape[2]}.')
    ngf, dtype = self.ngf, self.dtype
    x = _conv(ngf, 7, name='conv_in', dtype=dtype)(conv.reflect_pad(x, 3))
    x = nn.relu(norm.instance_norm(x))
    for i in range(2):
      x = _conv(ngf * 2**(i + 1), 3, 2, 1, name=f'down{i + 1}',
                dtype=dtype)(x)
      x = nn.relu(norm.instance_norm(x))
    res_block = compute.maybe_remat(ResnetBlock, self.remat)
    for i in range(self.num_blocks):
      x = res_block(dtype, name=f'res{i + 1}')(x)
    for i in range(2):
      x = conv.ConvTranspose2d(ngf * 2**(1 - i), 3, stride=2, padding=1,
                               output_padding=1, dtype=dtype,
                               name=f'up{i + 1}')(x)
      x = nn.relu(norm.instance_norm(x))
    x = _conv(3, 7, name='conv_out', dtype=dtype)(conv.reflect_pad(x, 3))
    return compute.float32(jnp.tanh(x))


class PatchDiscriminator(nn.Module):
  """PatchGAN: (B, S, S, 3) → (B, S/2^n − 2, S/2^n − 2, 1) raw logits.

  Needs S / 2^n_layers ≥ 3 (the two stride-1 4×4 convs each remove a pixel).
  """
  ndf: int = 64
  n_layers: int = 3
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    smallest = min(x.shape[1:3]) // 2**self.n_layers
    if smallest < 3:
      raise ValueError(
          f'PatchDiscriminator(n_layers={self.n_layers}) needs inputs of at '
          f'least {3 * 2**self.n_layers} pixels, got {x.shape[1]}x'
          f'{x.shape[2]}: use fewer layers or larger crops.')
    dtype = self.dtype
    x = nn.leaky_relu(_conv(self.ndf, 4, 2, 1, name='conv0', dtype=dtype)(x),
                      0.2)
    for n in range(1, self.n_layers + 1):
      stride = 2 if n < self.n_layers else 1
      x = _conv(self.ndf * min(2**n, 8), 4, stride, 1, name=f'conv{n}',
                dtype=dtype)(x)
      x = nn.leaky_relu(norm.instance_norm(x), 0.2)
    return compute.float32(_conv(1, 4, 1, 1, name='conv_out',
                                 dtype=dtype)(x))


def init_params(module: nn.Module, rng: jax.Array, *args) -> dict:
  """Params of `module(*args)`: kernels N(0, 0.02²), biases 0, one draw."""
  shapes = jax.eval_shape(module.init, jax.random.key(0), *args)['params']
  leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)
  is_kernel = [path[-1].key == 'kernel' for path, _ in leaves]
  sizes = [math.prod(leaf.shape) for _, leaf in leaves]
  total = sum(size for size, kernel in zip(sizes, is_kernel) if kernel)
  flat = 0.02 * jax.random.normal(rng, (total,), jnp.float32)
  out, offset = [], 0
  for (_, leaf), size, kernel in zip(leaves, sizes, is_kernel):
    if kernel:
      out.append(flat[offset:offset + size].reshape(leaf.shape))
      offset += size
    else:
      out.append(jnp.zeros(leaf.shape, leaf.dtype))
  return jax.tree_util.tree_unflatten(treedef, out)
