# Sourced by the GPU scripts: install_wheels DIR TARGET installs every wheel in DIR into
# TARGET (no network, no dependencies resolved, the machine's environment untouched) and
# puts TARGET and the repository first on PYTHONPATH; without wheels only the repository.
# Wheels built for another interpreter (e.g. the GPU image's cp312 ones in a CPU dry run on
# 3.11) are left out as a set, with one line saying so: a partial set would shadow packages.
# Returns 2 with one sentence if the wheels do not install or a package is still missing.
install_wheels() {
  local dir="$1" target="$2" install=false
  if [[ -d "$dir" ]] && compgen -G "$dir/*.whl" > /dev/null; then
    if wheels_fit "$dir"; then
      install=true
    else
      echo "note: the wheels in $dir are for another Python than $(python3 -V 2>&1); using the installed packages"
    fi
  fi
  if $install; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$target" "$dir"/*.whl || { echo "error: installing the wheels in $dir failed"; return 2; }
    export PYTHONPATH="$target:$PWD"
  else
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  fi
  python3 -c "import ofql_jax, minari, mujoco, gymnasium, ml_collections, tensorboardX" \
    || { echo "error: a required package is missing: carry it as a wheel in $dir"; return 2; }
}

# wheels_fit DIR: true when every wheel in DIR installs on this interpreter (its tags).
wheels_fit() {
  python3 - "$1"/*.whl <<'PY'
import os, sys
try:
    from packaging.tags import sys_tags
    from packaging.utils import parse_wheel_filename
except ImportError:  # pip vendors packaging
    try:
        from pip._vendor.packaging.tags import sys_tags
        from pip._vendor.packaging.utils import parse_wheel_filename
    except ImportError:  # no way to read tags: let pip decide
        sys.exit(0)
ok = set(sys_tags())
sys.exit(0 if all(parse_wheel_filename(os.path.basename(w))[3] & ok for w in sys.argv[1:]) else 1)
PY
}
