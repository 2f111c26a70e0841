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
