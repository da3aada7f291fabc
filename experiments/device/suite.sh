#!/usr/bin/env bash
# A suite of experiments/suites/ on one GPU machine without network, one task at a time.
# Builds the replicas of TASKS in parallel on the CPU cores (medium-expert: its medium and
# expert rollouts side by side, then the concatenation), runs SUITE for one task at a time,
# each as soon as its replica is ready, and packs results, reports (written for unfinished
# tasks too), TensorBoard logs and console logs into $OUT/<suite name>.tgz. Stops itself
# (SIGTERM: a checkpoint, then exit) LIMIT_S seconds after it began, so whatever finished is
# packed; WORK (replicas, checkpoints, XLA's compilation cache) survives between calls on a
# warm machine, so a second call with the same WORK resumes the interrupted task.
#
# Why one suite at a time: side by side they starve each other (one H100, three tasks at
# once: 3.5 min to the first 1,000 steps, then about 270 program updates/s each; one task
# alone on an H200: 97 s to the first 1,000 steps). A replica level took 95-216 s of rollout
# on that machine's CPU (halfcheetah, hopper, walker2d medium); 1M steps of 3 OFQL seeds
# took 7.5 min on an H200. A program's checkpoints (tens of MB) do not come back from the
# device tool, so give each call the cells it can finish: SELECT takes the suite's cell
# names or groups, with {task} replaced by each task (e.g. SELECT="ofql-{task},flowbc-{task}").
#
# Each task's suite is stopped RESERVE_S (default 60) seconds before LIMIT_S (SIGTERM: it
# checkpoints and exits, killed 20 s later if not), and its report and the archive are
# written as soon as it ends; give the device tool a timeout_s of at least LIMIT_S + 15. A
# task whose selection finished (WORK/done/<task>_<selection>) is skipped by a later call on
# the same machine.
#
#   OUT=out TASKS=hopper-medium-expert SELECT="ofql-{task},flowbc-{task}" \
#     bash experiments/device/suite.sh              # issue 35's learning runs, one task
#   OUT=out SUITE=eta_grid TASKS=walker2d-medium SELECT="ofql-{task},eta_grid" \
#     SUITE_ARGS="--suite.defaults.eval_every=100000" bash experiments/device/suite.sh
#   OUT=out LIMIT_S=240 ...                          # a second call on the warm machine
#   OUT=out TOGETHER=1 REPLICAS=.replicas/hopper-medium-replay.tgz \
#     TASKS="hopper-medium-expert hopper-medium-replay" SELECT="ofql-{task}" \
#     bash experiments/device/suite.sh              # a carried replica (carry .replicas)
#   OUT=out DRY=1 TASKS=hopper-medium-expert bash experiments/device/suite.sh  # tiny, a CPU
#
# TOGETHER=1 runs all TASKS in ONE suite once every replica is built, so that the suite
# trains the cells of one algorithm on tasks of one shape (hopper's; halfcheetah's with
# walker2d's) as one multi-dataset program (ofql_jax.training.multi_dataset): on a GPU that
# idles at a few members, two or four tasks cost little more than one.
#   OUT=out TOGETHER=1 TASKS="walker2d-medium-expert halfcheetah-medium-expert" \
#     SELECT="ofql-{task}" bash experiments/device/suite.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
SUITE="${SUITE:-learning}"  # a file of experiments/suites/ (without .py)
OUT="${OUT:-runs/${SUITE}_device}"
LIMIT_S="${LIMIT_S:-540}"
RESERVE_S="${RESERVE_S:-60}"  # seconds kept after each suite for its report and the pack
TASKS="${TASKS:-hopper-medium-expert}"
WORK="${WORK:-/tmp/ofql_$SUITE}"
mkdir -p "$OUT" "$WORK/done" && OUT="$(cd "$OUT" && pwd)"
export PYTHONUNBUFFERED=1 MINARI_DATASETS_PATH="$WORK/minari"
# shellcheck source=benchmarks/wheels.sh
source benchmarks/wheels.sh
install_wheels "${WHEELS:-.whl}" "$WORK/site" || exit 2
# REPLICAS: packed replicas carried from the development machine, unpacked into Minari's
# folder before any build, so that their builds are skipped (hopper medium-replay re-runs
# SAC for 270k steps: 42 min on one core). Pack with benchmarks/pack_replica.sh.
mkdir -p "$MINARI_DATASETS_PATH"
for pack in ${REPLICAS:-}; do
  tar xzf "$pack" -C "$MINARI_DATASETS_PATH" ||
    { echo "REPLICAS: cannot unpack $pack: carry the file it names, or leave REPLICAS out"; exit 2; }
done

STEPS=1000000 EXTRA=()
if [[ -n "${DRY:-}" ]]; then
  STEPS=3000
  EXTRA=(--suite.defaults.num_steps=200 --suite.defaults.eval_every=100
         --suite.defaults.eval_episodes=2 --suite.defaults.checkpoint_every=100
         --suite.defaults.steps_per_call=100)
fi
# The evaluations step their environments in one process per CPU core (0: all of them;
# returns unchanged): with one, walker2d's final evaluation of 10 members x 30 episodes
# outran a 110 s reserve on the H200 machine.
EXTRA+=(--suite.defaults.eval_workers="${EVAL_WORKERS:-0}" --suite.defaults.replica_steps=$STEPS
        --suite.defaults.compilation_cache_dir="$WORK/xla_cache")
read -r -a more <<< "${SUITE_ARGS:-}" && EXTRA+=("${more[@]}")  # split on spaces

replica() {  # replica ENV LEVEL: build (or find) ofql/ENV/LEVEL-v0 on the CPU
  JAX_PLATFORMS=cpu python3 -m ofql_jax.behavior.replica --env="$1" --level="$2" \
    --num_steps=$STEPS >> "$WORK/replica_$1-$2.log" 2>&1 ||
    grep -q "already exists" "$WORK/replica_$1-$2.log"
}
declare -A replica_pid
for task in $TASKS; do  # 1. replicas, in parallel on the CPU cores (skipped when built)
  [[ -f "$WORK/done/replica_$task" ]] && continue
  env="${task%%-*}" level="${task#*-}"
  (
    if [[ "$level" == medium-expert ]]; then
      replica "$env" medium & replica "$env" expert & wait
    fi
    replica "$env" "$level" && touch "$WORK/done/replica_$task"
  ) &
  replica_pid[$task]=$!
done

pack() {  # everything but checkpoints, after each task, so a call cut short returns it
  ( cd "$WORK" || exit 1
    shopt -s nullglob
    items=(./*.log)
    [[ -d "$SUITE" ]] && items+=("$SUITE")
    tar czf "$OUT/$SUITE.tgz.part" --exclude=checkpoints "${items[@]}" &&
      mv "$OUT/$SUITE.tgz.part" "$OUT/$SUITE.tgz" ) || { echo "packing $OUT/$SUITE.tgz failed"; return 1; }
}

rc=0
if [[ -n "${TOGETHER:-}" ]]; then  # 2'. one suite over every task, once all replicas are there
  names="" selects=""
  for task in $TASKS; do
    [[ -n "${replica_pid[$task]:-}" ]] && wait "${replica_pid[$task]}"
    if [[ ! -f "$WORK/done/replica_$task" ]]; then
      echo "replica of $task failed: see $WORK/replica_*.log"; exit 2
    fi
    names+="${names:+,}$task"
    [[ -n "${SELECT:-}" ]] && selects+="${selects:+,}${SELECT//\{task\}/$task}"
  done
  echo "replicas ready: $(( $(date +%s) - T0 )) s"
  LEFT=$(( LIMIT_S - RESERVE_S - ($(date +%s) - T0) ))
  if (( LEFT < 30 )); then echo "no time left"; pack; exit 124; fi
  timeout -s TERM -k 20 $LEFT python3 -m ofql_jax.suite --suite="experiments/suites/$SUITE.py:$names" \
    --suite.select="$selects" --workdir="$WORK/$SUITE/together" "${EXTRA[@]}" \
    >> "$WORK/suite_together.log" 2>&1
  rc=$?
  echo "suite $names ended (status $rc): $(( $(date +%s) - T0 )) s"
  [[ -f "$WORK/$SUITE/together/suite.json" ]] &&
    python3 -m ofql_jax.report "$WORK/$SUITE/together" >> "$WORK/report_together.log" 2>&1
  tr '\r' '\n' < "$WORK/suite_together.log" | grep -a "final score\|^step .*: score\|One program" | tail -n 30
  pack && echo "packed $OUT/$SUITE.tgz: $(( $(date +%s) - T0 )) s"
  exit $rc
fi
for task in $TASKS; do  # 2. one suite at a time, each once its replica is there
  select="${SELECT:-}" && select="${select//\{task\}/$task}"
  done_mark="$WORK/done/${task}_${select:-all}"
  if [[ -f "$done_mark" ]]; then echo "suite $task: finished on an earlier call"; continue; fi
  [[ -n "${replica_pid[$task]:-}" ]] && wait "${replica_pid[$task]}"
  if [[ ! -f "$WORK/done/replica_$task" ]]; then
    echo "replica of $task failed: see $WORK/replica_*.log"; rc=2; continue
  fi
  echo "replica $task ready: $(( $(date +%s) - T0 )) s"
  LEFT=$(( LIMIT_S - RESERVE_S - ($(date +%s) - T0) ))
  if (( LEFT < 30 )); then echo "no time left for $task"; rc=124; break; fi
  timeout -s TERM -k 20 $LEFT python3 -m ofql_jax.suite \
    --suite="experiments/suites/$SUITE.py:$task" --suite.select="$select" \
    --workdir="$WORK/$SUITE/$task" "${EXTRA[@]}" >> "$WORK/suite_$task.log" 2>&1
  status=$?; (( status )) && rc=$status
  (( status == 0 )) && touch "$done_mark"
  echo "suite $task ended (status $status): $(( $(date +%s) - T0 )) s"
  # 3. its report, finished or not (the training-health curves reach the last chunk)
  [[ -f "$WORK/$SUITE/$task/suite.json" ]] &&
    python3 -m ofql_jax.report "$WORK/$SUITE/$task" >> "$WORK/report_$task.log" 2>&1
  tr '\r' '\n' < "$WORK/suite_$task.log" | grep -a "final score\|^step .*: score" | tail -n 20
  pack && echo "packed $OUT/$SUITE.tgz: $(( $(date +%s) - T0 )) s"
done
[[ -f "$OUT/$SUITE.tgz" ]] || pack
exit $rc
