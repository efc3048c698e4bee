"""Every config file and variant builds and validates; bad values are named."""

import jax
import pytest

from i2ijax import config_lib
import config_files

CONFIG_FILES = sorted(config_files.CONFIG_DIR.glob('*.py'))
VARIANTS = ('', 'shapes', 'smoke', 'apple2orange', 'shapes,smoke')


@pytest.mark.parametrize('path', CONFIG_FILES, ids=lambda p: p.stem)
@pytest.mark.parametrize('variant', VARIANTS)
def test_config_builds_and_validates(path, variant):
  config = config_files.get_config(path.stem, variant or None)
  config_lib.validate(config)
  assert config.model.name == path.stem
  if 'smoke' in variant:
    widths = [v for k, v in config.model.items()
              if k.endswith('width') and not k.endswith('max_width')]
    assert config.train.num_steps <= 10 and widths and max(widths) <= 8


def test_apple2orange_is_the_seed_setting():
  config = config_files.get_config('gmvae_mdmm', 'apple2orange')
  assert config.data.name == 'cycle_gan/apple2orange'
  assert (config.data.image_size, config.train.batch_size) == (108, 2)
  assert config.train.num_steps == 10_000
  assert config.optim.d.learning_rate == 5e-5
  assert config.optim.g.learning_rate == 1e-4


def test_unknown_variant_and_argument_are_clear_errors():
  with pytest.raises(ValueError, match='variant'):
    config_files.get_config('mdmm', 'no_such_variant')
  with pytest.raises(ValueError, match='Unknown config argument'):
    config_files.get_config('mdmm', 'colour=red')


@pytest.mark.parametrize('field, value, message', [
    ('train.batch_size', 3, 'even'),
    ('train.num_steps', 0, 'positive'),
    ('data.image_size', 30, 'multiple of 4'),
    ('model.dis_layers', 9, 'too deep'),
    ('loss.rec', -1.0, '>= 0'),
    ('optim.d.schedule', 'cosine', 'schedule'),
    ('model.cond_on', 'x', 'cond_on'),
    ('model.dtype', 'float16', "model.dtype='float16'.*bfloat16"),
])
def test_bad_values_name_the_field(field, value, message):
  config = config_files.get_config('gmvae_mdmm', 'smoke')
  section, key = field.rsplit('.', 1)
  node = config
  for part in section.split('.'):
    node = node[part]
  node[key] = value
  with pytest.raises(ValueError, match=message) as error:
    config_lib.validate(config)
  assert field.split('.')[-1] in str(error.value)


@pytest.mark.parametrize('path', CONFIG_FILES, ids=lambda p: p.stem)
def test_every_model_has_the_compute_options_off_by_default(path):
  model = config_files.get_config(path.stem, 'smoke').model
  assert (model.dtype, model.remat) == ('float32', False)


@pytest.mark.parametrize('path', CONFIG_FILES, ids=lambda p: p.stem)
def test_smoke_variant_inits_its_model(path):
  from i2ijax import objectives
  from i2ijax.data import pipeline
  config = config_files.get_config(path.stem, 'smoke')
  model = objectives.build(config, pipeline.get_data_spec(config.data))
  state = model.init(jax.random.key(0))
  assert set(state.params) == set(model.txs)
  assert int(state.step) == 0


@pytest.mark.parametrize('name', ['unit', 'munit', 'cyclegan'])
def test_two_domain_models_need_an_even_batch(name):
  config = config_files.get_config(name, 'smoke')
  config.train.batch_size = 5
  with pytest.raises(ValueError, match='train.batch_size=5.*even'):
    config_lib.validate(config)
