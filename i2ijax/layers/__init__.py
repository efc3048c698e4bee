"""Shared layers (NHWC linen modules): padded convs, norms, initialisers."""

from i2ijax.layers.conv import avg_pool2
from i2ijax.layers.conv import BasicBlock
from i2ijax.layers.conv import Conv2d
from i2ijax.layers.conv import ConvTranspose2d
from i2ijax.layers.conv import INSResBlock
from i2ijax.layers.conv import LeakyReLUConv2d
from i2ijax.layers.conv import reflect_pad
from i2ijax.layers.conv import ReLUINSConv2d
from i2ijax.layers.conv import ReLUINSConvTranspose2d
from i2ijax.layers.norm import AdaIN
from i2ijax.layers.norm import instance_norm
from i2ijax.layers.norm import LayerNorm
