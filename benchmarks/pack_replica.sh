#!/usr/bin/env bash
# Pack local replicas for a GPU machine without network (experiments/device/suite.sh's
# REPLICAS), with Minari's namespace files, into one .tgz per replica:
#   bash benchmarks/pack_replica.sh hopper-medium-replay        # -> .replicas/hopper-medium-replay.tgz
# then carry .replicas beside .whl. Replicas come from $MINARI_DATASETS_PATH (else
# ~/.minari/datasets); build one first with python -m ofql_jax.behavior.replica.
set -euo pipefail
cd "$(dirname "$0")/.."
root="${MINARI_DATASETS_PATH:-$HOME/.minari/datasets}"
mkdir -p .replicas
for task in "$@"; do
  env="${task%%-*}" level="${task#*-}"
  dir="ofql/$env/$level-v0"
  if [[ ! -d "$root/$dir" ]]; then
    echo "error: no local replica $dir under $root: build it with" \
      "python -m ofql_jax.behavior.replica --env=$env --level=$level" >&2
    exit 2
  fi
  files=("$dir")
  for ns in ofql/namespace_metadata.json "ofql/$env/namespace_metadata.json"; do
    [[ -f "$root/$ns" ]] && files+=("$ns")
  done
  tar czf ".replicas/$task.tgz" -C "$root" "${files[@]}"
  echo ".replicas/$task.tgz: $(du -h ".replicas/$task.tgz" | cut -f1)"
done
