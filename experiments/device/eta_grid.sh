#!/usr/bin/env bash
# Issue 10's eta grid on one GPU machine without network. Builds the medium replicas of
# TASKS (1M steps each, as on the CPU) in parallel on the CPU cores, runs
# experiments/suites/eta_grid.py for one task at a time, each as soon as its replica is
# ready, and packs results, reports (written for unfinished tasks too), TensorBoard logs and
# console logs into $OUT/eta_grid.tgz. Stops itself (SIGTERM: a checkpoint, then exit)
# LIMIT_S seconds after it began, so whatever finished is packed; WORK (replicas,
# checkpoints) survives between calls on a warm machine, so a second call with the same WORK
# resumes.
#
# One suite at a time because side by side they starve each other (2026-11-26, one H100,
# three tasks at once: 3.5 min to the first 1,000 steps, XLA's GPU autotuning of three
# compiles sharing the card, then about 270 program updates/s each; one task alone on an
# H200: 97 s to the first 1,000 steps, of which 50 s compiling the training chunk and 34 s
# the diagnostics). A replica takes 95-205 s on that machine's CPU (halfcheetah, hopper,
# walker2d); one task alone trained at about 850 program updates/s on the H100. So one
# 10-minute call finishes about one task (replica, OFQL sweep, flow BC). In a 15-minute
# session, call again at once with the same WORK (the machine stays warm for 30 s): the
# replicas are kept and the interrupted task resumes from its last checkpoint (every 10k);
# XLA's compilation cache is kept in WORK too, so the resumed task skips its compiles.
#
# 2026-11-27, one H200, two calls (515 s and 215 s of LIMIT_S): halfcheetah whole (replica
# about 2 min, OFQL sweep 4.5 min with its two evaluations, flow BC 1.5 min) and walker2d's
# OFQL sweep to 49k. The checkpoints of an unfinished program (68 MB) are too large to come
# back, so a cut-short task restarts on the next machine: give each call the tasks it can
# finish (TASKS=...).
#
# Each task's suite is stopped RESERVE_S (default 60) seconds before LIMIT_S (SIGTERM: it
# checkpoints and exits, killed 20 s later if not), and the task's report and
# $OUT/eta_grid.tgz are written as soon as it ends, so the reserve covers the stop, the
# report and the pack; give the device tool a timeout_s of at least LIMIT_S + 15. A call cut
# short thus still returns every task that finished and the diagnostics of the one it cut.
# A task whose suite finished (WORK/suite_TASK.done, WORK/suite_TASK_ofql.done with
# ONLY=ofql) is skipped by a later call on the same machine.
#
# 2026-11-27, one H200, hopper and walker2d with ONLY=ofql and the final evaluation alone
# (SUITE_ARGS below): the replicas took 194 s and 231 s of rollout side by side, hopper's
# OFQL sweep 4 min 44 s (100k steps at 840 program updates/s after 103 s of compiling). The
# second call, which ran the finished hopper task again and left 30 s for the reports, was
# killed at its outer limit before it packed anything; the layout above prevents that (the
# DRY path checked on a CPU: a finished task skipped, a task cut by its limit packed with
# its report).
#
# 2026-11-28, one H200, walker2d with ONLY=ofql, the final evaluation alone, one env process
# per evaluation (before EVAL_WORKERS): the replica took 216 s (rollout 204 s); the suite
# trained to 100k in 3 min 47 s (818 program updates/s at the end) and was stopped inside the
# final evaluation 97 s later, then killed (status 137: the stop request is read between
# chunks, not during an evaluation); the second call resumed from the 90k checkpoint and was
# killed inside the evaluation again after 110 s. The diagnostics to 100k came back, no
# score. Walker2d's episodes mostly run to 1,000 steps, and one process steps the 150 envs of
# a wave at about 40 ms a step (measured on the 2-core development machine, so 4,000 steps,
# 2 waves x N = 50 and N = 1, take minutes): hence EVAL_WORKERS below.
#
#   OUT=out bash experiments/device/eta_grid.sh          # all three tasks in turn, LIMIT_S=540
#   OUT=out TASKS=walker2d-medium ONLY=ofql LIMIT_S=585 RESERVE_S=40 \
#     SUITE_ARGS="--suite.defaults.eval_every=100000" bash experiments/device/eta_grid.sh
#     # walker2d's OFQL sweep, final evaluation alone: about 4 min of replica and 5 of
#     # training (estimated from the calls above), so timeout_s=600; if it is cut short,
#     # the same command with LIMIT_S=240 at once resumes it on the warm machine
#   OUT=out LIMIT_S=240 bash experiments/device/eta_grid.sh   # the second call: resumes
#   OUT=out TASKS=walker2d-medium ONLY=ofql bash experiments/device/eta_grid.sh  # no flow BC
#   OUT=out DRY=1 bash experiments/device/eta_grid.sh      # tiny, on a CPU: checks the path
#   OUT=out SUITE_ARGS="--suite.defaults.eval_every=100000" bash experiments/device/eta_grid.sh
#                                      # more suite flags: here the final evaluation alone
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
OUT="${OUT:-runs/eta_grid_device}"
LIMIT_S="${LIMIT_S:-540}"
TASKS="${TASKS:-hopper-medium walker2d-medium halfcheetah-medium}"
WORK="${WORK:-/tmp/ofql_eta_grid}"
mkdir -p "$OUT" "$WORK" && OUT="$(cd "$OUT" && pwd)"
export PYTHONUNBUFFERED=1 MINARI_DATASETS_PATH="$WORK/minari"
# shellcheck source=benchmarks/wheels.sh
source benchmarks/wheels.sh
install_wheels "${WHEELS:-.whl}" "$WORK/site" || exit 2

STEPS=1000000 EXTRA=()
if [[ -n "${DRY:-}" ]]; then
  STEPS=3000
  EXTRA=(--suite.defaults.num_steps=200 --suite.defaults.eval_every=100
         --suite.defaults.eval_episodes=2 --suite.defaults.checkpoint_every=100
         --suite.defaults.replica_steps=$STEPS --suite.defaults.steps_per_call=100)
fi
# The evaluations step their environments in one process per CPU core (EVAL_WORKERS, 0: all
# of them; returns unchanged): with one, walker2d's final evaluation of 10 members x 30
# episodes, N = 50 and N = 1, outran a 110 s reserve on the H200 machine (2026-11-28).
EXTRA+=(--suite.defaults.eval_workers="${EVAL_WORKERS:-0}")
# SUITE_ARGS: more flags for every suite run, split on spaces (no quoting inside)
read -r -a more <<< "${SUITE_ARGS:-}" && EXTRA+=("${more[@]}")
declare -A replica_pid
for task in $TASKS; do  # 1. replicas, in parallel on the CPU cores (skipped when built)
  if [[ -f "$WORK/replica_$task.done" ]]; then continue; fi
  ( JAX_PLATFORMS=cpu python3 -m ofql_jax.data.replica --env="${task%%-*}" --level=medium \
      --num_steps=$STEPS > "$WORK/replica_$task.log" 2>&1 && touch "$WORK/replica_$task.done" ) &
  replica_pid[$task]=$!
done

# pack everything but checkpoints (after each task, so a call cut short returns what finished)
pack() {
  ( cd "$WORK" || exit 1
    shopt -s nullglob
    items=(./*.log)
    [[ -d eta_grid ]] && items+=(eta_grid)
    tar czf "$OUT/eta_grid.tgz.part" --exclude=checkpoints "${items[@]}" &&
      mv "$OUT/eta_grid.tgz.part" "$OUT/eta_grid.tgz" ) || { echo "packing $OUT/eta_grid.tgz failed"; return 1; }
}

RESERVE_S="${RESERVE_S:-60}"  # seconds kept after each suite for its report and the pack
rc=0
for task in $TASKS; do  # 2. one suite at a time, each once its replica is there
  done_mark="$WORK/suite_$task${ONLY:+_$ONLY}.done"  # what this selection finished
  if [[ -f "$done_mark" ]]; then echo "suite $task: finished on an earlier call"; continue; fi
  [[ -n "${replica_pid[$task]:-}" ]] && wait "${replica_pid[$task]}"
  echo "replica $task ready: $(( $(date +%s) - T0 )) s"
  LEFT=$(( LIMIT_S - RESERVE_S - ($(date +%s) - T0) ))
  if (( LEFT < 30 )); then echo "no time left for $task"; rc=124; break; fi
  SELECT=""  # ONLY=ofql: the task's OFQL sweep (its main cell and the grid), no flow BC
  [[ "${ONLY:-}" == ofql ]] && SELECT="ofql-$task,eta_grid"
  timeout -s TERM -k 20 $LEFT python3 -m ofql_jax.suite \
    --suite=experiments/suites/eta_grid.py:$task --suite.select="$SELECT" --workdir="$WORK/eta_grid/$task" \
    --suite.defaults.replica_steps=$STEPS --suite.defaults.compilation_cache_dir="$WORK/xla_cache" "${EXTRA[@]}" \
    >> "$WORK/suite_$task.log" 2>&1
  status=$?; (( status )) && rc=$status
  (( status == 0 )) && touch "$done_mark"
  echo "suite $task ended (status $status): $(( $(date +%s) - T0 )) s"
  # 3. its report, finished or not: the training-health section draws each program's diag/*
  # curves from TensorBoard to the last chunk, so a run cut short still shows them.
  [[ -f "$WORK/eta_grid/$task/suite.json" ]] &&
    python3 -m ofql_jax.report "$WORK/eta_grid/$task" >> "$WORK/report_$task.log" 2>&1
  tr '\r' '\n' < "$WORK/suite_$task.log" | grep -a "final score\|^step .*: score" | tail -n 20
  pack && echo "packed $OUT/eta_grid.tgz: $(( $(date +%s) - T0 )) s"
done
[[ -f "$OUT/eta_grid.tgz" ]] || pack
exit $rc
