"""Translates images with a trained run.

  python -m i2ijax.translate --workdir=W --input=IMG_OR_DIR --output=DIR \\
      [--target=DOMAIN] [--source=DOMAIN] \\
      [--num_styles=N | --reference=IMG | --interpolate=A,B,STEPS] \\
      [--seed=S] [--step=STEP] [--max_side=PX]

Restores the newest (or `--step`) checkpoint of W with the config saved next
to it, and translates every image of `--input` (a file, or a folder searched
recursively like a training folder) one at a time:

  default        `--num_styles` random styles (default 1) per target domain;
  --reference    the style encoded from one image of the target domain;
  --interpolate  STEPS styles on the path from style A to style B, each an
                 integer (random style A of `--seed`, the same code as style
                 A of `--num_styles`) or an image path (its encoded style).
                 MUNIT uses its own slerp (`interpolate_styles`), the other
                 models interpolate their codes linearly.

Domains are names of the run's data (`day`, `A`, …) or indices. Two-domain
models translate to the domain other than `--source` (default: the first).
Models with more domains translate to `--target`, or to every domain (but
`--source`, if given). UNIT
(without `model.sample_at_test`) and CycleGAN are deterministic: they ignore
the style options and say so. TUNIT has no random styles: a target domain
uses its mean style (the evaluator's `style_table` over real training images,
which this reads through the TensorFlow input pipeline); `--reference` needs
no data.

Outputs: `DIR/<input stem>_<target>_<kind><k>.png` with kind `style`, `ref`
or `interp` (TUNIT's reference styles: target `reference`, as the reference
alone sets the domain), plus `DIR/grid.png`: one row per input (the first
64), the input then its outputs, every cell resized to the first input's
size (at most 256 px). The same seed gives the same bytes.

Any input size works, non-square included: the networks are convolutional,
and each image is reflect-padded at its bottom and right to the nearest size
that the network maps onto itself (the smallest power-of-two multiple, found
by shape inference, e.g. a multiple of 4 for two stride-2 layers) and the
output is cropped back. TUNIT's generator rejects sizes other than its
training size, so its encoder and decoder are applied directly. References
are encoded at their own size. Memory: images are translated one at a time
(batch 1) and written at once, so memory is that of one image's
activations. Each distinct padded input shape compiles once (resize a folder
of mixed sizes to one size first for speed). Images are not tiled: every
generator here normalises with per-image instance / AdaIN statistics, so
tiles would each get their own statistics and visible seams. Images with a
side above `--max_side` are instead downscaled to it first (with a warning).

Nothing imports TensorFlow except TUNIT's mean styles and the domain names
of a TFDS catalog dataset: shapes and folder runs read their domain names
without the input pipeline.
"""

import dataclasses
import functools
import os
import re
import sys
import warnings

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from i2ijax import config_lib
from i2ijax import objectives as objectives_lib
from i2ijax.data import folders
from i2ijax.data import shapes_render
from i2ijax.data import spec as data_spec
from i2ijax.training import checkpoint as checkpoint_lib
from i2ijax.utils import images as image_utils

GRID_CELL_MAX = 256     # longest side of a grid thumbnail
GRID_MAX_ROWS = 64      # the grid shows the first inputs only
_MAX_MULTIPLE = 64      # largest padding multiple tried


class TranslateError(ValueError):
  """A user error: the message names the problem and the fix."""


def _define_flags():
  """CLI flags, defined only when run as a program."""
  flags.DEFINE_string('workdir', None, 'Run directory holding checkpoints.')
  flags.DEFINE_string('input', None, 'An image file or a folder of images.')
  flags.DEFINE_string('output', None, 'Folder for the translated PNGs.')
  flags.DEFINE_string('target', None, 'Target domain (name or index).')
  flags.DEFINE_string('source', None, 'Source domain of the inputs (name or '
                      'index; two-domain models).')
  flags.DEFINE_integer('num_styles', None, 'Random styles per target.')
  flags.DEFINE_string('reference', None, 'Image whose style to use.')
  flags.DEFINE_string('interpolate', None, 'A,B,STEPS: styles from A to B; '
                      'A and B are random-style indices or image paths.')
  flags.DEFINE_integer('seed', 0, 'Seed of the random styles.')
  flags.DEFINE_integer('step', None, 'Checkpoint step (default: latest).')
  flags.DEFINE_integer('max_side', 2048, 'Images with a longer side are '
                       'downscaled to it first.')
  flags.mark_flags_as_required(['workdir', 'input', 'output'])


# ------------------------------------------------------------------ domains
@dataclasses.dataclass(frozen=True)
class Spec:
  """What `objectives.build` reads of a data spec."""
  domain_names: tuple[str, ...]
  image_size: int


def domain_names(data_cfg) -> tuple[str, ...]:
  """The run's domain names in label order, without TensorFlow for shapes
  and folder runs (TFDS catalog datasets ask the input pipeline)."""
  if data_cfg.name == 'shapes':
    available = tuple(shapes_render.DOMAINS)
  elif data_cfg.name == 'folder' and os.path.isdir(data_cfg.get('root', '')):
    available = folders.scan(data_cfg.root).domain_names
  else:
    from i2ijax.data import pipeline  # pylint: disable=g-import-not-at-top
    try:
      return pipeline.get_data_spec(data_cfg).domain_names
    except data_spec.DataError as e:
      raise TranslateError(f'Cannot find the domains of the run\'s data: '
                           f'{e}') from None
  try:
    chosen = data_spec.select_domains(available, data_cfg.get('domains', ()))
  except data_spec.DataError as e:
    raise TranslateError(f'Cannot find the domains of the run\'s data: {e}'
                         ) from None
  return tuple(available[i] for i in chosen)


def _domain_index(names, value, flag) -> int:
  if value in names:
    return names.index(value)
  if re.fullmatch(r'\d+', str(value)) and int(value) < len(names):
    return int(value)
  raise TranslateError(
      f'Unknown --{flag} domain {value!r}; the known domains are '
      + ', '.join(f'{n!r} ({i})' for i, n in enumerate(names)))


def resolve_domains(names, source=None, target=None):
  """(source index, [target indices]) from the optional flags."""
  src = None if source is None else _domain_index(names, source, 'source')
  tgt = None if target is None else _domain_index(names, target, 'target')
  if len(names) == 2:
    if tgt is None:
      src = 0 if src is None else src
      return src, [1 - src]
    return (1 - tgt if src is None else src), [tgt]
  src = 0 if src is None else src
  if tgt is not None:
    return src, [tgt]
  others = [d for d in range(len(names)) if d != src]
  return src, (others if source is not None else list(range(len(names))))


# ------------------------------------------------------------- restoring
def restore_config(workdir: str, step: int | None = None):
  """(config, step, domain names) of a run's newest (or `step`) checkpoint."""
  directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
  steps = sorted(int(p) for p in (os.listdir(directory)
                                  if os.path.isdir(directory) else ())
                 if p.isdigit())
  if not steps:
    raise TranslateError(
        f'No checkpoint in {directory}: train first with `python -m '
        f'i2ijax.main --config=... --workdir={workdir}`.')
  if step is not None and step not in steps:
    raise TranslateError(f'No checkpoint for --step={step} in {directory}; '
                         f'saved steps: {steps}')
  config, step = checkpoint_lib.restore_config(workdir, step)
  config_lib.validate(config)
  return config, step, domain_names(config.data)


def restore_params(workdir: str, step: int, config, names):
  """(objective, inference params) of the checkpoint at `step`."""
  objective = objectives_lib.build(
      config, Spec(names, int(config.data.image_size)))
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
      jax.eval_shape(objective.init, jax.random.key(0)))
  checkpointer = checkpoint_lib.Checkpointer(workdir)
  try:
    state, _, _ = checkpointer.restore(target, step)
  finally:
    checkpointer.close()
  return objective, objectives_lib.inference_params(objective, state)


# --------------------------------------------------- per-model inference
def _tunit_decode(objective, params, images, style):
  """TUNIT's `decode` without the generator's training-size check: its
  encoder and decoder are convolutional (any multiple of 2^n_downs)."""
  variables = {'params': params['gen']}
  content = objective.gen.apply(variables, images,
                                method=lambda g, x: g.encoder(x))
  return objective.gen.apply(variables, content, style, method='decode')


def _mdmm_reference_code(objective, params, references, target, rng):
  """The (z, cond) `translate_reference` decodes with (MDMM: sampled z,
  GMVAE-MDMM: the mean, and one-hot argmax q(y|x))."""
  attr = objective.encode_attr(
      params, references, jax.nn.one_hot(target, objective.num_domains), rng,
      objective.temperature(jnp.int32(10**9)))
  z = attr['mean'] if objective.cluster is not None else attr['z']
  return z, objective.reference_cond(attr)


def _mdmm_decode(objective, params, images, source, target, code):
  del source, target
  z, cond = code
  return objective.generate(params, objective.encode_content(params, images),
                            z, cond)


@dataclasses.dataclass(frozen=True)
class Functions:
  """Pure inference functions of one model (params first; jit them).

  translate(params, x, source, target, rng); reference(params, x, ref,
  source, target, rng); random_code(params, target, rng) and
  reference_code(params, ref, target, rng) give style codes, decode(params,
  x, source, target, code) and mix(code_a, code_b, t) use them. None: the
  model has no such thing. x, ref (1, H, W, 3); source, target (1,) int.
  """
  translate: object
  reference: object = None
  random_code: object = None
  reference_code: object = None
  decode: object = None
  mix: object = None
  has_random_styles: bool = True
  reference_sets_domain: bool = False   # the reference alone sets the
                                        # domain (TUNIT): one output


def _lerp(a, b, t):
  return jax.tree.map(lambda u, v: (1 - t) * u + t * v, a, b)


def model_functions(objective, config) -> Functions:
  """The inference functions of `config.model.name`'s objective."""
  name = config.model.name
  o = objective
  if name == 'munit':
    from i2ijax.objectives import munit  # pylint: disable=g-import-not-at-top
    return Functions(
        translate=o.translate,
        reference=lambda p, x, r, s, t, k: o.translate_reference(
            p, x, r, t, k, source=s),
        random_code=lambda p, t, k: o.sample_styles(k, t.shape[0]),
        reference_code=lambda p, r, t, k: o.encode_style(p, r, t),
        decode=lambda p, x, s, t, c: o.decode(
            p, o.encode_content(p, x, s), c, t),
        mix=lambda a, b, t: munit.slerp(a, b, jnp.reshape(t, (1,)))[:, 0])
  if name in ('mdmm', 'gmvae_mdmm'):
    return Functions(
        translate=o.translate,
        reference=lambda p, x, r, s, t, k: o.translate_reference(
            p, x, r, t, k),
        random_code=o.random_attr,
        reference_code=functools.partial(_mdmm_reference_code, o),
        decode=functools.partial(_mdmm_decode, o), mix=_lerp)
  if name == 'tunit':
    decode = lambda p, x, s, t, c: _tunit_decode(o, p, x, c)
    return Functions(
        translate=lambda p, x, s, t, k: _tunit_decode(
            o, p, x, jnp.asarray(p['style_table'])[t]),
        reference=lambda p, x, r, s, t, k: _tunit_decode(
            o, p, x, o.encode_style(p, r)),
        reference_code=lambda p, r, t, k: o.encode_style(p, r),
        decode=decode, mix=_lerp, has_random_styles=False,
        reference_sets_domain=True)
  if name == 'unit' and config.model.get('sample_at_test', False):
    return Functions(translate=o.translate)   # noise, but no style code
  return Functions(translate=o.translate, has_random_styles=False)


# --------------------------------------------------------------- shapes
def padded_size(output_shape, height: int, width: int) -> tuple[int, int]:
  """Smallest (H', W') ≥ (height, width), both multiples of one power of
  two, that `output_shape(H', W')` maps onto itself."""
  multiple, error = 1, None
  while multiple <= _MAX_MULTIPLE:
    size = (-(-height // multiple) * multiple, -(-width // multiple) * multiple)
    try:
      if tuple(output_shape(*size)[1:3]) == size:
        return size
    except (ValueError, TypeError, ZeroDivisionError) as e:
      error = e   # e.g. too small for a layer at this size: try larger
    multiple *= 2
  raise TranslateError(f'No padded size of a {height}x{width} image fits '
                       f'the network (too small?); last error: {error}')


def _pad(image: np.ndarray, size) -> np.ndarray:
  """Reflect-pads (H, W, 3) at the bottom and right to `size`."""
  pads = ((0, size[0] - image.shape[0]), (0, size[1] - image.shape[1]),
          (0, 0))
  return np.pad(image, pads, mode='reflect' if min(image.shape[:2]) > 1
                else 'edge')


def _limit(image: np.ndarray, max_side: int, path: str) -> np.ndarray:
  """uint8 (H, W, 3), downscaled to `max_side` if a side is above it."""
  height, width = image.shape[:2]
  if max_side and max(height, width) > max_side:
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    logging.warning('%s is %dx%d: downscaled to %dx%d (--max_side=%d).',
                    path, height, width, size[1], size[0], max_side)
    image = np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC))
  return image


def _read(path: str, max_side: int) -> np.ndarray:
  """(1, H, W, 3) float32 in [-1, 1]."""
  try:
    image = image_utils.load_image(path)
  except ValueError as e:
    raise TranslateError(str(e)) from None
  return image_utils.from_uint8(_limit(image, max_side, path))[None]


def list_inputs(path: str, flag: str = '--input') -> list[str]:
  """The image files of `path` (a file, or a folder searched recursively);
  an unreadable one is an error naming it."""
  if os.path.isfile(path):
    return [path]
  if not os.path.isdir(path) or flag != '--input':
    raise TranslateError(f'{flag} {path!r} is not an image file'
                         + ('' if flag != '--input' else ' or folder'))
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    try:
      files = folders.list_images(path)
    except folders.FolderError as e:
      raise TranslateError(str(e)) from None
  bad = [str(w.message) for w in caught
         if 'unreadable image' in str(w.message)]
  if bad:
    raise TranslateError('; '.join(bad))
  return files


# -------------------------------------------------------------- the run
@dataclasses.dataclass(frozen=True)
class _Plan:
  kind: str                        # 'style', 'ref' or 'interp'
  count: int                       # outputs per target
  endpoints: tuple = ()            # interp: (A, B), ints or paths


def _parse_interpolate(value: str) -> tuple:
  parts = [p.strip() for p in value.split(',')]
  if len(parts) != 3 or not re.fullmatch(r'\d+', parts[2]) or int(
      parts[2]) < 2:
    raise TranslateError(f'--interpolate={value!r}: expected A,B,STEPS with '
                         'STEPS >= 2 (A, B: random-style indices or image '
                         'paths)')
  ends = tuple(int(p) if re.fullmatch(r'\d+', p) else p for p in parts[:2])
  return ends, int(parts[2])


def _style_options(num_styles, reference, interpolate) -> list[str]:
  """The style flags given; raises if they conflict or are malformed."""
  given = [f for f, v in (('--num_styles', num_styles),
                          ('--reference', reference),
                          ('--interpolate', interpolate)) if v is not None]
  if len(given) > 1:
    raise TranslateError(f'{" and ".join(given)} conflict: give at most one '
                         'style option')
  if num_styles is not None and num_styles < 1:
    raise TranslateError(f'--num_styles={num_styles} must be >= 1')
  if interpolate is not None:
    for end in _parse_interpolate(interpolate)[0]:
      if isinstance(end, str):
        list_inputs(end, flag='--interpolate')
  if reference is not None:
    list_inputs(reference, flag='--reference')
  return given


def _plan(fns: Functions, model: str, num_styles, reference, interpolate):
  given = _style_options(num_styles, reference, interpolate)
  ends, steps = (_parse_interpolate(interpolate) if interpolate is not None
                 else ((), 0))
  if fns.reference is None and given:
    if given != ['--num_styles'] or not fns.has_random_styles:
      logging.warning('%s is deterministic: ignoring %s.', model, given[0])
      return _Plan('style', 1)
  if reference is not None:
    return _Plan('ref', 1)
  if interpolate is not None:
    if not fns.has_random_styles and any(isinstance(e, int) for e in ends):
      raise TranslateError(f'{model} has no random styles: give two '
                           'reference images, --interpolate=a.png,b.png,'
                           f'{steps}')
    return _Plan('interp', steps, ends)
  if not fns.has_random_styles and num_styles not in (None, 1):
    logging.warning('%s translates to the mean style of the target domain: '
                    'ignoring --num_styles (use --reference for others).',
                    model)
  return _Plan('style', (num_styles or 1) if fns.has_random_styles else 1)


def _thumbnail(image: np.ndarray, size) -> np.ndarray:
  """uint8 (H, W, 3) resized to (h, w) `size` for the grid."""
  if image.shape[:2] == tuple(size):
    return image
  return np.asarray(Image.fromarray(image).resize(size[::-1], Image.BICUBIC))


def _stem(path: str, root: str) -> str:
  rel = os.path.relpath(path, root) if os.path.isdir(root) else (
      os.path.basename(path))
  return os.path.splitext(rel)[0].replace(os.sep, '_')


def run(workdir: str, input_path: str, output_dir: str, *,
        target: str | None = None, source: str | None = None,
        num_styles: int | None = None, reference: str | None = None,
        interpolate: str | None = None, seed: int = 0,
        step: int | None = None, max_side: int = 2048) -> list[str]:
  """Translates `input_path` into `output_dir` (see the module docstring).

  Returns the written output paths (per-image PNGs, then the grid).
  """
  # Cheap checks first, then the (slower) restoring of the params.
  config, step, names = restore_config(workdir, step)
  _style_options(num_styles, reference, interpolate)
  src, targets = resolve_domains(names, source, target)
  files = list_inputs(input_path)
  objective, params = restore_params(workdir, step, config, names)
  model = config.model.name
  fns = model_functions(objective, config)
  plan = _plan(fns, model, num_styles, reference, interpolate)
  if model == 'tunit' and plan.kind == 'style':
    params = _with_style_table(config, objective, params)
  labels = {t: names[t] for t in targets}
  if fns.reference_sets_domain and plan.kind != 'style':
    targets, labels = targets[:1], {targets[0]: 'reference'}
  logging.info('Translating %d image(s) with %s (step %d) from %r to %s.',
               len(files), model, step, names[src],
               [names[t] for t in targets])

  rng = jax.random.key(seed)
  style_rng = lambda k: jax.random.fold_in(rng, k)
  translate = jax.jit(fns.translate)
  ref_image = None if plan.kind != 'ref' else _read(reference, max_side)
  reference_fn = jax.jit(fns.reference) if plan.kind == 'ref' else None
  codes = {}
  if plan.kind == 'interp':
    decode = jax.jit(lambda p, x, s, t, a, b, u: fns.decode(
        p, x, s, t, fns.mix(a, b, u)))
    for t in targets:
      codes[t] = [_code(fns, params, e, t, style_rng, max_side)
                  for e in plan.endpoints]

  def outputs(p, x, s, t):
    """[(label, (1, H, W, 3))] of one padded input to target t."""
    tt = jnp.full((1,), t, jnp.int32)
    if plan.kind == 'ref':
      return [('ref0', reference_fn(p, x, ref_image, s, tt, rng))]
    if plan.kind == 'interp':
      a, b = codes[t]
      return [(f'interp{i}', decode(p, x, s, tt, a, b,
                                    jnp.float32(i / (plan.count - 1))))
              for i in range(plan.count)]
    return [(f'style{k}', translate(p, x, s, tt, style_rng(k)))
            for k in range(plan.count)]

  os.makedirs(output_dir, exist_ok=True)
  sizes, written, rows, cell = {}, [], [], None
  s = jnp.full((1,), src, jnp.int32)
  for path in files:
    image = _read(path, max_side)
    height, width = image.shape[1:3]
    if (height, width) not in sizes:
      probe = lambda h, w: jax.eval_shape(
          functools.partial(_first_output, outputs, t=targets[0]), params,
          jax.ShapeDtypeStruct((1, h, w, 3), jnp.float32), s).shape
      try:
        sizes[height, width] = padded_size(probe, height, width)
      except TranslateError as e:
        raise TranslateError(f'{path}: {e}') from None
    padded = _pad(image[0], sizes[height, width])[None]
    if cell is None:
      scale = min(1.0, GRID_CELL_MAX / max(height, width))
      cell = (max(1, round(height * scale)), max(1, round(width * scale)))
    row = [_thumbnail(image_utils.to_uint8(image[0]), cell)]
    for t in targets:
      for label, out in outputs(params, jnp.asarray(padded), s, t):
        pixels = image_utils.to_uint8(np.asarray(out)[0, :height, :width])
        name = f'{_stem(path, input_path)}_{labels[t]}_{label}.png'
        written.append(os.path.join(output_dir, name.replace(os.sep, '_')))
        image_utils.save_png(written[-1], pixels)
        row.append(_thumbnail(pixels, cell))
    if len(rows) < GRID_MAX_ROWS:
      rows.append(row)
  grid = image_utils.make_grid(image_utils.from_uint8(np.stack(
      [np.stack(r) for r in rows])))
  written.append(os.path.join(output_dir, 'grid.png'))
  image_utils.save_png(written[-1], grid)
  logging.info('Wrote %d images to %s.', len(written), output_dir)
  return written


def _first_output(outputs, params, x, s, t):
  return outputs(params, x, s, t)[0][1]


def _code(fns, params, endpoint, target, style_rng, max_side):
  """The style code of an interpolation end point (index or image)."""
  t = jnp.full((1,), target, jnp.int32)
  if isinstance(endpoint, int):
    return jax.jit(fns.random_code)(params, t, style_rng(endpoint))
  return jax.jit(fns.reference_code)(params, _read(endpoint, max_side), t,
                                     style_rng(0))


def _with_style_table(config, objective, params):
  """TUNIT: adds the per-domain mean styles of real training images."""
  from i2ijax import evaluate  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:    # the input pipeline only: keep TensorFlow off the accelerators
    tf.config.set_visible_devices([], 'GPU')
  except (ValueError, RuntimeError):
    pass
  logging.info('TUNIT: mean styles of %d real training images per domain.',
               config.eval.style_table_examples)
  images, domains = evaluate._real_images(  # pylint: disable=protected-access
      config.data, config.eval.style_table_examples)
  return {**params, 'style_table': objective.style_table(params, images,
                                                         domains)}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  f = flags.FLAGS
  try:
    run(f.workdir, f.input, f.output, target=f.target, source=f.source,
        num_styles=f.num_styles, reference=f.reference,
        interpolate=f.interpolate, seed=f.seed, step=f.step,
        max_side=f.max_side)
  except TranslateError as e:
    sys.exit(f'translate: {e}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
