#!/usr/bin/env bash
# experiments/benchmark.py on an accelerator machine, float32 and bfloat16,
# most important runs first (issue 7's GPU targets: GMVAE-MDMM at 108 batch 2
# in well under 20 ms/iter, a FLOP utilisation per model, bf16 faster than
# f32). One JSON line per run is appended to ${OUT:-.}/gpu_benchmarks.jsonl
# and the log to ${OUT:-.}/gpu_benchmarks.log, so a run cut short still
# returns what it measured; runs that would start after BUDGET seconds
# (default 480) are skipped and named in the log. At the end
# experiments/summarize_benchmarks.py turns the JSON lines into the Markdown
# tables (FLOP utilisation, bf16 speed-up) in ${OUT:-.}/gpu_benchmarks.md; for
# a run cut short, run it here on the returned gpu_benchmarks.jsonl.
# The first run (GMVAE-MDMM 108 batch 2 float32) also traces 5 more steps
# (benchmark.py --profile_dir): right after it, ${OUT:-.}/gmvae_mdmm_108.md
# gets experiments/summarize_profile.py's tables (kernels and busy time per
# step per stream, the top kernels), and gmvae_mdmm_108.trace.json.gz and
# gmvae_mdmm_108.hlo.txt.gz (the compiled step's optimized HLO) are copied
# beside it for reading here (checked on this CPU with jax 0.11.2,
# 2026-12-08: 1.0 MB of HLO, a 2.5 MB trace).
#
# The lent GPU machines have jax, flax, optax, orbax, absl-py and PyYAML but
# not ml_collections (nor TensorFlow or clu, which the benchmark does not
# import). Carry its wheel, made here once:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux2014_x86_64 -d .whl ml_collections==1.1.0
# then on the device: `bash experiments/gpu_benchmarks.sh` with `.whl` carried.
# Checked without a GPU (2026-12-07) in a venv like the device's: Python 3.12,
# jax 0.11.2 (the device's version), flax 0.12.12, optax, orbax, absl-py,
# PyYAML, no TensorFlow / TFDS / clu / ml_collections: `OUT=/tmp/o STEPS=1
# WARMUP=0 BUDGET=100000 PY=VENV/bin/python bash experiments/gpu_benchmarks.sh`
# installs the wheel, runs every setting and writes the three files; only
# TUNIT at batch 32 failed there (XLA:CPU asked for one 25.8 GB buffer on
# that 24 GB machine); the TUNIT batch 8 runs, added after, ran alone there.
# STEPS / WARMUP override the timed and warm-up iterations (default 50 / 5).
set -u
cd "$(dirname "$0")/.."
PY=${PY:-python3}
RESULTS=${OUT:-.}/gpu_benchmarks.jsonl
LOG=${OUT:-.}/gpu_benchmarks.log
BUDGET=${BUDGET:-480}
: >> "$RESULTS"
if [ -d .whl ] && ! $PY -c 'import ml_collections' 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c 'import jax; print("jax", jax.__version__, jax.devices())'; } \
    >> "$LOG" 2>&1

bench() {  # bench CONFIG SIZE BATCH DTYPE [overrides...]
  local config=$1 size=$2 batch=$3 dtype=$4; shift 4
  if [ "$SECONDS" -gt "$BUDGET" ]; then
    echo "skipped (budget): $config $size $batch $dtype" >> "$LOG"; return
  fi
  echo "[$(date +%T) +${SECONDS}s] $config ${size}px batch $batch $dtype" >> "$LOG"
  $PY experiments/benchmark.py --config="$config" \
      --config.data.load_size="$size" --config.data.image_size="$size" \
      --config.train.batch_size="$batch" --dtype="$dtype" \
      --steps="${STEPS:-50}" --warmup="${WARMUP:-5}" "$@" \
      2>> "$LOG" | tail -n 1 >> "$RESULTS"
}

content=--config.model.content_dis=True   # the reference's --isDcontent
profile=$(mktemp -d)
bench configs/gmvae_mdmm.py:apple2orange 108 2 float32 $content \
    --profile_dir="$profile"
if [ -f "$profile/step.hlo.txt.gz" ]; then   # the run got to its profile
  cp "$profile/step.hlo.txt.gz" "${OUT:-.}/gmvae_mdmm_108.hlo.txt.gz"
  find "$profile" -name '*.trace.json.gz' \
      -exec cp {} "${OUT:-.}/gmvae_mdmm_108.trace.json.gz" \;
  $PY experiments/summarize_profile.py "$profile" \
      > "${OUT:-.}/gmvae_mdmm_108.md" 2>> "$LOG"
fi
bench configs/gmvae_mdmm.py:apple2orange 108 2 bfloat16 $content
bench configs/mdmm.py:apple2orange 108 2 float32 $content
bench configs/munit.py:summer2winter_yosemite 128 2 float32
bench configs/unit.py:summer2winter 128 2 float32
bench configs/cyclegan.py:horse2zebra 256 2 float32
bench configs/tunit.py:summer2winter_yosemite 128 32 float32
bench configs/munit.py:summer2winter_yosemite 128 2 bfloat16
bench configs/cyclegan.py:horse2zebra 256 2 bfloat16
bench configs/tunit.py:summer2winter_yosemite 128 32 bfloat16
bench configs/gmvae_mdmm.py:apple2orange 216 2 float32 $content
bench configs/gmvae_mdmm.py:apple2orange 216 2 bfloat16 $content
bench configs/tunit.py:summer2winter_yosemite 128 8 float32
bench configs/tunit.py:summer2winter_yosemite 128 8 bfloat16
echo "[$(date +%T) +${SECONDS}s] done" >> "$LOG"
$PY experiments/summarize_benchmarks.py "$RESULTS" \
    > "${OUT:-.}/gpu_benchmarks.md" 2>> "$LOG"
