#!/usr/bin/env bash
# Where a GPU suite's start-up goes: the eta grid's hopper OFQL sweep (10 members) alone on
# a 20k-step replica, 4k steps, with JAX's compile log, run twice: XLA's defaults, then
# without GPU autotuning. Each run is cut at 100 s. 2026-11-26, one H200
# (`OUT=$OUT bash benchmarks/device_startup_probe.sh`, carry .whl): with autotuning the
# training chunk compiled in 50 s and the diagnostics in 34 s, the first 1,000 steps at
# 97 s; without it 9.7 s and 6.6 s, the first 1,000 at 30 s but then 3.3 s per 1,000 steps
# (about 300 updates/s, against about 850 with autotuning on an H100), so autotuning stays.
set -uo pipefail
T0=$(date +%s)
SCRATCH=$(mktemp -d); export PYTHONUNBUFFERED=1 MINARI_DATASETS_PATH=$SCRATCH/minari
source benchmarks/wheels.sh; install_wheels .whl $SCRATCH/site || exit 2
echo "wheels: $(( $(date +%s) - T0 )) s"
JAX_PLATFORMS=cpu python3 -m ofql_jax.behavior.replica --env=hopper --level=medium --num_steps=20000 > /dev/null 2>&1
echo "replica: $(( $(date +%s) - T0 )) s"
run() {  # $1 label, rest env
  local label=$1; shift
  env "$@" JAX_LOG_COMPILES=1 timeout -s TERM -k 10 100 python3 -m ofql_jax.suite --suite=experiments/suites/eta_grid.py:hopper-medium \
    --workdir=$SCRATCH/$label --suite.defaults.replica_steps=20000 --suite.defaults.compilation_cache_dir= \
    --suite.defaults.num_steps=4000 --suite.defaults.eval_every=4000 --suite.defaults.checkpoint_every=4000 \
    > $OUT/$label.log 2>&1
  echo "$label done rc=$?: $(( $(date +%s) - T0 )) s"
  tr '\r' '\n' < $OUT/$label.log | grep -o "[0-9]*/8000 \[[0-9:]*" | uniq | tr '\n' ' '; echo
  grep -o "Finished XLA compilation of [^ ]* in [0-9.]*" $OUT/$label.log | sort -k7 -rn | head -12
}
run alone
run noautotune XLA_FLAGS=--xla_gpu_autotune_level=0
