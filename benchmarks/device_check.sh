#!/usr/bin/env bash
# The accelerator check (docs/device_check.md): on a machine with an NVIDIA GPU, a CUDA JAX
# already installed and no network, measure every agent's cost and time a short CLI run with
# evaluation on a small replica, in under 8 minutes; everything lands in one JSON.
#
#   bash benchmarks/device_check.sh                 # on the GPU machine, from the repo root
#   bash benchmarks/device_check.sh --dry-run       # the same stages in about 3 minutes on a CPU
#
# Environment: OUT (folder for the results; default runs/device_check), WHEELS (folder of
# wheels to install first without a network; default .whl, skipped when absent or empty),
# BUDGET_S (seconds after which the benchmark starts no new measurement; default 220),
# DC_ARGS (more arguments for benchmarks/device_check.py, e.g. "--agents ofql bc"), SKIP_CLI
# (1: measure only, no replica and no CLI run).
# Output: $OUT/device_check.json (schema in docs/device_check.md), $OUT/*.log, nvidia-smi.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=""
[[ "${1:-}" == "--dry-run" ]] && DRY="--dry-run"
OUT="${OUT:-runs/device_check}"
WHEELS="${WHEELS:-.whl}"
BUDGET_S="${BUDGET_S:-150}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
SCRATCH="$(mktemp -d)"
T0=$(date +%s)
export PYTHONUNBUFFERED=1

# 1. Packages the GPU image lacks, from wheels (see docs/device_check.md for `pip download`).
# shellcheck source=benchmarks/wheels.sh
source benchmarks/wheels.sh
install_wheels "$WHEELS" "$SCRATCH/site" || exit 2
(nvidia-smi || echo "nvidia-smi: not available") > "$OUT/nvidia-smi.txt" 2>&1

# 2. The small replica, built on the CPU cores while the GPU is measured.
export MINARI_DATASETS_PATH="$SCRATCH/minari"
REPLICA_STEPS=50000 CLI_TIMEOUT=170
[[ -n "$DRY" ]] && REPLICA_STEPS=2000 CLI_TIMEOUT=600  # a slow CPU compiles for minutes
if [[ "${SKIP_CLI:-0}" == 1 ]]; then
  true &  # nothing to build
else
  JAX_PLATFORMS=cpu python3 -m ofql_jax.behavior.replica --env=hopper --level=medium \
    --num_steps=$REPLICA_STEPS > "$OUT/replica.log" 2>&1 &
fi
REPLICA_PID=$!

# 3. Every agent's cost (writes $OUT/device_check.json and $OUT/cli_steps.txt).
python3 benchmarks/device_check.py --out "$OUT/device_check.json" --budget_s "$BUDGET_S" $DRY \
  ${DC_ARGS:-} 2>&1 | tee "$OUT/bench.log"
BENCH_RC=${PIPESTATUS[0]}
wait $REPLICA_PID
REPLICA_RC=$?

# 4. A short CLI run with evaluation: OFQL, 3 seeds, about 60 s of training, paper protocol
#    except 10 episodes per evaluation.
STEPS=$(cat "$OUT/cli_steps.txt" 2>/dev/null || echo 2000)
if [[ "${SKIP_CLI:-0}" == 1 ]]; then
  echo "device_check: measured only (SKIP_CLI=1); wrote $OUT/device_check.json"
  rm -rf "$SCRATCH"
  exit $BENCH_RC
fi
CLI_T0=$(date +%s.%N)
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # evaluation workers must not take GPU memory
timeout $CLI_TIMEOUT python3 -m ofql_jax.main --config=experiments/d4rl.py:hopper-medium \
  --config.data_source=replica --config.replica_steps=$REPLICA_STEPS --config.num_seeds=3 \
  --config.num_steps="$STEPS" --config.eval_every=$((STEPS / 2)) --config.eval_episodes=10 \
  --config.eval_workers=0 --config.checkpoint_every="$STEPS" --config.progress=False \
  --workdir="$SCRATCH/cli" > "$OUT/cli.log" 2>&1
CLI_RC=$?
CLI_T1=$(date +%s.%N)

# 5. One JSON.
python3 - "$OUT" "$SCRATCH/cli" "$BENCH_RC" "$REPLICA_RC" "$CLI_RC" "$CLI_T0" "$CLI_T1" "$STEPS" \
  "$REPLICA_STEPS" "$T0" <<'EOF'
import json, sys, time
from pathlib import Path
out, cli, bench_rc, rep_rc, cli_rc, t0, t1, steps, rep_steps, start = sys.argv[1:]
path = Path(out, "device_check.json")
doc = json.loads(path.read_text()) if path.exists() else {}
doc["bench_exit_status"] = int(bench_rc)
doc["replica"] = {"env": "hopper", "level": "medium", "steps": int(rep_steps),
                  "exit_status": int(rep_rc)}
run = {"command": "python -m ofql_jax.main --config=experiments/d4rl.py:hopper-medium "
       f"--config.data_source=replica --config.replica_steps={rep_steps} --config.num_seeds=3 "
       f"--config.num_steps={steps} --config.eval_every={int(steps) // 2} "
       "--config.eval_episodes=10 --config.eval_workers=0",
       "exit_status": int(cli_rc), "wall_s": float(t1) - float(t0), "num_steps": int(steps)}
results = Path(cli, "results.json")
if results.exists():
    res = json.loads(results.read_text())
    keep = ("mean", "std", "final_scores", "mean_one_step", "std_one_step", "updates_per_second",
            "seed_updates_per_second", "compile_seconds", "backend", "devices", "data_source",
            "dataset_id", "diverged_seeds", "value_diverged_seeds")
    run.update({k: res[k] for k in keep if k in res})
    run["evaluations"] = [{k: e.get(k) for k in ("step", "scores", "scores_one_step")}
                          for e in res.get("evaluations", [])]
doc["cli_run"] = run
doc["total_wall_s"] = time.time() - float(start)
path.write_text(json.dumps(doc, indent=1))
print(f"device_check: wrote {path}; bench rc {bench_rc}, replica rc {rep_rc}, cli rc {cli_rc} "
      f"({run['wall_s']:.0f} s), total {doc['total_wall_s']:.0f} s")
EOF
cp "$SCRATCH/cli/results.json" "$OUT/cli_results.json" 2>/dev/null
rm -rf "$SCRATCH"
[[ $BENCH_RC -eq 0 && $REPLICA_RC -eq 0 && $CLI_RC -eq 0 ]]
