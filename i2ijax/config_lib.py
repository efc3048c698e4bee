"""Shared config defaults, `:arg` parsing and validation.

Every experiment file in `configs/` calls `base_config()`, overrides what it
needs and returns the result of `finalize(config, arg)`. Field names used by
scripts outside the repo (keep them stable): `train.num_steps`,
`train.checkpoint_every_steps`, `train.log_every_steps`,
`train.eval_every_steps`, `train.seed`, `data.name`, `data.root`,
`data.image_size`, `data.domains`.
"""

import ml_collections

from i2ijax.layers import compute
from i2ijax.models import munit_blocks

KNOWN_DATASETS_HINT = "'shapes', 'folder' or a TFDS name such as 'cycle_gan/apple2orange'"


def optim_config(learning_rate: float = 1e-4) -> ml_collections.ConfigDict:
  """Optimizer settings of one parameter group (Adam with coupled L2).

  `weight_decay` is PyTorch-Adam style: wd·θ is added to the gradient before
  the moments (not AdamW). `schedule` is 'constant', 'linear_decay' (flat
  until `decay_start_steps`, then linear to ~0 at `train.num_steps`, the MDMM
  'lambda' policy counted in steps) or 'step' (×`gamma` every
  `decay_every_steps`). `grad_clip_norm` clips the raw gradient's global norm
  before the decay is added (0 = off). `name` 'rmsprop' swaps Adam for
  PyTorch's RMSprop (α = `rms_decay`, eps outside the sqrt; b1/b2 unused).
  """
  return ml_collections.ConfigDict(dict(
      learning_rate=learning_rate, b1=0.5, b2=0.999, eps=1e-8,
      weight_decay=1e-4, grad_clip_norm=0.0, schedule='constant',
      decay_start_steps=-1, decay_every_steps=-1, gamma=0.1,
      name='adam', rms_decay=0.99))


def model_config(**fields) -> ml_collections.ConfigDict:
  """A `config.model` of `fields` plus the compute options of every model.

  `dtype`: 'float32' or 'bfloat16' (mixed precision: bf16 activations,
  convs and dense layers; float32 params, optimizer states, norm statistics
  and losses; `i2ijax.layers.compute`). `remat`: recompute the large
  residual blocks in the backward pass instead of storing their
  activations (less memory, more compute, same results; on the CPU only
  when the step is jitted with `compute.compiler_options`, as the loop does).
  """
  return ml_collections.ConfigDict(dict(fields, dtype='float32', remat=False))


def base_config() -> ml_collections.ConfigDict:
  """Defaults shared by every model. Experiment files override them."""
  config = ml_collections.ConfigDict()

  config.data = ml_collections.ConfigDict(dict(
      name='shapes',        # 'shapes', 'folder' or a TFDS name ('cycle_gan/x')
      root='',              # folder source: a directory of domain folders
      domains=(),           # subset of domains by name or index; () = all
      source_size=64,       # shapes: rendered resolution (32, 64 or 128)
      load_size=64,         # resize to this before cropping
      image_size=64,        # training crop (and eval centre crop)
      flip=True,
      shuffle_buffer=1000,
      data_dir='',          # TFDS data dir; '' = TFDS default / $TFDS_DATA_DIR
  ))

  config.model = model_config(name='')
  config.loss = ml_collections.ConfigDict()
  config.optim = ml_collections.ConfigDict()

  config.train = ml_collections.ConfigDict(dict(
      num_steps=10_000,
      batch_size=2,         # the global batch, over all processes and devices
      # Input shard streams making up the global batch (0 = one per
      # process); the same value gives the same batches on any number of
      # processes dividing it (i2ijax/training/distributed.py).
      data_shards=0,
      seed=0,
      log_every_steps=50,
      checkpoint_every_steps=1000,
      eval_every_steps=2000,
      sample_every_steps=500,
      keep_checkpoints=3,
      steps_per_epoch=500,  # epoch length for per-epoch schedules (Gumbel τ)
      ema_decay=0.0,        # > 0 keeps an EMA of the generator params
      parallel='jit',       # 'jit' (sharded over a device mesh) or 'pmap'
      on_nonfinite='stop',  # NaN/inf loss: 'stop', or 'skip' the update
      max_consecutive_skips=10,  # 'skip': stop after this many in a row
  ))

  config.eval = ml_collections.ConfigDict(dict(
      num_examples=96,      # test images per source domain
      num_styles=6,         # random styles per input for mode_coverage
      batch_size=32,
      oracle_steps=2000,    # shapes oracles: mask IoU 0.96 on real test at 32 px
      # Comma-separated: 'oracle' (shapes only) and any of fid, kid, lpips,
      # ndb, domain_acc (i2ijax.metrics.distribution_metrics); not both
      # 'oracle' and 'domain_acc' (each reports a domain_acc).
      metrics='oracle',
      lpips_inputs=100,     # LPIPS diversity: inputs per domain pair ...
      lpips_styles=20,      # ... × random styles (19 consecutive pairs)
      ndb_bins=100,         # NDB / JSD k-means bins (≤ train images / 10)
      classifier_steps=1000,     # domain_acc: domain classifier steps ...
      classifier_examples=1000,  # ... on ≤ this many train images / domain
  ))
  return config


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """Parses `--config=file.py:a,b=c` style arguments.

  A bare word switches a boolean default on (`smoke`); `key=value` sets a
  value with the type of the default. An unknown key raises ValueError.
  Also accepts a bare variant name listed in `defaults['variant']`-style use:
  `parse_arg('apple2orange', variant='shapes')` sets variant='apple2orange'.
  """
  parsed = ml_collections.ConfigDict(dict(defaults))
  if not arg:
    return parsed
  for token in arg.split(','):
    token = token.strip()
    if not token:
      continue
    if '=' in token:
      key, value = token.split('=', 1)
    elif token in defaults and isinstance(defaults[token], bool):
      key, value = token, 'true'
    elif 'variant' in defaults:
      key, value = 'variant', token
    else:
      raise ValueError(f'Unknown config argument {token!r}; known: '
                       f'{sorted(defaults)}')
    if key not in defaults:
      raise ValueError(f'Unknown config argument {key!r}; known: '
                       f'{sorted(defaults)}')
    default = defaults[key]
    if isinstance(default, bool):
      parsed[key] = value.lower() in ('1', 'true', 'yes')
    else:
      parsed[key] = type(default)(value)
  return parsed


def mdmm_config() -> ml_collections.ConfigDict:
  """MDMM as in the reference code (spec §2): the `mdmm` profile."""
  config = base_config()
  config.model = model_config(
      name='mdmm',
      width=64,                  # E_c / E_a base width (content = 4·width)
      nz=8,                      # attribute code size
      dis_width=64,
      dis_layers=6,              # stride-2 layers of the image D
      dis_zero_pad_head=True,    # reference quirk B2
      dis_spectral_norm=False,
      content_dis=True,          # --isDcontent, as in the README's command
      content_dis_adaptive=True,  # B3 fix, works below 140 px crops
      content_adv_target='flip',  # 'flip' (reference, B9) or 'uniform'
      d_iter=3,                  # content-D-only iterations (spec §2.5)
      galone_fresh_forward=False,  # True: re-run forward before G-alone
      attr_uses_domain=True,     # E_a input [x, tile(c)] as the reference
  )
  config.loss = ml_collections.ConfigDict(dict(
      gan=1.0, cls_d=1.0, cls_g=5.0, rec=10.0, cycle_scale=1.0, kl_c=0.01,
      kl_a=0.01, content_adv=1.0, galone_gan=1.0, galone_cls=1.0,
      latent=10.0))
  g = optim_config(1e-4)
  g.schedule = 'linear_decay'    # flat for half the run, then linear decay
  d = optim_config(1e-4)
  d.schedule = 'linear_decay'
  d_content = optim_config(4e-5)  # lr / 2.5
  d_content.grad_clip_norm = 5.0
  d_content.schedule = 'linear_decay'
  config.optim = ml_collections.ConfigDict(dict(g=g, d=d, d_content=d_content))
  return config


def gmvae_mdmm_config() -> ml_collections.ConfigDict:
  """GMVAE-MDMM, the spec's recommended `gmvae_fixed` profile (spec §6)."""
  config = mdmm_config()
  config.model.name = 'gmvae_mdmm'
  config.model.update(dict(
      feature_dim=8,             # h = softplus(fc(f)) feeding q(y|h), q(z|h,y)
      hidden=512,                # GMVAE MLP width
      components_per_domain=1,   # K = N·m mixture components
      cond_on='y',               # G conditioned on inferred y ('c' = MDMM)
      use_adain=False,           # seed §5.3.1 option (fixed-profile AdaIN)
      double_convt=False,        # seed §5.3.2 option
      kl_estimator='mc',         # 'mc' ([GMVAE]) or 'closed_form'
      gumbel_init_temp=1.0, gumbel_min_temp=0.5,
      gumbel_decay_rate=0.013862944,   # per epoch
  ))
  config.loss.update(dict(kl_a=1.0, cat_domain=1.0, label_sim=1.0,
                          cat_uniform=0.0))
  config.optim.d.learning_rate = 5e-5   # TTUR 'half_discr' (seed's best)
  return config


def apply_variant(config, variant: str) -> ml_collections.ConfigDict:
  """Data/size presets shared by the MDMM-family configs."""
  if variant == 'shapes':
    config.data.update(dict(name='shapes', source_size=32, load_size=32,
                            image_size=32))
    config.model.update(dict(width=16, dis_width=16, dis_layers=4))
    if 'hidden' in config.model:
      config.model.hidden = 64
    config.train.update(dict(batch_size=8, num_steps=3000, log_every_steps=50,
                             sample_every_steps=500,
                             checkpoint_every_steps=500,
                             eval_every_steps=1500, steps_per_epoch=250))
    for group in ('g', 'd', 'd_content'):
      config.optim[group].learning_rate *= 2
  elif variant == 'apple2orange':
    config.data.update(dict(name='cycle_gan/apple2orange', load_size=128,
                            image_size=108))
    config.train.update(dict(batch_size=2, num_steps=10_000,
                             steps_per_epoch=509))
    config.model.content_dis = False   # as the seed's scripted runs (Q16)
  else:
    raise ValueError(f'Unknown config variant {variant!r}; use shapes, '
                     'apple2orange or smoke.')
  return config


def shrink_for_smoke(config) -> ml_collections.ConfigDict:
  """Tiny widths and few steps through the same code path (CPU / CI)."""
  config.model.update(dict(width=8, dis_width=8, dis_layers=4))
  if 'hidden' in config.model:
    config.model.hidden = 16
  return shrink_run_for_smoke(config)


def shrink_run_for_smoke(config) -> ml_collections.ConfigDict:
  """The smoke run without the model: 32 px shapes, 6 steps, tiny eval."""
  config.data.update(dict(name='shapes', source_size=32, load_size=32,
                          image_size=32))
  config.train.update(dict(batch_size=4, num_steps=6, log_every_steps=2,
                           sample_every_steps=3, checkpoint_every_steps=3,
                           eval_every_steps=0, steps_per_epoch=2))
  config.eval.update(dict(num_examples=8, num_styles=2, batch_size=8,
                          oracle_steps=60))
  return config


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first bad config value."""
  def fail(field, message):
    raise ValueError(f'Bad config value {field}: {message}')

  train, data, model = config.train, config.data, config.model
  for field in ('num_steps', 'batch_size', 'log_every_steps',
                'checkpoint_every_steps', 'sample_every_steps',
                'steps_per_epoch', 'keep_checkpoints'):
    if train[field] <= 0:
      fail(f'train.{field}={train[field]}', 'must be positive.')
  if train.get('data_shards', 0) < 0:
    fail(f'train.data_shards={train.data_shards}',
         'must be >= 0 (0 = one per process).')
  if train.eval_every_steps < 0:
    fail(f'train.eval_every_steps={train.eval_every_steps}',
         'must be >= 0 (0 = no periodic eval).')
  if train.get('parallel', 'jit') not in ('jit', 'pmap'):
    fail(f'train.parallel={train.parallel!r}', "use 'jit' or 'pmap'.")
  if train.get('parallel') == 'pmap':
    if model.name == 'tunit':
      fail("train.parallel='pmap'", "TUNIT's negative queue would differ "
           "per device under pmap: use 'jit'.")
    if model.name == 'cyclegan' and model.pool_size > 0:
      fail("train.parallel='pmap'", "CycleGAN's image pools would differ "
           "per device under pmap: use 'jit' or model.pool_size=0.")
  if train.get('on_nonfinite', 'stop') not in ('stop', 'skip'):
    fail(f'train.on_nonfinite={train.on_nonfinite!r}',
         "use 'stop' or 'skip'.")
  if train.get('max_consecutive_skips', 1) < 1:
    fail(f'train.max_consecutive_skips={train.max_consecutive_skips}',
         'must be >= 1.')
  if not 0 <= train.ema_decay < 1:
    fail(f'train.ema_decay={train.ema_decay}', 'must be in [0, 1).')
  if model.name in ('mdmm', 'gmvae_mdmm') and train.batch_size % 2:
    fail(f'train.batch_size={train.batch_size}',
         'MDMM splits each batch into two halves: use an even size.')
  if model.name in ('unit', 'munit', 'cyclegan') and train.batch_size % 2:
    fail(f'train.batch_size={train.batch_size}', f'{model.name} batches hold '
         'B/2 images of each of its two domains: use an even size.')
  if model.name == 'cyclegan':
    if data.image_size < 3 * 2**model.dis_layers:
      fail(f'model.dis_layers={model.dis_layers}',
           f'too deep for {data.image_size}px crops (the PatchGAN needs at '
           f'least {3 * 2**model.dis_layers} pixels).')
  if (model.name in ('unit', 'munit') and
      model.get('dis_pad_type', 'reflect') == 'reflect'):
    need = munit_blocks.min_dis_input_size(model.dis_layers, model.dis_scales)
    if data.image_size < need:
      fail(f'model.dis_layers={model.dis_layers}',
           f'with model.dis_scales={model.dis_scales}, too deep for '
           f'{data.image_size}px crops (the last reflect-padded D layer needs '
           f'an input of at least 2 pixels: crops >= {need}px).')
  if model.name == 'tunit':
    size = data.image_size
    if size < 32 or size & (size - 1):
      fail(f'data.image_size={size}', 'TUNIT needs a power of two >= 32 '
           '(VGG11 pools 5 times; the generator bottleneck is 16x16).')
    if model.num_clusters < 2:
      fail(f'model.num_clusters={model.num_clusters}', 'must be >= 2.')
    for field in ('queue_size', 'bn_copy_every'):
      if model[field] <= 0:
        fail(f'model.{field}={model[field]}', 'must be positive.')
    if not 0 <= train.warmup_steps <= train.ema_start_steps:
      fail(f'train.warmup_steps={train.warmup_steps}',
           f'must be in [0, train.ema_start_steps={train.ema_start_steps}].')
  if data.image_size % 4 or data.image_size < 16:
    fail(f'data.image_size={data.image_size}',
         'must be a multiple of 4 and at least 16.')
  if data.load_size < data.image_size:
    fail(f'data.load_size={data.load_size}',
         f'must be >= data.image_size={data.image_size}.')
  if 'dis_layers' in model:
    smallest = data.image_size / 2**(model.dis_layers - 1)
    if smallest < 2:
      fail(f'model.dis_layers={model.dis_layers}',
           f'too deep for {data.image_size}px crops (a reflect-padded layer '
           'needs an input of at least 2 pixels).')
  for key, value in config.loss.items():
    if value < 0:
      fail(f'loss.{key}={value}', 'loss weights must be >= 0.')
  for group, cfg in config.optim.items():
    if cfg.learning_rate <= 0:
      fail(f'optim.{group}.learning_rate={cfg.learning_rate}',
           'must be positive.')
    if cfg.schedule not in ('constant', 'linear_decay', 'step'):
      fail(f'optim.{group}.schedule={cfg.schedule!r}',
           "use 'constant', 'linear_decay' or 'step'.")
    if cfg.get('name', 'adam') not in ('adam', 'rmsprop'):
      fail(f'optim.{group}.name={cfg.name!r}', "use 'adam' or 'rmsprop'.")
  if model.get('d_iter', 1) < 1:
    fail(f'model.d_iter={model.d_iter}', 'must be >= 1.')
  if model.get('dtype', 'float32') not in compute.DTYPES:
    fail(f'model.dtype={model.dtype!r}',
         f'use one of {sorted(compute.DTYPES)}.')
  if 'content_adv_target' in model and model.content_adv_target not in (
      'flip', 'uniform'):
    fail(f'model.content_adv_target={model.content_adv_target!r}',
         "use 'flip' or 'uniform'.")
  if 'cond_on' in model:
    if model.cond_on not in ('y', 'c'):
      fail(f'model.cond_on={model.cond_on!r}', "use 'y' or 'c'.")
    if model.cond_on == 'c' and model.components_per_domain != 1:
      fail(f'model.cond_on={model.cond_on!r}',
           'conditioning on c needs model.components_per_domain=1.')
    if model.components_per_domain < 1:
      fail(f'model.components_per_domain={model.components_per_domain}',
           'must be >= 1.')
    if model.kl_estimator not in ('mc', 'closed_form'):
      fail(f'model.kl_estimator={model.kl_estimator!r}',
           "use 'mc' or 'closed_form'.")


def with_variant(config: ml_collections.ConfigDict, arg: str | None,
                 variants=None, smoke=None) -> ml_collections.ConfigDict:
  """Applies a config file's `:ARG` (a variant name, optionally `smoke`).

  `shapes` is the default variant. `smoke` (alone, or after a variant as
  in `apple2orange,smoke`) then shrinks to tiny widths and a few steps on
  32 px `shapes` data, through the same code path. `variants(config, name)`
  and `smoke(config)` default to the MDMM family's `apply_variant` and
  `shrink_for_smoke`; other config files pass their own.
  """
  arg = parse_arg(arg, variant='shapes', smoke=False)
  if arg.variant == 'smoke':
    arg.smoke = True
  else:
    (variants or apply_variant)(config, arg.variant)
  if arg.smoke:
    (smoke or shrink_for_smoke)(config)
  return config
