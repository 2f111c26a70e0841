#!/usr/bin/env bash
# Installs assistd into ./.venv. `scripts/install.sh dev` adds the test and lint tools.
# Re-running is cheap: nothing is reinstalled while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
fi
stamp=".venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)-${extra:-base}"
if [ ! -f "$stamp" ]; then
  if [ "$extra" = dev ]; then
    .venv/bin/pip install --quiet -e '.[dev]'
  else
    .venv/bin/pip install --quiet -e .
  fi
  touch "$stamp"
fi
# The 1.20.x SDK, for the test that runs the seed's object calls on it (with PYTHONPATH
# pointing here; it uses the venv's packages for its dependencies). Offline, that test skips.
if [ "$extra" = dev ] && [ ! -d .venv/dashscope-1.20/dashscope ]; then
  .venv/bin/pip install --quiet --no-deps --target .venv/dashscope-1.20 dashscope==1.20.14 \
    || echo "install.sh: could not install dashscope 1.20.14; its test will be skipped" >&2
fi
