#!/usr/bin/env bash
# experiments/benchmark.py at the reference implementations' settings, one run
# after the other (run it on an otherwise idle machine). One JSON line per run
# is appended to ${OUT:-cpu_reference_settings.jsonl}; the table in
# experiments/README.md ("CPU table at the reference settings") comes from it.
#   experiments/cpu_reference_settings.sh [MODEL ...]   # e.g. munit tunit
# MODEL: mdmm gmvae_mdmm munit unit cyclegan tunit (default: all). The
# two-domain models' "batch 1" of the references is one image per domain,
# i.e. train.batch_size=2 here.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-cpu_reference_settings.jsonl}

bench() {  # bench CONFIG SIZE BATCH STEPS [overrides...]
  local config=$1 size=$2 batch=$3 steps=$4; shift 4
  echo "[$(date +%T)] $config ${size}px batch $batch (loadavg $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  $PY experiments/benchmark.py --config="$config" \
      --config.data.load_size="$size" --config.data.image_size="$size" \
      --config.train.batch_size="$batch" --steps="$steps" --warmup=1 "$@" \
      2> >(grep -v '^[IW][0-9]' >&2) | tail -n 1 >> "$OUT"
}

models=${*:-mdmm gmvae_mdmm munit unit cyclegan tunit}
for model in $models; do
  case $model in
    mdmm|gmvae_mdmm)   # content D on, as the reference's --isDcontent
      bench configs/$model.py:apple2orange 108 2 5 --config.model.content_dis=True
      bench configs/$model.py:apple2orange 216 2 3 --config.model.content_dis=True ;;
    munit)
      bench configs/munit.py:summer2winter_yosemite 128 2 5
      bench configs/munit.py:summer2winter_yosemite 256 2 3 ;;
    unit)
      bench configs/unit.py:summer2winter 128 2 5
      bench configs/unit.py:summer2winter 256 2 3 ;;
    cyclegan)
      bench configs/cyclegan.py:horse2zebra 256 2 3 ;;
    tunit)   # K = 2, as the reference's summer2winter option; batch 32 fits
             # in 24 GiB only with --remat (~12 min; experiments/README.md)
      bench configs/tunit.py:summer2winter_yosemite 128 8 2
      bench configs/tunit.py:summer2winter_yosemite 128 32 2 --remat ;;
    *) echo "unknown model $model" >&2; exit 2 ;;
  esac
done
