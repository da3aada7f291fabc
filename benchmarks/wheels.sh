# Sourced by the GPU scripts: install_wheels DIR TARGET installs every wheel in DIR into
# TARGET (no network, no dependencies resolved, the machine's environment untouched) and
# puts TARGET and the repository first on PYTHONPATH; without wheels only the repository.
# Returns 2 with one sentence if the wheels do not install or a package is still missing.
install_wheels() {
  local dir="$1" target="$2"
  if [[ -d "$dir" ]] && compgen -G "$dir/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$target" "$dir"/*.whl || { echo "error: installing the wheels in $dir failed"; return 2; }
    export PYTHONPATH="$target:$PWD"
  else
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  fi
  python3 -c "import ofql_jax, minari, mujoco, gymnasium, ml_collections, tensorboardX" \
    || { echo "error: a required package is missing: carry it as a wheel in $dir"; return 2; }
}
