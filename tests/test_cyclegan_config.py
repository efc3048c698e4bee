"""configs/cyclegan.py: the paper settings, the presets and their errors."""

import pytest

from i2ijax import config_lib
import config_files

cyclegan_config = config_files.load_module('cyclegan')


@pytest.mark.parametrize('name', ['horse2zebra', 'apple2orange',
                                  'summer2winter_yosemite'])
def test_paper_datasets(name):
  config = cyclegan_config.get_config(name)
  config_lib.validate(config)
  epoch = cyclegan_config.EPOCH_STEPS[name]
  assert config.data.name == f'cycle_gan/{name}'
  assert (config.data.load_size, config.data.image_size) == (286, 256)
  assert config.data.flip and config.train.batch_size == 2   # 1 + 1
  assert (config.model.width, config.model.dis_width) == (64, 64)
  assert (config.model.n_res, config.model.dis_layers) == (9, 3)
  assert config.model.pool_size == 50
  assert dict(config.loss) == dict(gan=1.0, cycle_a=10.0, cycle_b=10.0,
                                    identity=0.5)
  assert config.train.num_steps == 200 * epoch
  for group in ('g', 'd'):
    optim = config.optim[group]
    assert (optim.learning_rate, optim.b1, optim.b2) == (2e-4, 0.5, 0.999)
    assert optim.weight_decay == 0 and optim.schedule == 'linear_decay'
    assert optim.decay_start_steps == 100 * epoch


def test_shapes_and_smoke_presets():
  shapes = cyclegan_config.get_config(None)
  assert shapes.data.domains == ('day', 'night')
  assert shapes.data.image_size == 32 and shapes.train.batch_size == 8
  smoke = cyclegan_config.get_config('horse2zebra,smoke')
  config_lib.validate(smoke)
  assert smoke.data.name == 'shapes' and smoke.train.num_steps <= 10


def test_bad_values_are_named():
  config = cyclegan_config.get_config('smoke')
  config.train.batch_size = 3
  with pytest.raises(ValueError, match='batch_size'):
    config_lib.validate(config)
  config = cyclegan_config.get_config('smoke')
  config.model.dis_layers = 4
  with pytest.raises(ValueError, match='dis_layers'):
    config_lib.validate(config)
  with pytest.raises(ValueError, match='variant'):
    cyclegan_config.get_config('monet2photo')
