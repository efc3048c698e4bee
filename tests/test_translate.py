"""`i2ijax.translate` on untrained `:smoke` checkpoints of every model.

The checkpoints are `objective.init` states saved through the project's
`Checkpointer` (no training): the CLI's restoring, domain handling, padding,
file naming and determinism do not depend on what the weights learnt.
"""

import pathlib

import jax
import numpy as np
import pytest
from PIL import Image

from i2ijax import objectives
from i2ijax import translate
from i2ijax.training import checkpoint
import config_files

MODELS = ('mdmm', 'gmvae_mdmm', 'unit', 'munit', 'cyclegan', 'tunit')


@pytest.fixture(scope='module')
def workdirs(tmp_path_factory):
  """model name → a workdir holding one untrained checkpoint (step 1)."""
  cache = {}

  def get(model):
    if model not in cache:
      config = config_files.get_config(model, 'smoke')
      workdir = tmp_path_factory.mktemp(model)
      names = translate.domain_names(config.data)
      objective = objectives.build(
          config, translate.Spec(names, config.data.image_size))
      ckpt = checkpoint.Checkpointer(str(workdir))
      ckpt.save(1, objective.init(jax.random.key(1)), config, {})
      ckpt.close()
      cache[model] = str(workdir)
    return cache[model]
  return get


def _write(path, height, width, seed=0):
  rng = np.random.default_rng(seed)
  Image.fromarray(rng.integers(0, 256, (height, width, 3), np.uint8)).save(
      path)
  return str(path)


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
  """A folder with a 32x32 and a non-square 40x24 image."""
  folder = tmp_path_factory.mktemp('inputs')
  _write(folder / 'a.png', 32, 32, seed=1)
  _write(folder / 'b.png', 40, 24, seed=2)
  return str(folder)


def _pngs(paths):
  return {pathlib.Path(p).name: np.asarray(Image.open(p)) for p in paths}


@pytest.mark.parametrize('model', MODELS)
def test_every_model_translates_a_folder(model, workdirs, inputs, tmp_path):
  """Default options: one PNG per input and target at the input's size
  (the 40x24 input included), plus a grid with one row per input."""
  kwargs = {'reference': f'{inputs}/a.png'} if model == 'tunit' else {}
  paths = translate.run(workdirs(model), inputs, str(tmp_path / 'out'),
                        **kwargs)
  images = _pngs(paths)
  names = translate.domain_names(config_files.get_config(model, 'smoke').data)
  targets = [names[1]] if len(names) == 2 else list(names)
  if model == 'tunit':    # the reference alone sets TUNIT's domain
    targets = ['reference']
  label = 'ref0' if model == 'tunit' else 'style0'
  expected = {f'{stem}_{t}_{label}.png' for stem in 'ab' for t in targets}
  assert set(images) == expected | {'grid.png'}
  for name, image in images.items():
    if name.startswith('b_'):
      assert image.shape == (40, 24, 3), name
    elif name.startswith('a_'):
      assert image.shape == (32, 32, 3), name
  # Grid: 2 rows of (input + outputs) 32x32 cells with 2 px padding.
  assert images['grid.png'].shape == (2 * 34 + 2,
                                      (1 + len(targets)) * 34 + 2, 3)
  # An untrained generator still depends on its input.
  outs = [images[f'a_{t}_{label}.png'] for t in targets]
  assert outs[0].std() > 0


@pytest.fixture(scope='module')
def munit_styles(workdirs, inputs, tmp_path_factory):
  """Paths written by MUNIT with 2 random styles of seed 0 for a.png."""
  return translate.run(workdirs('munit'), f'{inputs}/a.png',
                       str(tmp_path_factory.mktemp('styles')), num_styles=2,
                       seed=0)


def test_same_seed_gives_the_same_bytes(workdirs, inputs, munit_styles,
                                        tmp_path):
  """Same seed → identical files; styles and seeds differ from each other."""
  run = lambda out, seed: translate.run(
      workdirs('munit'), f'{inputs}/a.png', str(tmp_path / out),
      num_styles=2, seed=seed)
  again, other = run('again', 0), run('other', 1)
  read = lambda p: pathlib.Path(p).read_bytes()
  assert [pathlib.Path(p).name for p in munit_styles] == [
      'a_night_style0.png', 'a_night_style1.png', 'grid.png']
  assert [read(p) for p in munit_styles] == [read(p) for p in again]
  style0, style1 = _pngs(munit_styles[:2]).values()
  assert np.abs(style0.astype(int) - style1).max() > 8
  assert np.abs(_pngs(other[:1])['a_night_style0.png'].astype(int)
                - style0).max() > 8


def test_munit_reference_and_interpolation(workdirs, inputs, munit_styles,
                                           tmp_path):
  """Reference style = G_night(E_day^c(x), E_night^s(ref)) computed with the
  objective directly; interpolating random styles 0 → 1 starts at style 0
  and ends at style 1 of `num_styles`."""
  workdir, image = workdirs('munit'), f'{inputs}/a.png'
  ref_path = _write(tmp_path / 'ref.png', 32, 32, seed=3)
  out = translate.run(workdir, image, str(tmp_path / 'ref'),
                      reference=ref_path)
  config, step, names = translate.restore_config(workdir)
  objective, params = translate.restore_params(workdir, step, config, names)
  load = lambda p: np.asarray(Image.open(p), np.float32)[None] / 127.5 - 1
  expected = jax.jit(objective.translate_reference)(
      params, load(image), load(ref_path), np.array([1]), jax.random.key(0))
  got = _pngs(out)['a_night_ref0.png'].astype(int)
  assert np.abs(got - (np.asarray(expected[0]) + 1) * 127.5).max() <= 1

  styles = _pngs(munit_styles)
  path = _pngs(translate.run(workdir, image, str(tmp_path / 'i'),
                             interpolate='0,1,3'))
  assert set(path) == {f'a_night_interp{i}.png' for i in range(3)} | {
      'grid.png'}
  ends = (path['a_night_interp0.png'], path['a_night_interp2.png'])
  for end, style in zip(ends, ('a_night_style0.png', 'a_night_style1.png')):
    assert np.abs(end.astype(int) - styles[style]).max() <= 1
  middle = path['a_night_interp1.png'].astype(int)
  assert np.abs(middle - ends[0]).max() > 0
  assert np.abs(middle - ends[1]).max() > 0


def test_deterministic_model_ignores_style_options(workdirs, inputs,
                                                   tmp_path, caplog):
  caplog.set_level('WARNING')
  out = translate.run(workdirs('cyclegan'), f'{inputs}/a.png',
                      str(tmp_path), num_styles=3, target='day')
  assert [pathlib.Path(p).name for p in out] == ['a_day_style0.png',
                                                 'grid.png']
  assert 'cyclegan is deterministic: ignoring --num_styles' in caplog.text


def test_missing_checkpoint_is_a_clear_error(tmp_path):
  with pytest.raises(translate.TranslateError, match='No checkpoint in .*'
                     'train first'):
    translate.run(str(tmp_path / 'nothing'), str(tmp_path), str(tmp_path))
  assert not (tmp_path / 'nothing').exists()   # nothing created


@pytest.mark.parametrize('kwargs, message', [
    (dict(target='dusk'), r"Unknown --target domain 'dusk'; the known "
     r"domains are 'day' \(0\), 'night' \(1\)"),
    (dict(num_styles=2, reference='x.png'), '--num_styles and --reference '
     'conflict'),
    (dict(interpolate='0,1'), 'expected A,B,STEPS'),
    (dict(step=7), r'No checkpoint for --step=7 .* saved steps: \[1\]'),
])
def test_bad_options_are_clear_errors(workdirs, inputs, tmp_path, kwargs,
                                      message):
  with pytest.raises(translate.TranslateError, match=message):
    translate.run(workdirs('munit'), inputs, str(tmp_path), **kwargs)


def test_unreadable_image_is_named(workdirs, tmp_path):
  folder = tmp_path / 'in'
  folder.mkdir()
  _write(folder / 'good.png', 32, 32)
  (folder / 'broken.png').write_bytes(b'not a png')
  with pytest.raises(translate.TranslateError, match='broken.png'):
    translate.run(workdirs('munit'), str(folder), str(tmp_path / 'out'))
  truncated = tmp_path / 'truncated.png'
  truncated.write_bytes((folder / 'good.png').read_bytes()[:60])
  with pytest.raises(translate.TranslateError, match='truncated.png'):
    translate.run(workdirs('munit'), str(truncated), str(tmp_path / 'out'))


def test_command_line(workdirs, inputs, tmp_path, run_module):
  """The real entry point: flags, files, the logged message, exit codes."""
  workdir = workdirs('cyclegan')
  result = run_module('i2ijax.translate', f'--workdir={workdir}',
                      f'--input={inputs}', f'--output={tmp_path}',
                      '--num_styles=2', fast_compile=True)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'ignoring --num_styles' in result.stderr
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      'a_night_style0.png', 'b_night_style0.png', 'grid.png']
  result = run_module('i2ijax.translate', f'--workdir={workdir}',
                      f'--input={inputs}', f'--output={tmp_path}',
                      '--target=dusk', fast_compile=True)
  assert result.returncode != 0
  assert "Unknown --target domain 'dusk'" in result.stderr
  assert 'Traceback' not in result.stderr


def test_tunit_adapter_matches_its_decode(workdirs):
  """At the training size, the size-free TUNIT decode equals the
  objective's own `decode` (which rejects other sizes)."""
  workdir = workdirs('tunit')
  config, step, names = translate.restore_config(workdir)
  objective, params = translate.restore_params(workdir, step, config, names)
  images = jax.random.uniform(jax.random.key(0), (1, 32, 32, 3), minval=-1)
  style = jax.random.normal(jax.random.key(1), (1, config.model.style_dim))
  decode = translate._tunit_decode  # pylint: disable=protected-access
  np.testing.assert_allclose(decode(objective, params, images, style),
                             objective.decode(params, images, style),
                             atol=1e-5)


def test_tunit_target_domain_uses_its_mean_style(workdirs, inputs, tmp_path):
  """Without --reference, TUNIT decodes with the target domain's mean E_EMA
  style of real training images: one output per target, and the targets'
  different mean styles give different images."""
  paths = translate.run(workdirs('tunit'), f'{inputs}/a.png',
                        str(tmp_path / 'out'))
  images = _pngs(paths)
  names = translate.domain_names(config_files.get_config('tunit', 'smoke').data)
  assert set(images) == {f'a_{t}_style0.png' for t in names} | {'grid.png'}
  assert images['a_day_style0.png'].shape == (32, 32, 3)
  assert not np.array_equal(images['a_day_style0.png'],
                            images['a_night_style0.png'])


def test_image_reading_matches_the_pipeline_conventions(tmp_path):
  """Grayscale → RGB, alpha dropped; uint8 ↔ [-1, 1] round-trips exactly."""
  from i2ijax.utils import images  # pylint: disable=g-import-not-at-top
  gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
  Image.fromarray(gray, 'L').save(tmp_path / 'gray.png')
  rgba = np.dstack([np.full((3, 4), v, np.uint8) for v in (10, 20, 30, 0)])
  Image.fromarray(rgba, 'RGBA').save(tmp_path / 'rgba.png')
  np.testing.assert_array_equal(images.load_image(tmp_path / 'gray.png'),
                                np.repeat(gray[..., None], 3, -1))
  np.testing.assert_array_equal(images.load_image(tmp_path / 'rgba.png'),
                                rgba[..., :3])
  values = np.arange(256, dtype=np.uint8)
  np.testing.assert_allclose(images.from_uint8(values),
                             values / 127.5 - 1, atol=1e-6)
  np.testing.assert_array_equal(images.to_uint8(images.from_uint8(values)),
                                values)
