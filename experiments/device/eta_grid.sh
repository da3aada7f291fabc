#!/usr/bin/env bash
# Issue 10's eta grid on one GPU machine without network (minutes instead of a CPU day):
# builds the hopper, halfcheetah and walker2d medium replicas (1M steps each, as on the
# CPU) on the CPU cores, then runs experiments/suites/eta_grid.py, one suite process per
# task side by side on the GPU, and packs results, reports, TensorBoard logs and console
# logs into $OUT/eta_grid.tgz. Stops itself (SIGTERM: a checkpoint, then exit) LIMIT_S
# seconds after it began, so whatever finished is packed.
#
#   OUT=out bash experiments/device/eta_grid.sh            # WHEELS=.whl, LIMIT_S=540
#   OUT=out TASKS=walker2d-medium bash experiments/device/eta_grid.sh
#   OUT=out DRY=1 bash experiments/device/eta_grid.sh      # tiny, on a CPU: checks the path
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
OUT="${OUT:-runs/eta_grid_device}"
LIMIT_S="${LIMIT_S:-540}"
TASKS="${TASKS:-hopper-medium halfcheetah-medium walker2d-medium}"
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"
SCRATCH="$(mktemp -d)"
export PYTHONUNBUFFERED=1 MINARI_DATASETS_PATH="$SCRATCH/minari"
# shellcheck source=benchmarks/wheels.sh
source benchmarks/wheels.sh
install_wheels "${WHEELS:-.whl}" "$SCRATCH/site" || exit 2

STEPS=1000000 EXTRA=()
if [[ -n "${DRY:-}" ]]; then
  STEPS=3000
  EXTRA=(--suite.defaults.num_steps=200 --suite.defaults.eval_every=100
         --suite.defaults.eval_episodes=2 --suite.defaults.checkpoint_every=100
         --suite.defaults.replica_steps=$STEPS --suite.defaults.steps_per_call=100)
fi
for task in $TASKS; do  # 1. replicas, in parallel on the CPU cores
  JAX_PLATFORMS=cpu python3 -m ofql_jax.data.replica --env="${task%%-*}" --level=medium \
    --num_steps=$STEPS > "$SCRATCH/replica_$task.log" 2>&1 &
done
wait
echo "replicas built: $(( $(date +%s) - T0 )) s"

# 2. one suite per task, side by side; each may take a quarter of the GPU's memory
LEFT=$(( LIMIT_S - ($(date +%s) - T0) ))
pids=()
for task in $TASKS; do
  XLA_PYTHON_CLIENT_MEM_FRACTION=0.25 timeout -s TERM -k 60 $LEFT python3 -m ofql_jax.suite \
    --suite=experiments/suites/eta_grid.py:$task --workdir="$SCRATCH/eta_grid/$task" \
    --suite.defaults.replica_steps=$STEPS --suite.defaults.compilation_cache_dir= "${EXTRA[@]}" \
    > "$SCRATCH/suite_$task.log" 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
echo "suites ended (last non-zero status $rc): $(( $(date +%s) - T0 )) s"

# 3. pack everything but checkpoints
(cd "$SCRATCH" && tar czf "$OUT/eta_grid.tgz" --exclude=checkpoints eta_grid ./*.log)
grep -h "final score\|step .*: score" "$SCRATCH"/suite_*.log | tail -n 40
rm -rf "$SCRATCH"
echo "wrote $OUT/eta_grid.tgz in $(( $(date +%s) - T0 )) s"
exit $rc
